"""The demo's test fixtures: tiny demo checkpoints and ONE served app for the session.

Registered as a pytest plugin (``pytest_plugins = ["app_fixtures"]``), so every
test module gets:

- ``served``: ``(server, client)`` of the app (``app.build_demo``) launched once
  per session in this process on a free loopback port, with tiny random-init
  checkpoints (:func:`make_demo_checkpoints`), an upload cap of
  :data:`UPLOAD_CAP` and :data:`CANARY` (a fake secret) in ``HF_TOKEN`` and
  ``WNE_TEST_SECRET`` from before the app is built until it is closed.
- ``app_url``: the served app's address (for browsers and raw HTTP).

Helpers: :data:`DEMO_KEYS`, :data:`TINY_ARCH`, :func:`make_tiny_demo_model`,
:func:`make_demo_checkpoints`, :data:`PARROTS`.
"""

from __future__ import annotations

import os
import socket
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import wne
from wne import models
from wne.wrapper import InputNormalized

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # app.py lives at the repository root

PARROTS = REPO / "assets" / "examples" / "parrots.png"
UPLOAD_CAP = "400kb"
CANARY = f"wne-canary-{uuid.uuid4().hex}"
"""A fake secret in the served app's environment; it must never reach a client."""
SECRET_VARS = ("HF_TOKEN", "WNE_TEST_SECRET")

TINY_ARCH: dict[str, tuple[str, dict[str, Any]]] = {
    "dncnn": ("dncnn", {"depth": 4, "width": 8}),
    "swinir": ("swinir", {"embed_dim": 8, "depths": [1], "num_heads": 2, "window_size": 4}),
    "fdncnn-ne": ("fdncnn_ne", {"depth": 3, "width": 8}),
    "fdncnn": ("fdncnn", {"depth": 3, "width": 8}),
    "fdncnn-se": ("fdncnn_se", {"depth": 3, "width": 8}),
    "dncnn-in": ("dncnn", {"depth": 4, "width": 8}),
}
"""Family id → (arch, arch_kwargs) of the tiny test models."""
DEMO_KEYS: tuple[tuple[str, str, int], ...] = (
    ("dncnn", "plain", 25),
    ("dncnn", "wne", 25),
    ("swinir", "plain", 25),
    ("swinir", "wne", 25),
    ("fdncnn-ne", "ne", 25),
    ("dncnn", "plain", 10),  # its WNE twin is missing on purpose
)
"""The (family, variant, σ_train) slots :func:`make_demo_checkpoints` fills."""
DEMO_RIVALS: tuple[tuple[str, str, int], ...] = (
    ("dncnn-in", "in", 10),
    ("fdncnn-se", "se", 25),
    ("fdncnn", "plain", 25),
    ("fdncnn", "wne", 25),
)
"""The rivals it fills (the SwinIR ones are missing on purpose)."""


def make_tiny_demo_model(family: str, variant: str, seed: int) -> nn.Module:
    """A random-init tiny model whose biases are non-zero (so plain models are not
    homogeneous); WNE-wrapped for the ``"wne"`` variant."""
    arch, kwargs = TINY_ARCH[family]
    torch.manual_seed(seed)
    model = models.build(arch, **kwargs)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.normal_(0.0, 0.1)
    if variant == "in":
        return InputNormalized(model)
    return wne.NormEquivariant(model) if variant == "wne" else model


def save_demo_checkpoint(
    root: Path,
    family: str,
    variant: str,
    sigma: int,
    seed: int,
    size: str = "cpu",
    set12_psnr: float | None = None,
) -> Path:
    """Writes one tiny checkpoint under ``root/<catalog key>`` (of that size, with a
    recorded Set12 PSNR at σ_train if given); returns its folder."""
    key = wne.catalog.key(family, variant, sigma, size)
    arch, kwargs = TINY_ARCH[family]
    wne.save(
        make_tiny_demo_model(family, variant, seed),
        root / key,
        key=key,
        arch=arch,
        arch_kwargs=kwargs,
        sigma_train=sigma,
        recipe={"note": "random init, tests only"},
        metrics={} if set12_psnr is None else {"set12": {"psnr_matched": set12_psnr}},
    )
    return root / key


def make_demo_checkpoints(root: Path, *, broken: bool = True) -> Path:
    """Writes tiny checkpoints for :data:`DEMO_KEYS` under ``root`` (plus odd ones).

    With ``broken``, also writes ``swinir-wne-s10`` with tampered weights (fails
    its sha256 check) and ``other-model`` (a key the demo ignores).
    """
    for i, slot in enumerate(DEMO_KEYS + DEMO_RIVALS):
        save_demo_checkpoint(root, *slot, seed=i)
    if broken:
        weights = save_demo_checkpoint(root, "swinir", "wne", 10, 99) / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[:-8] + b"tampered")
        arch, kwargs = TINY_ARCH["dncnn"]
        wne.save(
            make_tiny_demo_model("dncnn", "plain", 7),
            root / "other-model",
            key="other-model",
            arch=arch,
            arch_kwargs=kwargs,
            sigma_train=25,
        )
    return root


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def _served_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any, str]]:
    tmp = tmp_path_factory.mktemp("served_app")
    env = {
        "GRADIO_EXAMPLES_CACHE": str(tmp / "examples_cache"),
        "GRADIO_ANALYTICS_ENABLED": "False",
        **dict.fromkeys(SECRET_VARS, CANARY),
    }
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    from gradio_client import Client

    import app
    from wne.demo import Zoo

    zoo = Zoo.discover(make_demo_checkpoints(tmp / "ckpt"), device="cpu", hub_repo="")
    demo = app.build_demo(zoo)
    _, url, _ = demo.launch(
        prevent_thread_lock=True,
        server_name="127.0.0.1",
        server_port=_free_port(),
        quiet=True,
        **{**app.launch_kwargs(), "max_file_size": UPLOAD_CAP},
    )
    try:
        yield demo.wne_server, Client(url, verbose=False), url
    finally:
        demo.close()
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="session")
def served(_served_app: tuple[Any, Any, str]) -> tuple[Any, Any]:
    """(server, client) of the app served once for the session."""
    return _served_app[0], _served_app[1]


@pytest.fixture(scope="session")
def app_url(_served_app: tuple[Any, Any, str]) -> str:
    """The address of the app served once for the session."""
    return _served_app[2]
