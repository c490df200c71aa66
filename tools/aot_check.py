"""Ahead-of-time compilation of the zoo's models (``torch.export`` + AOTInductor), measured.

Per model (``--models``: DnCNN and SwinIR-lite, plain and WNE): export with dynamic H, W,
compile into a ``.pt2`` package, load it; report what exported (or why not), each step's
time, max |compiled − eager| at several sizes (the last unseen at export), eager vs compiled
ms per call (``torch.utils.benchmark``, interleaved). Deploy: build once (``--packages``),
ship the ``.pt2``, ``torch._inductor.aoti_load_package`` it at the Space's start (as do
``spaces.aoti_compile_and_save`` / ``aoti_load``, weights apart).

Attempts, first success wins: the whole model with dynamic H, W; for WNE, the backbone
alone, the wrapper eager around it (as :mod:`wne.fast` does: exactly equivariant); else a
static package per ``--sizes`` entry. SwinIR's dynamic sides are ``window·k``, ``k ≥ 2``
(export's guards); others are padded and cropped around it, as the model does.

    PYTHONPATH=. python tools/aot_check.py --device cpu --sizes 64 --out /tmp/aot.json
    PYTHONPATH=. python tools/aot_check.py --device cuda --sizes 512,1024 --packages pt2/
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.export import Dim, ExportedProgram

import wne
from wne.lab.bench import time_interleaved
from wne.models._common import pad_to_multiple

KEYS = ("dncnn-plain-s25", "dncnn-wne-s25", "swinir-plain-s25", "swinir-wne-s25")
ROUNDS = 3  # interleaved timing rounds per size
_CELLS = "{max_abs_diff:7.1e} {eager_ms:8.2f} {compiled_ms:7.2f}"
Runners = dict[tuple[int, int] | None, Callable[..., Any]]


class Packaged(nn.Module):
    """Compiled programs by padded ``(H, W)`` (``None``: any) as a padding, cropping backbone."""

    def __init__(self, runners: Runners, multiple: int) -> None:
        super().__init__()
        self.runners, self.multiple = runners, multiple

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xp, h, w = pad_to_multiple(x, self.multiple)
        run = self.runners.get(tuple(xp.shape[-2:])) or self.runners.get(None)
        if run is None:
            raise ValueError(f"no package for shape {tuple(xp.shape[-2:])} (static packages)")
        return run(xp)[..., :h, :w]


def reason(exc: BaseException) -> str:
    """The exception's type and first line, with its last frame in ``wne``."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/wne/" in f.filename]
    where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0][:300]}{where}"


@torch.enable_grad()
def export(module: nn.Module, x: torch.Tensor, dynamic: bool) -> ExportedProgram:
    """``torch.export`` of ``module`` at ``x``, H and W dynamic or static; traced with
    autograd on, SwinIR's one-pass path (not its chunked CPU loop)."""
    multiple = getattr(getattr(module, "backbone", module), "window_size", 1)
    low = 8 if multiple == 1 else 2  # SwinIR: window·k, k ≥ 2 (export's guards)
    hw = [Dim(n, min=low) if multiple == 1 else multiple * Dim(n, min=low) for n in "hw"]
    shapes = ({2: hw[0], 3: hw[1]},) if dynamic else None
    return torch.export.export(module, (x,), dynamic_shapes=shapes)


def build(
    rec: dict, what: str, module: nn.Module, x: torch.Tensor, dynamic: bool, path: Path
) -> Callable[..., Any] | None:
    """Exports ``module``, compiles it into ``path`` (.pt2) and loads it; notes in
    ``rec["attempts"]`` the times and size, or the step that failed and why."""
    step, t0 = "export", time.perf_counter()
    try:
        ep = export(module, x, dynamic)
        step, t1 = "compile", time.perf_counter()
        torch._inductor.aoti_compile_and_package(ep, package_path=str(path))
        step, t2 = "load", time.perf_counter()
        runner = torch._inductor.aoti_load_package(str(path))
    except Exception as exc:
        rec["attempts"].append({"what": what, "ok": False, "failed": step, "reason": reason(exc)})
        return None
    times = {"export_s": t1 - t0, "compile_s": t2 - t1, "load_s": time.perf_counter() - t2}
    rec["attempts"].append({"what": what, "ok": True, **times, "bytes": path.stat().st_size})
    return runner


