"""Reliability: a bad-input corpus, concurrent identical requests, and Hub faults.

- The corpus of :mod:`badinputs` (≥ 25 unusual files and bad API arguments) goes
  through the live app (``gradio_client`` on loopback, the app served once for the
  session by :mod:`app_fixtures`). Every case must end in an ``AppError`` whose
  message matches the case, or in a correct result (the image read as the case
  expects, the same PNGs as the page function computed here). After the whole corpus
  the server still answers a normal request exactly like the page function.
- Concurrent clients sending the same request all get complete answers; the API's
  output images are files written once and only ever complete (and the Gradio
  behaviour that makes this necessary is checked, so the workaround goes when Gradio
  fixes it).
- The app's model loading (:meth:`Zoo.discover`) with ``WNE_HUB_REPO`` pointing
  at a dead, slow, missing or corrupt loopback fake Hub keeps the bundled models,
  never loads unverified weights or unpickles anything, and the app still serves.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from app_fixtures import PARROTS, make_demo_checkpoints, save_demo_checkpoint
from badinputs import BASE_ARGS, Case, build_corpus
from conftest import HUB_REPO
from fakehub import FakeHub
from PIL import Image

import app
import wne
from wne.demo import Zoo
from wne.demo.imaging import load_image
from wne.demo.pages import compare
from wne.demo.pages.equivariance import Probe

PROBE = tuple(Probe.__dataclass_fields__)
"""``/equivariance``'s parameters after the image (the page's settings)."""
pytest_plugins = ["app_fixtures"]  # the session's served app (`served`)

pytestmark = [
    pytest.mark.slow,  # starts the app; the corpus is ~70 requests
    pytest.mark.filterwarnings("ignore::DeprecationWarning:gradio.queueing"),
    pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning"),
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[Case]:
    return build_corpus(tmp_path_factory.mktemp("badinputs"))


def _direct(zoo: Zoo, image: Any, **args: Any) -> tuple[Any, ...]:
    """``/denoise``'s values computed here with the page function (no server, no cache)."""
    v = {**BASE_ARGS, **args}  # valid cases may send numbers as text
    v.update({k: float(v[k]) for k in ("a", "b", "sigma", "photons", "read_noise")})
    v.update({k: int(float(v[k])) for k in ("seed", "sigma_train", "max_side", "quality")})
    v["clip"] = str(v["clip"]).lower() in ("true", "1")
    scene = compare.Scene(**{**v, "backbones": tuple(v["backbones"])})
    loaded = load_image(image, max_side=scene.max_side)  # 16-bit and float: shown stretched
    res = list(compare.run(zoo, loaded.pixels, scene))[-1]
    return (res, *compare.outputs(res, [], loaded.native))


def _check_result(case: Case, clean: np.ndarray) -> list[str]:
    """Why the working-size image ``clean`` is not what ``case`` expects (empty: it is)."""
    problems = []
    if case.expected is not None:
        if clean.shape != case.expected.shape:
            return [f"shape {clean.shape}, expected {case.expected.shape}"]
        diff = np.abs(clean.astype(np.float64) - case.expected)
        if diff.max() > case.atol or diff.mean() > case.mean_atol:
            problems.append(f"pixels differ: max {diff.max():.3g}, mean {diff.mean():.3g}")
    if case.expected_shape is not None and clean.shape != case.expected_shape:
        problems.append(f"shape {clean.shape}, expected {case.expected_shape}")
    if case.expected_mean is not None and abs(float(clean.mean()) - case.expected_mean) > 0.02:
        problems.append(f"mean {clean.mean():.4f}, expected {case.expected_mean:.4f}")
    return problems


@pytest.fixture(scope="module")
def direct_outcomes(served: tuple[Any, Any], corpus: list[Case]) -> dict[str, Any]:
    """Each valid case through the page function, once (what the live app must return)."""
    server, _ = served
    return {
        c.name: _direct(server.zoo, str(c.path), **c.request) for c in corpus if c.error is None
    }


