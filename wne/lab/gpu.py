"""GPU run book: the paper-size σ=25 twins trained, evaluated and timed in short GPU jobs.

The GPU machines this project can borrow run one command at a time for at most 10
minutes, receive a copy of the working tree (≤ 64 MiB, carried folders included)
and give back at most 8 files of ≤ 16 MiB. So the run book is a small state machine
over a state folder (default ``runs/gpu``, ignored by git) that every job is given
and that comes back as a few files under ``$OUT``::

    python -m wne.lab.gpu prepare            # here, once: copies Train400 + Set12 in
    python -m wne.lab.gpu next               # on the GPU, once per job, until done
    python -m wne.lab.gpu restore FILES_AT   # here, after each job: the state back
    python -m wne.lab.gpu status             # anywhere: where it stands, jobs left
    python -m wne.lab.gpu adopt --gpu-name NAME --results DIR   # here, when done

The units, in order: train the DnCNN twins (20 layers × 64, the paper's batch 128
and patch 70), then the SwinIR twins (60-dim, depths (6, 6, 6, 6), batch 32, patch
64), each with :mod:`wne.lab.train` (bf16 autocast on CUDA, ``--stop-after`` sized
from the measured seconds per step, exact resume from its state); then
:mod:`wne.lab.evaluate` on Set12; then timings: the demo's comparison
(:func:`wne.demo.compare.compare`) and :mod:`wne.lab.bench` at 512² and 1024².
The paper's 500k steps do not fit a few 30-minute sessions: the first chunk of a
family is a probe that measures seconds per step, and the family's step count is
then fixed (for both twins) to what ``--train-jobs`` jobs of ``--budget-s`` allow.

``adopt`` turns the finished checkpoints into the catalog's GPU-trained entries
(``checkpoints/<family>-<variant>-s25-gpu``, written by :func:`wne.checkpoints.save`
with the recipe, the GPU's name and the Set12 numbers) and copies the results under
those keys (:func:`adopt`).

``next`` does as much work as fits the budget, saves progress, and when ``$OUT``
is set writes the state there as ``state.tar.partNN`` (≤ 15 MiB each) plus
``status.txt``. ``--tiny`` runs the whole book with tiny models, steps and images
on the CPU (the tests' dry run).
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import math
import os
import shlex
import shutil
import sys
import tarfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "PART_BYTES",
    "Unit",
    "adopt",
    "jobs_left",
    "load_plan",
    "main",
    "pack_state",
    "prepare",
    "restore_state",
    "run_next",
    "status_text",
    "time_comparison",
    "train_argv",
    "units",
]

log = logging.getLogger(__name__)

PART_BYTES = 15 * 2**20
"""Largest state part written to ``$OUT`` (the device tool brings back ≤ 16 MiB a file)."""
MAX_PARTS = 7
"""State parts at most (8 files come back; one is ``status.txt``)."""
PLAN = "plan.json"
PROGRESS = "progress.json"
SIGMA = 25
FAMILIES = ("dncnn", "swinir")
TIMING_SIDES = (512, 1024)
MARGIN_S = 20.0
"""Seconds of each job kept for packing the state and the process's exit."""
GUESS_S = {"eval": 60.0, "timing": 120.0}
"""Seconds an evaluation or timing unit is expected to take before it ever ran (GPU)."""

_TINY_KWARGS = {
    "dncnn": {"depth": 3, "width": 8},
    "swinir": {
        "embed_dim": 12,
        "depths": [1],
        "num_heads": 2,
        "window_size": 4,
        "mlp_ratio": 1,
        "drop_path_rate": 0.0,
    },
}


@dataclass(frozen=True)
class Unit:
    """One unit of the run book: ``kind`` is ``train``, ``eval`` or ``timing``."""

    kind: str
    key: str = ""

    @property
    def name(self) -> str:
        """``train:dncnn-plain-s25``, ``eval``, ``timing``."""
        return f"{self.kind}:{self.key}" if self.key else self.kind


def units(plan: dict[str, Any] | None = None) -> list[Unit]:
    """The run book's units, in order (only the plan's families when it names them)."""
    from wne import catalog

    families = plan.get("families", FAMILIES) if plan else FAMILIES
    out = [
        Unit("train", catalog.key(fam, variant, SIGMA))
        for fam in families
        for variant in ("plain", "wne")
    ]
    tail = [Unit("eval")]
    if plan is None or plan.get("timing", True):
        tail.append(Unit("timing"))
    return [*out, *tail]


