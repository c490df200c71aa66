"""Loading checkpoints through a loopback fake Hugging Face Hub (real HTTP, real client).

The fake (tests/fakehub.py) is a stdlib HTTP server speaking the Hub's file protocol;
``huggingface_hub`` itself is not mocked: the ``hub_env`` fixture only points its
endpoint and cache at the fake and a temporary folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import HUB_REPO, make_tiny_model
from fakehub import FakeHub, PickleMarker
from safetensors.torch import save_file

import wne
from wne.checkpoints import (
    CheckpointError,
    CheckpointNotFoundError,
    ChecksumMismatchError,
    HubError,
)

KEY = "dncnn-wne-tiny"


def _outputs_match(model: torch.nn.Module, key: str = KEY, seed: int = 0) -> bool:
    torch.manual_seed(21)
    y = torch.rand(2, 1, 17, 19)
    with torch.no_grad():
        return torch.equal(model(y), make_tiny_model(key, seed)(y))


def _weights_gets(hub: FakeHub, key: str = KEY, name: str = "model.safetensors") -> int:
    return sum(p.endswith(f"/{key}/{name}") for p in hub.paths_requested("GET"))


# --- loading through the Hub --------------------------------------------------------------


def test_load_from_hub_matches_the_saved_model(hub_env: FakeHub, tmp_path: Path) -> None:
    """source='hub' downloads config + weights (verified) and reproduces the saved model,
    at 'main' and at the pinned commit."""
    empty = tmp_path / "no-bundled-copy"
    model = wne.load(KEY, source="hub", repo=HUB_REPO, revision="main", root=empty)
    assert _outputs_match(model)
    assert model.wne_config.key == KEY
    assert _weights_gets(hub_env) == 1
    commit = hub_env.commit(HUB_REPO)
    pinned = wne.load("swinir-wne-tiny", source="hub", repo=HUB_REPO, revision=commit, root=empty)
    assert _outputs_match(pinned, "swinir-wne-tiny")


def test_pinned_revision_loads_from_cache_when_hub_is_down(
    hub_env: FakeHub, tmp_path: Path
) -> None:
    """Once cached, a pinned commit loads with the Hub stopped (no bundled copy needed)."""
    empty = tmp_path / "none"
    commit = hub_env.commit(HUB_REPO)
    wne.load(KEY, source="hub", repo=HUB_REPO, revision=commit, root=empty)
    hub_env.stop()
    model = wne.load(KEY, source="hub", repo=HUB_REPO, revision=commit, root=empty, timeout=1)
    assert _outputs_match(model)


def test_auto_with_local_copy_never_touches_the_hub(
    hub_env: FakeHub, bundled_checkpoints: Path
) -> None:
    """source='auto' (the default) uses the bundled copy: zero requests to the Hub."""
    hub_env.requests.clear()
    model = wne.load(KEY, repo=HUB_REPO)
    assert _outputs_match(model)
    assert hub_env.requests == []


def test_auto_without_local_copy_uses_the_hub(
    hub_env: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """source='auto' falls through to the Hub repo named by $WNE_HUB_REPO."""
    monkeypatch.setenv("WNE_HUB_REPO", HUB_REPO)
    model = wne.load(KEY, root=tmp_path / "none")
    assert _outputs_match(model)
    assert _weights_gets(hub_env) == 1


def test_hub_down_falls_back_to_bundled_copy(
    hub_env: FakeHub, bundled_checkpoints: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Hub stopped + bundled copy: source='hub' loads the bundled copy with a warning."""
    hub_env.stop()
    with caplog.at_level(logging.WARNING, logger="wne.checkpoints"):
        model = wne.load(KEY, source="hub", repo=HUB_REPO, fallback=True, timeout=1)
    assert _outputs_match(model)
    assert any("bundled copy" in r.getMessage() for r in caplog.records)
    with pytest.raises(HubError, match="unreachable"):
        wne.load(KEY, source="hub", repo=HUB_REPO, fallback=False, timeout=1)


def test_hub_down_without_bundled_copy_is_a_clear_hub_error(
    hub_env: FakeHub, tmp_path: Path
) -> None:
    """Hub stopped, nothing bundled or cached → HubError saying the Hub is unreachable."""
    hub_env.stop()
    with pytest.raises(HubError, match="unreachable") as info:
        wne.load(KEY, source="hub", repo=HUB_REPO, root=tmp_path / "none", timeout=1)
    assert KEY in str(info.value)


def test_slow_hub_times_out_into_error_or_fallback(
    hub_env: FakeHub, tmp_path: Path, bundled_checkpoints: Path
) -> None:
    """A Hub that answers after 3 s with timeout=1 s: HubError without a bundled copy,
    the bundled copy with one (no minutes-long retries)."""
    hub_env.delay = 3.0
    with pytest.raises(HubError, match="unreachable"):
        wne.load(KEY, source="hub", repo=HUB_REPO, root=tmp_path / "none", timeout=1)
    model = wne.load(KEY, source="hub", repo=HUB_REPO, fallback=True, timeout=1)
    assert _outputs_match(model)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"repo": "nobody/nothing"}, HubError, "repo 'nobody/nothing' not found"),
        ({"repo": HUB_REPO, "revision": "v9"}, HubError, "revision 'v9' not found"),
        ({"repo": HUB_REPO, "key": "not-on-the-hub"}, CheckpointNotFoundError, "not found"),
    ],
)
def test_hub_404s_are_clear_errors(
    hub_env: FakeHub, tmp_path: Path, kwargs: dict, error: type, match: str
) -> None:
    """Unknown repo / revision / file → HubError or CheckpointNotFoundError naming it."""
    key = kwargs.pop("key", KEY)
    with pytest.raises(error, match=match):
        wne.load(key, source="hub", root=tmp_path / "none", **kwargs)


