"""Checkpoints: ``<root>/<key>/`` holds ``config.json`` (:class:`ModelConfig`),
``model.safetensors`` (the backbone's state dict) and ``README.md`` (a model card), locally
or at the top of one Hugging Face Hub model repo. Weights are read with ``safetensors``
only, after their sha256 matches ``config.json``'s; pickles are never loaded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from wne import models
from wne.settings import EnvSettings
from wne.wrapper import InputNormalized, NormEquivariant

__all__ = [
    "WRAPPERS",
    "CheckpointError",
    "CheckpointNotFoundError",
    "ChecksumMismatchError",
    "HubError",
    "ModelConfig",
    "available_checkpoints",
    "build_from_config",
    "default_root",
    "load",
    "load_dir",
    "push",
    "read_config",
    "save",
    "sha256_file",
    "update_config",
]

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
_KEY_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
WRAPPERS: tuple[str, ...] = ("none", "wne", "input")
"""``config.json``'s ``wrapper``: ``none`` (the bare backbone), ``wne``
(:class:`~wne.NormEquivariant`), ``input`` (:class:`~wne.wrapper.InputNormalized`, the
input-only rival)."""
_OPTIONAL = ("sigma_range", "augment")
"""Fields written only when set (a config without them reads as before they existed)."""
Source = Literal["auto", "local", "hub"]


class CheckpointError(RuntimeError):
    """A checkpoint could not be loaded or written."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """No checkpoint of that key exists where it was looked for."""


class ChecksumMismatchError(CheckpointError):
    """The weights' sha256 differs from the one recorded in config.json."""


class HubError(CheckpointError):
    """The Hub could not be reached or did not serve the checkpoint."""


@dataclass
class ModelConfig:
    """The content of a checkpoint's ``config.json``.

    Attributes:
        key: Model key, e.g. ``"dncnn-wne-s25"``.
        arch: Registered backbone name.
        arch_kwargs: Backbone constructor arguments.
        wrapper: One of :data:`WRAPPERS`.
        wrapper_mode: ``"direct"`` or ``"residual"`` (WNE only).
        sigma_train: Training noise level on the 0–255 scale (None: trained on a range).
        sigma_range: ``[lo, hi]``: trained with σ ~ U[lo, hi] per patch (0–255 scale).
        augment: Training augmentation beyond the dihedral ones, e.g. ``{"soft_ne":
            {"alpha": [0, 1], "mu": [0, 1]}}`` (None: none).
        sha256: Hex digest of the weights file.
        weights: Weights file name (always a ``.safetensors`` file).
        recipe: Training recipe (free-form).
        metrics: Evaluation numbers (free-form).
        format_version: Layout version.
        wne_version: Library version that wrote it.
    """

    key: str
    arch: str
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    wrapper: str = "none"
    wrapper_mode: str | None = None
    sigma_train: float | None = None
    sha256: str = ""
    weights: str = WEIGHTS_NAME
    recipe: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    wne_version: str = ""
    sigma_range: list[float] | None = None
    augment: dict[str, Any] | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Validates and builds a config from the parsed ``config.json``.

        Raises:
            CheckpointError: On missing fields, unknown architecture or wrapper,
                or a weights file that is not safetensors.
        """
        if not isinstance(data, dict):
            raise CheckpointError("config.json must hold a JSON object")
        known = set(cls.__dataclass_fields__)
        missing = {"key", "arch", "sha256"} - set(data)
        if missing:
            raise CheckpointError(f"config.json lacks {sorted(missing)}")
        cfg = cls(**{k: v for k, v in data.items() if k in known})
        if cfg.arch not in models.available():
            raise CheckpointError(
                f"config.json names unknown architecture {cfg.arch!r}; "
                f"known: {', '.join(models.available())}"
            )
        if cfg.wrapper not in WRAPPERS:
            raise CheckpointError(f"config.json names unknown wrapper {cfg.wrapper!r}")
        rng = cfg.sigma_range
        if rng is not None and not (
            isinstance(rng, list)
            and len(rng) == 2
            and all(isinstance(v, int | float) and math.isfinite(v) for v in rng)
            and 0 <= rng[0] <= rng[1]
        ):
            raise CheckpointError(f"config.json field 'sigma_range' must be [lo, hi], got {rng!r}")
        if cfg.augment is not None and not isinstance(cfg.augment, dict):
            raise CheckpointError("config.json field 'augment' must be a JSON object or null")
        if cfg.wrapper_mode not in (None, "direct", "residual"):
            raise CheckpointError(f"config.json names unknown wrapper_mode {cfg.wrapper_mode!r}")
        for name in ("arch_kwargs", "recipe", "metrics"):
            if not isinstance(getattr(cfg, name), dict):
                raise CheckpointError(f"config.json field {name!r} must be a JSON object")
        if not isinstance(cfg.weights, str) or not isinstance(cfg.sha256, str):
            raise CheckpointError("config.json fields 'weights' and 'sha256' must be strings")
        if not cfg.weights.endswith(".safetensors") or "/" in cfg.weights or "\\" in cfg.weights:
            raise CheckpointError(
                f"refusing weights file {cfg.weights!r}: only a local .safetensors file is loaded"
            )
        if not re.fullmatch(r"[0-9a-f]{64}", cfg.sha256):
            raise CheckpointError("config.json has no valid sha256 for the weights")
        return cfg

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dictionary (:data:`_OPTIONAL` fields only when set)."""
        return {
            k: getattr(self, k)
            for k in self.__dataclass_fields__
            if k not in _OPTIONAL or getattr(self, k) is not None
        }