# -- the plan and the progress record ---------------------------------------------------------


def _new_plan(args: argparse.Namespace) -> dict[str, Any]:
    from wne import catalog

    families = tuple(f.strip() for f in args.families.split(",") if f.strip())
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown or not families:
        raise SystemExit(f"--families: {unknown or 'none'} not in {', '.join(FAMILIES)}")
    recipes: dict[str, Any] = {}
    for fam in families:
        r = catalog.get(catalog.key(fam, "wne", SIGMA)).recipe(paper=True)
        if args.tiny:
            recipes[fam] = {
                "arch_kwargs": _TINY_KWARGS[fam],
                "paper_steps": 6,
                "batch": 2,
                "patch": 16,
                "lr": 1e-3,
            }
        else:
            recipes[fam] = {
                "arch_kwargs": dict(r.arch_kwargs),
                "paper_steps": r.steps,
                "batch": r.batch,
                "patch": r.patch,
                "lr": args.lr or (r.lr if r.lr is not None else 1e-3),
            }
    init: dict[str, str] = {}
    if args.init_root is not None:
        for fam in families:
            for variant in ("plain", "wne"):
                src = args.init_root / catalog.key(fam, variant, SIGMA, "gpu")
                if not (src / "config.json").is_file():
                    raise SystemExit(f"--init-root: no checkpoint {src} to start from")
                init[catalog.key(fam, variant, SIGMA)] = str(src)
    return {
        "tiny": bool(args.tiny),
        "families": list(families),
        # Continuing from checkpoints: another seed, so the new steps see other patches.
        "init": init,
        "seed": 1 if init else 0,
        "timing": bool(args.timing),
        "channels_last": bool(args.channels_last),
        "budget_s": float(args.budget_s),
        "train_jobs": float(args.train_jobs),
        "probe_steps": 2 if args.tiny else 40,
        "val_every": 2 if args.tiny else 2000,
        "save_every": 2 if args.tiny else 1000,
        "recipes": recipes,
        "steps": {},  # family -> step count, fixed by the family's probe
    }


def load_plan(state: Path) -> dict[str, Any] | None:
    """The plan stored in ``state`` (``None`` before the first ``next``)."""
    p = state / PLAN
    return json.loads(p.read_text(encoding="utf-8")) if p.is_file() else None


def _progress(state: Path) -> dict[str, Any]:
    p = state / PROGRESS
    if p.is_file():
        return json.loads(p.read_text(encoding="utf-8"))
    return {"jobs": 0, "rates": {}, "overhead_s": {}, "done": [], "log": []}


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
    os.replace(tmp, path)


def _family(key: str) -> str:
    return key.split("-")[0]


def _work(state: Path, key: str) -> Path:
    return state / "work" / key


def _ckpt(state: Path, key: str) -> Path:
    return state / "checkpoints" / key


def _trained_steps(state: Path, key: str) -> int:
    meta = _work(state, key) / "train_state.json"
    if meta.is_file():
        return int(json.loads(meta.read_text(encoding="utf-8"))["step"])
    return 0


def train_argv(state: Path, plan: dict[str, Any], key: str, device: str) -> list[str]:
    """The ``wne-train`` arguments of ``key`` in this run book (without ``--stop-after``).

    Args:
        state: The state folder.
        plan: The stored plan (its family's step count must be fixed).
        key: A ``train`` unit's key.
        device: ``auto``, ``cpu`` or ``cuda``.

    Returns:
        The argument list.
    """
    from wne import catalog

    fam = _family(key)
    r = plan["recipes"][fam]
    entry = catalog.get(key)
    steps = int(plan["steps"][fam])
    argv = [
        "--arch", entry.arch,
        "--arch-kwargs", json.dumps(r["arch_kwargs"]),
        "--wrapper", entry.wrapper,
        "--sigma", str(entry.sigma_train),
        "--data", str(state / "data" / "train400"),
        "--out", str(_ckpt(state, key)),
        "--work", str(_work(state, key)),
        "--steps", str(steps),
        "--batch", str(r["batch"]),
        "--patch", str(r["patch"]),
        "--lr", str(r["lr"]),
        "--val-images", "2" if plan["tiny"] else "8",
        "--val-every", str(min(plan["val_every"], steps)),
        "--save-every", str(plan["save_every"]),
        "--device", device,
        "--no-progress",
    ]  # fmt: skip
    if plan.get("seed"):
        argv += ["--seed", str(plan["seed"])]
    if key in plan.get("init", {}):
        argv += ["--init", plan["init"][key]]
    if plan.get("channels_last"):
        argv.append("--channels-last")
    return argv