def timed(fns: dict[str, Callable[..., Any]], x: torch.Tensor, rounds: int) -> dict[str, float]:
    """Median ms per call of each function on ``x`` (:func:`wne.lab.bench.time_interleaved`)."""
    steps = {name: functools.partial(f, x) for name, f in fns.items()}
    runs = time_interleaved(steps, repeats=rounds, warmup=1, min_sample_s=0.2)
    return {n: 1e3 * statistics.median(t for m in ms for t in m.times) for n, ms in runs.items()}


def check(key: str, device: str, sizes: Sequence[int], folder: Path) -> dict:
    """Exports, compiles and measures one model: its record in the JSON report."""
    model = wne.load(key, device=device)
    wrapped = isinstance(model, wne.NormEquivariant)
    backbone = model.backbone if wrapped else model
    multiple = getattr(backbone, "window_size", 1)
    rng = torch.Generator().manual_seed(0)

    def image(h: int, w: int) -> torch.Tensor:
        return torch.rand(1, backbone.channels, h, w, generator=rng).to(device)

    up = [-(-s // multiple) * multiple for s in sizes]
    rec: dict[str, Any] = {"key": key, "attempts": [], "sizes": []}
    runners: Runners = {}
    for what, module in [("whole model", model)] + [("backbone", backbone)] * wrapped:
        x, path = image(up[0], up[0]), folder / f"{key}.pt2"
        if run := build(rec, f"{what}, dynamic H, W", module, x, True, path):
            runners[None] = run
            break
    else:  # nothing exports with dynamic sides: one static package per requested size
        for s in up:
            x, path = image(s, s), folder / f"{key}-{s}.pt2"
            if run := build(rec, f"{what}, static {s}²", module, x, False, path):
                runners[(s, s)] = run
    rec["compiled"] = f"{what}, {'dynamic' if None in runners else 'static'}" if runners else "none"
    compiled: nn.Module = Packaged(runners, multiple)
    if what == "backbone":  # the wrapper stays eager around the package
        compiled = wne.NormEquivariant(compiled, mode=model.mode)
    with torch.no_grad():  # eager as served (SwinIR: its chunked path on CPU)
        for h, w in [(s, s) for s in sizes] + [(sizes[0] + 5, sizes[-1] - 3)]:
            row = {"shape": [h, w], "seen_at_export": (h, w) in runners or (h, w) == (up[0],) * 2}
            x = image(h, w)
            try:
                row["max_abs_diff"] = (compiled(x) - model(x)).abs().max().item()
            except Exception as exc:
                rec["sizes"].append({**row, "error": reason(exc)})
                continue
            ms = timed({"eager": model, "compiled": compiled}, x, ROUNDS)
            rec["sizes"].append({**row, "eager_ms": ms["eager"], "compiled_ms": ms["compiled"]})
    return rec


def _table(models: list[dict]) -> str:  # one row per model and size, then failed attempts
    out = [f"{'model':17} {'compiled':24} {'compile s':>9} {'shape':>7} max|Δ|  eager ms  AOT ms"]
    for m in models:
        comp = sum(a.get("compile_s", 0) for a in m["attempts"])
        for r in m["sizes"]:
            shape = "×".join(map(str, r["shape"]))
            cells = r.get("error", "")[:70] or _CELLS.format(**r)
            out.append(f"{m['key']:17} {m['compiled']:24} {comp:9.1f} {shape:>7} {cells}")
        out += [f"  {a['what']}: {a['reason'][:150]}" for a in m["attempts"] if not a["ok"]]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--sizes", default="64,96", help="comma-separated square sides (>= 16)")
    p.add_argument("--models", default=",".join(KEYS), help="comma-separated checkpoint keys")
    p.add_argument("--packages", type=Path, help="keep the .pt2 files here (default: discard)")
    p.add_argument("--out", type=Path, help="write the JSON report here")
    args = p.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    if min(sizes) < 16:
        p.error(f"--sizes must be >= 16, got {args.sizes}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.packages or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        models = [check(k, args.device, sizes, folder) for k in args.models.split(",")]
    device = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    threads = torch.get_num_threads()
    report = {"torch": torch.__version__, "device": device, "threads": threads, "models": models}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1))
    print(f"torch {torch.__version__} on {device}, {threads} thread(s)\n{_table(models)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