def default_root() -> Path:
    """The local checkpoint folder: ``$WNE_CHECKPOINT_DIR`` if set, else ``./checkpoints``
    when the current directory has one, else the ``checkpoints/`` beside the package in a
    source checkout, else ``./checkpoints`` (which may not exist: nothing found there)."""
    env = EnvSettings.from_env().checkpoint_dir
    if env:
        return env
    here = Path.cwd() / "checkpoints"
    beside = Path(__file__).resolve().parent.parent / "checkpoints"
    for folder in (here, beside):
        if folder.is_dir():
            return folder
    return here


def _check_key(key: str) -> None:
    if not isinstance(key, str) or not _KEY_RE.fullmatch(key):
        raise ValueError(
            f"invalid model key {key!r}: use lowercase letters, digits, '.', '_' or '-'"
        )


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_config(folder: str | Path) -> ModelConfig:
    """Reads and validates ``folder/config.json``.

    Raises:
        CheckpointNotFoundError: If the file is missing.
        CheckpointError: If it is not valid JSON or not a valid config.
    """
    path = Path(folder) / CONFIG_NAME
    if not path.is_file():
        raise CheckpointNotFoundError(f"no {CONFIG_NAME} in {folder}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} is not valid JSON: {exc}") from exc
    return ModelConfig.from_dict(data)


def build_from_config(cfg: ModelConfig) -> nn.Module:
    """Builds the (possibly wrapped) model a config describes, randomly initialized."""
    try:
        backbone = models.build(cfg.arch, **cfg.arch_kwargs)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"bad arch_kwargs for {cfg.arch!r}: {exc}") from exc
    if cfg.wrapper == "wne":
        return NormEquivariant(backbone, mode=cfg.wrapper_mode or "direct")
    if cfg.wrapper == "input":
        return InputNormalized(backbone)
    return backbone


def _backbone(model: nn.Module) -> nn.Module:
    return model.backbone if isinstance(model, NormEquivariant | InputNormalized) else model