# -- estimates ---------------------------------------------------------------------------------


def _unit_done(state: Path, prog: dict[str, Any], unit: Unit) -> bool:
    return unit.name in prog["done"]


def _estimate_s(state: Path, plan: dict[str, Any], prog: dict[str, Any], unit: Unit) -> float:
    """Seconds of work left in ``unit`` (unknown rates: one ``--train-jobs`` share)."""
    usable = max(plan["budget_s"] - MARGIN_S, 1.0)
    if unit.kind == "train":
        fam = _family(unit.key)
        rate = prog["rates"].get(unit.key) or prog["rates"].get(fam)
        steps = plan["steps"].get(fam)
        if rate is None or steps is None:
            return plan["train_jobs"] * usable
        over = prog["overhead_s"].get(unit.key, prog["overhead_s"].get(fam, 10.0))
        return (int(steps) - _trained_steps(state, unit.key)) * rate + over
    # evaluation and timings: small, measured once they ran; a guess before
    return 5.0 if plan["tiny"] else min(GUESS_S[unit.kind], 0.5 * usable)


def jobs_left(state: Path, plan: dict[str, Any], prog: dict[str, Any]) -> int:
    """Jobs still needed, packing the remaining units' estimated seconds into jobs of
    ``budget_s`` (training splits across jobs; evaluation and timings do not)."""
    usable = max(plan["budget_s"] - MARGIN_S, 1.0)
    jobs, free = 0, 0.0
    for unit in units(plan):
        if _unit_done(state, prog, unit):
            continue
        need = _estimate_s(state, plan, prog, unit)
        if unit.kind == "train":
            while need > 1e-9:
                if free <= 1e-9:
                    jobs, free = jobs + 1, usable
                take = min(need, free)
                need, free = need - take, free - take
        else:
            if need > free:
                jobs, free = jobs + 1, usable
            free -= need
    return jobs


def status_text(state: Path) -> str:
    """Where the run book stands: every unit, its progress and the jobs left."""
    plan = load_plan(state)
    if plan is None:
        return (
            f"GPU run book at {state}: not started (run `python -m wne.lab.gpu next`); "
            f"{len(units())} units: {', '.join(u.name for u in units())}"
        )
    prog = _progress(state)
    lines = [
        f"GPU run book at {state} ({'tiny dry run' if plan['tiny'] else 'paper size'}, "
        f"{plan['budget_s']:.0f} s per job): {prog['jobs']} job(s) run"
    ]
    current_marked = False
    for unit in units(plan):
        done = _unit_done(state, prog, unit)
        mark = "done" if done else ("next" if not current_marked else "todo")
        current_marked = current_marked or not done
        detail = ""
        if unit.kind == "train":
            fam = _family(unit.key)
            steps = plan["steps"].get(fam)
            have = (
                int(steps) if done and steps else _trained_steps(state, unit.key)
            )  # a finished run's state is dropped
            rate = prog["rates"].get(unit.key) or prog["rates"].get(fam)
            detail = f"{have}/{steps if steps else '?'} steps"
            if rate:
                detail += f", {1.0 / rate:.1f} steps/s"
        lines.append(f"  [{mark}] {unit.name:<24} {detail}".rstrip())
    left = jobs_left(state, plan, prog)
    unprobed = any(f not in plan["steps"] for f in plan.get("families", FAMILIES))
    for name, err in prog.get("errors", {}).items():
        lines.append(f"  error in {name}: {err}")
    lines.append(
        "all done: results in " + str(state / "results")
        if left == 0
        else f"jobs remaining: {left} (estimated from measured throughput"
        + ("; a family not probed yet counts --train-jobs jobs per model)" if unprobed else ")")
    )
    return "\n".join(lines)


# -- the work ----------------------------------------------------------------------------------


class _Clock:
    def __init__(self, budget_s: float) -> None:
        self.t0 = time.perf_counter()
        self.budget_s = budget_s

    def left(self) -> float:
        return self.budget_s - MARGIN_S - (time.perf_counter() - self.t0)


