"""``wne denoise``: image files and folders denoised in their own format, dtype and units.

A thin loop over :func:`wne.native.denoise`, reading and writing with
:func:`wne.imageio.read_native` / :func:`wne.imageio.write_native`.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

from wne.imageio import NATIVE_SUFFIXES, read_native, write_native
from wne.lab import parse
from wne.native import denoise, load_model

__all__ = ["main", "plan"]

SUFFIX = "_denoised"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="wne denoise",
        description="Denoise image files in their own format, bit depth and units: PNG, JPEG, "
        "TIFF (8/16-bit, float32, stacks frame by frame) and .npy. Without -o, a file's "
        f"result goes beside it as NAME{SUFFIX}.EXT and a folder's into FOLDER{SUFFIX}/.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="files, folders (recursive), globs")
    p.add_argument("-o", "--output", type=Path, help="output file (one input file) or folder")
    p.add_argument("--model", help="catalog key (default: the best WNE checkpoint for the device)")
    p.add_argument("--device", help="cpu, cuda, cuda:1 (default: $WNE_DEVICE, else CUDA if any)")
    p.add_argument("--overwrite", action="store_true", help="replace existing files, inputs too")
    stats = "WNE's mean and spread: over the whole image (default) or per tile"
    p.add_argument("--stats", choices=("image", "tile"), default="image", help=stats)
    p.add_argument("--tile", type=int, help="tile side in pixels (default: the device's)")
    return p


def _expand(arg: str, output: Path | None) -> Iterator[tuple[Path, Path | None]]:
    """(file, its folder argument or None) for one INPUT; a path that matches nothing
    is yielded as is (reading it reports it)."""
    path = Path(arg)
    if path.is_dir():
        skip = _folder_root(path, output).resolve()  # never re-read earlier results
        skip = None if skip == path.resolve() else skip
        found = (p for p in path.rglob("*") if p.suffix.lower() in NATIVE_SUFFIXES)
        yield from ((p, path) for p in sorted(found) if skip not in p.resolve().parents)
    else:
        matches = glob.glob(arg, recursive=True) if glob.has_magic(arg) else []
        yield from ((Path(p), None) for p in sorted(matches) or [arg])


def _folder_root(folder: Path, output: Path | None) -> Path:
    return output or folder.resolve().with_name(folder.resolve().name + SUFFIX)


def plan(inputs: Sequence[str], output: Path | None) -> list[tuple[Path, Path]]:
    """Each input file with the path its result is written to."""
    pairs = [pair for arg in inputs for pair in _expand(arg, output)]
    one_file = len(pairs) == 1 and pairs[0][1] is None
    as_file = output is not None and one_file and output.suffix and not output.is_dir()
    out = []
    for src, folder in pairs:
        if as_file:
            dst = output
        elif folder is not None:
            dst = _folder_root(folder, output) / src.relative_to(folder)
        else:
            dst = (output or src.parent) / (src.name if output else src.stem + SUFFIX + src.suffix)
        out.append((src, dst))
    return out


def _one(src: Path, dst: Path, net: object, args: argparse.Namespace, taken: set[Path]) -> int:
    """Denoises one file into ``dst``; returns its pixel count (frames × H × W)."""
    if dst.resolve() in taken:
        raise ValueError(f"another input is already written to {dst}")
    if dst.exists() and not args.overwrite:
        raise ValueError(f"{dst} exists (pass --overwrite to replace it)")
    image = read_native(src)
    result = denoise(image.pixels, net, stats=args.stats, tile=args.tile)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.stem}.partial{dst.suffix}")
    try:
        write_native(tmp, replace(image, pixels=result))
        os.replace(tmp, dst)  # a failed write leaves dst (maybe the input) untouched
    finally:
        tmp.unlink(missing_ok=True)
    taken.add(dst.resolve())
    channels = result.shape[-1] if result.ndim >= 3 and result.shape[-1] <= 4 else 1
    return result.size // channels


def main(argv: Sequence[str] | None = None) -> int:
    """``wne denoise``: exit status 0 when every file was denoised, 1 when some failed,
    2 on bad arguments or an unusable model (``argv``: default sys.argv)."""
    from tqdm import tqdm

    parser = _parser()
    args = parse(parser, argv)
    if args.tile is not None and args.tile < 16:
        parser.error("--tile must be >= 16")
    pairs = plan(args.inputs, args.output)
    try:
        net = load_model(args.model, args.device)
    except (ValueError, OSError, RuntimeError) as exc:
        print(f"wne denoise: {exc}", file=sys.stderr)
        return 2
    failed, pixels, start, taken = 0, 0, time.perf_counter(), set()
    with tqdm(pairs, unit="file", desc="denoise") as bar:
        for src, dst in bar:
            try:
                pixels += _one(src, dst, net, args, taken)
            except Exception as exc:  # one bad file must not stop the others
                failed += 1
                reason = " ".join(str(exc).split()) or type(exc).__name__
                bar.write(f"wne denoise: {src}: {reason}", file=sys.stderr)
            bar.set_postfix_str(f"{pixels / 1e6 / (time.perf_counter() - start):.2f} MP/s")
    if failed:
        print(f"wne denoise: {failed} of {len(pairs)} file(s) failed", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
