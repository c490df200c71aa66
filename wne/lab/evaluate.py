"""Command line of the noise-mismatch evaluation (``wne-evaluate``).

``wne-evaluate --models dncnn-plain-s25 dncnn-wne-s25 --data DIR --out OUT``
(or ``python -m wne.lab.evaluate ...``) evaluates checkpoints (keys or folders) on an
image folder with the WNE paper's protocol (:mod:`wne.lab.protocol`: σ_test grid
``geomspace(5, 100, 20) ∪ {σ_train}``, paired seeded noise, outputs clamped for PSNR
and SSIM, NE-defect sweep) and writes its reports (:mod:`wne.lab.report`).

Outputs in ``--out``: ``psnr.csv`` (long format: one row per model × σ_test),
``defect.csv`` (one row per model × (a, b)), ``summary.json`` (matched-σ numbers,
σ_test 5 and the grid point nearest 50, grid mean, defect, the paper's numbers beside),
``mismatch.png`` (output vs input PSNR, optionally with the paper's published curves
dashed) and ``mismatch_ssim.png``.

σ_train of each model comes from its ``config.json`` (``--sigma-train`` for a
checkpoint that records none). ``--sigma-train S`` alone evaluates every checkpoint
of ``--root`` trained at S; ``--all`` every σ_train in 10/25/50 that has checkpoints,
into ``OUT/sigma10`` ...; σ_train values without checkpoints are skipped. Both take the
catalog's CPU-sized checkpoints unless ``--size gpu`` (the GPU-trained paper-size ones)
or ``--size all``; checkpoints outside the catalog are always taken.

``--noise`` picks the corruption (:data:`wne.lab.protocol.NOISE_TYPES`, default
``gaussian``, the paper's protocol above): ``uniform``, ``laplace``, ``rayleigh``
(``--sigmas`` are σ on the 0–255 scale; Rayleigh not recentred, as the paper),
``lowlight`` (``--sigmas``/``--levels`` are photons at white, ``--read-noise`` electrons)
or ``jpeg`` (the levels are JPEG qualities of the clean image, or of the image with
Gaussian noise of ``--jpeg-sigma``). Every model sees the same seeded corruption. Such a
run writes ``psnr.csv`` with the columns ``model, noise, level, input_psnr,
equivalent_sigma, psnr, ssim, n`` (equivalent σ: 255·RMS(noisy − clean), averaged over
images), ``summary.json`` and the two mismatch plots; it has no defect sweep.

    wne-evaluate --models dncnn-plain-s25 dncnn-wne-s25 --data DIR --out OUT \
        --noise lowlight --levels 3 10 30 100 --draws 1
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from wne import catalog, checkpoints
from wne.device import pick_device
from wne.lab import cli
from wne.lab.protocol import (
    DEFAULT_DEFECT_A,
    DEFAULT_DEFECT_B,
    DEFAULT_DEFECT_IMAGES,
    NOISE_TYPES,
    Protocol,
    check_level,
    checkpoints_for_sigma,
    evaluate,
    load_images,
    resolve_models,
)
from wne.lab.report import format_noise_summary, format_summary, write_metrics, write_outputs

__all__ = ["main"]

log = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="wne-evaluate",
        description="Noise-mismatch evaluation (output vs input PSNR, SSIM, NE defect) of "
        "denoiser checkpoints on an image folder, with the WNE paper's protocol.",
    )
    sel = p.add_argument_group("models (one of)")
    sel.add_argument("--models", nargs="+", metavar="KEY", help="checkpoint keys or folders")
    sel.add_argument(
        "--sigma-train",
        type=float,
        metavar="SIGMA",
        help="evaluate every checkpoint whose config.json records this σ_train (with "
        "--models: the σ_train of checkpoints that record none)",
    )
    sel.add_argument(
        "--all",
        action="store_true",
        help="every σ_train in 10/25/50 that has checkpoints, into OUT/sigma<σ>",
    )
    sel.add_argument(
        "--size",
        choices=(*catalog.SIZES, "all"),
        default="cpu",
        help="with --all or --sigma-train: the catalog's CPU-sized checkpoints (cpu, the "
        "default), its GPU-trained paper-size ones (gpu) or both (all); checkpoints outside "
        "the catalog are always taken",
    )
    p.add_argument("--root", type=Path, help="checkpoint folder (default: bundled)")
    p.add_argument("--data", type=Path, required=True, help="image folder (e.g. Set12)")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument(
        "--draws", type=int, default=2, metavar="N", help="noise draws per image and σ (2)"
    )
    p.add_argument("--seed", type=int, default=0, help="noise seed (0)")
    p.add_argument(
        "--noise",
        choices=NOISE_TYPES,
        default="gaussian",
        help="corruption (gaussian: the paper's protocol; uniform/laplace/rayleigh: levels are "
        "σ; lowlight: photons at white; jpeg: JPEG quality)",
    )
    p.add_argument(
        "--sigmas",
        "--levels",
        dest="sigmas",
        type=float,
        nargs="+",
        metavar="LEVEL",
        help="level grid override: σ_test (default: geomspace(5, 100, 20) ∪ {σ_train}), "
        "photons at white for lowlight (default 1 3 10 30 100 300 1000), JPEG quality for "
        "jpeg (default 10 20 ... 90)",
    )
    p.add_argument(
        "--read-noise",
        type=float,
        default=0.0,
        metavar="E",
        help="lowlight: sensor read noise in photo-electrons (0)",
    )
    p.add_argument(
        "--jpeg-sigma",
        type=float,
        default=0.0,
        metavar="SIGMA",
        help="jpeg: Gaussian σ added before compression (0: compress the clean image, as the "
        "paper's JPEG transfer)",
    )
    p.add_argument("--max-images", type=int, metavar="N", help="use only the first N images")
    p.add_argument(
        "--defect-a",
        type=float,
        nargs="+",
        default=list(DEFAULT_DEFECT_A),
        metavar="A",
        help="contrasts a of the defect sweep",
    )
    p.add_argument(
        "--defect-b",
        type=float,
        nargs="+",
        default=list(DEFAULT_DEFECT_B),
        metavar="B",
        help="offsets b of the defect sweep",
    )
    p.add_argument(
        "--defect-images",
        type=int,
        metavar="N",
        default=DEFAULT_DEFECT_IMAGES,
        help=f"defect sweep on the first N images ({DEFAULT_DEFECT_IMAGES}; 0: all)",
    )
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... (auto: cuda if any)")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument(
        "--batch-size", type=int, default=0, help="noisy images per forward (0: auto by size)"
    )
    p.add_argument(
        "--paper-overlay",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="draw the paper's curves dashed (default: on for σ_train 10/25/50)",
    )
    p.add_argument(
        "--write-metrics",
        action="store_true",
        help="store the headline numbers in each local checkpoint's config.json",
    )
    p.add_argument(
        "--cache",
        type=Path,
        help="folder of per-model results, reused when weights and protocol match "
        "(e.g. runs/eval-cache: evaluate checkpoints as they appear, then the full set)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _of_size(keys: Sequence[str], size: str) -> list[str]:
    """The keys of catalog checkpoints of ``size`` (``"all"``: every one) and every key
    outside the catalog."""
    known = set(catalog.keys())
    return [k for k in keys if size == "all" or k not in known or catalog.get(k).size == size]


def _run_one(
    names: Sequence[str], args: argparse.Namespace, device: torch.device, out: Path
) -> dict[str, Any]:
    models = resolve_models(names, root=args.root, device=device, sigma_train=args.sigma_train)
    channels = {m.channels for m in models}
    if len(channels) > 1:
        raise ValueError(f"models take different channel counts {sorted(channels)}")
    images = load_images(args.data, channels=channels.pop(), max_images=args.max_images)
    log.info(
        "evaluating %s on %d image(s) from %s (%d draws, device %s)",
        ", ".join(m.key for m in models),
        len(images),
        args.data,
        args.draws,
        device,
    )
    protocol = Protocol(
        sigmas=args.sigmas,
        draws=args.draws,
        seed=args.seed,
        defect_a=args.defect_a,
        defect_b=args.defect_b,
        defect_images=args.defect_images,
        noise=args.noise,
        read_noise=args.read_noise,
        jpeg_sigma=args.jpeg_sigma,
    )
    result = evaluate(
        models,
        images,
        protocol,
        device=device,
        batch_size=args.batch_size,
        progress=not args.quiet,
        cache=args.cache,
    )
    meta = {"data": str(args.data), "dataset": args.data.name, "device": str(device)}
    summary = write_outputs(models, result, out, paper_overlay=args.paper_overlay, meta=meta)
    if args.write_metrics and protocol.gaussian:
        write_metrics(models, summary, args.data.name.lower())
    return summary


def _format(summary: dict[str, Any], out: Path) -> str:
    if summary["run"].get("noise", "gaussian") != "gaussian":
        return format_noise_summary(summary, out)
    return format_summary(summary, out)


def _check_noise_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.noise != "gaussian":
        if args.write_metrics:
            parser.error(
                "--write-metrics stores the Gaussian protocol's numbers: use it without --noise"
            )
        if args.paper_overlay:
            parser.error("--paper-overlay: the paper's curves are for Gaussian noise only")
    if args.read_noise != 0 and args.noise != "lowlight":
        parser.error("--read-noise is for --noise lowlight")
    if args.jpeg_sigma != 0 and args.noise != "jpeg":
        parser.error("--jpeg-sigma is for --noise jpeg")
    if not (args.read_noise >= 0 and args.read_noise < float("inf")):
        parser.error("--read-noise must be a finite number >= 0")
    if not (args.jpeg_sigma >= 0 and args.jpeg_sigma < float("inf")):
        parser.error("--jpeg-sigma must be a finite number >= 0")
    for level in args.sigmas or ():
        try:
            check_level(args.noise, level)
        except ValueError as exc:
            parser.error(str(exc))
        if not (level >= 0 and level < float("inf")):
            parser.error(f"levels must be finite numbers >= 0, got {level:g}")


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (``wne-evaluate``).

    Args:
        argv: Arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status (0 on success, 2 on bad input).
    """
    parser = _parser()
    args = cli.parse(parser, argv)
    chosen = sum(x for x in (args.models is not None, args.all))
    if chosen > 1:
        parser.error("give either --models or --all")
    if not chosen and args.sigma_train is None:
        parser.error("give --models, --sigma-train or --all")
    if args.draws < 1:
        parser.error("--draws must be >= 1")
    _check_noise_args(parser, args)
    if args.defect_images < 0:
        parser.error("--defect-images must be >= 0")
    if args.max_images is not None and args.max_images < 1:
        parser.error("--max-images must be >= 1")
    if args.threads is not None:
        if args.threads < 1:
            parser.error("--threads must be >= 1")
        torch.set_num_threads(args.threads)
    try:
        device = pick_device(args.device)
        if args.all:
            done = 0
            for s in catalog.SIGMA_TRAINS:
                keys = _of_size(checkpoints_for_sigma(args.root, s), args.size)
                if not keys:
                    log.info("σ_train %d: no checkpoints trained at it, skipped", s)
                    continue
                out = args.out / f"sigma{s}"
                print(_format(_run_one(keys, args, device, out), out))
                done += 1
            if not done:
                root = args.root or checkpoints.default_root()
                raise FileNotFoundError(f"no checkpoints for σ_train 10, 25 or 50 in {root}")
        else:
            names = args.models
            if names is None:
                names = _of_size(checkpoints_for_sigma(args.root, args.sigma_train), args.size)
                if not names:
                    root = args.root or checkpoints.default_root()
                    raise FileNotFoundError(
                        f"no checkpoints trained at σ = {args.sigma_train:g} in {root}"
                    )
            print(_format(_run_one(names, args, device, args.out), args.out))
    except (ValueError, FileNotFoundError, checkpoints.CheckpointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