def _raw_api_call(url: str, endpoint: str, data_json: str) -> tuple[str, str]:
    """Calls ``/gradio_api/call/<endpoint>`` with a hand-written JSON body (which may hold
    ``NaN``, which gradio_client refuses to send); returns (SSE event, data)."""
    import httpx

    base = url.rstrip("/")
    with httpx.Client(timeout=60) as http:
        r = http.post(
            f"{base}/gradio_api/call{endpoint}",
            content=data_json,
            headers={"Content-Type": "application/json"},
        )
        r.raise_for_status()
        event_id = r.json()["event_id"]
        text = http.get(f"{base}/gradio_api/call{endpoint}/{event_id}").text
    events = re.findall(r"event: (\w+)\ndata: (.*)", text)
    return events[-1] if events else ("", text)


def _upload(url: str, path: Path) -> dict[str, Any]:
    import httpx

    r = httpx.post(
        f"{url.rstrip('/')}/gradio_api/upload",
        files=[("files", (path.name, path.read_bytes()))],
        timeout=60,
    )
    r.raise_for_status()
    return {"path": r.json()[0], "meta": {"_type": "gradio.FileData"}}


def _png_pixels(path: str) -> np.ndarray:
    with Image.open(path) as im:
        assert im.format == "PNG"
        return np.asarray(im)


def _client_call(client: Any, case: Case) -> Any:
    from gradio_client import handle_file

    image = handle_file(str(case.path)) if case.path is not None else None
    args = case.request
    if case.endpoint == "/equivariance":
        return client.predict(
            image, *(args.get(k, "dncnn") for k in PROBE), api_name="/equivariance"
        )
    return client.predict(image, *args.values(), api_name="/denoise")


def _live_outcome(client: Any, case: Case) -> tuple[str, Any]:
    """Sends one case to the live app: ``("ok", outputs)``, ``("error", message)`` for an
    error reported by the app, or ``("failure", exception)`` for anything else."""
    from gradio_client.exceptions import AppError

    try:
        if any(isinstance(v, float) and np.isnan(v) for v in case.args.values()):
            assert case.path is not None
            values = [_upload(client.src, case.path), *case.request.values()]
            body = json.dumps({"data": values}, allow_nan=True)
            assert "NaN" in body
            event, data = _raw_api_call(client.src, "/denoise", body)
            if event == "error":
                return "error", str(json.loads(data).get("error", data))
            return "failure", (event, data)
        return "ok", _client_call(client, case)
    except AppError as exc:
        return "error", str(exc)
    except Exception as exc:
        return "failure", exc


def test_corpus_through_the_live_app(
    served: tuple[Any, Any], corpus: list[Case], direct_outcomes: dict[str, Any], subtests
) -> None:
    """Each case through gradio_client: an AppError carrying the same clear message, or the
    same PNG as the page function's result. NaN, which gradio_client cannot encode, is sent as a
    literal ``NaN`` in a hand-written JSON body. Four clients send the cases concurrently
    (well below the queue's max_size). Afterwards the server answers a normal request
    exactly like the page function."""
    from gradio_client import Client

    server, client = served
    clients = [Client(client.src, verbose=False, httpx_kwargs={"timeout": 120}) for _ in range(4)]
    groups = [list(enumerate(corpus))[i :: len(clients)] for i in range(len(clients))]

    def send(i: int) -> list[tuple[int, tuple[str, Any]]]:
        return [(k, _live_outcome(clients[i], case)) for k, case in groups[i]]

    results: dict[int, tuple[str, Any]] = {}
    with ThreadPoolExecutor(len(clients)) as pool:
        for part in pool.map(send, range(len(clients))):
            results.update(part)
    outcomes = [results[k] for k in range(len(corpus))]
    for case, (kind, value) in zip(corpus, outcomes, strict=True):
        with subtests.test(msg=case.name):
            assert kind != "failure", value
            if case.error is not None:
                assert kind == "error" and re.search(case.error, value), value
                continue
            assert kind == "ok", value
            noisy, target, gallery, summary = value
            res, exp_noisy, exp_target, exp_gallery, _ = direct_outcomes[case.name]
            assert _check_result(case, res.target) == []  # a = 1, b = 0: the image as read
            np.testing.assert_array_equal(_png_pixels(target), exp_target)
            np.testing.assert_array_equal(_png_pixels(noisy), exp_noisy)
            h, w, c = res.noisy.shape
            assert summary["image"] == {"width": w, "height": h, "channels": c}
            # two outputs, and without added noise (no reference) their two method noises
            assert len(gallery) == len(exp_gallery) == (2 if res.reference else 4)
    with subtests.test(msg="a normal request after the corpus"):
        from gradio_client import handle_file

        args = {**BASE_ARGS, "a": 0.5, "b": 0.2, "backbones": ["dncnn", "swinir"]}
        _, target, gallery, summary = client.predict(
            handle_file(str(PARROTS)), *args.values(), api_name="/denoise"
        )
        _, _, exp_target, exp_gallery, _ = _direct(server.zoo, str(PARROTS), **args)
        np.testing.assert_array_equal(_png_pixels(target), exp_target)
        for item, (expected, caption) in zip(gallery, exp_gallery, strict=True):
            np.testing.assert_array_equal(_png_pixels(item["image"]), expected)
            # Same model, PSNR and SSIM; only the timing at the end differs.
            assert item["caption"].rsplit(" · ", 1)[0] == caption.rsplit(" · ", 1)[0]
        assert summary["settings"]["a"] == 0.5 and len(summary["models"]) == 4


