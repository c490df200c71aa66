"""``wne.denoise`` on a ``dask.array`` and ``wne denoise`` on zarr stores and on a cluster.

The dask path runs the numpy path's own tiles, so it equals it (floats to round-off of the
statistics, integers to one step) for a CNN and a transformer, grey and colour, stacks and
alpha; it is lazy (nothing is read before ``compute``); a constant frame stays exact; the CLI
denoises a zarr array and an OME-Zarr image (every resolution, metadata kept) and a folder of
files on a ``LocalCluster`` on loopback, bad files reported one by one.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import wne
from wne import models
from wne.native import denoise

da = pytest.importorskip("dask.array")
zarr = pytest.importorskip("zarr")
ROOT = Path(__file__).resolve().parent.parent


def _tiny(arch: str, wrapped: bool, **kw: object) -> torch.nn.Module:
    torch.manual_seed(0)
    net = models.build(arch, **kw)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("bias"):
                p.normal_(0.0, 0.1)
    return (wne.NormEquivariant(net) if wrapped else net).eval()


NETS = {
    "cnn-wne": lambda: _tiny("dncnn", True, depth=4, width=8),
    "cnn-plain": lambda: _tiny("dncnn", False, depth=4, width=8),
    "swin-wne": lambda: _tiny("swinir", True, embed_dim=8, depths=[1], num_heads=2, window_size=4),
}
CASES = [
    ((150, 170), np.uint16, 4000),
    ((2, 90, 100), np.float32, 1),
    ((80, 96, 3), np.float32, 1),
    ((70, 90, 4), np.uint8, 255),  # RGBA: the alpha is kept
]


@pytest.mark.parametrize("name", list(NETS))
@pytest.mark.parametrize(("shape", "dtype", "scale"), CASES)
def test_dask_equals_numpy(name: str, shape: tuple, dtype: type, scale: float) -> None:
    net = NETS[name]()
    rng = np.random.default_rng(1)
    x = (rng.random(shape) * scale).astype(dtype)
    ref = denoise(x, net, tile=48)
    lazy = denoise(da.from_array(x, chunks=40), net, tile=48)
    assert isinstance(lazy, da.Array) and lazy.shape == x.shape and lazy.dtype == x.dtype
    got = lazy.compute()
    diff = np.abs(got.astype(np.float64) - ref.astype(np.float64)).max()
    assert diff <= (1 if np.issubdtype(dtype, np.integer) else 1e-5 * scale), diff
    if shape[-1] == 4:
        assert np.array_equal(got[..., 3], x[..., 3])


def test_dask_is_lazy_and_a_constant_frame_stays_exact() -> None:
    net, reads = NETS["cnn-wne"](), []

    def source(block_id: tuple[int, ...]) -> np.ndarray:
        reads.append(block_id)
        return np.full((32, 32), 0.25, np.float32)

    meta = np.empty((0, 0), np.float32)
    x = da.map_blocks(source, chunks=((32, 32), (32, 32)), dtype=np.float32, meta=meta)
    lazy = denoise(x, net, tile=48)
    assert reads == []  # nothing read before compute
    assert np.array_equal(lazy.compute(), np.full((64, 64), 0.25, np.float32))
    with pytest.raises(ValueError, match="out is not taken with a dask array"):
        denoise(x, net, out=np.empty((64, 64), np.float32))


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(cwd)}
    return subprocess.run(
        [sys.executable, "-m", "wne", "denoise", *args], capture_output=True, text=True,
        cwd=cwd, env=env, timeout=300,
    )  # fmt: skip


@pytest.mark.slow
def test_cli_zarr_ome_zarr_and_files_on_a_local_cluster(tmp_path: Path) -> None:
    import tifffile

    rng = np.random.default_rng(2)
    x = (rng.random((140, 150)) * 4000).astype(np.uint16)
    zarr.create_array(tmp_path / "a.zarr", shape=x.shape, chunks=(64, 64), dtype=x.dtype)[:] = x
    g = zarr.open_group(tmp_path / "img.zarr", mode="w")
    ms = [{"version": "0.4", "datasets": [{"path": "0"}, {"path": "1"}]}]
    g.attrs["multiscales"] = ms
    levels = {"0": rng.random((2, 96, 100)), "1": rng.random((2, 48, 50))}
    for k, v in levels.items():
        g.create_array(k, shape=v.shape, chunks=(1, 48, 48), dtype="float32")[:] = v
    (tmp_path / "files").mkdir()
    tifffile.imwrite(tmp_path / "files" / "f.tif", x[:64])
    (tmp_path / "files" / "bad.tif").write_bytes(b"not a tiff")
    key = "dncnn-wne-s25"
    for extra in ([], ["--dask", "local"]):
        r = _cli("a.zarr", "img.zarr", "files", "--model", key, "--overwrite", *extra, cwd=tmp_path)
        assert r.returncode == 1, r.stderr  # the bad file, and only it
        assert "bad.tif" in r.stderr and "1 of 4 file(s) failed" in r.stderr
        net = wne.load(key)
        got = zarr.open(tmp_path / "a_denoised.zarr")[:]
        assert np.abs(got.astype(float) - denoise(x, net)).max() <= 1
        out = zarr.open_group(tmp_path / "img_denoised.zarr")
        assert out.attrs["multiscales"] == ms
        for k, v in levels.items():
            assert np.abs(out[k][:] - denoise(v.astype(np.float32), net)).max() < 1e-5
        f = tifffile.imread(tmp_path / "files_denoised" / "f.tif")
        assert np.array_equal(f, denoise(x[:64], net))


def test_readme_dask_block_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import re

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    tail = readme[readme.index("### Beyond one machine: dask, zarr, a cluster") :]
    code = re.search(r"```python\n(.*?)```", tail, flags=re.S).group(1)
    x = (np.random.default_rng(3).random((2, 40, 48)) * 4000).astype(np.uint16)
    zarr.create_array(tmp_path / "frames.zarr", shape=x.shape, chunks=(1, 32, 32), dtype=x.dtype)[
        :
    ] = x
    monkeypatch.chdir(tmp_path)
    exec(code, {})
    got = zarr.open(tmp_path / "frames_denoised.zarr")[:]
    assert np.abs(got.astype(float) - denoise(x, "dncnn-wne-s25")).max() <= 1
