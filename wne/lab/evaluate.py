"""Command line of the noise-mismatch evaluation (``wne evaluate``).

``wne evaluate --models dncnn-plain-s25 dncnn-wne-s25 --data DIR --out OUT`` evaluates
checkpoints (keys or folders) on an image folder with the WNE paper's protocol
(:mod:`wne.lab.protocol`) and writes ``psnr.csv``, ``defect.csv``, ``summary.json``,
``mismatch.png`` and ``mismatch_ssim.png`` (:mod:`wne.lab.report`).

σ_train comes from each ``config.json`` (``--sigma-train`` for a checkpoint that records
none). ``--sigma-train S`` alone evaluates every checkpoint of ``--root`` trained at S;
``--all`` every σ_train in 10/25/50 that has checkpoints, into ``OUT/sigma<S>``; both take
the catalog's CPU-sized checkpoints unless ``--size gpu`` or ``--size all`` (checkpoints
outside the catalog are always taken). ``--noise`` picks another corruption: ``uniform``,
``laplace``, ``rayleigh`` (levels are σ), ``lowlight`` (photons at white, ``--read-noise``),
``jpeg`` (qualities, of the clean image or with Gaussian noise of ``--jpeg-sigma``); such a
run has no defect sweep.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

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
    checkpoints_for_sigma,
    evaluate,
    load_images,
    resolve_models,
)
from wne.lab.report import format_summary, write_metrics, write_outputs

__all__ = ["common_parser", "guarded", "load_run", "main", "positive", "start"]

log = logging.getLogger(__name__)


def positive(text: str) -> int:
    """An argparse type: a whole number >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def common_parser(prog: str, description: str, *, device: str) -> argparse.ArgumentParser:
    """The arguments ``wne evaluate`` and ``wne sample`` share (models, data, output,
    seed, device, threads, progress)."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("--models", nargs="+", metavar="KEY", help="checkpoint keys or folders")
    p.add_argument("--root", type=Path, help="checkpoint folder (default: bundled)")
    p.add_argument("--data", type=Path, required=True, help="image folder (e.g. Set12)")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--max-images", type=positive, metavar="N", help="only the first N images")
    p.add_argument("--seed", type=int, default=0, help="run seed (0)")
    p.add_argument("--device", default=device, help=f"cpu, cuda, cuda:1, auto ({device})")
    p.add_argument("--threads", type=positive, help="torch CPU threads")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def start(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parses ``argv`` (:func:`wne.lab.cli.parse`) and sets torch's CPU threads."""
    args = cli.parse(parser, argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    return args


def guarded(run: Callable[[], object]) -> int:
    """Runs a command's body: exit status 0, or 2 with ``error: ...`` on bad input."""
    try:
        run()
    except (ValueError, FileNotFoundError, checkpoints.CheckpointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def load_run(
    names: Sequence[str], args: argparse.Namespace, device: torch.device, **kwargs: float | None
) -> tuple[list, list[tuple[str, torch.Tensor]]]:
    """The models (:func:`~wne.lab.protocol.resolve_models`) and the images of ``--data`` in
    their channel count.

    Raises:
        ValueError: If the models take different channel counts.
    """
    models = resolve_models(names, root=args.root, device=device, **kwargs)
    channels = {m.channels for m in models}
    if len(channels) > 1:
        raise ValueError(f"models take different channel counts {sorted(channels)}")
    return models, load_images(args.data, channels=channels.pop(), max_images=args.max_images)


def _parser() -> argparse.ArgumentParser:
    p = common_parser(
        "wne evaluate",
        "Noise-mismatch evaluation (output vs input PSNR, SSIM, NE defect) of denoiser "
        "checkpoints on an image folder, with the WNE paper's protocol.",
        device="auto",
    )
    p.add_argument(
        "--sigma-train",
        type=float,
        metavar="SIGMA",
        help="every checkpoint trained at this σ (with --models: the σ_train of checkpoints "
        "that record none)",
    )
    p.add_argument("--all", action="store_true", help="every σ_train 10/25/50, into OUT/sigma<σ>")
    p.add_argument(
        "--size",
        choices=(*catalog.SIZES, "all"),
        default="cpu",
        help="with --all or --sigma-train: the catalog's CPU-sized (cpu), GPU-trained (gpu) "
        "or all checkpoints",
    )
    p.add_argument("--draws", type=positive, default=2, help="noise draws per image and level (2)")
    p.add_argument("--noise", choices=NOISE_TYPES, default="gaussian", help="corruption")
    p.add_argument(
        "--sigmas",
        "--levels",
        dest="sigmas",
        type=float,
        nargs="+",
        metavar="LEVEL",
        help="level grid: σ_test (default geomspace(5, 100, 20) ∪ {σ_train}), photons at white "
        "(lowlight: 1 3 ... 1000) or JPEG quality (jpeg: 10 20 ... 90)",
    )
    p.add_argument("--read-noise", type=float, default=0.0, metavar="E", help="lowlight: e⁻ (0)")
    p.add_argument(
        "--jpeg-sigma", type=float, default=0.0, metavar="SIGMA", help="jpeg: σ added first (0)"
    )
    p.add_argument("--defect-a", type=float, nargs="+", default=list(DEFAULT_DEFECT_A), metavar="A")
    p.add_argument("--defect-b", type=float, nargs="+", default=list(DEFAULT_DEFECT_B), metavar="B")
    p.add_argument(
        "--defect-images",
        type=int,
        metavar="N",
        default=DEFAULT_DEFECT_IMAGES,
        help=f"defect sweep on the first N images ({DEFAULT_DEFECT_IMAGES}; 0: all)",
    )
    p.add_argument("--batch-size", type=int, default=0, help="images per forward (0: by size)")
    p.add_argument(
        "--paper-overlay",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="draw the paper's curves dashed (default: on for σ_train 10/25/50)",
    )
    p.add_argument(
        "--write-metrics", action="store_true", help="store the headline numbers in config.json"
    )
    p.add_argument("--cache", type=Path, help="folder of per-model results, reused on a match")
    return p


def _keys(args: argparse.Namespace, sigma: float) -> list[str]:
    """Checkpoints trained at ``sigma`` of ``--size`` (keys outside the catalog: always)."""
    known = set(catalog.keys())
    keys = checkpoints_for_sigma(args.root, sigma)
    return [
        k for k in keys if args.size == "all" or k not in known or catalog.get(k).size == args.size
    ]


def _run(args: argparse.Namespace, protocol: Protocol) -> None:
    device = pick_device(args.device)
    if args.all:
        groups = [(_keys(args, s), args.out / f"sigma{s}", s) for s in catalog.SIGMA_TRAINS]
    else:
        groups = [(args.models or _keys(args, args.sigma_train), args.out, args.sigma_train)]
    done = 0
    for names, out, sigma in groups:
        if not names:
            log.info("σ_train %g: no checkpoints trained at it, skipped", sigma)
            continue
        models, images = load_run(names, args, device, sigma_train=args.sigma_train)
        log.info(
            "evaluating %s on %d image(s) from %s",
            ", ".join(m.key for m in models),
            len(images),
            args.data,
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
        if args.write_metrics:
            write_metrics(models, summary, args.data.name.lower())
        print(format_summary(summary, out))
        done += 1
    if not done:
        sigmas = ", ".join(f"{g[2]:g}" for g in groups)
        raise FileNotFoundError(
            f"no checkpoints trained at σ = {sigmas} in {args.root or checkpoints.default_root()}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    """``wne evaluate``: exit status 0 on success, 2 on bad input (``argv``: default
    ``sys.argv[1:]``)."""
    parser = _parser()
    args = start(parser, argv)
    if args.models is not None and args.all:
        parser.error("give either --models or --all")
    if args.models is None and not args.all and args.sigma_train is None:
        parser.error("give --models, --sigma-train or --all")
    if args.noise != "gaussian" and (args.write_metrics or args.paper_overlay):
        parser.error("--write-metrics and --paper-overlay are for the Gaussian protocol only")
    if args.defect_images < 0:
        parser.error("--defect-images must be >= 0")
    try:
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
    except ValueError as exc:
        parser.error(str(exc))
    return guarded(lambda: _run(args, protocol))


if __name__ == "__main__":
    sys.exit(main())