def test_concurrent_identical_requests_all_get_complete_answers(
    served: tuple[Any, Any], tmp_path: Path
) -> None:
    """6 clients send the same request twice at once (a classroom clicking the same example):
    every answer arrives complete and identical (identical outputs share one cache file, which
    must never be served half-written)."""
    from gradio_client import Client, handle_file

    _, client = served
    image = tmp_path / "same.png"
    rng = np.random.default_rng(5)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(image)
    args = {**BASE_ARGS, "backbones": ["dncnn", "swinir"]}

    def user(_: int) -> list[bytes]:
        c = Client(client.src, verbose=False)
        out = []
        for _ in range(2):
            noisy, target, gallery, _summary = c.predict(
                handle_file(str(image)), *args.values(), api_name="/denoise"
            )
            out.append(
                b"".join(
                    Path(p).read_bytes() for p in [noisy, target, *(g["image"] for g in gallery)]
                )
            )
        return out

    with ThreadPoolExecutor(6) as pool:
        answers = [a for user_answers in pool.map(user, range(6)) for a in user_answers]
    assert len(answers) == 12 and len(set(answers)) == 1


# --------------------------------------------------------------------------- Hub faults


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled models: tiny demo checkpoints (σ 25 and dncnn-plain-s10), no broken ones."""
    return make_demo_checkpoints(tmp_path_factory.mktemp("bundled"), broken=False)


@pytest.fixture(scope="module")
def hub_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Valid checkpoints of σ = 50 keys (missing locally) to serve from the fake Hub."""
    root = tmp_path_factory.mktemp("hub_models")
    slots = (("dncnn", "plain"), ("dncnn", "wne"), ("swinir", "plain"))
    for i, (family, variant) in enumerate(slots):
        save_demo_checkpoint(root, family, variant, 50, seed=50 + i)
    return root