def _load_verified(
    model: nn.Module, weights: Path, sha256: str, device: torch.device | str | None
) -> nn.Module:
    digest = sha256_file(weights)
    if digest != sha256:
        raise ChecksumMismatchError(
            f"sha256 of {weights} is {digest}, config.json records {sha256}: refusing to load"
        )
    try:
        state = load_file(str(weights), device="cpu")
    except Exception as exc:  # safetensors raises its own error types
        raise CheckpointError(f"{weights} is not a readable safetensors file: {exc}") from exc
    try:
        _backbone(model).load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"weights in {weights} do not fit the architecture: {exc}") from exc
    model.eval()
    if device is not None:
        model.to(device)
    return model


def load_dir(folder: str | Path, *, device: torch.device | str | None = None) -> nn.Module:
    """Loads a checkpoint folder (``config.json`` + verified safetensors) in eval mode
    onto ``device`` (default: CPU).

    Raises:
        CheckpointNotFoundError: If files are missing.
        ChecksumMismatchError: If the weights do not match the recorded sha256.
        CheckpointError: On any other invalid content.
    """
    folder = Path(folder)
    cfg = read_config(folder)
    weights = folder / cfg.weights
    if not weights.is_file():
        raise CheckpointNotFoundError(f"no {cfg.weights} in {folder}")
    model = build_from_config(cfg)
    model.wne_config = cfg  # type: ignore[assignment]
    return _load_verified(model, weights, cfg.sha256, device)


def available_checkpoints(root: str | Path | None = None) -> list[str]:
    """Keys of the checkpoints in ``root`` (default: the bundled folder), sorted."""
    root = Path(root) if root is not None else default_root()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / CONFIG_NAME).is_file())


def _hub_fetch(
    key: str, repo: str, revision: str | None, timeout: float
) -> tuple[ModelConfig, Path]:
    """Downloads ``<repo>/<key>/config.json`` and the weights it names (into the HF cache).

    ``hf_hub_download`` retries an unanswered request for minutes, so the Hub is first
    probed with one ``HEAD`` bounded by ``timeout``; without an answer only the local
    HF cache is used.
    """
    try:
        from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url
        from huggingface_hub.errors import (
            EntryNotFoundError,
            HfHubHTTPError,
            LocalEntryNotFoundError,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )
    except ImportError as exc:  # pragma: no cover - huggingface_hub is a requirement
        raise HubError("huggingface_hub is not installed") from exc

    unreachable: str | None = None
    try:
        get_hf_file_metadata(
            hf_hub_url(repo, f"{key}/{CONFIG_NAME}", revision=revision), timeout=timeout
        )
    except HfHubHTTPError as exc:
        # The Hub answered (404s are reported precisely by the download below),
        # unless it is overloaded or failing.
        status = exc.response.status_code if exc.response is not None else None
        if status is None or status == 429 or status >= 500:
            unreachable = f"HTTP {status}"
    except Exception as exc:  # no answer: connection refused, timeout, offline mode
        unreachable = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if unreachable is not None:
        log.warning("Hub unreachable (%s); using the local Hugging Face cache only", unreachable)

    def fetch(name: str) -> Path:
        try:
            return Path(
                hf_hub_download(
                    repo,
                    f"{key}/{name}",
                    revision=revision,
                    etag_timeout=timeout,
                    local_files_only=unreachable is not None,
                )
            )
        except RepositoryNotFoundError as exc:
            raise HubError(f"Hub repo {repo!r} not found") from exc
        except RevisionNotFoundError as exc:
            raise HubError(f"revision {revision!r} not found in Hub repo {repo!r}") from exc
        # LocalEntryNotFoundError subclasses EntryNotFoundError: catch it first, or an
        # unreachable Hub would be reported as a missing file.
        except LocalEntryNotFoundError as exc:
            why = unreachable or "offline or timed out"
            raise HubError(
                f"Hub unreachable ({why}, timeout {timeout} s) and {key}/{name} "
                f"from {repo!r} @ {revision} is not in the local cache"
            ) from exc
        except EntryNotFoundError as exc:
            raise CheckpointNotFoundError(
                f"{key}/{name} not found in Hub repo {repo!r} @ {revision}"
            ) from exc
        except (HfHubHTTPError, OSError, ValueError) as exc:
            raise HubError(f"Hub download of {key}/{name} failed: {exc}") from exc
        except Exception as exc:  # transport errors (timeouts during the GET, ...)
            raise HubError(f"Hub download of {key}/{name} failed: {exc!r}") from exc

    cfg_path = fetch(CONFIG_NAME)
    cfg = read_config(cfg_path.parent)
    if cfg.key != key:
        raise CheckpointError(f"config.json in {repo}/{key} names key {cfg.key!r}")
    return cfg, fetch(cfg.weights)


