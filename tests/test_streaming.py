"""Images of any size: ``wne denoise`` streams large TIFF and ``.npy`` files tile by tile,
refuses what it cannot do with a one-line reason and goes on with the other files; the
streamed result equals the in-memory one, and memory does not grow with the image."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from conftest import make_tiny_model, save_tiny_checkpoints
from PIL import Image

from wne import native
from wne.imageio import inspect_native, open_native, read_native
from wne.lab.denoise import main
from wne.native import denoise
from wne.wrapper import normalization_stats

WNE, PLAIN = "dncnn-wne-s25", "dncnn-plain-s25"
ROOT = Path(__file__).resolve().parents[1]


def _noisy(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    return 0.5 + 0.3 * np.sin(xx / 6.0) * np.cos(yy / 9.0) + rng.normal(0, 25 / 255, (h, w))


def _random_tiff(path: Path, n: int) -> np.random.Generator:
    """An uncompressed ``n × n`` uint16 TIFF of 12-bit-like noise, written band by band (never
    whole in memory); returns the generator, to draw more from."""
    image = tifffile.memmap(path, shape=(n, n), dtype=np.uint16)
    rng = np.random.default_rng(0)
    for r in range(0, n, 512):
        image[r : r + 512] = rng.integers(200, 3200, (512, n), dtype=np.uint16)
    image.flush()
    del image
    return rng


def test_streamed_statistics_are_the_wrappers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Band by band (here 7 rows a band) gives normalization_stats of the whole frame;
    a constant frame keeps exactly std == 0."""
    monkeypatch.setattr(native, "_BAND_VALUES", 7 * 50 * 4)
    y = torch.from_numpy(np.stack([_noisy(60, 50, s) * 3000 + 200 * s for s in range(3)]))
    y = y.float()
    for per_channel in (True, False):
        mean, std = native._image_stats(lambda rows: y[:, rows], 60, 50, per_channel)
        ref_m, ref_s = normalization_stats(y[:, None] if per_channel else y[None])
        assert mean.dtype == ref_m.dtype and mean.shape == ref_m.shape
        torch.testing.assert_close(mean, ref_m, rtol=1e-6, atol=0)
        torch.testing.assert_close(std, ref_s, rtol=1e-6, atol=0)
    const = torch.full((1, 60, 50), 1234.5)
    mean, std = native._image_stats(lambda rows: const[:, rows], 60, 50, True)
    assert float(std) == 0.0 and float(mean) == 1234.5


@pytest.mark.parametrize("key", [WNE, PLAIN])
def test_streamed_files_equal_the_in_memory_result(key: str, tmp_path: Path) -> None:
    """A memory-mapped, a tiled zlib and a zlib-strip TIFF and a .npy, streamed in 128 px
    tiles (3 × 5 of them), equal ``wne.denoise`` on the whole array in memory."""
    px = (_noisy(300, 500) * 3000 + 200).astype(np.float32)
    src = tmp_path / "in"
    src.mkdir()
    tifffile.imwrite(src / "raw.tif", px, description="scope")
    np.save(src / "arr.npy", px)
    if key == WNE:
        tifffile.imwrite(src / "tiled.tif", px, tile=(64, 64), compression="zlib")
        tifffile.imwrite(src / "strips.tif", px, rowsperstrip=24, compression="zlib")
    ref = denoise(px, key)  # one 512 px tile: the whole frame at once
    args = [str(src), "-o", str(tmp_path / "out"), "--model", key, "--stream", "always"]
    assert main([*args, "--tile", "128"]) == 0
    for f in src.iterdir():
        got = read_native(tmp_path / "out" / f.name).pixels
        assert got.dtype == px.dtype and got.shape == px.shape
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5 * 3000)
    assert read_native(tmp_path / "out/raw.tif").meta["description"] == "scope"
    out = np.empty_like(px)  # the library on a memmap, into a given array
    assert denoise(open_native(src / "raw.tif").pixels, key, tile=128, out=out) is out
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5 * 3000)


def test_uint16_colour_stack_streamed(tmp_path: Path) -> None:
    """Integers are rounded and clipped per tile; planar colour frames stream as stored."""
    px = np.stack([np.stack([_noisy(80, 96, 3 * f + c) for c in range(3)]) for f in range(2)])
    px = np.round(px * 3000 + 200).astype(np.uint16)  # [F, S, H, W]: planar RGB
    tifffile.imwrite(tmp_path / "p.tif", px, photometric="rgb", planarconfig="separate")
    out = tmp_path / "p_out.tif"
    assert main([str(tmp_path / "p.tif"), "-o", str(out), "--model", WNE, "--stream", "always",
                 "--tile", "48"]) == 0  # fmt: skip
    got, ref = read_native(out), denoise(read_native(tmp_path / "p.tif").pixels, WNE)
    assert got.meta.get("planar") and got.pixels.shape == ref.shape == (2, 80, 96, 3)
    assert np.abs(got.pixels.astype(int) - ref).max() <= 1  # rounding of equal values


