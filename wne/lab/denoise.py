"""``wne denoise``: image files and folders denoised in their own format, dtype and units.

A thin loop over :func:`wne.native.denoise`, reading and writing with
:func:`wne.imageio.read_native` / :func:`wne.imageio.write_native`. Each file's header is
read first (:func:`wne.imageio.inspect_native`) and what it needs estimated: a large TIFF
or ``.npy`` is streamed (read tile by tile from a memmap or its strips/tiles, written into a
memory-mapped result), a file that cannot be done within the memory or pixel limits is
refused with a one-line reason, and the other files go on.
"""

from __future__ import annotations

import argparse
import glob
import math
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

from wne.imageio import (
    NATIVE_SUFFIXES,
    NativeHeader,
    create_native,
    inspect_native,
    open_native,
    read_native,
    write_native,
)
from wne.lab import parse
from wne.lab.cluster import connect, denoise_store, is_zarr_store, remote_file
from wne.native import denoise, load_model
from wne.tiling import tile_size

__all__ = ["available_memory", "denoise_file", "main", "needs", "plan"]

SUFFIX = "_denoised"
STREAM_ABOVE = 512 << 20
"""``--stream auto`` streams a file whose in-memory run would need more bytes than this."""
TILE_ALLOWANCE = 1024
"""Bytes per pixel of a tile allowed for the model's activations in the estimates."""
GB = 1e9


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="wne denoise",
        description="Denoise image files in their own format, bit depth and units: PNG, JPEG, "
        "TIFF (8/16-bit, float32, stacks frame by frame), .npy and zarr / OME-Zarr stores "
        "(through dask). Without -o, a file's "
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
    p.add_argument(
        "--stream",
        choices=("auto", "always", "never"),
        default="auto",
        help="read TIFF and .npy files tile by tile (from a memory map, or strip by strip and "
        "tile by tile for compressed or tiled TIFFs) and write the result into a memory-mapped "
        "file of the same dtype and shape (TIFFs uncompressed): memory then does not grow "
        f"with the image. auto (default): files whose in-memory run needs over "
        f"{STREAM_ABOVE >> 20} MiB or over --memory-limit",
    )
    p.add_argument(
        "--memory-limit",
        type=float,
        metavar="GB",
        help="memory a file may take (default: the memory available now); a file whose "
        "estimate is over it is refused with its reason and the others go on",
    )
    p.add_argument(
        "--max-pixels",
        type=float,
        metavar="N",
        help="refuse files of more than N pixels (frames × height × width), e.g. 1e9",
    )
    p.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="run on a dask cluster: a scheduler's address (tcp://host:8786) or 'local' (one "
        "on this machine); files go to its workers one each, zarr stores chunk by chunk",
    )
    return p


def available_memory() -> int:
    """Bytes of memory available now: psutil's estimate, else the free pages
    (``os.sysconf``), else unbounded."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return sys.maxsize


def _has_c(shape: tuple[int, ...]) -> bool:
    return len(shape) >= 3 and shape[-1] <= 4


def _size(header: NativeHeader) -> str:
    return f"{'×'.join(map(str, header.shape))} {header.dtype.name}"


def _pixels(header: NativeHeader) -> int:
    return math.prod(header.shape[:-1] if _has_c(header.shape) else header.shape)


def needs(header: NativeHeader, tile: int, stream: bool) -> int:
    """Estimated bytes of memory to denoise a file: input, output and decoding (none of them
    when streamed: a band of strips or tiles instead), plus one tile's activations."""
    work = tile * tile * TILE_ALLOWANCE
    if not stream:
        return (3 if header.format in ("png", "jpeg") else 2) * header.nbytes + work
    shape, itemsize = header.shape, header.dtype.itemsize
    row = (shape[-2] * shape[-1] if _has_c(shape) else shape[-1]) * itemsize
    rows = header.band_rows
    return (0 if rows == 1 else (math.ceil(tile / rows) + 1) * rows * row) + work


def _expand(arg: str, output: Path | None) -> Iterator[tuple[Path, Path | None]]:
    """(file, its folder argument or None) for one INPUT; a path that matches nothing
    is yielded as is (reading it reports it)."""
    path = Path(arg)
    if is_zarr_store(path):
        yield path, None
    elif path.is_dir():
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


def _gb(n: float) -> str:
    return f"{n / GB:.3g} GB"


def _decide(src: Path, dst: Path, header: NativeHeader, args: argparse.Namespace) -> bool:
    """Whether to stream a file; raises ``ValueError`` with the reason it cannot be done."""
    pixels = _pixels(header)
    if args.max_pixels is not None and pixels > args.max_pixels:
        raise ValueError(
            f"{_size(header)} is {pixels / 1e6:.4g} Mpx, over --max-pixels {args.max_pixels:g}"
        )
    budget = args.memory_limit * GB if args.memory_limit is not None else available_memory()
    tile = args.tile or tile_size(args.device_type)
    whole, streamed = needs(header, tile, False), needs(header, tile, True)
    can = header.streamable and args.stream != "never"
    stream = can and (args.stream == "always" or whole > min(STREAM_ABOVE, budget))
    if not stream and whole > budget:
        how = (
            "and --stream never" if header.streamable else f"and cannot be streamed ({header.why})"
        )
        raise ValueError(f"{_size(header)} needs ~{_gb(whole)}, {_gb(budget)} available, {how}")
    if stream and streamed > budget:
        raise ValueError(
            f"{_size(header)} needs ~{_gb(streamed)} even streamed "
            f"({header.band_rows} rows decoded at once), {_gb(budget)} available"
        )
    if stream:
        free = shutil.disk_usage(next(p for p in [dst.parent, *dst.parents] if p.exists())).free
        if header.nbytes > free:
            raise ValueError(f"its result needs {_gb(header.nbytes)} on disk, {_gb(free)} free")
    return stream