def load(
    key: str,
    *,
    device: torch.device | str | None = None,
    source: Source = "auto",
    repo: str | None = None,
    revision: str | None = None,
    root: str | Path | None = None,
    fallback: bool = True,
    timeout: float = 10.0,
) -> nn.Module:
    """Loads a model by key, verified, in eval mode.

    Args:
        key: Model key, e.g. ``"dncnn-wne-s25"``.
        device: Target device (default: CPU).
        source: ``"auto"`` (the local folder, else the Hub), ``"local"`` or ``"hub"`` (the
            Hub, else with ``fallback`` the local copy, with a logged warning).
        repo: Hub repo id (default: ``$WNE_HUB_REPO``).
        revision: Hub revision, ideally a pinned commit (default:
            ``$WNE_HUB_REVISION`` or ``"main"``).
        root: Local checkpoint folder (default: :func:`default_root`).
        timeout: Seconds to wait for the Hub's first answer; without one,
            only the local Hugging Face cache is used (no retries).

    Returns:
        The model (a :class:`~wne.NormEquivariant` for WNE checkpoints); its
        :class:`ModelConfig` is attached as ``model.wne_config``.

    Raises:
        ValueError: On an invalid key or source.
        CheckpointNotFoundError: If no source has the key.
        ChecksumMismatchError: If weights do not match their recorded sha256.
        HubError: If the Hub was needed and failed.
    """
    _check_key(key)
    if source not in ("auto", "local", "hub"):
        raise ValueError(f"source must be 'auto', 'local' or 'hub', got {source!r}")
    local = (Path(root) if root is not None else default_root()) / key
    env = EnvSettings.from_env()
    repo, revision = repo or env.hub_repo, revision or env.hub_revision

    if source == "local" or (source == "auto" and (local / CONFIG_NAME).is_file()):
        return load_dir(local, device=device)
    if repo is None:
        if source == "hub":
            raise HubError("no Hub repo given: pass repo= or set WNE_HUB_REPO")
        raise CheckpointNotFoundError(
            f"no checkpoint {key!r} in {local.parent} and no Hub repo configured (WNE_HUB_REPO)"
        )
    try:
        cfg, weights = _hub_fetch(key, repo, revision, timeout)
        model = build_from_config(cfg)
        model.wne_config = cfg  # type: ignore[assignment]
        return _load_verified(model, weights, cfg.sha256, device)
    except CheckpointError as exc:
        if source == "hub" and fallback and (local / CONFIG_NAME).is_file():
            log.warning("Hub load of %s failed (%s); using the bundled copy", key, exc)
            return load_dir(local, device=device)
        raise


