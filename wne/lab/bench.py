"""Speed and memory of plain vs WNE-wrapped vs architecturally NE backbones (``wne bench``).

Each catalog family is timed plain, inside :class:`wne.NormEquivariant` and as its NE twin with
:mod:`torch.utils.benchmark` (warm-up, threads, device sync, ``gc`` off), the variants
**interleaved**: every repeat samples each once, the first rotating (A B C, B C A, …), so load
hits them alike and each repeat gives a paired ratio to plain. Modes: ``infer``, ``train``
(forward, ``out.mean()``, backward: the paper's "backward"), ``train-step`` (MSE, Adam step).
Writes ``bench-<device>.{json,csv,png}``; ``--profile-wrapper``: :func:`profile_wrapper`.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import itertools
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from wne import catalog, models
from wne.device import pick_device
from wne.lab import bench_report as report
from wne.wrapper import NormEquivariant

Shape = tuple[int, int, int, int]
MODES: tuple[str, ...] = ("infer", "train", "train-step")
DTYPES: tuple[str, ...] = ("fp32", "bf16")
MEMORY_METHOD = {  # per call; on the CPU it includes allocator and oneDNN scratch memory
    "cpu": "peak RSS increase: malloc_trim(0), /proc/self/clear_refs, then VmHWM - VmRSS before",
    "cuda": "torch.cuda.max_memory_allocated() during the call minus memory_allocated() before",
}


@dataclass(frozen=True)
class Variant:
    """One benchmarked model (``name``: plain, wne or ne_arch) of a catalog ``family``."""

    name: str
    arch: str
    wrapped: bool
    family: str = ""


def groups() -> dict[str, tuple[Variant, ...]]:
    """One group per catalog family with plain and WNE variants (plus its NE twin), in catalog
    order; the first variant of a group is the ratio reference."""
    out: dict[str, tuple[Variant, ...]] = {}
    for fam in catalog.families():
        if {"plain", "wne"} <= set(fam.variants):
            twin = catalog.FAMILIES[fam.ne_twin] if fam.ne_twin else None
            out[fam.id] = (
                Variant("plain", fam.arch, False, fam.id),
                Variant("wne", fam.arch, True, fam.id),
                *([Variant("ne_arch", twin.arch, False, twin.id)] if twin else []),
            )
    return out


def build_variant(
    variant: Variant, config: str, channels: int = 1, seed: int = 0
) -> tuple[nn.Module, dict[str, Any]]:
    """A benchmarked model with seeded random weights, and its constructor keywords: ``config``
    ``"default"`` is ``build(arch)``, ``"paper"`` the family's paper size (else ValueError)."""
    if config not in ("default", "paper"):
        raise ValueError(f"config must be 'default' or 'paper', got {config!r}")
    kwargs = dict(catalog.FAMILIES[variant.family].paper.arch_kwargs) if config == "paper" else {}
    kwargs |= {"channels": channels} if channels != 1 else {}
    torch.manual_seed(seed)
    model = models.build(variant.arch, **kwargs)
    return (NormEquivariant(model) if variant.wrapped else model), kwargs


def make_step(
    model: nn.Module, mode: str, x: torch.Tensor, target: torch.Tensor, dtype: str = "fp32"
) -> Callable[[], None]:
    """A closure doing one unit of work of ``mode`` (:data:`MODES`; ``target``: the MSE target of
    ``train-step``) in ``dtype`` (``"bf16"``: autocast); sets the model's mode. ValueError on an
    unknown mode or dtype."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    bf16 = dtype == "bf16"
    model.train(mode != "infer")
    opt = torch.optim.Adam(model.parameters(), lr=1e-4) if mode == "train-step" else None

    def step() -> None:
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
            if mode == "infer":
                with torch.inference_mode():
                    model(x)
                return
            out = model(x).float()
        loss = out.mean() if opt is None else F.mse_loss(out, target)
        loss.backward()
        if opt is not None:
            opt.step()
        model.zero_grad()

    return step


def time_interleaved(
    steps: dict[str, Callable[[], None]],
    *,
    repeats: int,
    warmup: int,
    min_sample_s: float = 0.0,
    max_cell_s: float | None = None,
    min_repeats: int = 3,
    label: str = "",
    description: str = "",
) -> dict[str, list[Any]]:
    """Name → one :class:`torch.utils.benchmark.Timer` Measurement per repeat (current thread
    count): ``warmup`` rounds (at least 1) of ``timeit(1)`` in turn, then per repeat ``r`` one
    ``blocked_autorange(min_run_time=min_sample_s)`` of each step, step ``r mod n`` first (its
    block-size estimate re-warms it). ``max_cell_s`` lowers ``repeats`` (not below
    ``min_repeats``) to fit; ``label``, ``description`` and the names head the Compare table.
    ValueError without steps or repeats."""
    from torch.utils import benchmark

    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    if not steps:
        raise ValueError("no steps to time")
    spec = {"num_threads": torch.get_num_threads(), "label": label, "description": description}
    timers = {
        k: benchmark.Timer("f()", globals={"f": f}, sub_label=k, **spec) for k, f in steps.items()
    }
    per_call = {}
    for _ in range(max(1, warmup)):
        for name, timer in timers.items():
            per_call[name] = timer.timeit(1).median
    if max_cell_s is not None:
        per_round = sum(max(2 * t, min_sample_s) for t in per_call.values())
        repeats = max(min(repeats, min_repeats), min(repeats, int(max_cell_s // per_round)))
    names = list(timers)
    samples: dict[str, list[Any]] = {name: [] for name in names}
    for r in range(repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            samples[name].append(timers[name].blocked_autorange(min_run_time=min_sample_s))
    return samples


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith(field + ":"))


def measure_peak_memory(step: Callable[[], None], device: torch.device) -> int | None:
    """Peak memory added by one call of ``step`` in bytes (:data:`MEMORY_METHOD`; ``None`` where
    unavailable): :mod:`torch.utils.benchmark` measures no memory."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        step()
        torch.cuda.synchronize(device)
        return max(0, torch.cuda.max_memory_allocated(device) - base)
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        base = _status_kib("VmRSS")
    except (OSError, StopIteration, ValueError):
        return None
    step()
    return max(0, _status_kib("VmHWM") - base) * 1024


