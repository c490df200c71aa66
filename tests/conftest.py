"""Shared fixtures for the wne test suite.

Fixtures other test files may use:

- ``tiny_checkpoint_dir``: a fresh folder (per test) holding random-init, seeded
  checkpoints in the bundled layout, one per key of :data:`TINY_CHECKPOINTS`
  (``<root>/<key>/config.json``, ``model.safetensors``, ``README.md``). Tiny
  models: loading and running them takes milliseconds.
- ``bundled_checkpoints``: the same folder, also set as ``$WNE_CHECKPOINT_DIR``
  (what ``wne.load(key)`` and ``wne.available_checkpoints()`` read by default).
- ``fake_hub``: a started :class:`fakehub.FakeHub` (loopback HTTP server) whose
  repo :data:`HUB_REPO` serves the ``tiny_checkpoint_dir`` folders; stopped after
  the test. ``fake_hub.requests`` logs every request.
- ``hub_env``: ``fake_hub`` plus an in-process ``huggingface_hub`` pointed at it
  (``constants.ENDPOINT``/``HUGGINGFACE_CO_URL_TEMPLATE`` patched, a fresh
  ``HF_HUB_CACHE``/``HF_HOME`` under ``tmp_path``, telemetry off, no token), and
  ``WNE_HUB_REPO`` unset. Undone after the test.
- ``hub_subprocess_env``: an ``env`` dict for ``subprocess.run`` with
  ``HF_ENDPOINT`` etc. pointing at ``fake_hub`` (for code that imports
  ``huggingface_hub`` fresh).

Helpers importable from test files (``from conftest import ...``): ``HUB_REPO``,
``TINY_CHECKPOINTS`` (key -> arch, arch_kwargs, wrapper mode), ``make_tiny_model(key,
seed=0)`` (the exact model a tiny checkpoint holds, for output comparisons) and
``save_tiny_checkpoints(root)``. ``fakehub.FakeHub`` is importable the same way.

The suite runs on CPU with one torch thread per process (the machine is shared).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

_TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(_TESTS))  # tests/fakehub.py
if str(_TESTS.parent) not in sys.path:  # the repo root, when run as plain `pytest`
    sys.path.insert(0, str(_TESTS.parent))

from fakehub import FakeHub  # noqa: E402

pytest_plugins = ["app_fixtures"]  # the one session-scoped served demo app

import wne  # noqa: E402
from wne import NormEquivariant, models  # noqa: E402

torch.set_num_threads(1)

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
"""Under ``CI=true`` nothing may skip: a missing browser, data folder or package is a
failure there (``.ci/run`` installs all of them), never a silently smaller suite."""


def _ci_fail_skip(report: pytest.TestReport | pytest.CollectReport) -> None:
    if not (IN_CI and report.skipped) or hasattr(report, "wasxfail"):
        return
    reason = str(report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr)
    report.outcome = "failed"
    report.longrepr = f"skipped under CI=true, which must run everything: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """Turns a test's skip into a failure under CI (see :data:`IN_CI`)."""
    outcome = yield
    _ci_fail_skip(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[None]:
    """Turns a module-level skip (``importorskip``, ``skip(allow_module_level)``) into a
    collection error under CI."""
    outcome = yield
    _ci_fail_skip(outcome.get_result())


HUB_REPO = "wne-test/models"
"""The fake Hub's model repository id."""

TINY_CHECKPOINTS: dict[str, dict[str, Any]] = {
    "dncnn-wne-tiny": {"arch": "dncnn", "arch_kwargs": {"depth": 3, "width": 8}, "mode": "direct"},
    "dncnn-plain-tiny": {"arch": "dncnn", "arch_kwargs": {"depth": 3, "width": 8}, "mode": None},
    "swinir-wne-tiny": {
        "arch": "swinir",
        "arch_kwargs": {"embed_dim": 8, "depths": [1], "num_heads": 2, "window_size": 4},
        "mode": "residual",
    },
}
"""Key -> (arch, arch_kwargs, wrapper mode or None for a plain model)."""


def make_tiny_model(key: str, seed: int = 0) -> torch.nn.Module:
    """Builds the (seeded, random-init) model of a :data:`TINY_CHECKPOINTS` key, eval mode."""
    spec = TINY_CHECKPOINTS[key]
    torch.manual_seed(seed)
    model = models.build(spec["arch"], **spec["arch_kwargs"])
    if spec["mode"] is not None:
        model = NormEquivariant(model, mode=spec["mode"])
    return model.eval()


def save_tiny_checkpoints(root: Path, seed: int = 0) -> Path:
    """Writes every :data:`TINY_CHECKPOINTS` model under ``root/<key>``; returns ``root``."""
    for key, spec in TINY_CHECKPOINTS.items():
        wne.save(
            make_tiny_model(key, seed),
            root / key,
            key=key,
            arch=spec["arch"],
            arch_kwargs=spec["arch_kwargs"],
            sigma_train=25.0,
            recipe={"note": "random init, tests only"},
        )
    return root


@pytest.fixture(scope="session")
def _tiny_checkpoint_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_checkpoints(tmp_path_factory.mktemp("tiny") / "checkpoints")


@pytest.fixture
def tiny_checkpoint_dir(_tiny_checkpoint_template: Path, tmp_path: Path) -> Path:
    """A checkpoint root with the tiny random-init checkpoints (a fresh copy per test:
    tests may corrupt or edit it)."""
    return Path(shutil.copytree(_tiny_checkpoint_template, tmp_path / "checkpoints"))


@pytest.fixture
def bundled_checkpoints(tiny_checkpoint_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``tiny_checkpoint_dir``, also installed as ``$WNE_CHECKPOINT_DIR``."""
    monkeypatch.setenv("WNE_CHECKPOINT_DIR", str(tiny_checkpoint_dir))
    return tiny_checkpoint_dir


@pytest.fixture
def fake_hub(tiny_checkpoint_dir: Path) -> Iterator[FakeHub]:
    """A running loopback fake Hub serving ``tiny_checkpoint_dir`` as repo ``HUB_REPO``."""
    hub = FakeHub.from_folder(tiny_checkpoint_dir, HUB_REPO)
    hub.repo_id = HUB_REPO  # type: ignore[attr-defined]
    with hub:
        yield hub


@pytest.fixture
def hub_env(
    fake_hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeHub]:
    """Points this process's ``huggingface_hub`` at ``fake_hub`` with a fresh cache."""
    from huggingface_hub import constants

    home = tmp_path / "hf_home"
    cache = home / "hub"
    cache.mkdir(parents=True)
    patches = {
        "ENDPOINT": fake_hub.url,
        "HUGGINGFACE_CO_URL_TEMPLATE": fake_hub.url + "/{repo_id}/resolve/{revision}/{filename}",
        "HF_HOME": str(home),
        "HF_HUB_CACHE": str(cache),
        "HF_HUB_OFFLINE": False,
        "HF_HUB_DISABLE_TELEMETRY": True,
        "HF_HUB_ETAG_TIMEOUT": constants.DEFAULT_ETAG_TIMEOUT,
        "HF_HUB_DOWNLOAD_TIMEOUT": 10,
        "HF_TOKEN_PATH": str(home / "token"),
        "HF_STORED_TOKENS_PATH": str(home / "stored_tokens"),
        "AGENT_HARNESSES_PATH": str(home / ".agent_harnesses.json"),
    }
    for name, value in patches.items():
        if hasattr(constants, name):
            monkeypatch.setattr(constants, name, value)
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "WNE_HUB_REPO", "WNE_HUB_REVISION"):
        monkeypatch.delenv(var, raising=False)
    yield fake_hub


@pytest.fixture
def hub_subprocess_env(fake_hub: FakeHub, tmp_path: Path) -> dict[str, str]:
    """Environment for a child process whose ``huggingface_hub`` talks to ``fake_hub``."""
    home = tmp_path / "hf_home_subprocess"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HF_", "HUGGING", "WNE_")) and k != "TRANSFORMERS_OFFLINE"
    }
    env.update(
        {
            "HF_ENDPOINT": fake_hub.url,
            "HF_HOME": str(home),
            "HF_HUB_CACHE": str(home / "hub"),
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
            "OMP_NUM_THREADS": "1",
            "PYTHONPATH": os.pathsep.join(
                [str(Path(__file__).resolve().parent.parent), env.get("PYTHONPATH", "")]
            ).rstrip(os.pathsep),
        }
    )
    return env