def _model_card(cfg: ModelConfig) -> str:
    r, set12 = cfg.recipe, cfg.metrics.get("set12")
    kind = {
        "wne": "WNE-wrapped (exactly normalization-equivariant)",
        "input": "input-normalized (f(y) = g((y − mean) / std), never de-normalized: the "
        "paper's App. O rival, invariant to brightness and contrast, not equivariant)",
    }.get(cfg.wrapper, "plain")
    noise = f"σ = {cfg.sigma_train} (0–255 scale)"
    if cfg.sigma_range is not None:
        noise = "σ ~ U[{:g}, {:g}] per patch (0–255 scale)".format(*cfg.sigma_range)
    soft = (cfg.augment or {}).get("soft_ne")
    if isinstance(soft, dict):
        a, m = soft.get("alpha", "?"), soft.get("mu", "?")
        noise += f", with the soft-NE augmentation (y, x) → (α·y + μ, α·x + μ), α ~ U{a}, μ ~ U{m}"
    lines = [
        "---\nlibrary_name: wne\npipeline_tag: image-to-image",
        "tags: [image-denoising, normalization-equivariance]\n---",
        f"# {cfg.key}\n\nBlind Gaussian denoiser: `{cfg.arch}` backbone, {kind}, trained at "
        f"{noise} on grayscale images.\n",
        f'```python\nimport wne\nmodel = wne.load("{cfg.key}")  # y in [0, 1], [B, 1, H, W]\n```\n',
        f"Architecture kwargs: `{json.dumps(cfg.arch_kwargs)}`\n",
    ]
    if isinstance(r.get("steps"), int):
        what = [f"{r['steps']} steps"] + [
            f"{k} {r[k]}" for k in ("batch", "patch", "lr", "device", "torch") if k in r
        ]
        init, text = r.get("init"), f"Training: {', '.join(what)}."
        if isinstance(init, dict) and "key" in init:
            text += f" Continued from `{init['key']}` after {init.get('steps')} steps"
            text += f" ({r.get('total_steps')} in all)."
        lines.append(text + "\n")
    if isinstance(set12, dict) and "psnr_matched" in set12:
        at = "σ_train" if cfg.sigma_range is None else f"{set12.get('sigma_train')}"
        lines.append(
            f"Set12 ({set12.get('n_images')} images): PSNR {set12['psnr_matched']:.2f} dB at "
            f"σ_test = {at}, {set12.get('psnr_sigma5', math.nan):.2f} dB at σ_test = 5; "
            f"largest NE defect {set12.get('ne_defect_max', math.nan):.1e}.\n"
        )
    if cfg.metrics:
        lines.append(f"Metrics:\n\n```json\n{json.dumps(cfg.metrics, indent=2)}\n```\n")
    return "\n".join([*lines, f"Weights sha256: `{cfg.sha256}`\n"])


