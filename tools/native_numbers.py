"""PSNR of ``wne.denoise`` in the data's own units, on three kinds of the same noisy data.

Each clean 8-bit image gets Gaussian noise (σ = 25 on 0–255, seed ``--seed`` + image
index), rounded and clipped to 8 bits: the "8-bit" kind. The other kinds are affine
copies of that very noisy image: "12-bit" = 200 + 3000·y/255 rounded into ``uint16``
(values 200–3200 of 4095), "float" = 1000·y/255 − 100 in ``float32`` (a negative
offset). PSNR is taken in each kind's units against the same affine copy of the clean
image, with the span of 0–255 in those units as the peak (255, 3000, 1000), so a model
that is equivariant scores the same on all three up to the 12-bit rounding.

``--tiles`` also compares WNE's statistics over the whole image with per-tile ones.

    PYTHONPATH=. python tools/native_numbers.py --data data/set12 --tiles 128 256
    PYTHONPATH=. python tools/native_numbers.py --data data/kodak24 --limit 4 --tiles 128
    PYTHONPATH=. python tools/native_numbers.py --data data/kodak24 --write /tmp/kodak-kinds
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from wne.imageio import NativeImage, list_images, read_native, write_native
from wne.native import denoise

KINDS = {  # name: (scale, offset, dtype, file suffix) of the affine copy of 0–255 data
    "8-bit": (1.0, 0.0, np.uint8, ".png"),
    "12-bit": (3000 / 255, 200.0, np.uint16, ".tif"),
    "float": (1000 / 255, -100.0, np.float32, ".tif"),
}
MODELS = ("dncnn-plain-s25", "dncnn-wne-s25", "swinir-plain-s25", "swinir-wne-s25")


def _images(folder: Path, limit: int | None, seed: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, clean 0–255 float, noisy 8-bit) of each image."""
    out = []
    for i, path in enumerate(list_images(folder)[:limit]):
        clean = read_native(path).pixels.astype(np.float64)
        rng = np.random.default_rng(seed + i)
        noisy = np.clip(np.round(clean + rng.normal(0, 25, clean.shape)), 0, 255)
        out.append((path.stem, clean, noisy.astype(np.uint8)))
    return out


def _kind(noisy8: np.ndarray, kind: str) -> np.ndarray:
    scale, offset, dtype, _ = KINDS[kind]
    y = noisy8.astype(np.float64) * scale + offset
    return (np.round(y) if np.issubdtype(dtype, np.integer) else y).astype(dtype)


def _psnr(out: np.ndarray, clean: np.ndarray, kind: str) -> float:
    scale, offset, _, _ = KINDS[kind]
    mse = np.mean((out.astype(np.float64) - (clean * scale + offset)) ** 2)
    return float(10 * np.log10((255 * scale) ** 2 / mse))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, required=True, help="folder of clean 8-bit images")
    p.add_argument("--limit", type=int, help="first N images only")
    p.add_argument("--models", nargs="+", default=MODELS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--tiles", type=int, nargs="*", default=[], help="tile sides for the stats run")
    p.add_argument("--write", type=Path, help="write the noisy kinds as files here and stop")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    images = _images(args.data, args.limit, args.seed)
    if args.write:
        for kind, (*_, suffix) in KINDS.items():
            (args.write / kind).mkdir(parents=True, exist_ok=True)
            for name, _, noisy in images:
                fmt = "png" if suffix == ".png" else "tiff"
                write_native(
                    args.write / kind / f"{name}{suffix}", NativeImage(_kind(noisy, kind), fmt)
                )
        return 0
    print(f"{args.data.name}, {len(images)} images, σ = 25, seed {args.seed}: mean PSNR (dB)\n")
    print("| model | " + " | ".join(KINDS) + " |\n|---|" + "---|" * len(KINDS))
    noisy_row = [np.mean([_psnr(_kind(n, k), c, k) for _, c, n in images]) for k in KINDS]
    print("| noisy input | " + " | ".join(f"{v:.4f}" for v in noisy_row) + " |")
    for key in args.models:
        row = [
            np.mean([_psnr(denoise(_kind(n, k), key), c, k) for _, c, n in images]) for k in KINDS
        ]
        print(f"| {key} | " + " | ".join(f"{v:.4f}" for v in row) + " |", flush=True)
    if args.tiles:
        print("\n| model | tile | whole-image stats | per-tile stats | difference |")
        print("|---|---|---|---|---|")
    for key in [k for k in args.models if "-wne-" in k and args.tiles]:
        for tile in args.tiles:
            image, per_tile = (
                np.mean(
                    [_psnr(denoise(n, key, tile=tile, stats=s), c, "8-bit") for _, c, n in images]
                )
                for s in ("image", "tile")
            )
            print(f"| {key} | {tile} | {image:.4f} | {per_tile:.4f} | {per_tile - image:+.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