def denoise_file(
    src: Path,
    dst: Path,
    net: object,
    args: argparse.Namespace,
    taken: set[Path],
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Denoises one file into ``dst``; returns its pixel count (frames × H × W).
    ``progress(done, total)`` is called with pixels as tiles are done."""
    if dst.resolve() in taken:
        raise ValueError(f"another input is already written to {dst}")
    if dst.exists() and not args.overwrite:
        raise ValueError(f"{dst} exists (pass --overwrite to replace it)")
    if is_zarr_store(src):
        taken.add(dst.resolve())
        return denoise_store(src, dst, net, args)
    header = inspect_native(src)
    stream = _decide(src, dst, header, args)
    total, done = _pixels(header), 0

    def step(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.stem}.partial{dst.suffix}")
    try:
        if stream:
            image = open_native(src)
            try:
                out = create_native(tmp, header.shape, header.dtype, image.format, image.meta)
                denoise(image.pixels, net, stats=args.stats, tile=args.tile, out=out, progress=step)
                out.flush()
                del out
            finally:
                close = getattr(image.pixels, "close", None)
                if close is not None:
                    close()
        else:
            image = read_native(src)
            result = denoise(image.pixels, net, stats=args.stats, tile=args.tile, progress=step)
            write_native(tmp, replace(image, pixels=result))
        os.replace(tmp, dst)  # a failed write leaves dst (maybe the input) untouched
    finally:
        tmp.unlink(missing_ok=True)
    taken.add(dst.resolve())
    return total


def main(argv: Sequence[str] | None = None) -> int:
    """``wne denoise``: exit status 0 when every file was denoised, 1 when some failed,
    2 on bad arguments or an unusable model (``argv``: default sys.argv). Killed by
    SIGTERM, it removes the partial file it was writing (exit status 143)."""
    if threading.current_thread() is not threading.main_thread():
        return _main(argv)
    before = signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    try:
        return _main(argv)
    finally:
        signal.signal(signal.SIGTERM, before)


def _main(argv: Sequence[str] | None) -> int:
    from tqdm import tqdm

    parser = _parser()
    args = parse(parser, argv)
    if args.tile is not None and args.tile < 16:
        parser.error("--tile must be >= 16")
    if args.memory_limit is not None and args.memory_limit <= 0:
        parser.error("--memory-limit must be > 0")
    pairs = plan(args.inputs, args.output)
    try:
        net = load_model(args.model, args.device)
    except (ValueError, OSError, RuntimeError) as exc:
        print(f"wne denoise: {exc}", file=sys.stderr)
        return 2
    first = next(iter(net.parameters()), None)
    args.device_type = first.device if first is not None else args.device
    failed, pixels, start, taken = 0, 0, time.perf_counter(), set()
    if args.dask:
        return _on_cluster(pairs, net, args)
    with tqdm(pairs, unit="file", desc="denoise") as bar:
        for src, dst in bar:
            inner = None

            def progress(done: int, total: int, src: Path = src) -> None:
                nonlocal inner
                if inner is None and total >= 1 << 24:  # a large file: its own bar
                    inner = tqdm(
                        total=total,
                        unit="px",
                        unit_scale=True,
                        desc=src.name,
                        leave=False,
                        mininterval=2.0,
                    )
                if inner is not None:
                    inner.update(done - inner.n)

            try:
                pixels += denoise_file(src, dst, net, args, taken, progress)
            except Exception as exc:  # one bad file must not stop the others
                failed += 1
                reason = " ".join(str(exc).split()) or type(exc).__name__
                bar.write(f"wne denoise: {src}: {reason}", file=sys.stderr)
            finally:
                if inner is not None:
                    inner.close()
            bar.set_postfix_str(f"{pixels / 1e6 / (time.perf_counter() - start):.2f} MP/s")
    if failed:
        print(f"wne denoise: {failed} of {len(pairs)} file(s) failed", file=sys.stderr)
    return 1 if failed else 0


def _on_cluster(pairs: list[tuple[Path, Path]], net: object, args: argparse.Namespace) -> int:
    """The files on the cluster's workers, the zarr stores through it; exit status as main's."""
    from distributed import as_completed
    from tqdm import tqdm

    try:
        client = connect(args.dask)
    except (OSError, ValueError, TimeoutError) as exc:
        print(f"wne denoise: dask cluster {args.dask}: {exc}", file=sys.stderr)
        return 2
    failed = 0
    with client, tqdm(total=len(pairs), unit="file", desc="denoise (dask)") as bar:

        def failure(src: Path, exc: BaseException) -> None:
            nonlocal failed
            failed += 1
            reason = " ".join(str(exc).split()) or type(exc).__name__
            bar.write(f"wne denoise: {src}: {reason}", file=sys.stderr)

        dsts = [d.resolve() for _, d in pairs]
        clash = {d for d in dsts if dsts.count(d) > 1}
        jobs = {}
        for src, dst in pairs:
            if dst.resolve() in clash:
                failure(src, ValueError(f"another input is also written to {dst}"))
                bar.update()
            elif is_zarr_store(src):
                try:
                    denoise_file(src, dst, net, args, set())
                except Exception as exc:  # one bad store must not stop the others
                    failure(src, exc)
                bar.update()
            else:
                jobs[client.submit(remote_file, src, dst, args, pure=False)] = src
        for future in as_completed(jobs):
            try:
                future.result()
            except Exception as exc:  # a worker's failure, reported with its file
                failure(jobs[future], exc)
            bar.update()
        cluster = client.cluster
    if cluster is not None:
        cluster.close()
    if failed:
        print(f"wne denoise: {failed} of {len(pairs)} file(s) failed", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