def machine_info(device: torch.device | None = None) -> dict[str, Any]:
    """The machine and the torch build (JSON-ready): CPU, cores, versions, threads, the
    OMP/MKL environment, the load average and, on CUDA, the GPU."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), cpu)
    env = {k: v for k, v in os.environ.items() if k.startswith(("OMP_", "MKL_"))}
    info = {"cpu_model": cpu, "logical_cpus": os.cpu_count(), "torch": torch.__version__}
    info |= {"torch_threads": torch.get_num_threads(), "platform": platform.platform(), "env": env}
    info["loadavg"] = [round(v, 2) for v in os.getloadavg()]
    if device is not None and device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(device=str(device), gpu_name=props.name, cuda=torch.version.cuda,
                    gpu_memory_bytes=props.total_memory)  # fmt: skip
    return info


def _wrapper_step(model: nn.Module, x: torch.Tensor, mode: str) -> None:
    with torch.inference_mode(mode == "infer"):
        out = model(x)
    if mode != "infer":
        out.mean().backward()
        x.grad = None


def profile_wrapper(args: argparse.Namespace, device: torch.device, calls: int = 5) -> str:
    """``--profile-wrapper``: the wrapper around an identity backbone (all the work is its own,
    plus loss and backward in train mode) at ``--sizes`` and ``--batch-shape``: interleaved
    times with and without it, its share of the plain backbones of ``OUT/bench-<device>.json``
    and torch.profiler's operator table; writes ``OUT/wrapper-profile-<device>.{txt,json}``."""
    from torch.profiler import ProfilerActivity, profile

    bench = args.out / f"bench-{device.type}.json"
    plain = json.loads(bench.read_text())["results"] if bench.is_file() else []
    plain = [r for r in plain if r["variant"] == "plain" and r["dtype"] == "fp32"]
    wrapped, identity = NormEquivariant(nn.Identity()).to(device), nn.Identity()
    shapes = [(1, 1, s, s) for s in args.sizes] + [args.batch_shape] * bool(args.batch_shape)
    results, text = [], [f"# torch {torch.__version__}, {torch.get_num_threads()} threads"]
    for mode, shape in itertools.product(("infer", "train"), shapes):
        x = torch.randn(shape, generator=torch.Generator().manual_seed(0)).to(device)
        x.requires_grad_(mode == "train")
        models = {"wrapper_s": wrapped, "identity_s": identity}
        steps = {k: lambda m=m: _wrapper_step(m, x, mode) for k, m in models.items()}  # noqa: B023
        samples = time_interleaved(steps, repeats=5, warmup=1, min_sample_s=0.05)
        t = {k: float(np.median([m.median for m in ms])) for k, ms in samples.items()}
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(calls):
                steps["wrapper_s"]()
        name = "x".join(map(str, shape))
        refs = {
            r["family"]: r["median_s"] for r in plain if (r["mode"], r["shape"]) == (mode, name)
        }
        ops = [{"op": e.key, "calls": e.count / calls, "self_cpu_us": e.self_cpu_time_total / calls}
               for e in prof.key_averages()]  # fmt: skip
        results.append({"mode": mode, "shape": name, **t, "plain_s": refs, "ops": ops})
        w, i = t["wrapper_s"], t["identity_s"]
        shares = "".join(f"; {100 * w / v:.2f}% of {k} ({v:.3f} s)" for k, v in refs.items())
        text.append(f"\n{device} {mode} {name}: wrapper alone {w * 1e3:.3f} ms per call "
                    f"(bare identity {i * 1e3:.3f} ms){shares}")  # fmt: skip
        text.append(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))
    stem = args.out / f"wrapper-profile-{device.type}"
    stem.with_suffix(".txt").write_text("\n".join(text) + "\n", encoding="utf-8")
    doc = {"machine": machine_info(device), "calls": calls, "results": results}
    stem.with_suffix(".json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return "\n".join(text) + f"\nwrote {stem}.txt, {stem}.json"


# --------------------------------------------------------------------------- CLI


def _list(kind: type, what: str, choices: Sequence[Any] = ()) -> Callable[[str], list[Any]]:
    def parse(text: str) -> list[Any]:
        try:
            values = [kind(v.strip()) for v in text.split(",") if v.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what}: expected integers, got {text!r}") from None
        if bad := [v for v in values if (v not in choices if choices else v < 8)]:
            hint = f"choose from {', '.join(choices)}" if choices else "sides must be >= 8 px"
            raise argparse.ArgumentTypeError(f"unknown {what} {bad}: {hint}")
        return values

    return parse


def _shape(text: str) -> Shape | None:
    if text.strip().lower() in ("", "none"):
        return None
    dims = tuple(int(p) for p in text.lower().split("x") if p.isdigit())
    if len(dims) != 4 or len(text.split("x")) != 4 or min(dims) < 1 or min(dims[2:]) < 8:
        raise argparse.ArgumentTypeError(f"expected BxCxHxW with H, W >= 8, got {text!r}")
    return dims  # type: ignore[return-value]


def build_parser() -> argparse.ArgumentParser:
    """The ``wne bench`` argument parser."""
    p = argparse.ArgumentParser(prog="wne bench", description=__doc__.split("\n")[0])
    add, names = p.add_argument, list(groups())
    add("--device", default="auto", help="comma-separated devices; auto: cpu (and cuda)")
    add("--families", type=_list(str, "family", names), default=names, help=", ".join(names))
    add("--modes", type=_list(str, "mode", MODES), default=list(MODES), help=", ".join(MODES))
    add("--dtypes", type=_list(str, "dtype", DTYPES), help="default fp32 (and bf16 on CUDA)")
    add("--sizes", type=_list(int, "size"), default=[64, 128, 256, 512, 1024], help="infer sides")
    add("--batch-shape", type=_shape, default=(16, 1, 64, 64), help="BxCxHxW, every mode")
    add("--config", choices=("default", "paper"), default="default", help="backbone sizes")
    add("--repeats", type=int, default=10, help="timed interleaved repeats")
    add("--warmup", type=int, default=3, help="interleaved warm-up rounds")
    add("--min-sample-time", type=float, default=0.05, help="seconds per sample, at least")
    add("--max-cell-seconds", type=float, help="lowers a cell's repeats (not below 3)")
    add("--threads", type=int, help="torch CPU threads")
    add("--seed", type=int, default=0)
    add("--out", type=Path, default=Path("assets/results"), help="output folder")
    add("--no-plot", action="store_true", help="skip the PNG")
    add("--profile-wrapper", action="store_true", help="profile the wrapper alone instead")
    add("--smoke", action="store_true", help="seconds-long pipeline check (timings mean nothing)")
    return p


def _run_cell(
    args: argparse.Namespace, device: torch.device, family: str, mode: str, shape: Shape, dtype: str
) -> tuple[list[dict[str, Any]], list[Any]]:
    """Times one family's variants on one input, interleaved, and measures their memory."""
    gen = torch.Generator().manual_seed(args.seed)
    x, target = (torch.randn(shape, generator=gen).to(device) for _ in range(2))
    steps, meta = {}, {}
    for v in groups()[family]:
        model, kwargs = build_variant(v, args.config, shape[1], args.seed)
        params = sum(p.numel() for p in model.parameters())
        meta[v.name] = dict(arch=v.arch, wrapped=v.wrapped, arch_kwargs=kwargs, params=params)
        steps[v.name] = make_step(model.to(device), mode, x, target, dtype)
    samples = time_interleaved(steps, repeats=args.repeats, warmup=args.warmup,
        min_sample_s=args.min_sample_time, max_cell_s=args.max_cell_seconds,
        label=f"{family}, {mode}, {dtype}, {device}", description="x".join(map(str, shape)),
    )  # fmt: skip
    cell = {"family": family, "mode": mode, "shape": shape, "dtype": dtype, "device": str(device)}
    records = report.summarize_cell(
        {**cell, "warmup": max(1, args.warmup)},
        times={k: [m.median for m in ms] for k, ms in samples.items()},
        inner={k: int(np.median([m.number_per_run for m in ms])) for k, ms in samples.items()},
        memory={k: measure_peak_memory(step, device) for k, step in steps.items()},
        meta=meta,
    )
    return records, [m for ms in samples.values() for m in ms]


def run_models(args: argparse.Namespace, device: torch.device) -> tuple[dict[str, Any], list[Any]]:
    """The model benchmark on one device: the report (machine, settings, a record per variant ×
    mode × shape × dtype) and every Timer measurement (ValueError: bf16 on CPU, nothing to run)."""
    dtypes = args.dtypes or (["fp32", "bf16"] if device.type == "cuda" else ["fp32"])
    if device.type == "cpu" and "bf16" in dtypes:
        raise ValueError("bf16 autocast is benchmarked on CUDA only; use --dtypes fp32 on CPU")
    sizes = [(1, 1, s, s) for s in args.sizes] + [args.batch_shape] * (args.batch_shape is not None)
    batch = sizes[len(args.sizes) :]
    cells = [(m, s) for m in args.modes for s in (sizes if m == "infer" else batch)]
    if not cells:
        raise ValueError("nothing to run: no sizes and no batch shape for the chosen modes")
    torch.backends.cudnn.benchmark = device.type == "cuda"
    started, t0 = datetime.now(UTC), time.perf_counter()
    jobs = [(f, m, s, d) for f in args.families for m, s in cells for d in dtypes]
    records, measurements = [], []
    for i, (family, mode, shape, dtype) in enumerate(jobs, 1):
        cell, ms = _run_cell(args, device, family, mode, shape, dtype)
        records += cell
        measurements += ms
        ratios = ", ".join(f"{r['variant']} {r['paired_ratio_median']:.3f}x" for r in cell[1:])
        print(f"[{i}/{len(jobs)}] {device} {family} {mode} {'x'.join(map(str, shape))} {dtype}: "
              f"plain {cell[0]['median_s'] * 1e3:.1f} ms, {ratios}", flush=True)  # fmt: skip
    measured = all(r["peak_mem_bytes"] is not None for r in records)
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    settings.update(dtypes=dtypes, device=str(device))
    doc = {
        "schema": "wne-bench/2", "created_utc": started.isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "machine": machine_info(device), "settings": settings,
        "protocol": {
            "timer": "torch.utils.benchmark.Timer: timeit(1) warm-ups, then per repeat one "
            "blocked_autorange sample (median s per call) per variant, the first rotating; "
            "ratios to plain: of medians, and quantiles of the per-repeat (paired) ratios",
            "memory": MEMORY_METHOD[device.type] if measured else "unavailable (needs Linux)",
        },
        "run": {"wall_s": time.perf_counter() - t0, "loadavg_end": machine_info()["loadavg"]},
        "results": records,
    }  # fmt: skip
    return doc, measurements


def main(argv: Sequence[str] | None = None) -> int:
    """``wne bench``: exit status 0 (bad arguments exit with 2)."""
    from torch.utils import benchmark

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.warmup < 0 or (args.threads or 1) < 1:
        parser.error("--repeats and --threads must be >= 1 and --warmup >= 0")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.smoke:
        args.sizes, args.batch_shape = [16, 32], (2, 1, 16, 16)
        args.repeats, args.warmup, args.min_sample_time, args.max_cell_seconds = 3, 1, 0.0, None
    try:
        auto = ["cpu"] + ["cuda"] * torch.cuda.is_available()
        devices = [
            pick_device(n.strip())
            for n in (auto if args.device == "auto" else args.device.split(","))
        ]
        if any(d.type not in ("cpu", "cuda") for d in devices):
            raise ValueError(f"only cpu and cuda devices are supported, got {args.device!r}")
    except ValueError as err:
        parser.error(str(err))
    args.out.mkdir(parents=True, exist_ok=True)
    for device in devices:
        if args.profile_wrapper:
            print(profile_wrapper(args, device))
            continue
        try:
            doc, measurements = run_models(args, device)
        except ValueError as err:
            parser.error(str(err))
        stem = args.out / (f"bench-{device.type}" + ("-paper" if args.config == "paper" else ""))
        paths = report.write_outputs(doc, stem, plot=not args.no_plot)
        print(benchmark.Compare(measurements))
        for mode in args.modes:
            print(report.ratio_table(doc, mode) + "\n")
        print(report.headline_table(doc["results"]))
        print(f"\nwall {doc['run']['wall_s']:.0f} s; wrote " + ", ".join(map(str, paths)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