class _Marker:
    """Unpickling this creates a file: proof that a pickle was executed."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple:
        return (Path.touch, (self.path,))


def _serve(hub: FakeHub, folder: Path) -> None:
    for f in folder.iterdir():
        hub.put(HUB_REPO, f"{folder.name}/{f.name}", f.read_bytes())


def _gets(hub: FakeHub, key: str) -> list[str]:
    return [p for p in hub.paths_requested("GET") if f"/{key}/" in p]


def _same_outputs(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    y = torch.rand(1, 1, 24, 24, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():  # the zoo runs CNNs as frozen graphs (wne.fast): equal to round-off
        return bool((a(y) - b(y)).abs().max() <= 1e-5)


def test_app_models_with_a_corrupt_hub(
    hub_env: FakeHub, demo_root: Path, hub_models: Path, tmp_path: Path
) -> None:
    """WNE_HUB_REPO serving σ = 50 keys: a valid one (loaded, verified), tampered weights,
    an unknown architecture and a pickle. Only the valid one loads; the others are reported
    with their reason, nothing is unpickled, the bundled keys never touch the Hub, and the
    app serves every slot it can."""
    marker = tmp_path / "unpickled"
    payload = pickle.dumps(_Marker(marker))
    for key in ("dncnn-plain-s50", "dncnn-wne-s50"):
        _serve(hub_env, hub_models / key)
    hub_env.serve_wrong_bytes(HUB_REPO, "dncnn-wne-s50/model.safetensors")
    unknown = json.loads((hub_models / "swinir-plain-s50" / "config.json").read_text())
    unknown["arch"] = "unet9000"
    hub_env.put(HUB_REPO, "swinir-plain-s50/config.json", json.dumps(unknown).encode())
    hub_env.put(HUB_REPO, "swinir-plain-s50/model.safetensors", b"unused")
    pickled = {
        "key": "swinir-wne-s50",
        "arch": "swinir",
        "arch_kwargs": unknown["arch_kwargs"],
        "wrapper": "wne",
        "weights": "pytorch_model.bin",
        "sha256": hashlib.sha256(payload).hexdigest(),
    }
    hub_env.put(HUB_REPO, "swinir-wne-s50/config.json", json.dumps(pickled).encode())
    hub_env.put(HUB_REPO, "swinir-wne-s50/pytorch_model.bin", payload)

    zoo = Zoo.discover(demo_root, device="cpu", hub_repo=HUB_REPO)

    local = set(wne.available_checkpoints(demo_root))
    assert set(zoo.models) | set(zoo.rivals) == local | {"dncnn-plain-s50"}
    assert _same_outputs(
        zoo.models["dncnn-plain-s50"], wne.checkpoints.load_dir(hub_models / "dncnn-plain-s50")
    )
    assert "sha256" in zoo.errors["dncnn-wne-s50"]
    assert "unknown architecture 'unet9000'" in zoo.errors["swinir-plain-s50"]
    assert "refusing weights file 'pytorch_model.bin'" in zoo.errors["swinir-wne-s50"]
    assert not marker.exists()
    assert _gets(hub_env, "swinir-wne-s50") == [
        f"/{HUB_REPO}/resolve/main/swinir-wne-s50/config.json"
    ]
    assert _gets(hub_env, "swinir-plain-s50") == [
        f"/{HUB_REPO}/resolve/main/swinir-plain-s50/config.json"
    ]
    assert not any(_gets(hub_env, k) for k in local)  # bundled copies are used as they are

    *_, gallery, summary = _direct(zoo, str(PARROTS), sigma_train=50, backbones=["dncnn", "swinir"])
    assert [caption.split(" · PSNR")[0] for _, caption in gallery] == ["CNN · plain"]
    models = summary["models"]
    assert "sha256" in models["dncnn-wne-s50"]["message"]
    assert "unknown architecture" in models["swinir-plain-s50"]["message"]
    assert "pytorch_model.bin" in models["swinir-wne-s50"]["message"]


@pytest.fixture
def short_hub_timeout(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The app asks the Hub with a 10 s timeout; 1 s here keeps the slow-Hub test short."""
    real = wne.load
    monkeypatch.setattr(wne, "load", lambda *a, **k: real(*a, **{**k, "timeout": 1.0}))
    yield


