"""Checkpoint layout, verified local loading, config updates and dry-run pushes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
from conftest import TINY_CHECKPOINTS, make_tiny_model
from fakehub import FakeHub

import wne
from wne import NormEquivariant, checkpoints
from wne.checkpoints import (
    CheckpointError,
    CheckpointNotFoundError,
    ChecksumMismatchError,
    HubError,
    update_config,
)


def _rewrite_config(folder: Path, **changes: object) -> None:
    path = folder / "config.json"
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def _images(channels: int = 1) -> torch.Tensor:
    torch.manual_seed(11)
    return torch.rand(2, channels, 19, 22)


@pytest.mark.parametrize("key", sorted(TINY_CHECKPOINTS))
def test_save_load_round_trip_gives_identical_outputs(tiny_checkpoint_dir: Path, key: str) -> None:
    """load(key) rebuilds the same model (wrapper, mode, strict weights) in eval mode."""
    original = make_tiny_model(key)
    loaded = wne.load(key, root=tiny_checkpoint_dir, source="local")
    assert not loaded.training
    assert type(loaded) is type(original)
    if isinstance(original, NormEquivariant):
        assert loaded.mode == original.mode
    assert loaded.state_dict().keys() == original.state_dict().keys()
    for name, tensor in original.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    y = _images()
    with torch.no_grad():
        assert torch.equal(loaded(y), original(y))
    assert loaded.wne_config.key == key


def test_available_checkpoints_lists_saved_keys(bundled_checkpoints: Path, tmp_path: Path) -> None:
    """available_checkpoints() reads $WNE_CHECKPOINT_DIR; other roots and missing folders work."""
    assert wne.available_checkpoints() == sorted(TINY_CHECKPOINTS)
    assert wne.available_checkpoints(bundled_checkpoints) == sorted(TINY_CHECKPOINTS)
    assert wne.available_checkpoints(tmp_path / "missing") == []
    (bundled_checkpoints / "not-a-checkpoint").mkdir()
    assert "not-a-checkpoint" not in wne.available_checkpoints()
    model = wne.load("dncnn-wne-tiny")  # default root, default source "auto"
    assert isinstance(model, NormEquivariant)


def test_config_json_records_everything_needed(tiny_checkpoint_dir: Path) -> None:
    """config.json: arch, arch_kwargs, wrapper, wrapper_mode, sigma_train, the weights'
    sha256 (of the actual file), safetensors weights name; plus a model card."""
    for key, spec in TINY_CHECKPOINTS.items():
        folder = tiny_checkpoint_dir / key
        data = json.loads((folder / "config.json").read_text())
        assert data["key"] == key
        assert data["arch"] == spec["arch"]
        assert data["arch_kwargs"] == spec["arch_kwargs"]
        assert data["wrapper"] == ("wne" if spec["mode"] else "none")
        assert data["wrapper_mode"] == spec["mode"]
        assert data["sigma_train"] == 25.0
        assert data["weights"] == "model.safetensors"
        digest = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
        assert data["sha256"] == digest
        assert data["wne_version"] == wne.__version__
        card = (folder / "README.md").read_text()
        assert key in card and digest in card


def test_tuple_arch_kwargs_survive_json(tmp_path: Path) -> None:
    """arch_kwargs with tuples (swinir depths) are stored as JSON lists and load back."""
    kwargs = {"embed_dim": 8, "depths": (1, 1), "num_heads": 2, "window_size": 4}
    model = NormEquivariant(wne.models.build("swinir", **kwargs)).eval()
    cfg = wne.save(model, tmp_path / "s", key="s", arch="swinir", arch_kwargs=kwargs)
    assert cfg.arch_kwargs["depths"] == [1, 1]
    y = _images()
    with torch.no_grad():
        assert torch.equal(checkpoints.load_dir(tmp_path / "s")(y), model(y))


def test_update_config_merges_metrics_and_keeps_weights(tiny_checkpoint_dir: Path) -> None:
    """update_config merges dict fields, replaces others, never touches weights or sha256."""
    folder = tiny_checkpoint_dir / "dncnn-wne-tiny"
    weights_before = (folder / "model.safetensors").read_bytes()
    sha_before = json.loads((folder / "config.json").read_text())["sha256"]
    update_config(folder, metrics={"set12": {"25": 29.1}})
    cfg = update_config(folder, metrics={"kodak24": {"25": 30.2}}, sigma_train=15.0)
    assert cfg.metrics == {"set12": {"25": 29.1}, "kodak24": {"25": 30.2}}
    data = json.loads((folder / "config.json").read_text())
    assert data["metrics"] == cfg.metrics
    assert data["sigma_train"] == 15.0
    assert data["sha256"] == sha_before
    assert (folder / "model.safetensors").read_bytes() == weights_before
    assert "29.1" in (folder / "README.md").read_text()
    for field in ("sha256", "weights", "key", "no_such_field"):
        with pytest.raises(ValueError, match=field):
            update_config(folder, **{field: "x"})
    wne.load("dncnn-wne-tiny", root=tiny_checkpoint_dir)  # still loads (sha unchanged)


def test_push_dry_run_lists_remote_paths_and_sends_nothing(
    tiny_checkpoint_dir: Path, hub_env: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """push(dry_run=True) returns <key>/<file> paths; no request reaches the (fake) Hub;
    even a dry run verifies the weights against config.json."""
    import huggingface_hub

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("dry run must not upload")

    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", refuse)
    hub_env.requests.clear()
    folder = tiny_checkpoint_dir / "dncnn-wne-tiny"
    remote = wne.push(folder, "someone/repo", dry_run=True)
    assert sorted(remote) == [f"dncnn-wne-tiny/{n}" for n in ("README.md", "config.json",
                              "model.safetensors")]  # fmt: skip
    assert hub_env.requests == []
    _flip_byte(folder / "model.safetensors")
    with pytest.raises(ChecksumMismatchError):
        wne.push(folder, "someone/repo", dry_run=True)


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_corrupted_weights_raise_and_load_nothing(
    tiny_checkpoint_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One flipped bit → ChecksumMismatchError before safetensors reads the file."""
    calls: list[str] = []
    real = checkpoints.load_file
    monkeypatch.setattr(
        checkpoints, "load_file", lambda *a, **k: calls.append("x") or real(*a, **k)
    )
    wne.load("dncnn-wne-tiny", root=tiny_checkpoint_dir)
    assert calls == ["x"]  # the spy sees a normal load
    _flip_byte(tiny_checkpoint_dir / "dncnn-wne-tiny" / "model.safetensors")
    with pytest.raises(ChecksumMismatchError, match="sha256"):
        wne.load("dncnn-wne-tiny", root=tiny_checkpoint_dir)
    assert calls == ["x"]


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"arch": "unet9000"}, "unknown architecture"),
        ({"weights": "pytorch_model.bin"}, "refusing"),
        ({"weights": "../other/model.safetensors"}, "refusing"),
        ({"wrapper": "magic"}, "wrapper"),
        ({"wrapper_mode": "sideways"}, "wrapper_mode"),
        ({"arch_kwargs": {"depth": 3, "width": 8, "colour": True}}, "arch_kwargs"),
        ({"arch_kwargs": {"depth": 1, "width": 8}}, "arch_kwargs"),
        ({"arch_kwargs": [3, 8]}, "arch_kwargs"),
        ({"arch_kwargs": {"depth": 4, "width": 8}}, "do not fit"),
        ({"sha256": "abc"}, "sha256"),
    ],
)
def test_invalid_configs_are_refused(tiny_checkpoint_dir: Path, changes: dict, match: str) -> None:
    """Bad config.json content → CheckpointError with a clear message (never a crash)."""
    _rewrite_config(tiny_checkpoint_dir / "dncnn-wne-tiny", **changes)
    with pytest.raises(CheckpointError, match=match):
        wne.load("dncnn-wne-tiny", root=tiny_checkpoint_dir)


