"""Speed and memory benchmark: plain vs WNE-wrapped vs architectural-NE backbones.

For each backbone family it times the plain backbone, the same backbone inside
:class:`wne.NormEquivariant` and, for FDnCNN, the architecturally constrained
``fdncnn_ne`` (same depth and width), with the variants **interleaved** inside
every repeat so background load hits them alike. Modes follow the paper's
``speed_test.py`` (App. B.1) plus a real training step:

- ``infer``: one forward pass under :func:`torch.inference_mode` (``model.eval()``);
- ``train``: forward, ``loss = out.mean()``, backward, ``zero_grad`` (the paper's
  "backward"; ``model.train()``, no optimizer step);
- ``train-step``: forward, MSE to a fixed target, backward, Adam step, ``zero_grad``.

Usage (the committed CPU numbers)::

    wne-bench --device cpu --threads 2 --out assets/results

writes ``bench-<device>.json``, ``.csv`` and a log-log ``.png`` per device into
``--out``. ``--smoke`` runs a seconds-long version (used by the tests). The CLI is
one flat parser built by :func:`build_parser` and dispatched in :func:`main`, so
other benchmark kinds (e.g. app latency) can be added as a flag next to the model
benchmark of :func:`run_models`.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ctypes.util
import functools
import gc
import json
import logging
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from wne import catalog, models
from wne.device import pick_device, synchronize
from wne.lab.bench_report import (
    headline_rows,
    headline_table,
    ratio_table,
    summarize_cell,
    write_csv,
    write_json,
    write_plot,
)
from wne.wrapper import NormEquivariant

__all__ = [
    "MODES",
    "Variant",
    "build_parser",
    "build_variant",
    "groups",
    "machine_info",
    "main",
    "make_step",
    "measure_peak_memory",
    "run_models",
    "time_interleaved",
]

logger = logging.getLogger(__name__)

Shape = tuple[int, int, int, int]
MODES: tuple[str, ...] = ("infer", "train", "train-step")
DTYPES: tuple[str, ...] = ("fp32", "bf16")


@dataclass(frozen=True)
class Variant:
    """One benchmarked model of a group.

    Attributes:
        name: ``"plain"``, ``"wne"`` or ``"ne_arch"``; ratios are taken to ``"plain"``.
        arch: Registered backbone name (:func:`wne.models.build`).
        wrapped: Whether the backbone sits inside :class:`wne.NormEquivariant`.
        family: The :mod:`wne.catalog` family it comes from (its paper size).
    """

    name: str
    arch: str
    wrapped: bool
    family: str = ""


def groups() -> dict[str, tuple[Variant, ...]]:
    """The benchmark groups, derived from :mod:`wne.catalog`, in catalog order.

    Every family with both a plain and a WNE variant is a group (named by the
    family id) of its plain backbone, the same backbone WNE-wrapped and, for a
    family with an ``ne_twin``, that twin's architecturally equivariant model
    (``"ne_arch"``). The first variant of each group is the ratio reference.
    """
    out: dict[str, tuple[Variant, ...]] = {}
    for fam in catalog.families():
        if not {"plain", "wne"} <= set(fam.variants):
            continue
        variants = [
            Variant("plain", fam.arch, False, fam.id),
            Variant("wne", fam.arch, True, fam.id),
        ]
        if fam.ne_twin is not None:
            twin = catalog.FAMILIES[fam.ne_twin]
            variants.append(Variant("ne_arch", twin.arch, False, twin.id))
        out[fam.id] = tuple(variants)
    return out


CPU_MEMORY_METHOD = (
    "peak RSS increase during one call: glibc malloc_trim(0), reset of the kernel's "
    "high-water mark (write '5' to /proc/self/clear_refs), then VmHWM - VmRSS before the call "
    "(/proc/self/status); includes allocator and oneDNN scratch memory"
)
CUDA_MEMORY_METHOD = (
    "torch.cuda.max_memory_allocated() during one call minus memory_allocated() before it "
    "(reset_peak_memory_stats first); caching-allocator tensors only"
)


# --------------------------------------------------------------------------- models


def build_variant(
    variant: Variant, config: str, channels: int = 1, seed: int = 0
) -> tuple[nn.Module, dict[str, Any]]:
    """Builds one benchmarked model with random weights.

    Args:
        variant: Which model.
        config: ``"default"`` (the library defaults, ``build(arch)``) or ``"paper"``
            (the paper's size: the catalog family's ``paper.arch_kwargs``; SwinIR
            keeps the paper's stochastic depth, active in training only).
        channels: Image channels (``channels`` is passed only when not 1).
        seed: Seed for the random initialization.

    Returns:
        The model and the constructor keywords used.

    Raises:
        ValueError: On an unknown ``config``.
    """
    if config == "default":
        kwargs: dict[str, Any] = {}
    elif config == "paper":
        kwargs = dict(catalog.FAMILIES[variant.family].paper.arch_kwargs)
    else:
        raise ValueError(f"config must be 'default' or 'paper', got {config!r}")
    if channels != 1:
        kwargs["channels"] = channels
    torch.manual_seed(seed)
    model = models.build(variant.arch, **kwargs)
    if variant.wrapped:
        model = NormEquivariant(model)
    return model, kwargs


def _autocast(device: torch.device, dtype: str) -> contextlib.AbstractContextManager[Any]:
    if dtype == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def make_step(
    model: nn.Module, mode: str, x: torch.Tensor, target: torch.Tensor, dtype: str = "fp32"
) -> Callable[[], None]:
    """Returns a closure doing one timed unit of work and sets the model's mode.

    Args:
        model: The model, already on ``x``'s device.
        mode: One of :data:`MODES`.
        x: Input batch.
        target: Regression target for ``train-step`` (ignored otherwise).
        dtype: ``"fp32"`` or ``"bf16"`` (autocast).

    Returns:
        A function running one step; it returns nothing and keeps no output alive.

    Raises:
        ValueError: On an unknown ``mode`` or ``dtype``.
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    device = x.device
    if mode == "infer":
        model.eval()

        def step() -> None:
            with torch.inference_mode(), _autocast(device, dtype):
                model(x)

    elif mode == "train":
        model.train()

        def step() -> None:
            with _autocast(device, dtype):
                out = model(x)
            out.float().mean().backward()
            model.zero_grad()

    elif mode == "train-step":
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)

        def step() -> None:
            with _autocast(device, dtype):
                out = model(x)
            F.mse_loss(out.float(), target).backward()
            opt.step()
            opt.zero_grad()

    else:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    return step