@pytest.mark.parametrize("fault", ["down", "repo-404", "revision-404", "slow"])
def test_app_models_survive_an_unusable_hub(
    fault: str,
    hub_env: FakeHub,
    demo_root: Path,
    monkeypatch: pytest.MonkeyPatch,
    short_hub_timeout: None,
) -> None:
    """Hub stopped, unknown repo, unknown revision, or answering after 3 s (timeout 1 s): the
    app keeps exactly its bundled models, stops asking the Hub after the first failure
    (start-up stays bounded), and serves."""
    repo = HUB_REPO
    if fault == "down":
        hub_env.stop()
    elif fault == "repo-404":
        repo = "nobody/nothing"
    elif fault == "revision-404":
        monkeypatch.setenv("WNE_HUB_REVISION", "v9")
    else:
        hub_env.delay = 3.0
    hub_env.requests.clear()

    zoo = Zoo.discover(demo_root, device="cpu", hub_repo=repo)

    assert set(zoo.models) | set(zoo.rivals) == set(wne.available_checkpoints(demo_root))
    assert zoo.errors == {}
    assert len(hub_env.requests) <= 2  # one probe (HEAD), at most one download attempt
    assert len(_direct(zoo, str(PARROTS))[3]) == 2


def test_gradio_still_rewrites_cached_output_images_in_place(tmp_path: Path) -> None:
    """Why app.py writes the API's PNGs (:func:`app.save_png`): Gradio 6.31 saves an
    image returned as an array under a content-hash name and rewrites that file in place on
    every request, so a client downloading an identical earlier output can read it
    half-written. When this test fails, Gradio writes atomically (or keeps the existing
    file): the demo may return arrays again."""
    from gradio import processing_utils

    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    path = Path(processing_utils.save_pil_to_cache(img, str(tmp_path), format="png"))
    data, inode = path.read_bytes(), path.stat().st_ino
    path.write_bytes(b"\0" * len(data))  # what a reader sees while a rewrite is under way
    again = Path(processing_utils.save_pil_to_cache(img, str(tmp_path), format="png"))
    assert again == path
    assert again.stat().st_ino == inode and again.read_bytes() == data, (
        "Gradio no longer rewrites cached images in place: app.save_png can go"
    )


def test_output_files_are_never_readable_half_written(tmp_path: Path) -> None:
    """Eight threads write the same new images at once: every returned path holds the
    complete PNG when read, and no temporary file is left behind."""
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, (128, 128, 3), dtype=np.uint8) for _ in range(6)]
    barrier = threading.Barrier(8)

    def write(_: int) -> list[tuple[str, bytes]]:
        barrier.wait()
        out = []
        for img in images:
            path = app.save_png(img, tmp_path)
            out.append((path, Path(path).read_bytes()))
        return out

    with ThreadPoolExecutor(8) as pool:
        results = [r for part in pool.map(write, range(8)) for r in part]
    by_path: dict[str, set[bytes]] = {}
    for path, data in results:
        by_path.setdefault(path, set()).add(data)
    assert len(by_path) == len(images) and all(len(v) == 1 for v in by_path.values())
    for datas, img in zip(by_path.values(), images, strict=True):
        with Image.open(io.BytesIO(next(iter(datas)))) as im:
            np.testing.assert_array_equal(np.asarray(im), img)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(Path(p).name for p in by_path)


def test_the_app_serves_its_own_complete_output_files(served: tuple[Any, Any]) -> None:
    """The API's outputs are the demo's own files (written by app.save_png inside Gradio's
    upload folder and served as they are), not arrays Gradio would write itself."""
    _, client = served
    args = {**BASE_ARGS, "backbones": ["dncnn"]}
    uploaded = _upload(client.src, PARROTS)
    event, data = _raw_api_call(
        client.src, "/denoise", json.dumps({"data": [uploaded, *args.values()]})
    )
    assert event == "complete", data[:300]
    noisy, target, gallery, _ = json.loads(data)
    paths = [noisy["path"], target["path"], *(g["image"]["path"] for g in gallery)]
    assert all("/wne-outputs/" in p and p.endswith(".png") for p in paths), paths


def test_the_server_caps_malloc_arenas(monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo caps glibc arenas and trims the heap (bounded RSS), respects the env var."""
    import platform

    from wne.demo.process import limit_malloc_arenas, trim_heap

    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas(2) is False  # glibc already applied the user's value
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    if platform.libc_ver()[0] == "glibc":
        assert limit_malloc_arenas(8) is True  # 8 = glibc's own per-core scale: harmless here
        assert trim_heap() is True
