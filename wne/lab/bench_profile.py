"""Where the WNE wrapper's own time goes (``wne-bench --profile-wrapper``).

The wrapper is timed and profiled around an identity backbone, so everything
measured is wrapper work: the input checks, the statistics, the normalization,
the de-normalization and the casts. :func:`torch.profiler.profile` with Python
stacks lists every operator the wrapper calls, in call order, with the wrapper
function that called it (``_stats`` or ``forward``) and its CPU time;
in train mode the autograd nodes of the backward pass follow. On CUDA the
operator times are host-side; ``wrapper_s`` is the synchronized wall time.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from wne.device import synchronize
from wne.wrapper import NormEquivariant

__all__ = ["format_wrapper_profile", "profile_wrapper"]

_WRAPPER_FILE = "wne/wrapper.py"


class _Identity(nn.Module):
    """A blind identity backbone (``nn.Identity`` with a one-argument forward)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _step(model: nn.Module, x: torch.Tensor, mode: str) -> None:
    if mode == "infer":
        with torch.inference_mode():
            model(x)
    else:
        model(x).mean().backward()
        x.grad = None


def _median_time(model: nn.Module, x: torch.Tensor, mode: str, repeats: int, inner: int) -> float:
    import time

    samples = []
    for _ in range(repeats):
        synchronize(x.device)
        t0 = time.perf_counter()
        for _ in range(inner):
            _step(model, x, mode)
        synchronize(x.device)
        samples.append((time.perf_counter() - t0) / inner)
    return statistics.median(samples)


def _wrapper_function(ev: Any) -> str | None:
    """Name of the nearest enclosing ``wne/wrapper.py`` Python frame of a profiler event."""
    q = ev.cpu_parent
    while q is not None:
        name = q.name.replace("\\", "/")
        if _WRAPPER_FILE in name:
            return name[name.index(_WRAPPER_FILE) :]
        q = q.cpu_parent
    return None


def _top_level_ops(events: Sequence[Any]) -> list[tuple[str, str, float]]:
    """``(where, op, µs)`` for each operator called from Python (not from another op),
    and each autograd node evaluation, in call order; times include child operators."""
    rows = []
    for ev in events:
        name = ev.name
        is_node = name.startswith("autograd::engine::evaluate_function")
        if not (is_node or name.startswith("aten::")):
            continue
        q, nested = ev.cpu_parent, False
        while q is not None:
            if q.name.startswith(("aten::", "autograd::engine")):
                nested = True
                break
            q = q.cpu_parent
        if nested:
            continue
        if is_node:
            where, op = "backward", name.split(": ", 1)[-1]
        else:
            where, op = _wrapper_function(ev) or "bench harness (loss)", name
        rows.append((where, op, ev.cpu_time_total))
    return rows


def profile_wrapper(
    shapes: Sequence[tuple[int, int, int, int]],
    device: torch.device,
    modes: Sequence[str] = ("infer", "train"),
    repeats: int = 10,
    profiled_calls: int = 5,
) -> list[dict[str, Any]]:
    """Times the wrapper alone and attributes its operators to wrapper functions.

    Args:
        shapes: Input shapes ``[B, C, H, W]``.
        device: Where to run.
        modes: ``"infer"`` (forward under inference mode) and/or ``"train"``
            (forward + ``out.mean()`` + backward with respect to the input).
        repeats: Timed samples per shape and mode (median reported).
        profiled_calls: Calls inside the profiler (self times are per call).

    Returns:
        One dict per (mode, shape): ``wrapper_s`` (median seconds per call of the
        wrapped identity), ``identity_s`` (the bare identity, infer only),
        ``by_function_us`` (CPU µs per call by enclosing wrapper function, backward
        and harness) and ``ops`` (every top-level operator in call order, with its
        enclosing function and median CPU µs including child operators).
    """
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU]
    wrapped = NormEquivariant(_Identity()).to(device)
    identity = _Identity().to(device)
    results = []
    for mode in modes:
        for shape in shapes:
            gen = torch.Generator().manual_seed(0)
            x = torch.randn(shape, generator=gen).to(device)
            if mode == "train":
                x.requires_grad_(True)
            for _ in range(3):
                _step(wrapped, x, mode)
            synchronize(device)
            first = _median_time(wrapped, x, mode, 3, 1)
            inner = max(1, int(0.02 / max(first, 1e-7)))
            wrapper_s = _median_time(wrapped, x, mode, repeats, inner)
            identity_s = _median_time(identity, x, mode, repeats, inner) if mode == "infer" else 0.0
            calls = []
            for _ in range(profiled_calls):
                with profile(activities=activities, with_stack=True) as prof:
                    _step(wrapped, x, mode)
                    synchronize(device)
                calls.append(_top_level_ops(prof.events()))
            # The op sequence is the same on every call: take the median per position.
            seq = (
                [
                    (where, op, statistics.median(c[i][2] for c in calls))
                    for i, (where, op, _t) in enumerate(calls[0])
                ]
                if len({tuple((w, o) for w, o, _ in c) for c in calls}) == 1
                else calls[0]
            )
            by_where: dict[str, float] = {}
            for where, _op, us in seq:
                by_where[where] = by_where.get(where, 0.0) + us
            results.append(
                {
                    "mode": mode,
                    "shape": "x".join(map(str, shape)),
                    "device": str(device),
                    "wrapper_s": wrapper_s,
                    "identity_s": identity_s,
                    "profiled_calls": profiled_calls,
                    "by_function_us": by_where,
                    "ops": [{"where": w, "op": o, "us": us} for w, o, us in seq],
                }
            )
    return results


def format_wrapper_profile(
    results: Sequence[dict[str, Any]],
    plain_s: dict[str, dict[tuple[str, str], float]] | None = None,
) -> str:
    """A plain-text report of :func:`profile_wrapper`.

    Args:
        results: Its output.
        plain_s: Optional ``family -> (mode, shape) -> seconds`` of plain
            backbones (from a benchmark JSON), to express the wrapper's time as a
            fraction of each.

    Returns:
        The report.
    """
    out = []
    for r in results:
        head = (
            f"{r['device']} {r['mode']} {r['shape']}: wrapper alone {r['wrapper_s'] * 1e3:.3f} ms"
            f" per call (bare identity {r['identity_s'] * 1e3:.3f} ms)"
        )
        shares = [
            f"{100 * r['wrapper_s'] / ref:.2f}% of {family} ({ref:.3f} s)"
            for family, table in (plain_s or {}).items()
            if (ref := table.get((r["mode"], r["shape"])))
        ]
        out.append(head)
        if shares:
            out.append("  = " + ", ".join(shares) + " plain (same device, benchmark JSON)")
        total = sum(r["by_function_us"].values()) or 1.0
        by = ", ".join(f"{k} {v / 1e3:.2f} ms" for k, v in r["by_function_us"].items())
        out.append(f"  CPU time by place: {by}")
        out.append(f"  top-level operators in call order (median of {r['profiled_calls']} calls):")
        for row in r["ops"]:
            out.append(
                f"    {row['us']:10.1f} µs {100 * row['us'] / total:5.1f}%  "
                f"{row['op']:<22} {row['where']}"
            )
    return "\n".join(out)