def _run_train(argv: list[str], stop_after: int) -> float:
    """Runs ``wne-train`` in this process; returns its wall seconds (start-up included)."""
    from wne.lab import train

    t0 = time.perf_counter()
    print("$ " + shlex.join(["wne-train", *argv, "--stop-after", str(stop_after)]), flush=True)
    summary = train.train(train.parse_args([*argv, "--stop-after", str(stop_after)]))
    if summary and "val_psnr" in summary:
        print(json.dumps(summary), flush=True)
    return time.perf_counter() - t0


def _wall(work: Path) -> float:
    meta = work / "train_state.json"
    return float(json.loads(meta.read_text(encoding="utf-8"))["wall_s"]) if meta.is_file() else 0.0


def _probe(state: Path, plan: dict[str, Any], prog: dict[str, Any], key: str, dev: str) -> None:
    """Measures seconds per step of ``key`` in a throw-away run and fixes the family's
    step count: what ``train_jobs`` jobs allow, at most the paper's."""
    fam = _family(key)
    n = int(plan["probe_steps"])
    probe_plan = {**plan, "steps": {**plan["steps"], fam: 10 * n}}
    argv = train_argv(state, probe_plan, key, dev)
    work = state / "probe" / key
    argv[argv.index("--work") + 1] = str(work)
    argv[argv.index("--out") + 1] = str(state / "probe" / f"{key}-ckpt")
    argv[argv.index("--val-every") + 1] = str(10**9)
    shutil.rmtree(state / "probe", ignore_errors=True)
    _run_train(argv, n)  # warm-up chunk (kernels, allocator, cuDNN choices)
    wall_before = _wall(work)
    total = _run_train(argv, n)
    loop = _wall(work) - wall_before
    rate = max(loop / n, 1e-6)
    shutil.rmtree(state / "probe", ignore_errors=True)
    usable = max(plan["budget_s"] - MARGIN_S, 1.0)
    overhead = max(total - loop, 0.0)
    # 90 %: the WNE twin is a little slower than the plain one that was probed
    fit = int(0.9 * plan["train_jobs"] * max(usable - overhead, 1.0) / rate)
    steps = int(plan["recipes"][fam]["paper_steps"])
    if not plan["tiny"]:
        steps = max(100, min(steps, fit // 100 * 100))
    plan["steps"][fam] = steps
    prog["rates"][fam] = rate
    prog["overhead_s"][fam] = overhead
    print(f"[probe {key}] {1.0 / rate:.1f} steps/s; {fam} twins get {steps} steps", flush=True)


def _train_unit(
    state: Path,
    plan: dict[str, Any],
    prog: dict[str, Any],
    key: str,
    dev: str,
    clock: _Clock,
    max_steps: int,
) -> int:
    """Trains ``key`` for what is left of the budget; returns the steps run."""
    fam = _family(key)
    if fam not in plan["steps"]:
        _probe(state, plan, prog, key, dev)
        _write_json(state / PLAN, plan)
        _write_json(state / PROGRESS, prog)
    steps = int(plan["steps"][fam])
    done = _trained_steps(state, key)
    rate = prog["rates"].get(key) or prog["rates"][fam]
    over = prog["overhead_s"].get(key, prog["overhead_s"].get(fam, 0.0))
    n = min(steps - done, int((clock.left() - over) / rate), max_steps)
    if n <= 0:
        return 0
    work = _work(state, key)
    wall_before = _wall(work)
    total = _run_train(train_argv(state, plan, key, dev), n)
    loop = _wall(work) - wall_before  # the final step saves the state too
    if done + n >= steps:  # finished: the checkpoint is written, the optimizer state can go
        prog["done"].append(f"train:{key}")
        shutil.rmtree(work, ignore_errors=True)
    if loop > 0:
        prog["rates"][key] = loop / n
        prog["overhead_s"][key] = max(total - loop, 0.0)
    return n


def _eval_unit(state: Path, plan: dict[str, Any], dev: str) -> None:
    from wne.lab import evaluate

    argv = [
        "--models", *(u.key for u in units(plan) if u.kind == "train"),
        "--root", str(state / "checkpoints"),
        "--data", str(state / "data" / "set12"),
        "--out", str(state / "results" / "set12"),
        "--sigma-train", str(SIGMA),
        "--device", dev,
        "--quiet",
    ]  # fmt: skip
    if not plan["tiny"]:  # the paper's grid, plus σ_test = 50 (the mismatch target)
        import numpy as np

        grid = sorted({*(float(x) for x in np.geomspace(5, 100, 20)), float(SIGMA), 50.0})
        argv += ["--sigmas", *(repr(x) for x in grid)]
    if plan["tiny"]:
        argv += ["--max-images", "2", "--sigmas", "25", "--draws", "1", "--defect-images", "1"]
        argv += ["--defect-a", "2", "--defect-b", "0.1", "--no-paper-overlay"]
    print("$ " + shlex.join(["wne-evaluate", *argv]), flush=True)
    rc = evaluate.main(argv)
    if rc:
        raise SystemExit(f"wne-evaluate failed with status {rc}")


def time_comparison(root: Path, device: str, sides: Sequence[int], repeats: int) -> dict[str, Any]:
    """Times the demo's default comparison (:func:`wne.demo.compare.compare`) per side.

    Args:
        root: Checkpoint folder of the models.
        device: Device of the models.
        sides: Square colour image sides.
        repeats: Timed calls per side (after one warm-up call).

    Returns:
        ``{"device": ..., "backbones": [...], "seconds": {side: [..]}}``.
    """
    import numpy as np

    from wne.demo import compare as cmp
    from wne.demo.handlers import default_backbones
    from wne.demo.settings import Settings
    from wne.demo.zoo import Zoo
    from wne.device import synchronize

    zoo = Zoo.discover(root, device=device, hub_repo="")
    settings = Settings(sigma_train=SIGMA, backbones=default_backbones(zoo))
    out: dict[str, Any] = {
        "device": str(zoo.device),
        "backbones": list(settings.backbones),
        "models": sorted(zoo.models),
        "seconds": {},
    }
    for side in sides:
        yy, xx = np.mgrid[0:side, 0:side] / side
        img = np.stack([0.5 + 0.3 * np.sin(7 * xx + k) * np.cos(5 * yy) for k in range(3)], -1)
        img = img.astype(np.float32)
        cmp.compare(zoo, img, settings)  # warm-up
        times = []
        for _ in range(repeats):
            synchronize(zoo.device)
            t0 = time.perf_counter()
            cmp.compare(zoo, img, settings)  # returns CPU arrays: already waited for
            synchronize(zoo.device)
            times.append(round(time.perf_counter() - t0, 4))
        out["seconds"][str(side)] = times
        print(f"[timing] demo comparison {side}² on {zoo.device}: {min(times):.3f} s", flush=True)
    return out


def _timing_root(state: Path, plan: dict[str, Any]) -> tuple[Path, list[str]]:
    """A checkpoint folder with the run book's four σ=25 models: the trained ones, and
    for a family this run book did not train, paper-size stand-ins with random weights
    (the timing of a network does not depend on its weights).

    Returns:
        The folder and the keys that are random stand-ins.
    """
    import torch

    from wne import catalog, checkpoints, models
    from wne.wrapper import NormEquivariant

    root = state / "timing-models"
    shutil.rmtree(root, ignore_errors=True)
    stand_ins = []
    for fam in FAMILIES:
        for variant in ("plain", "wne"):
            key = catalog.key(fam, variant, SIGMA)
            if _ckpt(state, key).is_dir():
                shutil.copytree(_ckpt(state, key), root / key)
                continue
            entry = catalog.get(key)
            paper = dict(entry.recipe(paper=True).arch_kwargs)
            kwargs = _TINY_KWARGS[fam] if plan["tiny"] else paper
            torch.manual_seed(0)
            net = models.build(entry.arch, **kwargs)
            model = NormEquivariant(net) if entry.wrapper == "wne" else net
            checkpoints.save(
                model, root / key, key=key, arch=entry.arch, arch_kwargs=kwargs, sigma_train=SIGMA
            )
            stand_ins.append(key)
    return root, stand_ins


def _timing_unit(state: Path, plan: dict[str, Any], dev: str) -> None:
    from wne.lab import bench

    res = state / "results"
    res.mkdir(parents=True, exist_ok=True)
    sides = (32, 48) if plan["tiny"] else TIMING_SIDES
    repeats = 1 if plan["tiny"] else 5
    root, stand_ins = _timing_root(state, plan)
    demo = time_comparison(root, dev, sides, repeats)
    demo["random_weight_stand_ins"] = stand_ins
    shutil.rmtree(root, ignore_errors=True)
    shipped = Path(__file__).resolve().parents[2] / "checkpoints"
    if shipped.is_dir():  # the Space as shipped (CPU-sized models), on this device
        demo["shipped"] = time_comparison(shipped, dev, sides, repeats)
    _write_json(res / "demo-timing.json", demo)
    bench_dev = "cpu" if plan["tiny"] else (dev if dev != "auto" else "cuda")
    argv = ["--device", bench_dev, "--families", "dncnn,swinir,fdncnn", "--out", str(res / "bench")]
    if plan["tiny"]:
        argv += ["--smoke", "--modes", "infer", "--no-plot"]
    else:
        argv += ["--config", "paper", "--sizes", "512,1024", "--modes", "infer"]
        argv += ["--batch-shape", "none", "--repeats", "10", "--max-cell-seconds", "20"]
    print("$ " + shlex.join(["wne-bench", *argv]), flush=True)
    rc = bench.main(argv)
    if rc:
        raise SystemExit(f"wne-bench failed with status {rc}")


def run_next(
    state: Path, args: argparse.Namespace, after_unit: Callable[[], None] | None = None
) -> dict[str, Any]:
    """Runs as much of the run book as fits ``args.budget_s`` and saves the progress.

    Args:
        state: The state folder.
        args: The command line.
        after_unit: Called after each unit's work is saved (``main`` packs the state into
            ``$OUT`` there, so a job killed at its limit still returns what it finished).

    Returns:
        The progress record.
    """
    clock = _Clock(args.budget_s)
    plan = load_plan(state)
    if plan is None:
        if not (state / "data" / "train400").is_dir():
            raise SystemExit(f"no data in {state}/data: run `python -m wne.lab.gpu prepare` first")
        plan = _new_plan(args)
        _write_json(state / PLAN, plan)
    prog = _progress(state)
    prog["jobs"] += 1
    dev = args.device
    max_steps = args.max_steps if args.max_steps > 0 else 10**12
    for unit in units(plan):
        if _unit_done(state, prog, unit):
            continue
        if unit.kind == "train":
            ran = _train_unit(state, plan, prog, unit.key, dev, clock, max_steps)
            max_steps -= ran
            _write_json(state / PROGRESS, prog)
            if after_unit:
                after_unit()
            if not _unit_done(state, prog, unit):
                break  # out of budget (or of --max-steps) for this job
            continue
        # evaluation and timings are not split: start one only with its estimate left
        if clock.left() < _estimate_s(state, plan, prog, unit):
            break
        t0 = time.perf_counter()
        try:
            (_eval_unit if unit.kind == "eval" else _timing_unit)(state, plan, dev)
        except Exception as exc:  # one failed unit must not lose the job's state
            log.exception("%s failed", unit.name)
            prog.setdefault("errors", {})[unit.name] = f"{type(exc).__name__}: {exc}"
            print(f"[{unit.name}] failed: {type(exc).__name__}: {exc}", flush=True)
        else:
            prog.get("errors", {}).pop(unit.name, None)
            prog["done"].append(unit.name)
        prog["log"].append({"unit": unit.name, "seconds": round(time.perf_counter() - t0, 1)})
        _write_json(state / PROGRESS, prog)
        if after_unit:
            after_unit()
    _write_json(state / PROGRESS, prog)
    return prog


# -- carrying the state ------------------------------------------------------------------------


def _carried(state: Path) -> list[Path]:
    """The state's files that go back (not the input data, not throw-away probes)."""
    skip = {"data", "probe"}
    return sorted(
        p
        for p in state.rglob("*")
        if p.is_file() and p.relative_to(state).parts[0] not in skip and not p.name.endswith(".tmp")
    )


def pack_state(state: Path, out: Path) -> list[Path]:
    """Writes the state folder (without ``data/``) to ``out`` as ``state.tar.partNN``.

    Raises:
        SystemExit: If the state would need more than :data:`MAX_PARTS` parts.
    """
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for p in _carried(state):
            tar.add(p, arcname=str(p.relative_to(state)))
    data = buf.getvalue()
    n = max(1, math.ceil(len(data) / PART_BYTES))
    if n > MAX_PARTS:
        raise SystemExit(f"state is {len(data) / 2**20:.1f} MiB: more than {MAX_PARTS} parts")
    out.mkdir(parents=True, exist_ok=True)
    parts = []
    for i in range(n):
        p = out / f"state.tar.part{i:02d}"
        p.write_bytes(data[i * PART_BYTES : (i + 1) * PART_BYTES])
        parts.append(p)
    return parts


def restore_state(src: Path, state: Path) -> list[str]:
    """Replaces the state folder's content (``data/`` kept) by the parts found in ``src``.

    Returns:
        The restored files, relative to ``state``.

    Raises:
        SystemExit: If ``src`` holds no ``state.tar.part*``.
    """
    parts = sorted(src.glob("state.tar.part*"))
    if not parts:
        raise SystemExit(f"no state.tar.part* in {src}")
    data = b"".join(p.read_bytes() for p in parts)
    state.mkdir(parents=True, exist_ok=True)
    for child in state.iterdir():
        if child.name != "data":
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
        names = tar.getnames()
        tar.extractall(state, filter="data")
    return names


def prepare(state: Path, data: Path) -> None:
    """Copies the training images and Set12 into ``state/data`` (the jobs read them there:
    ``../shared`` does not travel to the GPU machine)."""
    for name in ("train400", "set12"):
        dst = state / "data" / name  # kept if present (``--state`` reused)
        if dst.is_dir():
            continue
        shutil.copytree(data / name, dst)
    print(f"data ready in {state / 'data'}")


# -- into the tree ---------------------------------------------------------------------------


def adopt(
    state: Path,
    root: Path,
    results: Path | None = None,
    gpu_name: str | None = None,
    families: Sequence[str] | None = None,
) -> dict[str, str]:
    """Writes the run book's finished checkpoints as the catalog's GPU-trained entries.

    Each trained model ``<family>-<variant>-s25`` whose family has a GPU recipe at σ 25 in
    :mod:`wne.catalog` is loaded (sha256-verified) and written again with
    :func:`wne.checkpoints.save` as ``root/<family>-<variant>-s25-gpu``: the same tensors,
    the recipe it was trained by plus the GPU's name and the key it was trained under
    (``recipe.run_book_key``), its validation history, and its Set12 numbers from the
    run book's evaluation (``metrics.set12``, as ``wne-evaluate --write-metrics`` stores
    them). With ``results``, the evaluation folder is copied to ``results/set12`` under
    the new keys (:func:`wne.lab.report.rename_models`) and the timings
    (``demo-timing.json``, ``bench/``) beside it, as they are.

    Args:
        state: The run book's state folder.
        root: The checkpoint folder to write into (``checkpoints``).
        results: Where the results go (none: not copied).
        gpu_name: The GPU's name, for runs that did not record it (``recipe.gpu``).
        families: Only these families' checkpoints (default: every finished one).

    Returns:
        Run book key → catalog key of every checkpoint written.

    Raises:
        SystemExit: If nothing is finished, a finished model's GPU name is unknown, or a
            finished family has no GPU recipe in the catalog.
    """
    from wne import catalog, checkpoints
    from wne.lab.report import headline_metrics, rename_models

    plan = load_plan(state)
    prog = _progress(state)
    done = [
        u.key
        for u in (units(plan) if plan else [])
        if u.kind == "train"
        and u.name in prog["done"]
        and (families is None or _family(u.key) in families)
    ]
    if not done:
        raise SystemExit(f"no finished checkpoint in {state}: run `next` until training is done")
    summary_path = state / "results" / "set12" / "summary.json"
    summary = (
        json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.is_file() else None
    )
    names: dict[str, str] = {}
    for key in done:
        entry = catalog.get(key)
        new = catalog.key(entry.family.id, entry.variant, entry.sigma_train, "gpu")
        try:
            catalog.get(new)
        except ValueError:
            raise SystemExit(
                f"{key}: the catalog has no {new!r}; add the recipe it was trained by to "
                f"the {entry.family.id!r} family's `gpu` in wne/catalog.py first"
            ) from None
        model = checkpoints.load_dir(_ckpt(state, key))
        cfg: checkpoints.ModelConfig = model.wne_config  # type: ignore[assignment]
        recipe = {**cfg.recipe, "run_book_key": key}
        recipe["gpu"] = recipe.get("gpu") or gpu_name
        if not recipe["gpu"]:
            raise SystemExit(f"{key}: its recipe does not name the GPU; pass --gpu-name")
        metrics = dict(cfg.metrics)
        if summary is not None and key in summary["models"]:
            metrics["set12"] = headline_metrics(summary, key)
        checkpoints.save(
            model,
            root / new,
            key=new,
            arch=cfg.arch,
            arch_kwargs=cfg.arch_kwargs,
            sigma_train=cfg.sigma_train,
            recipe=recipe,
            metrics=metrics,
        )
        names[key] = new
        print(f"{_ckpt(state, key)} -> {root / new}", flush=True)
    if results is not None:
        src = state / "results"
        if summary is not None:
            rename_models(src / "set12", results / "set12", names)
        if (src / "demo-timing.json").is_file():
            shutil.copy2(src / "demo-timing.json", results / "demo-timing.json")
        if (src / "bench").is_dir():
            shutil.copytree(src / "bench", results / "bench", dirs_exist_ok=True)
        print(f"results under the new keys in {results}", flush=True)
    return names


# -- command line ------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m wne.lab.gpu", description=__doc__.split("\n")[0])
    p.add_argument("command", choices=("status", "next", "prepare", "restore", "adopt"))
    p.add_argument("src", nargs="?", type=Path, help="restore: folder of state.tar.part*")
    p.add_argument("--state", type=Path, default=Path("runs/gpu"), help="state folder")
    p.add_argument("--budget-s", type=float, default=480.0, help="seconds of work per job")
    p.add_argument(
        "--train-jobs",
        type=float,
        default=2.0,
        help="jobs of training per model, fixing its step count at the probe (first next)",
    )
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument(
        "--families",
        default=",".join(FAMILIES),
        help="families to train (first next only; e.g. dncnn when one job is all there is); "
        "adopt: the families to adopt",
    )
    p.add_argument(
        "--lr",
        type=float,
        default=0.0,
        help="peak learning rate of every family (first next only; 0: the paper's, which "
        "is meant for 500k steps)",
    )
    p.add_argument(
        "--init-root",
        type=Path,
        help="first next only: continue training from this folder's GPU checkpoints "
        "(<family>-<variant>-s25-gpu, e.g. checkpoints), with another seed",
    )
    p.add_argument(
        "--timing",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="first next only: time the demo and wne-bench after the evaluation",
    )
    p.add_argument(
        "--channels-last",
        action="store_true",
        help="first next only: train in channels-last memory format",
    )
    p.add_argument("--tiny", action="store_true", help="tiny models/steps/images (CPU dry run)")
    p.add_argument("--data", type=Path, default=Path("../shared/data"), help="prepare: source")
    p.add_argument(
        "--max-steps", type=int, default=0, help="cap on training steps in this job (0: none)"
    )
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    p.add_argument(
        "--root", type=Path, default=Path("checkpoints"), help="adopt: checkpoint folder"
    )
    p.add_argument("--results", type=Path, help="adopt: where the results go (e.g. assets/...)")
    p.add_argument("--gpu-name", help="adopt: the GPU's name when the run did not record it")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point (``python -m wne.lab.gpu status|next|prepare|restore|adopt``).

    Returns:
        The exit status.
    """
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    state: Path = args.state
    if args.command == "prepare":
        prepare(state, args.data)
        return 0
    if args.command == "adopt":
        families = [f.strip() for f in args.families.split(",") if f.strip()]
        adopt(state, args.root, args.results, args.gpu_name, families)
        return 0
    if args.command == "restore":
        if args.src is None:
            raise SystemExit("restore needs the folder holding state.tar.part*")
        names = restore_state(args.src, state)
        print(f"restored {len(names)} files into {state}")
        print(status_text(state))
        return 0
    out = os.environ.get("OUT")

    def pack(text: str) -> None:
        if not out:
            return
        for old in Path(out).glob("state.tar.part*"):  # a smaller state needs fewer parts
            old.unlink()
        parts = pack_state(state, Path(out))
        (Path(out) / "status.txt").write_text(text + "\n", encoding="utf-8")
        size = sum(p.stat().st_size for p in parts) / 2**20
        print(f"state packed into {len(parts)} part(s), {size:.1f} MiB, under {out}", flush=True)

    failed: BaseException | None = None
    if args.command == "next":
        if args.threads > 0:
            import torch

            torch.set_num_threads(args.threads)
        try:
            run_next(state, args, after_unit=lambda: pack(status_text(state)))
        except BaseException as exc:  # the state done so far still goes back
            failed = exc
    text = status_text(state)
    print(text, flush=True)
    if args.command == "next":
        pack(text)
    if failed is not None:
        raise failed
    return 0


if __name__ == "__main__":
    sys.exit(main())
