"""``wne explain``: why normalization equivariance works, measured (:mod:`wne.explain`).

Three modes, one per run:

- ``--coverage --data DIR``: the model-free Δ-overlap table (paper Table 3) from random
  70×70 patches of a training folder, written as ``coverage.csv`` and ``coverage.json``
  (``--zoom 2``: the images at twice their resolution, so a patch sees less of the scene).
- ``--filters --image PATH``: literalness ρ and adaptive-filter sums (paper Fig. 5) of
  each ``--models`` checkpoint on a noisy crop, written as ``filters.csv`` and
  ``filters.json`` (with each model's filter window around ``--pixel``).
- ``--collapse --data DIR``: Q against Δ (paper Figs. 6, 11) of each model at several
  σ_test, binned, written as ``collapse.csv`` (bins), ``collapse_patches.csv`` (every
  patch) and ``collapse.json`` (the spread of the curves per model).

Without ``--out`` nothing is written; the summary is printed in every case.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from wne import checkpoints, explain
from wne.imageio import read_image
from wne.lab import parse
from wne.lab.data import PatchSampler, load_folder, step_generator

__all__ = ["main"]

log = logging.getLogger(__name__)

SIGMAS_COVERAGE = (5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 35.0, 40.0, 45.0, 50.0)
SIGMAS_COLLAPSE = (10.0, 20.0, 30.0, 40.0, 50.0)
PAIR = ("swinir-plain-s25", "swinir-wne-s25")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="wne explain",
        description="Why normalization equivariance works (paper §4.5, §5): Δ overlap "
        "between noise levels (--coverage), adaptive filters and literalness ρ (--filters), "
        "collapse of Q against Δ across σ_test (--collapse).",
    )
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--coverage", action="store_true", help="Δ coverage table (Table 3)")
    mode.add_argument("--filters", action="store_true", help="ρ and filter sums (Fig. 5)")
    mode.add_argument("--collapse", action="store_true", help="Q vs Δ per σ_test (Figs. 6, 11)")
    p.add_argument("--out", type=Path, help="output folder (default: print only)")
    p.add_argument("--seed", type=int, default=0, help="noise and patch seed (0)")
    p.add_argument("--threads", type=_positive, help="torch CPU threads")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--data", type=Path, help="training image folder (--coverage, --collapse)")
    p.add_argument("--patches", type=_positive, help="patches (coverage: 4000; collapse: 200/σ)")
    p.add_argument("--patch", type=_positive, default=70, help="patch side (70, as the paper)")
    p.add_argument("--sigmas", type=float, nargs="+", metavar="S", help="noise levels, 0–255")
    p.add_argument("--sigmas-test", type=float, nargs="+", metavar="S", help="coverage columns")
    p.add_argument("--in-sample", action="store_true", help="coverage: test the interval sample")
    p.add_argument("--zoom", type=float, default=1.0,
                   help="resize the training images by this factor first (bicubic; 1)")  # fmt: skip
    p.add_argument("--models", "--model", nargs="+", metavar="KEY", default=list(PAIR),
                   help=f"checkpoint keys or folders ({' '.join(PAIR)})")  # fmt: skip
    p.add_argument("--root", type=Path, help="checkpoint folder (default: bundled)")
    p.add_argument("--image", type=Path, help="--filters: the clean image")
    p.add_argument("--crop", type=_positive, default=96, help="--filters: crop side (96)")
    p.add_argument("--offset", type=int, nargs="+", default=[50], metavar="N",
                   help="--filters: crop corner, TOP [LEFT] (50)")  # fmt: skip
    p.add_argument("--pixel", type=int, nargs=2, metavar=("R", "C"), help="in the crop (centre)")
    p.add_argument("--radius", type=int, default=7, help="--filters: window radius saved (7)")
    p.add_argument("--sigma", type=float, nargs="+", default=[25.0, 5.0], metavar="S",
                   help="--filters: noise levels (25 5)")  # fmt: skip
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                   help="--filters arithmetic (float64: round-off level)")  # fmt: skip
    p.add_argument("--bins", type=_positive, default=40, help="--collapse: Δ bins (40)")
    p.add_argument("--range", type=float, nargs=2, metavar=("LO", "HI"),
                   help="--collapse: Δ bin range (default: all samples' min, max)")  # fmt: skip
    p.add_argument("--min-count", type=_positive, default=20,
                   help="--collapse: patches a bin needs to enter the spread (20)")  # fmt: skip
    return p


def _environment(start: float) -> dict[str, Any]:
    return {
        "seconds": round(time.perf_counter() - start, 2),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": _cpu_name(),
    }


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _write(out: Path | None, name: str, rows: list[dict[str, Any]]) -> None:
    if out is None or not rows:
        return
    out.mkdir(parents=True, exist_ok=True)
    with (out / name).open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _write_json(out: Path | None, name: str, payload: dict[str, Any]) -> None:
    if out is None:
        return
    out.mkdir(parents=True, exist_ok=True)
    (out / name).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


def _patches(data: Path, n: int, patch: int, seed: int, zoom: float = 1.0) -> torch.Tensor:
    """``n`` random ``patch``² crops (dihedral augmentations) of the folder's images, resized
    by ``zoom`` first (bicubic, clipped to [0, 1]): a crop then sees 1/zoom of the scene."""
    images = load_folder(data)
    if zoom != 1.0:
        if not zoom > 0:
            raise ValueError(f"--zoom must be > 0, got {zoom}")
        images = [_resize(im, zoom) for im in images]
    sampler = PatchSampler(images, patch)
    return sampler.sample(n, step_generator(seed, 0))


def _resize(image: np.ndarray, zoom: float) -> np.ndarray:
    h, w = image.shape
    size = (max(1, round(w * zoom)), max(1, round(h * zoom)))
    resized = Image.fromarray(image.astype(np.float32)).resize(size, Image.BICUBIC)
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)


def _load(key: str, root: Path | None) -> nn.Module:
    path = Path(key)
    if path.is_dir():
        return checkpoints.load_dir(path, device="cpu")
    return checkpoints.load(key, device="cpu", root=root)


def _coverage(args: argparse.Namespace, start: float) -> int:
    from tqdm.auto import tqdm

    sigmas = [float(s) for s in args.sigmas or SIGMAS_COVERAGE]
    tests = [float(s) for s in args.sigmas_test or sigmas]
    n = args.patches or 4000
    patches = _patches(args.data, n, args.patch, args.seed, args.zoom).numpy()
    levels = list(dict.fromkeys(sigmas + tests))
    first: dict[float, np.ndarray] = {}
    second: dict[float, np.ndarray] = {}
    for s in tqdm(levels, desc="Δ per σ", disable=args.quiet):
        first[s] = explain.delta_at_sigma(patches, s, args.seed, stream=0)
        if not args.in_sample:
            second[s] = explain.delta_at_sigma(patches, s, args.seed, stream=1)
    second = first if args.in_sample else second
    cov = explain.coverage_from_deltas(
        {s: first[s] for s in sigmas}, {s: second[s] for s in tests}, held_out=not args.in_sample
    )
    rows = []
    for i, s_train in enumerate(cov.sigmas_train):
        row: dict[str, Any] = {"sigma_train": f"{s_train:g}"}
        row.update({f"{s:g}": f"{cov.coverage[i, j]:.4f}" for j, s in enumerate(cov.sigmas_test)})
        row.update({"q0.025": f"{cov.lower[i]:.4f}", "q0.975": f"{cov.upper[i]:.4f}"})
        rows.append(row)
    head = "σ_train\\σ_test " + " ".join(f"{s:>5g}" for s in cov.sigmas_test) + "   q0.025  q0.975"
    print(f"Δ coverage m(σ_test; σ_train) in %, {n} patches {args.patch}² per σ")
    print(head)
    for i, s_train in enumerate(cov.sigmas_train):
        cells = " ".join(f"{100 * v:5.1f}" for v in cov.coverage[i])
        print(f"{s_train:>14g} {cells}   {cov.lower[i]:6.2f}  {cov.upper[i]:6.2f}")
    payload = {
        **cov.to_dict(),
        "data": str(args.data),
        "patch": args.patch,
        "patches": n,
        "zoom": args.zoom,
        "seed": args.seed,
        **_environment(start),
    }
    _write(args.out, "coverage.csv", rows)
    _write_json(args.out, "coverage.json", payload)
    return 0


def _filters(args: argparse.Namespace, start: float) -> int:
    if args.image is None:
        print("wne explain --filters: --image is required", file=sys.stderr)
        return 2
    offset = tuple(args.offset[:2]) if len(args.offset) > 1 else args.offset[0]
    clean = explain.crop(read_image(args.image, channels=1)[..., 0], args.crop, offset)
    clean = clean.astype(np.float64)
    pixel = tuple(args.pixel) if args.pixel else (args.crop // 2, args.crop // 2)
    dtype = getattr(torch, args.dtype)
    rows, windows = [], {}
    print(f"{args.image} crop {args.crop}² at {offset}, pixel {pixel}, {args.dtype}")
    print(f"{'model':<22} {'σ':>4} {'PSNR':>7} {'ρ':>9} {'sum@px':>8} {'sums min..max':>15}")
    for sigma in args.sigma:
        rng = np.random.default_rng([args.seed, round(sigma * 1000)])
        noisy = clean + (sigma / 255.0) * rng.standard_normal(clean.shape)
        for key in args.models:
            model = _load(key, args.root)
            f_y, jy = explain.euler_terms(model, noisy, dtype=dtype)
            rho = float(np.linalg.norm(f_y - jy) / np.linalg.norm(f_y))
            view = explain.filter_view(model, noisy, pixel, dtype=dtype)
            sums = explain.filter_sum_map(model, noisy, dtype=dtype)
            mse = float(np.mean((np.clip(f_y, 0, 1) - clean) ** 2))
            row = {
                "model": key,
                "sigma": sigma,
                "psnr": round(10 * np.log10(1 / mse), 3),
                "psnr_noisy": round(10 * np.log10(1 / float(np.mean((noisy - clean) ** 2))), 3),
                "rho": rho,
                "filter_sum": view.filter_sum,
                "output": view.output,
                "euler": view.euler,
                "sum_min": float(sums.min()),
                "sum_max": float(sums.max()),
                "sum_mean": float(sums.mean()),
            }
            rows.append(row)
            windows[f"{key}@{sigma:g}"] = np.round(view.window(args.radius), 6).tolist()
            print(
                f"{key:<22} {sigma:>4g} {row['psnr']:>7.2f} {rho:>9.3g} "
                f"{view.filter_sum:>8.4f} {row['sum_min']:>7.3f}..{row['sum_max']:.3f}"
            )
    payload = {
        "image": str(args.image),
        "crop": args.crop,
        "offset": offset,
        "pixel": pixel,
        "dtype": args.dtype,
        "seed": args.seed,
        "rows": rows,
        "radius": args.radius,
        "windows": windows,
        **_environment(start),
    }
    _write(args.out, "filters.csv", rows)
    _write_json(args.out, "filters.json", payload)
    return 0


def _collapse(args: argparse.Namespace, start: float) -> int:
    from tqdm.auto import tqdm

    sigmas = [float(s) for s in args.sigmas or SIGMAS_COLLAPSE]
    n = args.patches or 200
    clean = _patches(args.data, n, args.patch, args.seed, args.zoom).numpy().astype(np.float64)
    noisy = {}
    for s in sigmas:
        rng = np.random.default_rng([args.seed, round(s * 1000), 2])
        noisy[s] = clean + (s / 255.0) * rng.standard_normal(clean.shape)
    samples: dict[tuple[str, float], tuple[np.ndarray, np.ndarray]] = {}
    with tqdm(total=len(args.models) * len(sigmas), desc="Q vs Δ", disable=args.quiet) as bar:
        for key in args.models:
            model = _load(key, args.root)
            for s in sigmas:
                samples[key, s] = explain.q_vs_delta(model, clean, noisy[s])
                bar.update()
    deltas = np.concatenate([d for d, _ in samples.values()])
    value_range = tuple(args.range) if args.range else (float(deltas.min()), float(deltas.max()))
    bin_rows, patch_rows, summary = [], [], {}
    for key in args.models:
        curves = {}
        for s in sigmas:
            d, q = samples[key, s]
            curves[s] = b = explain.bin_q(d, q, bins=args.bins, value_range=value_range)
            for c, m, sd, k in zip(b.centers, b.mean, b.std, b.count, strict=True):
                row = {"model": key, "sigma_test": s, "delta_center": round(float(c), 4)}
                row.update({"q_mean": round(float(m), 4), "q_std": round(float(sd), 4)})
                bin_rows.append({**row, "count": int(k)})
            patch_rows += [
                {
                    "model": key,
                    "sigma_test": s,
                    "delta": round(float(a), 5),
                    "q": round(float(v), 5),
                }
                for a, v in zip(d, q, strict=True)
            ]
        spread = explain.curve_spread(curves, min_count=args.min_count)
        summary[key] = {
            "spread_db": spread,
            "mean_q": {f"{s:g}": float(np.mean(samples[key, s][1])) for s in sigmas},
        }
        print(f"{key:<22} spread of Q across σ_test at equal Δ: {spread:.3f} dB")
    payload = {
        "data": str(args.data),
        "patch": args.patch,
        "patches_per_sigma": n,
        "zoom": args.zoom,
        "sigmas_test": sigmas,
        "bins": args.bins,
        "range": list(value_range),
        "min_count": args.min_count,
        "seed": args.seed,
        "models": summary,
        **_environment(start),
    }
    _write(args.out, "collapse.csv", bin_rows)
    _write(args.out, "collapse_patches.csv", patch_rows)
    _write_json(args.out, "collapse.json", payload)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``wne explain``: exit status 0 on success, 2 on bad arguments (``argv``: default
    ``sys.argv[1:]``)."""
    parser = _parser()
    args = parse(parser, argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if (args.coverage or args.collapse) and args.data is None:
        parser.error("--data is required with --coverage and --collapse")
    start = time.perf_counter()
    try:
        if args.coverage:
            return _coverage(args, start)
        if args.filters:
            return _filters(args, start)
        return _collapse(args, start)
    except (ValueError, OSError, checkpoints.CheckpointError) as exc:
        print(f"wne explain: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