def test_config_that_is_not_json_or_lacks_fields(tiny_checkpoint_dir: Path) -> None:
    """Garbage or incomplete config.json → CheckpointError."""
    path = tiny_checkpoint_dir / "dncnn-wne-tiny" / "config.json"
    path.write_text("{not json")
    with pytest.raises(CheckpointError, match="JSON"):
        wne.load("dncnn-wne-tiny", root=tiny_checkpoint_dir)
    path.write_text(json.dumps({"key": "dncnn-wne-tiny", "arch": "dncnn"}))
    with pytest.raises(CheckpointError, match="sha256"):
        wne.load("dncnn-wne-tiny", root=tiny_checkpoint_dir)


def test_missing_checkpoint_or_weights(tiny_checkpoint_dir: Path) -> None:
    """Unknown key or deleted weights → CheckpointNotFoundError (also a FileNotFoundError)."""
    with pytest.raises(CheckpointNotFoundError):
        wne.load("no-such-model", root=tiny_checkpoint_dir, source="local")
    with pytest.raises(CheckpointNotFoundError, match="WNE_HUB_REPO"):
        wne.load("no-such-model", root=tiny_checkpoint_dir)  # auto, no Hub repo configured
    (tiny_checkpoint_dir / "dncnn-wne-tiny" / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError):
        wne.load("dncnn-wne-tiny", root=tiny_checkpoint_dir)


