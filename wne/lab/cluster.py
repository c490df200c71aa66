"""``wne denoise`` beyond one process: zarr / OME-Zarr stores through dask, and files on a
dask cluster (``--dask ADDRESS``, or ``--dask local`` for a cluster on this machine).

A zarr array is read lazily (``dask.array.from_zarr``), denoised by :func:`wne.denoise`
(its dask path, :mod:`wne.chunked`) and written chunk by chunk into a zarr array of the same
shape, dtype and chunks; an OME-Zarr image (a group whose ``multiscales`` name its arrays, in
``.zattrs`` or under ``ome``) has every resolution denoised and its metadata copied.
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path
from typing import Any

__all__ = ["connect", "denoise_store", "is_zarr_store", "remote_file"]

ZARR_MARKERS = ("zarr.json", ".zarray", ".zgroup")


def is_zarr_store(path: Path) -> bool:
    """Whether ``path`` is a zarr store (v2 or v3) on disk: a folder with its metadata."""
    return path.is_dir() and any((path / m).is_file() for m in ZARR_MARKERS)


def connect(address: str) -> Any:
    """A ``distributed.Client``: of the scheduler at ``address``, or of a new cluster on
    this machine's loopback for ``"local"`` (one worker process per core, one thread each)."""
    from distributed import Client, LocalCluster

    if address == "local":
        workers = max(1, os.cpu_count() or 1)
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
        )
        return Client(cluster)
    return Client(address)


def _multiscale_paths(attrs: dict[str, Any]) -> list[str]:
    scales = attrs.get("multiscales") or attrs.get("ome", {}).get("multiscales") or []
    return [d["path"] for s in scales for d in s.get("datasets", [])]


def denoise_store(src: Path, dst: Path, model: Any, args: argparse.Namespace) -> int:
    """Denoises the zarr store ``src`` into ``dst`` (written beside as a partial store, then
    moved); returns the pixels done. Computes on the current dask client, if any."""
    import dask
    import dask.array as da
    import zarr

    from wne.native import denoise

    node = zarr.open(str(src), mode="r")
    if isinstance(node, zarr.Array):
        paths, attrs = [""], None
    else:
        attrs = dict(node.attrs)
        paths = _multiscale_paths(attrs) or [k for k, _ in node.arrays()]
        if not paths:
            raise ValueError("the zarr group holds no arrays")
    tmp = dst.with_name(f".{dst.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    pixels, stores = 0, []
    try:
        if attrs is not None:
            zarr.open_group(str(tmp), mode="w").attrs.update(attrs)
        for path in paths:
            arr = da.from_zarr(str(src), component=path or None)
            result = denoise(arr, model, stats=args.stats, tile=args.tile).rechunk(arr.chunks)
            stores.append(
                da.to_zarr(result, str(tmp), component=path or None, compute=False, mode="a")
            )
            pixels += arr.size // (
                arr.shape[-1] if len(arr.shape) >= 3 and arr.shape[-1] <= 4 else 1
            )
        dask.compute(*stores)
        if dst.exists():
            shutil.rmtree(dst)
        os.replace(tmp, dst)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return pixels


def remote_file(src: Path, dst: Path, args: argparse.Namespace) -> int:
    """One file denoised on a dask worker (the model loaded there, once per process)."""
    from wne.lab.denoise import denoise_file
    from wne.native import load_model

    return denoise_file(src, dst, load_model(args.model, args.device), args, set())