def test_wrong_bytes_are_refused_and_fallback_uses_verified_copy(
    hub_env: FakeHub, bundled_checkpoints: Path, tmp_path: Path
) -> None:
    """The Hub serves a *valid* safetensors of other weights under the recorded sha256:
    ChecksumMismatchError without a bundled copy; with one, the bundled (original)
    weights load, never the served ones."""
    other = tmp_path / "other.safetensors"
    save_file(make_tiny_model(KEY, seed=1).backbone.state_dict(), str(other))
    hub_env.serve_wrong_bytes(HUB_REPO, f"{KEY}/model.safetensors", other.read_bytes())
    with pytest.raises(ChecksumMismatchError):
        wne.load(KEY, source="hub", repo=HUB_REPO, root=tmp_path / "none")
    model = wne.load(KEY, source="hub", repo=HUB_REPO, fallback=True)
    assert _weights_gets(hub_env) >= 1
    assert _outputs_match(model, seed=0)
    assert not _outputs_match(model, seed=1)


def _put_config(hub: FakeHub, folder: str, payload: bytes, **fields: object) -> None:
    """Serves ``<folder>/config.json`` (dncnn 3×8 WNE unless overridden) and the payload
    under the weights name it records, with the payload's sha256."""
    config = dict(key=folder, arch="dncnn", arch_kwargs={"depth": 3, "width": 8}, wrapper="wne")
    config |= dict(sha256=hashlib.sha256(payload).hexdigest(), weights="model.safetensors")
    config |= fields
    hub.put(HUB_REPO, f"{folder}/config.json", json.dumps(config).encode())
    hub.put(HUB_REPO, f"{folder}/{config['weights']}", payload)


def test_hub_config_with_unknown_architecture(hub_env: FakeHub, tmp_path: Path) -> None:
    """config.json naming an architecture this library lacks → CheckpointError, and the
    weights are not even downloaded."""
    _put_config(hub_env, "future-net", b"weights of a future architecture", arch="unet9000")
    with pytest.raises(CheckpointError, match="unknown architecture 'unet9000'"):
        wne.load("future-net", source="hub", repo=HUB_REPO, root=tmp_path / "none")
    assert _weights_gets(hub_env, "future-net") == 0


def test_hub_config_key_must_match(hub_env: FakeHub, tmp_path: Path) -> None:
    """A config.json that names another key is refused."""
    _put_config(hub_env, "alias", hub_env.served(HUB_REPO, f"{KEY}/model.safetensors"), key=KEY)
    with pytest.raises(CheckpointError, match="names key"):
        wne.load("alias", source="hub", repo=HUB_REPO, root=tmp_path / "none")


def test_pytorch_model_bin_is_refused_without_unpickling(hub_env: FakeHub, tmp_path: Path) -> None:
    """A repo offering only pytorch_model.bin (config weights = that file) is refused; the
    pickle is never downloaded nor unpickled (its marker file never appears, though
    unpickling it does create one: the control)."""
    pickle.loads(pickle.dumps(PickleMarker(tmp_path / "control")))
    assert (tmp_path / "control").exists()
    marker = tmp_path / "unpickled-marker"
    payload = pickle.dumps(PickleMarker(marker))
    _put_config(hub_env, "pickled-net", payload, weights="pytorch_model.bin")
    with pytest.raises(CheckpointError, match="refusing"):
        wne.load("pickled-net", source="hub", repo=HUB_REPO, root=tmp_path / "none")
    assert not marker.exists()
    assert _weights_gets(hub_env, "pickled-net", "pytorch_model.bin") == 0


@pytest.mark.slow
def test_hf_endpoint_environment_in_a_fresh_process(
    fake_hub: FakeHub, hub_subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    """A fresh interpreter with HF_ENDPOINT set (no patching) loads through the fake Hub."""
    code = (
        "import sys, torch, wne\n"
        f"m = wne.load({KEY!r}, source='hub', repo={HUB_REPO!r}, root=sys.argv[1])\n"
        "torch.manual_seed(21)\n"
        "y = torch.rand(2, 1, 17, 19)\n"
        "print(float(m(y).double().sum()))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "none")],
        env=hub_subprocess_env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    torch.manual_seed(21)
    y = torch.rand(2, 1, 17, 19)
    with torch.no_grad():
        expected = float(make_tiny_model(KEY)(y).double().sum())
    assert float(result.stdout.strip().splitlines()[-1]) == pytest.approx(expected, rel=1e-6)
    assert _weights_gets(fake_hub) == 1