def test_folder_with_a_huge_header_a_corrupt_and_a_good_file(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """A 60000 × 60000 uint16 header (7.2 GB, sparse on disk) and others: each file that
    cannot be done gets its one-line reason, the good one is written, exit status 1."""
    data = tmp_path / "data"
    data.mkdir()
    huge = tifffile.memmap(data / "huge.tif", shape=(60000, 60000), dtype=np.uint16)
    del huge  # header only: nothing written, so the file holds no blocks
    assert (data / "huge.tif").stat().st_blocks * 512 < 1 << 20
    assert inspect_native(data / "huge.tif").streamable
    (data / "corrupt.tif").write_bytes(b"II*\x00garbage")
    good = np.round(_noisy(40, 48) * 3000 + 200).astype(np.uint16)
    tifffile.imwrite(data / "good.tif", good)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (2000, 2000), dtype=np.uint8)).save(data / "big.png")
    tifffile.imwrite(  # one zlib strip: decoded whole even when streamed
        data / "onestrip.tif",
        np.zeros((2000, 2000), np.uint16),
        compression="zlib",
        rowsperstrip=2000,
    )
    code = main(
        [str(data), "--model", WNE, "--max-pixels", "1e8", "--memory-limit", "0.01", "--tile", "64"]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "huge.tif: 60000×60000 uint16 is 3600 Mpx, over --max-pixels 1e+08" in err
    assert "corrupt.tif: cannot read corrupt.tif" in err
    assert re.search(
        r"big\.png: 2000×2000 uint8 needs ~0\.0\d+ GB, 0\.01 GB available, and cannot be "
        r"streamed \(PNG is decoded whole\)",
        err,
    )
    assert re.search(r"onestrip\.tif: 2000×2000 uint16 needs ~0\.0\d+ GB even streamed", err)
    assert "4 of 5 file(s) failed" in err
    lines = [ln for ln in err.splitlines() if ln.startswith("wne denoise: ")]
    assert len(lines) == 5  # one line a file, and the summary
    out = read_native(tmp_path / "data_denoised/good.tif").pixels
    np.testing.assert_array_equal(out, denoise(good, WNE))
    assert sorted(p.name for p in (tmp_path / "data_denoised").iterdir()) == ["good.tif"]


def test_library_on_memmaps_holds_a_few_bands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``wne.denoise`` from a memmap into a memmap (4096² uint16: 32 MiB each) keeps its
    resident memory, sampled every few ms through the statistics pass and the tiles, within
    a few MB: the pages of each band and row of tiles are handed back once done."""
    psutil = pytest.importorskip("psutil")
    monkeypatch.setattr(native, "_BAND_VALUES", 1 << 18)
    n, model = 4096, make_tiny_model("dncnn-wne-tiny")
    _random_tiff(tmp_path / "in.tif", n)
    image = open_native(tmp_path / "in.tif").pixels
    out = tifffile.memmap(tmp_path / "out.tif", shape=(n, n), dtype=np.uint16)
    proc, peak, stop = psutil.Process(), [0], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.002)

    denoise(image[:64, :64], model, tile=128)  # warm: the allocator's first tiles
    start = proc.memory_info().rss
    thread = threading.Thread(target=sample)
    thread.start()
    try:
        denoise(image, model, tile=128, out=out)
    finally:
        stop.set()
        thread.join()
    assert (peak[0] - start) / 2**20 < 20, (start, peak[0])  # input + output: 64 MiB
    assert float(out[::64, ::64].mean()) > 200


def _peak_rss_kb(args: list[str], env: dict[str, str]) -> int:
    """Peak resident memory of ``python -m wne denoise ARGS`` in a fresh process (ru_maxrss
    of its own child, read by a wrapper process so that other tests' children don't count)."""
    code = (
        "import resource, subprocess, sys; "
        "rc = subprocess.run([sys.executable, '-m', 'wne', 'denoise', *sys.argv[1:]]).returncode; "
        "assert rc == 0, rc; print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return int(done.stdout.split()[-1])


@pytest.mark.slow
def test_streamed_memory_does_not_grow_with_the_image(tmp_path: Path) -> None:
    """A 4096 × 4096 uint16 TIFF streamed costs a few MB over the process's own baseline
    (python, torch, the model, one small file): far below the whole-frame path's ~270 MB
    (input, float32 copies, output)."""
    ck = save_tiny_checkpoints(tmp_path / "ck")
    env = {**os.environ, "WNE_CHECKPOINT_DIR": str(ck), "OMP_NUM_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    n = 4096
    rng = _random_tiff(tmp_path / "big.tif", n)
    tifffile.imwrite(tmp_path / "small.tif", rng.integers(200, 3200, (64, 64), dtype=np.uint16))
    common = ["--model", "dncnn-wne-tiny", "--device", "cpu", "--stream", "always"]
    base = _peak_rss_kb([str(tmp_path / "small.tif"), "-o", str(tmp_path / "s.tif"), *common], env)
    peak = _peak_rss_kb([str(tmp_path / "big.tif"), "-o", str(tmp_path / "b.tif"), *common], env)
    whole_frame = n * n * (2 + 2 + 3 * 4) // 1024  # kB: input, output, float32 copies
    assert peak - base < 100 * 1024, (base, peak)
    assert peak - base < whole_frame / 2, (base, peak, whole_frame)
    out = tifffile.memmap(tmp_path / "b.tif", mode="r")
    assert out.shape == (n, n) and out.dtype == np.uint16 and float(out[::64, ::64].mean()) > 200
