"""app.py follows the ZeroGPU pattern, checked with a stand-in ``spaces`` module.

The stand-in in ``sys.modules`` records what ``spaces.GPU`` was given and, on each call,
evaluates the duration function with the call's own arguments, pickles the arguments and
the result (ZeroGPU runs the function in a forked worker and pickles both ways), and marks
the call as "inside the GPU function"; ``torch.cuda``'s ``is_available``/``init``/
``_lazy_init`` are patched to record who calls them.
"""

from __future__ import annotations

import importlib.util
import pickle
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent


class _StandInSpaces(types.ModuleType):
    """Records ``spaces.GPU`` decorations and calls like ZeroGPU would make them."""

    def __init__(self) -> None:
        super().__init__("spaces")
        self.decorated: list[dict[str, Any]] = []
        self.calls: list[dict[str, Any]] = []
        self.inside = False

    def GPU(self, fn: Any = None, *, duration: Any = None) -> Any:
        def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
            self.decorated.append({"fn": f, "duration": duration})

            def gpu_call(*args: Any, **kwargs: Any) -> Any:
                seconds = duration(*args, **kwargs) if callable(duration) else duration
                pickle.dumps((args[:4], {k: v for k, v in kwargs.items() if k != "progress"}))
                self.inside = True
                try:
                    result = f(*args, **kwargs)
                finally:
                    self.inside = False
                pickle.dumps(result)  # comes back from the worker process
                self.calls.append({"fn": f, "args": args, "duration": seconds})
                return result

            return gpu_call

        return decorate(fn) if callable(fn) else decorate


def test_app_follows_the_zerogpu_pattern(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from app_fixtures import make_demo_checkpoints

    from wne.demo import Zoo

    fake = _StandInSpaces()
    monkeypatch.setitem(sys.modules, "spaces", fake)
    cuda_calls: list[tuple[str, bool]] = []

    def recorder(name: str, result: Any) -> Callable[..., Any]:
        def record(*_: Any, **__: Any) -> Any:
            cuda_calls.append((name, fake.inside))
            return result

        return record

    monkeypatch.setattr(torch.cuda, "is_available", recorder("is_available", False))
    monkeypatch.setattr(torch.cuda, "init", recorder("init", None))
    monkeypatch.setattr(torch.cuda, "_lazy_init", recorder("_lazy_init", None))

    spec = importlib.util.spec_from_file_location("app_zerogpu_standin", ROOT / "app.py")
    assert spec is not None and spec.loader is not None
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    assert app.spaces is fake
    assert cuda_calls == []  # importing the app touches no CUDA

    zoo = Zoo.discover(make_demo_checkpoints(tmp_path / "ckpt"), device="cpu", hub_repo="")
    handlers = app.make_handlers(zoo)
    assert len(fake.decorated) == 1  # the one compute function, with a duration function
    deco = fake.decorated[0]
    assert deco["fn"] == handlers._compute_impl
    assert deco["duration"] == handlers.gpu_seconds
    at_start = len(cuda_calls)  # the device choice at start (ZeroGPU: models to CUDA there)

    img = tmp_path / "in.png"
    yy, xx = np.mgrid[0:48, 0:64] / 64
    rgb = np.stack([0.5 + 0.3 * np.sin(7 * xx + k) * np.cos(5 * yy) for k in range(3)], -1)
    Image.fromarray((rgb * 255).astype(np.uint8)).save(img)
    handlers.denoise(str(img), max_side=64)
    handlers.equivariance(str(img), max_side=64)
    assert [c["args"][0] for c in fake.calls] == ["compare", "equivariance"]
    for call in fake.calls:
        assert isinstance(call["duration"], int) and 1 <= call["duration"] <= 120
    # the duration grows with the work: a 512² sweep gets at least a 64² compare's time
    settings = handlers.settings()
    small = handlers.gpu_seconds("compare", np.zeros((64, 64, 3), np.float32), settings)
    big = handlers.gpu_seconds("sweep", np.zeros((512, 512, 3), np.float32), settings)
    assert 1 <= small <= big <= 120
    assert not [c for c in cuda_calls if c[0] in ("init", "_lazy_init")]
    assert all(inside for _, inside in cuda_calls[at_start:])  # requests: only inside