# --------------------------------------------------------------------------- timing


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Keeps Python's cyclic collector from running inside timed code."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextlib.contextmanager
def _gc_frozen() -> Iterator[None]:
    """Moves every existing object out of the collector's reach for the duration,
    so the per-cell ``gc.collect()`` calls only scan the objects made since."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _timed(step: Callable[[], None], n: int, sync: Callable[[], None]) -> float:
    sync()
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    sync()
    return (time.perf_counter() - t0) / n


def time_interleaved(
    steps: dict[str, Callable[[], None]],
    *,
    repeats: int,
    warmup: int,
    sync: Callable[[], None] = lambda: None,
    min_sample_s: float = 0.0,
    max_cell_s: float | None = None,
    min_repeats: int = 3,
) -> tuple[dict[str, list[float]], int]:
    """Times several steps interleaved: repeat ``r`` runs every step once, in turn.

    The starting step rotates with ``r`` (A B C, B C A, C A B, …) so that no variant
    always follows the same one; each repeat gives one paired sample per variant.
    A sample is the mean of ``inner`` back-to-back calls (``sync`` before and after),
    with ``inner`` chosen after warm-up so that a sample of the fastest step lasts at
    least ``min_sample_s``; all variants use the same ``inner``.

    Args:
        steps: Name → step, in reporting order.
        repeats: Timed repeats (samples per step).
        warmup: Untimed interleaved rounds before timing (at least 1 is run, to
            calibrate ``inner``).
        sync: Called before and after each sample (CUDA synchronize).
        min_sample_s: Minimal duration of one sample of the fastest step.
        max_cell_s: If set, lowers ``repeats`` (not below ``min_repeats``) so that
            the estimated timed duration of the cell (warm-up times × inner ×
            repeats) stays under it.
        min_repeats: Floor for that reduction.

    Returns:
        ``(times, inner)``: per-call seconds per step (one per repeat run) and
        the calls per sample.

    Raises:
        ValueError: If ``repeats`` < 1 or ``steps`` is empty.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    if not steps:
        raise ValueError("no steps to time")
    names = list(steps)
    last: dict[str, float] = {}
    with _gc_paused():
        for _ in range(max(1, warmup)):
            for name in names:
                last[name] = _timed(steps[name], 1, sync)
        fastest = max(min(last.values()), 1e-9)
        inner = max(1, math.ceil(min_sample_s / fastest)) if min_sample_s > 0 else 1
        if max_cell_s is not None:
            per_round = inner * sum(last.values())
            affordable = int(max_cell_s // per_round) if per_round > 0 else repeats
            repeats = max(min(repeats, min_repeats), min(repeats, affordable))
        times: dict[str, list[float]] = {name: [] for name in names}
        for r in range(repeats):
            k = r % len(names)
            for name in names[k:] + names[:k]:
                times[name].append(_timed(steps[name], inner, sync))
    return times, inner


def _read_status_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


_LIBC: Any = None


def _malloc_trim() -> None:
    global _LIBC
    if _LIBC is None:
        name = ctypes.util.find_library("c")
        try:
            _LIBC = ctypes.CDLL(name) if name else False
        except OSError:
            _LIBC = False
    if _LIBC and hasattr(_LIBC, "malloc_trim"):
        _LIBC.malloc_trim(0)


def cpu_peak_supported() -> bool:
    """Whether the per-call peak-RSS measurement works here (Linux ≥ 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        _read_status_kib("VmHWM")
    except (OSError, KeyError, ValueError):
        return False
    return True


def measure_peak_memory(step: Callable[[], None], device: torch.device) -> int | None:
    """Peak memory added by one call of ``step``, in bytes.

    CPU: see :data:`CPU_MEMORY_METHOD`; CUDA: see :data:`CUDA_MEMORY_METHOD`.

    Args:
        step: The step (already warmed up).
        device: Where it runs.

    Returns:
        The increase in bytes (>= 0), or ``None`` where the method is unavailable.
    """
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        step()
        torch.cuda.synchronize(device)
        return max(0, torch.cuda.max_memory_allocated(device) - base)
    if not cpu_peak_supported():
        return None
    _malloc_trim()
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    base = _read_status_kib("VmRSS")
    step()
    return max(0, _read_status_kib("VmHWM") - base) * 1024


# --------------------------------------------------------------------------- machine


def _cpu_model() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _cpu_busy_seconds() -> float | None:
    """Seconds of CPU time (all cores) spent non-idle since boot, from /proc/stat."""
    try:
        with open("/proc/stat") as fh:
            fields = [int(v) for v in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    busy = sum(fields[:8]) - idle  # user..steal; guest time is already in user
    return busy / os.sysconf("SC_CLK_TCK")


_ENV_PREFIXES = ("OMP_", "MKL_", "KMP_", "GOMP_", "DNNL_", "ONEDNN_", "CUDA_VISIBLE")


def machine_info(device: torch.device) -> dict[str, Any]:
    """Describes the machine and the torch build.

    Args:
        device: The benchmarked device.

    Returns:
        A JSON-serializable dict.
    """
    info: dict[str, Any] = {
        "cpu_model": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "device": str(device),
        "env": {k: v for k, v in os.environ.items() if k.startswith(_ENV_PREFIXES)},
    }
    with contextlib.suppress(OSError, ValueError):
        info["memory_total_bytes"] = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(
            gpu_name=props.name,
            gpu_memory_bytes=props.total_memory,
            gpu_capability=f"{props.major}.{props.minor}",
            cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(),
            cudnn_benchmark=torch.backends.cudnn.benchmark,
        )
    return info


# --------------------------------------------------------------------------- CLI


def _int_list(text: str) -> list[int]:
    if text.strip().lower() in ("", "none"):
        return []
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    if any(v < 8 for v in values):
        raise argparse.ArgumentTypeError(f"image sizes must be >= 8 pixels, got {text!r}")
    return values


def _shape(text: str) -> Shape | None:
    if text.strip().lower() in ("", "none"):
        return None
    parts = text.lower().replace("×", "x").split("x")
    try:
        dims = tuple(int(p) for p in parts)
    except ValueError:
        dims = ()
    if len(dims) != 4 or min(dims) < 1 or min(dims[2:]) < 8:
        raise argparse.ArgumentTypeError(
            f"expected a shape BxCxHxW with H, W >= 8 (e.g. 16x1x64x64), got {text!r}"
        )
    return dims  # type: ignore[return-value]


def _choice_list(choices: Sequence[str], what: str) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        values = [v.strip() for v in text.split(",") if v.strip()]
        bad = [v for v in values if v not in choices]
        if bad or not values:
            raise argparse.ArgumentTypeError(
                f"unknown {what} {bad or text!r}; choose from {', '.join(choices)}"
            )
        return values

    return parse


def build_parser() -> argparse.ArgumentParser:
    """The ``wne-bench`` argument parser."""
    p = argparse.ArgumentParser(
        prog="wne-bench",
        description="Time plain vs WNE-wrapped vs NE-arch backbones (interleaved repeats).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--device",
        default="auto",
        help="comma-separated devices (cpu, cuda, cuda:1); 'auto' = cpu plus cuda when present",
    )
    names = list(groups())
    p.add_argument(
        "--families",
        type=_choice_list(tuple(names), "family"),
        default=names,
        help=f"comma-separated families (wne.catalog) from {', '.join(names)}",
    )
    p.add_argument(
        "--modes",
        type=_choice_list(MODES, "mode"),
        default=list(MODES),
        help=f"comma-separated modes from {', '.join(MODES)}",
    )
    p.add_argument(
        "--dtypes",
        type=_choice_list(DTYPES, "dtype"),
        default=None,
        help="fp32 and/or bf16 (autocast, CUDA only); default fp32 on CPU, fp32,bf16 on CUDA",
    )
    p.add_argument(
        "--sizes",
        type=_int_list,
        default=[64, 128, 256, 512, 1024],
        help="square batch-1 image sides for the infer mode",
    )
    p.add_argument(
        "--train-sizes",
        type=_int_list,
        default=[],
        help="square batch-1 sides also run in the train/train-step modes ('none' = only the "
        "batch shape)",
    )
    p.add_argument(
        "--batch-shape",
        type=_shape,
        default=(16, 1, 64, 64),
        help="the training batch shape BxCxHxW, run in every mode ('none' to skip)",
    )
    p.add_argument("--config", choices=("default", "paper"), default="default")
    p.add_argument("--repeats", type=int, default=10, help="timed interleaved repeats")
    p.add_argument("--warmup", type=int, default=3, help="untimed interleaved rounds")
    p.add_argument(
        "--min-sample-time",
        type=float,
        default=0.05,
        help="seconds; small inputs loop several calls per sample to reach it",
    )
    p.add_argument(
        "--repeats-large",
        type=int,
        default=None,
        help="timed repeats for inputs of at least --large-pixels pixels (default: --repeats); "
        "the JSON records the repeats of every cell",
    )
    p.add_argument(
        "--large-pixels",
        type=int,
        default=1024 * 1024,
        help="B*H*W from which --repeats-large applies",
    )
    p.add_argument(
        "--max-cell-seconds",
        type=float,
        default=None,
        help="cap on the estimated timed duration of one (family, mode, shape) cell, from the "
        "warm-up times: lowers that cell's repeats (not below 3); the JSON records the repeats "
        "of every cell",
    )
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("assets/results"), help="output folder")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG")
    p.add_argument(
        "--profile-wrapper",
        action="store_true",
        help="instead of the model benchmark: time the WNE wrapper alone (identity backbone) "
        "at --sizes and --batch-shape, infer and train, and attribute its time to lines of "
        "wne/wrapper.py with torch.profiler; writes wrapper-profile-<device>.{txt,json} and "
        "compares with the plain backbones of an existing bench-<device>.json in --out",
    )
    p.add_argument(
        "--smoke",
        action="store_true",
        help="seconds-long run (overrides --sizes 16,32, --train-sizes none, --batch-shape "
        "2x1x16x16, --repeats 3, --warmup 1, --min-sample-time 0, no --max-cell-seconds); "
        "checks the pipeline, its timings mean nothing",
    )
    return p


def _resolve_devices(text: str) -> list[torch.device]:
    """``auto``: the CPU plus CUDA when present; else each name via :func:`pick_device`."""
    if text == "auto":
        names = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    else:
        names = [v.strip() for v in text.split(",") if v.strip()]
    devices = []
    for name in names:
        dev = pick_device(name)  # ValueError for unknown devices and absent CUDA
        if dev.type not in ("cpu", "cuda"):
            raise ValueError(f"only cpu and cuda devices are supported, got {name!r}")
        devices.append(dev)
    return devices


def _cells(args: argparse.Namespace) -> list[tuple[str, Shape]]:
    """(mode, shape) pairs in run order."""
    cells: list[tuple[str, Shape]] = []
    for mode in args.modes:
        sizes = args.sizes if mode == "infer" else args.train_sizes
        shapes: list[Shape] = [(1, 1, s, s) for s in sizes]
        if args.batch_shape is not None:
            shapes.append(args.batch_shape)
        cells += [(mode, shape) for shape in shapes]
    return cells


def _fmt_shape(shape: Shape) -> str:
    return "x".join(str(d) for d in shape)


def _repeats_for(args: argparse.Namespace, shape: Shape) -> int:
    large = shape[0] * shape[2] * shape[3] >= args.large_pixels
    return args.repeats_large if large and args.repeats_large is not None else args.repeats


def _run_cell(
    args: argparse.Namespace,
    device: torch.device,
    family: str,
    mode: str,
    shape: Shape,
    dtype: str,
) -> list[dict[str, Any]]:
    """Builds a family's variants, times them interleaved and measures their memory."""
    variants = groups()[family]
    gen = torch.Generator().manual_seed(args.seed)
    x = torch.randn(shape, generator=gen).to(device)
    target = torch.randn(shape, generator=gen).to(device)
    steps: dict[str, Callable[[], None]] = {}
    meta: dict[str, dict[str, Any]] = {}
    for v in variants:
        model, kwargs = build_variant(v, args.config, shape[1], args.seed)
        meta[v.name] = {
            "arch": v.arch,
            "wrapped": v.wrapped,
            "arch_kwargs": kwargs,
            "params": sum(p.numel() for p in model.parameters()),
        }
        steps[v.name] = make_step(model.to(device), mode, x, target, dtype)
    gc.collect()  # cheap: older objects are frozen by run_models
    times, inner = time_interleaved(
        steps,
        repeats=_repeats_for(args, shape),
        warmup=args.warmup,
        sync=functools.partial(synchronize, device),
        min_sample_s=args.min_sample_time,
        max_cell_s=args.max_cell_seconds,
    )
    memory = {}
    for name, step in steps.items():
        gc.collect()
        memory[name] = measure_peak_memory(step, device)
    return summarize_cell(
        family=family,
        mode=mode,
        shape=shape,
        dtype=dtype,
        device=str(device),
        times=times,
        inner=inner,
        warmup=max(1, args.warmup),
        memory=memory,
        meta=meta,
    )


def _run_cells(
    args: argparse.Namespace,
    device: torch.device,
    cells: list[tuple[str, Shape]],
    dtypes: list[str],
) -> list[dict[str, Any]]:
    """Runs every (family, mode, shape, dtype) cell, printing one line each."""
    jobs = [
        (family, mode, shape, dtype)
        for family in args.families
        for mode, shape in cells
        for dtype in dtypes
    ]
    records: list[dict[str, Any]] = []
    for i, (family, mode, shape, dtype) in enumerate(jobs, 1):
        cell = _run_cell(args, device, family, mode, shape, dtype)
        records += cell
        if device.type == "cuda":
            torch.cuda.empty_cache()
        parts = [
            f"{r['variant']} {r['median_s'] * 1e3:.1f} ms"
            + ("" if r["variant"] == "plain" else f" ({r['paired_ratio_median']:.3f}x)")
            for r in cell
        ]
        print(
            f"[{i}/{len(jobs)}] {device} {family} {mode} {_fmt_shape(shape)} {dtype} "
            f"(n={cell[0]['repeats']}, inner={cell[0]['inner']}): " + ", ".join(parts),
            flush=True,
        )
    return records


def run_models(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """Runs the model benchmark on one device and returns the JSON document.

    Args:
        args: Parsed :func:`build_parser` arguments.
        device: The device.

    Returns:
        The report (machine, settings, one record per variant × mode × shape × dtype,
        headline rows).

    Raises:
        ValueError: On bf16 requested on CPU or an empty benchmark.
    """
    dtypes = args.dtypes or (["fp32", "bf16"] if device.type == "cuda" else ["fp32"])
    if device.type == "cpu" and "bf16" in dtypes:
        raise ValueError("bf16 autocast is benchmarked on CUDA only; use --dtypes fp32 on CPU")
    cells = _cells(args)
    if not cells:
        raise ValueError("nothing to run: no sizes and no batch shape for the chosen modes")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    memory_method = CUDA_MEMORY_METHOD if device.type == "cuda" else CPU_MEMORY_METHOD
    if device.type == "cpu" and not cpu_peak_supported():
        memory_method = "unavailable (needs Linux /proc/self/clear_refs); peak memory is null"

    started = datetime.now(UTC)
    t_wall0, t_cpu0, busy0 = time.perf_counter(), time.process_time(), _cpu_busy_seconds()
    load0 = os.getloadavg() if hasattr(os, "getloadavg") else None
    with _gc_frozen():
        records = _run_cells(args, device, cells, dtypes)

    wall = time.perf_counter() - t_wall0
    own_cpu = time.process_time() - t_cpu0
    busy1 = _cpu_busy_seconds()
    background = None
    if busy0 is not None and busy1 is not None and wall > 0:
        background = max(0.0, (busy1 - busy0 - own_cpu) / wall)
    settings = {
        key: (str(val) if isinstance(val, Path) else val)
        for key, val in vars(args).items()
        if key not in ("device",)
    }
    settings.update(dtypes=dtypes, device=str(device))
    return {
        "schema": "wne-bench/1",
        "created_utc": started.isoformat(timespec="seconds"),
        "command": "wne-bench " + " ".join(sys.argv[1:]),
        "machine": machine_info(device),
        "settings": settings,
        "protocol": {
            "timer": "time.perf_counter"
            + (" with torch.cuda.synchronize" if device.type == "cuda" else ""),
            "interleaving": "each repeat runs every variant once; the starting variant rotates",
            "sample": "mean of `inner` back-to-back calls; times are seconds per call",
            "ratios": "ratio_of_medians = median(variant)/median(plain); paired_ratio_* = "
            "quantiles of per-repeat variant/plain ratios",
            "gc": "Python gc disabled while timing",
            "memory": memory_method,
            "inputs": "torch.randn with --seed; random-init models",
        },
        "run": {
            "wall_s": wall,
            "process_cpu_s": own_cpu,
            "loadavg_start": load0,
            "loadavg_end": os.getloadavg() if hasattr(os, "getloadavg") else None,
            "background_busy_cores_mean": background,
        },
        "results": records,
        "headline": headline_rows(records),
    }


def _run_profile(args: argparse.Namespace, device: torch.device) -> None:
    """The ``--profile-wrapper`` action on one device."""
    from wne.lab.bench_profile import format_wrapper_profile, profile_wrapper

    shapes: list[Shape] = [(1, 1, s, s) for s in args.sizes]
    if args.batch_shape is not None:
        shapes.append(args.batch_shape)
    results = profile_wrapper(shapes, device, repeats=args.repeats)
    plain: dict[str, dict[tuple[str, str], float]] = {}
    bench_json = args.out / f"bench-{device.type}.json"
    if bench_json.is_file():
        for r in json.loads(bench_json.read_text(encoding="utf-8"))["results"]:
            if r["variant"] == "plain" and r["dtype"] == "fp32":
                plain.setdefault(r["family"], {})[(r["mode"], r["shape"])] = r["median_s"]
    text = format_wrapper_profile(results, plain)
    stem = args.out / f"wrapper-profile-{device.type}"
    header = (
        f"# wne-bench {' '.join(sys.argv[1:])}\n"
        f"# torch {torch.__version__}, threads {torch.get_num_threads()}, {_cpu_model()}\n"
    )
    stem.with_suffix(".txt").write_text(header + text + "\n", encoding="utf-8")
    doc = {"machine": machine_info(device), "results": results}
    write_json(doc, stem.with_suffix(".json"))
    print(text)
    print(f"\nwrote {stem}.txt, {stem}.json")


def _apply_smoke(args: argparse.Namespace) -> None:
    args.sizes = [16, 32]
    args.train_sizes = []
    args.batch_shape = (2, 1, 16, 16)
    args.repeats = 3
    args.warmup = 1
    args.min_sample_time = 0.0
    args.max_cell_seconds = None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``wne-bench`` (and ``python -m wne.lab.bench``).

    Args:
        argv: Arguments (default ``sys.argv[1:]``).

    Returns:
        The exit status.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    large = args.repeats_large
    if args.repeats < 1 or args.warmup < 0 or (large is not None and large < 1):
        parser.error("--repeats and --repeats-large must be >= 1 and --warmup >= 0")
    if args.threads is not None:
        if args.threads < 1:
            parser.error("--threads must be >= 1")
        torch.set_num_threads(args.threads)
    if args.smoke:
        _apply_smoke(args)
    try:
        devices = _resolve_devices(args.device)
    except ValueError as err:
        parser.error(str(err))
    args.out.mkdir(parents=True, exist_ok=True)
    if args.profile_wrapper:
        for device in devices:
            _run_profile(args, device)
        return 0
    for device in devices:
        try:
            report = run_models(args, device)
        except ValueError as err:
            parser.error(str(err))
        stem = f"bench-{device.type}" + ("" if args.config == "default" else f"-{args.config}")
        paths = [write_json(report, args.out / f"{stem}.json")]
        paths.append(write_csv(report["results"], args.out / f"{stem}.csv"))
        if not args.no_plot:
            png = write_plot(report, args.out / f"{stem}.png")
            if png is not None:
                paths.append(png)
        for mode in args.modes:
            print()
            print(ratio_table(report, mode))
        print()
        print(headline_table(report))
        print(f"\nwall {report['run']['wall_s']:.0f} s; wrote " + ", ".join(map(str, paths)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