def save(
    model: nn.Module,
    folder: str | Path,
    *,
    key: str,
    arch: str,
    arch_kwargs: dict[str, Any] | None = None,
    sigma_train: float | None = None,
    recipe: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    sigma_range: tuple[float, float] | None = None,
    augment: dict[str, Any] | None = None,
) -> ModelConfig:
    """Writes a model (a registered backbone, or one wrapped in :class:`~wne.NormEquivariant`
    or :class:`~wne.wrapper.InputNormalized`, which the config records) in the checkpoint
    layout under ``folder``, with the ``config.json`` fields given (σ on the 0–255 scale;
    ``sigma_range`` and ``augment``: how a rival was trained); only the backbone's tensors
    are stored.

    Returns:
        The written config.

    Raises:
        ValueError: On an invalid key, an unknown architecture, fields that are
            not JSON-serializable, or a model whose tensors do not match
            ``arch`` built with ``arch_kwargs``.
    """
    from wne import __version__

    _check_key(key)
    if arch not in models.available():
        raise ValueError(f"unknown architecture {arch!r}")
    try:
        # What load() will see: JSON turns tuples into lists.
        arch_kwargs = json.loads(json.dumps(dict(arch_kwargs or {})))
        json.dumps([recipe, metrics, sigma_train, augment])
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"arch_kwargs, recipe and metrics must be JSON-serializable: {exc}"
        ) from exc
    state = {k: v.detach().cpu().contiguous() for k, v in _backbone(model).state_dict().items()}
    # Refuse to write a checkpoint that load() could not rebuild (strict loading).
    try:
        with torch.random.fork_rng(devices=[]):  # leave the caller's RNG stream untouched
            expected = models.build(arch, **arch_kwargs).state_dict()
    except (TypeError, ValueError) as exc:
        raise ValueError(f"cannot build {arch!r} with arch_kwargs {arch_kwargs}: {exc}") from exc
    got_shapes = {k: tuple(v.shape) for k, v in state.items()}
    want_shapes = {k: tuple(v.shape) for k, v in expected.items()}
    if got_shapes != want_shapes:
        diff = sorted(set(got_shapes.items()) ^ set(want_shapes.items()))[:4]
        raise ValueError(
            f"the model's tensors do not match {arch!r} built with {arch_kwargs} "
            f"(first differences: {diff}); pass the arch_kwargs it was built with"
        )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / WEIGHTS_NAME
    tmp = weights.with_suffix(".tmp")
    save_file(state, str(tmp), metadata={"key": key, "arch": arch})
    os.replace(tmp, weights)
    wrapped = isinstance(model, NormEquivariant)
    wrapper = "wne" if wrapped else "input" if isinstance(model, InputNormalized) else "none"
    cfg = ModelConfig(
        key=key,
        arch=arch,
        arch_kwargs=arch_kwargs,
        wrapper=wrapper,
        wrapper_mode=model.mode if wrapped else None,
        sigma_train=sigma_train,
        sha256=sha256_file(weights),
        recipe=dict(recipe or {}),
        metrics=dict(metrics or {}),
        wne_version=__version__,
        sigma_range=[float(v) for v in sigma_range] if sigma_range is not None else None,
        augment=json.loads(json.dumps(augment)) if augment is not None else None,
    )
    _write_config(folder, cfg)
    return cfg


def _write_config(folder: Path, cfg: ModelConfig) -> None:
    tmp = folder / (CONFIG_NAME + ".tmp")
    tmp.write_text(json.dumps(cfg.to_dict(), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, folder / CONFIG_NAME)
    (folder / "README.md").write_text(_model_card(cfg), encoding="utf-8")


def update_config(folder: str | Path, **changes: Any) -> ModelConfig:
    """Updates fields of a checkpoint's config (dicts merged, other values replaced), the
    weights untouched, and returns the new config."""
    folder = Path(folder)
    cfg = read_config(folder)
    for name, value in changes.items():
        if name not in cfg.__dataclass_fields__ or name in ("sha256", "weights", "key"):
            raise ValueError(f"cannot update config field {name!r}")
        old = getattr(cfg, name)
        setattr(cfg, name, {**old, **value} if isinstance(old, dict) else value)
    _write_config(folder, cfg)
    return cfg


def push(
    folder: str | Path,
    repo_id: str,
    *,
    dry_run: bool = True,
    revision: str | None = None,
    token: str | None = None,
) -> list[str]:
    """Uploads a verified checkpoint folder to ``<repo_id>/<key>/`` (``HfApi.upload_folder``
    to ``revision``, with ``token`` or the logged-in one); with ``dry_run`` (the
    default) nothing is sent.

    Returns:
        The remote paths of the uploaded (or planned) files.
    """
    folder = Path(folder)
    cfg = read_config(folder)
    if sha256_file(folder / cfg.weights) != cfg.sha256:
        raise ChecksumMismatchError(f"{folder}: weights do not match config.json")
    files = [CONFIG_NAME, cfg.weights, "README.md"]
    remote = [f"{cfg.key}/{name}" for name in files if (folder / name).is_file()]
    if dry_run:
        return remote
    from huggingface_hub import HfApi

    HfApi(token=token).upload_folder(
        repo_id=repo_id,
        folder_path=str(folder),
        path_in_repo=cfg.key,
        revision=revision,
        allow_patterns=files,
        commit_message=f"Upload {cfg.key}",
    )
    return remote