@pytest.mark.parametrize("key", ["../etc", "..", "a/b", "Upper", "", "-x", "x" * 101, "a b"])
def test_invalid_keys_are_value_errors(tmp_path: Path, key: str) -> None:
    """Keys that could escape the folder or are not slugs → ValueError (load and save)."""
    with pytest.raises(ValueError, match="invalid model key"):
        wne.load(key, root=tmp_path)
    with pytest.raises(ValueError, match="invalid model key"):
        wne.save(make_tiny_model("dncnn-wne-tiny"), tmp_path / "x", key=key, arch="dncnn")
    assert not (tmp_path / "x").exists()


def test_bad_source_and_hub_without_repo(tiny_checkpoint_dir: Path) -> None:
    """source must be auto/local/hub; source='hub' needs a repo."""
    with pytest.raises(ValueError, match="source"):
        wne.load("dncnn-wne-tiny", root=tiny_checkpoint_dir, source="web")  # type: ignore[arg-type]
    with pytest.raises(HubError, match="repo"):
        wne.load("dncnn-wne-tiny", root=tiny_checkpoint_dir, source="hub", fallback=False)


def test_save_refuses_what_load_could_not_rebuild(tmp_path: Path) -> None:
    """save() checks arch, arch_kwargs against the model's tensors, and JSON-ability,
    before writing anything."""
    model = NormEquivariant(wne.models.build("dncnn", depth=3, width=8))
    with pytest.raises(ValueError, match="unknown architecture"):
        wne.save(model, tmp_path / "a", key="a", arch="unet9000")
    with pytest.raises(ValueError, match="do not match"):
        wne.save(model, tmp_path / "a", key="a", arch="dncnn")  # default depth 12 ≠ 3
    with pytest.raises(ValueError, match="do not match"):
        wne.save(
            model, tmp_path / "a", key="a", arch="fdncnn", arch_kwargs={"depth": 3, "width": 8}
        )
    with pytest.raises(ValueError, match="JSON"):
        wne.save(
            model, tmp_path / "a", key="a", arch="dncnn", arch_kwargs={"depth": 3, "width": 8},
            metrics={"psnr": torch.tensor(1.0)},
        )  # fmt: skip
    assert not (tmp_path / "a").exists()


def test_plain_and_residual_checkpoints_keep_their_wrapper(tmp_path: Path) -> None:
    """wrapper 'none' loads a bare backbone; a residual WNE keeps mode='residual'."""
    torch.manual_seed(12)
    plain = wne.models.build("fdncnn_ne", depth=3, width=4).eval()
    wne.save(plain, tmp_path / "p", key="p", arch="fdncnn_ne", arch_kwargs={"depth": 3, "width": 4})
    loaded = checkpoints.load_dir(tmp_path / "p")
    assert not isinstance(loaded, NormEquivariant)
    assert loaded.wne_config.wrapper == "none" and loaded.wne_config.wrapper_mode is None
    y = _images()
    with torch.no_grad():
        assert torch.equal(loaded(y), plain(y))


@pytest.mark.parametrize("change", ["drop", "extra"])
def test_weights_must_match_the_architecture_exactly(
    tiny_checkpoint_dir: Path, change: str
) -> None:
    """Strict loading: a missing or an unexpected tensor (with a valid sha256) is refused."""
    from safetensors.torch import load_file, save_file

    folder = tiny_checkpoint_dir / "dncnn-wne-tiny"
    state = load_file(str(folder / "model.safetensors"))
    if change == "drop":
        state.pop(sorted(state)[0])
    else:
        state["extra.weight"] = torch.zeros(3)
    save_file(state, str(folder / "model.safetensors"))
    _rewrite_config(folder, sha256=checkpoints.sha256_file(folder / "model.safetensors"))
    with pytest.raises(CheckpointError, match="do not fit"):
        wne.load("dncnn-wne-tiny", root=tiny_checkpoint_dir)


def test_save_does_not_consume_the_global_rng(tmp_path: Path) -> None:
    """save() (which builds a reference model to check shapes) leaves torch's RNG as it was."""
    model = make_tiny_model("swinir-wne-tiny")
    spec = TINY_CHECKPOINTS["swinir-wne-tiny"]
    torch.manual_seed(5)
    expected = torch.rand(4)
    torch.manual_seed(5)
    wne.save(model, tmp_path / "s", key="s", arch=spec["arch"], arch_kwargs=spec["arch_kwargs"])
    assert torch.equal(torch.rand(4), expected)
