"""Command line of the noise-mismatch evaluation (``wne evaluate``).

``wne evaluate --models KEY ... --data DIR --out OUT`` evaluates checkpoints (keys or folders)
with :mod:`wne.lab.protocol` and writes :mod:`wne.lab.report`'s files. ``--sigma-train S``
alone takes every checkpoint of ``--root`` trained at S, ``--all`` every σ_train 10/25/50
into ``OUT/sigma<S>`` (the catalog's ``--size`` checkpoints, and any outside it; the rivals
of :func:`wne.catalog.rivals` only by ``--models``, a range-trained one with
``--sigma-train``). ``--noise`` picks another corruption of the library's table, ``--levels``
its levels (σ, photons at white with ``--read-noise``, JPEG qualities with ``--jpeg-sigma``);
such a run has no defect sweep. ``common_parser``, ``start``, ``guarded`` and ``load_run``
serve ``wne sample`` too.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from wne import catalog, checkpoints
from wne.device import pick_device
from wne.lab import parse
from wne.lab import protocol as pr
from wne.lab.report import format_summary, write_metrics, write_outputs

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
    """Parses ``argv`` (:func:`wne.lab.parse`) and sets torch's CPU threads."""
    args = parse(parser, argv)
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
    their channel count (ValueError if the models take different counts)."""
    models = pr.resolve_models(names, root=args.root, device=device, **kwargs)
    channels = {m.channels for m in models}
    if len(channels) > 1:
        raise ValueError(f"models take different channel counts {sorted(channels)}")
    return models, pr.load_images(args.data, channels=channels.pop(), max_images=args.max_images)


def _parser() -> argparse.ArgumentParser:
    p = common_parser(
        "wne evaluate",
        "Noise-mismatch evaluation (output vs input PSNR, SSIM, NE defect) of denoiser "
        "checkpoints on an image folder, with the WNE paper's protocol.",
        device="auto",
    )
    help_sigma = "every checkpoint trained at this σ (with --models: those that record none)"
    p.add_argument("--sigma-train", type=float, metavar="SIGMA", help=help_sigma)
    p.add_argument("--all", action="store_true", help="every σ_train 10/25/50, into OUT/sigma<σ>")
    sizes = "with --all or --sigma-train: the catalog's cpu- or gpu-trained checkpoints, or all"
    p.add_argument("--size", choices=(*catalog.SIZES, "all"), default="cpu", help=sizes)
    p.add_argument("--draws", type=positive, default=2, help="noise draws per image and level (2)")
    p.add_argument("--noise", choices=pr.NOISE_TYPES, default="gaussian", help="corruption")
    levels = "σ_test (default: the paper's), photons at white (lowlight) or JPEG quality (jpeg)"
    p.add_argument("--sigmas", "--levels", type=float, nargs="+", metavar="LEVEL", help=levels)
    p.add_argument("--read-noise", type=float, default=0.0, metavar="E", help="lowlight: e⁻ (0)")
    p.add_argument("--jpeg-sigma", type=float, default=0.0, metavar="S", help="jpeg: σ first (0)")
    many, a, b = {"type": float, "nargs": "+"}, pr.DEFAULT_DEFECT_A, pr.DEFAULT_DEFECT_B
    p.add_argument("--defect-a", **many, default=list(a), metavar="A", help="defect sweep's a")
    p.add_argument("--defect-b", **many, default=list(b), metavar="B", help="defect sweep's b")
    n_def, help_n = pr.DEFAULT_DEFECT_IMAGES, "defect sweep on the first N images (0: all)"
    p.add_argument("--defect-images", type=int, default=n_def, metavar="N", help=help_n)
    p.add_argument("--batch-size", type=int, default=0, help="images per forward (0: by size)")
    overlay = argparse.BooleanOptionalAction
    p.add_argument("--paper-overlay", action=overlay, help="the paper's curves (σ_train 10/25/50)")
    p.add_argument("--write-metrics", action="store_true", help="headline numbers to config.json")
    p.add_argument("--cache", type=Path, help="folder of per-model results, reused on a match")
    return p


def _keys(args: argparse.Namespace, sigma: float) -> list[str]:
    """Checkpoints trained at ``sigma`` of ``--size`` (keys outside the catalog: always; the
    rivals: never, they are evaluated by ``--models``)."""
    known, rivals, size = set(catalog.keys()), set(catalog.rival_keys()), args.size
    keys = [k for k in pr.checkpoints_for_sigma(args.root, sigma) if k not in rivals]
    return [k for k in keys if size == "all" or k not in known or catalog.get(k).size == size]


def _run(args: argparse.Namespace, protocol: pr.Protocol) -> None:
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
        log.info("evaluating %s on %d image(s)", ", ".join(m.key for m in models), len(images))
        kw = {"batch_size": args.batch_size, "progress": not args.quiet, "cache": args.cache}
        result = pr.evaluate(models, images, protocol, device=device, **kw)
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
    fields = {f.name: getattr(args, f.name) for f in dataclasses.fields(pr.Protocol)}
    try:
        protocol = pr.Protocol(**fields)
    except ValueError as exc:
        parser.error(str(exc))
    return guarded(lambda: _run(args, protocol))


if __name__ == "__main__":
    sys.exit(main())
