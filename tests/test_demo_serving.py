"""Serving (wne.demo.serving): identical requests computed once, one model call at a time.

A fake computation that waits on a gate stands in for the models: a repeat is a cache hit,
identical requests in flight join one computation (a class of 30 clicking the same example
is served by one), followers see every partial result, errors reach every request and are
not kept, a request that goes away does not stop its computation, the cache is bounded in
bytes, different pixels or settings never share an entry, and the CPU default working size
is never below 256 px.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import astuple, dataclass, replace
from typing import Any

import numpy as np
import pytest
import torch
from app_fixtures import make_demo_checkpoints, save_demo_checkpoint

from wne.demo import Zoo
from wne.demo.calibration import MIN_CPU_SIDE, cpu_defaults
from wne.demo.pages import compare
from wne.demo.serving import Server

HANG = 30.0
PIXELS = np.zeros((8, 8, 1), dtype=np.float32)


@dataclass(frozen=True)
class Ask:
    value: int


GATE = threading.Event()
CALLS: list[int] = []


def slow(zoo: Zoo, pixels: np.ndarray, s: Ask) -> Iterator[Any]:
    CALLS.append(s.value)
    yield ("partial", s.value)
    assert GATE.wait(HANG)
    if s.value < 0:
        raise ValueError("bad pixels")
    yield ("final", s.value, np.ones(1000, dtype=np.float32))


@pytest.fixture
def server() -> Iterator[Server]:
    GATE.clear()
    CALLS.clear()
    yield Server(Zoo({}, torch.device("cpu")), cache_mb=1)
    GATE.set()


def _until(cond: Any) -> None:
    done = threading.Event()
    for _ in range(int(HANG / 0.01)):
        if cond():
            return
        done.wait(0.01)
    raise AssertionError("condition not reached")


def test_a_class_of_30_identical_requests_is_computed_once(server: Server) -> None:
    results: list[list[Any]] = []
    threads = [
        threading.Thread(target=lambda: results.append(list(server.stream(slow, PIXELS, Ask(1)))))
        for _ in range(30)
    ]
    for t in threads:
        t.start()
    _until(lambda: sum(server.cache.totals().values()) == 30)
    GATE.set()
    for t in threads:
        t.join(HANG)
    assert CALLS == [1] and len(results) == 30
    assert all(
        [r[0] for r in res] == ["partial", "final"] for res in results
    )  # every follower streams
    totals = server.cache.totals()
    assert (totals["computed"], totals["joined"]) == (1, 29)
    assert [r[0] for r in server.stream(slow, PIXELS, Ask(1))] == ["final"]
    assert server.cache.totals()["cache"] == 1
    assert server.cache.counters() == {
        "test_demo_serving": {"cache": 1, "joined": 29, "computed": 1}
    }
    assert CALLS == [1]


def test_errors_reach_the_request_and_are_not_kept(server: Server) -> None:
    GATE.set()
    for _ in range(2):
        with pytest.raises(ValueError, match="bad pixels"):
            list(server.stream(slow, PIXELS, Ask(-1)))
    assert CALLS == [-1, -1] and len(server.cache.lru) == 0


def test_a_request_that_goes_away_does_not_stop_its_computation(server: Server) -> None:
    stream = server.stream(slow, PIXELS, Ask(2))
    assert next(stream) == ("partial", 2)
    stream.close()
    GATE.set()
    _until(lambda: len(server.cache.lru) == 1)
    assert next(iter(server.stream(slow, PIXELS, Ask(2))))[:2] == ("final", 2) and CALLS == [2]


def unpicklable(zoo: Zoo, pixels: np.ndarray, s: Ask) -> Iterator[Any]:
    yield ("final", lambda: s.value)  # a result the cache cannot size


def test_a_result_the_cache_cannot_keep_is_served_and_the_flight_ends(server: Server) -> None:
    for _ in range(2):  # the second call would hang on a flight left open
        ((tag, fn),) = list(server.stream(unpicklable, PIXELS, Ask(7)))
        assert tag == "final" and fn() == 7
    assert len(server.cache.lru) == 0 and server.cache.totals()["computed"] == 2


def test_the_cache_is_bounded_in_bytes_and_keys_differ(server: Server) -> None:
    GATE.set()
    other = PIXELS.copy()
    other[0, 0] = 1e-7
    for pixels, ask in ((PIXELS, Ask(3)), (other, Ask(3)), (PIXELS, Ask(4))):
        list(server.stream(slow, pixels, ask))
    assert CALLS == [3, 3, 4]  # different pixels or settings: different entries
    tiny = Server(Zoo({}, torch.device("cpu")), cache_mb=0.001)  # below one result
    list(tiny.stream(slow, PIXELS, Ask(5)))
    assert len(tiny.cache.lru) == 0 and tiny.cache.lru.maxsize < 2**20
    assert server.cache.lru.currsize <= server.cache.lru.maxsize
    server.cache.entries = 2
    list(server.stream(slow, PIXELS, Ask(8)))
    assert len(server.cache.lru) == 2 and CALLS[-1] == 8  # bounded in entries too


def test_the_models_run_one_computation_at_a_time_in_order(server: Server) -> None:
    waits: list[int] = []
    first = server.stream(slow, PIXELS, Ask(6))
    assert next(first) == ("partial", 6)
    later = threading.Thread(target=lambda: list(server.stream(slow, PIXELS, Ask(7), waits.append)))
    later.start()
    _until(lambda: waits)
    assert CALLS == [6] and waits[0] == 1  # one computation ahead of it
    GATE.set()
    list(first)
    later.join(HANG)
    assert CALLS == [6, 7]


def test_the_comparison_through_the_server_equals_the_page_function(tmp_path: Any) -> None:
    """The served comparison is the page function's; the CPU calibration keeps the best
    checkpoints within the latency target and falls back to the CPU-sized ones beyond it."""
    root = make_demo_checkpoints(tmp_path, broken=False)
    zoo = Zoo.discover(root, device="cpu", hub_repo="")
    server = Server(zoo)
    scene = compare.Scene(0.5, 0.1, 25.0, 3, 25, ("dncnn",), "noise-then-shift", 32, False,
                          "gaussian", 20.0, 1.0, 30, "best")  # fmt: skip
    pixels = np.random.default_rng(0).random((24, 32, 3), dtype=np.float32)
    ints = replace(scene, a=0.5, sigma=25, seed=3.0, backbones=["dncnn"])  # as a browser may send
    assert server.key(compare.run, pixels, ints) == server.key(compare.run, pixels, scene)
    served = list(server.stream(compare.run, pixels, scene))
    direct = list(compare.run(zoo, pixels, scene))
    assert len(served) == len(direct)
    for a, b in zip(served[-1].runs, direct[-1].runs, strict=True):
        np.testing.assert_array_equal(a.output, b.output)
    side, choice, note = astuple(cpu_defaults(zoo, scene, target_seconds=1e-6))  # impossible
    assert side == MIN_CPU_SIDE and choice == "best" and note == ""  # nothing smaller to run
    side = cpu_defaults(zoo, scene, target_seconds=1e6).side
    assert side == 512
    for i, v in enumerate(("plain", "wne")):  # GPU-trained twins, better on Set12
        save_demo_checkpoint(root, "dncnn", v, 25, seed=50 + i, size="gpu", set12_psnr=40.0)
    zoo = Zoo.discover(root, device="cpu", hub_repo="")
    assert astuple(cpu_defaults(zoo, scene, target_seconds=1e6))[1:] == ("best", "")
    _, choice, note = astuple(cpu_defaults(zoo, scene, target_seconds=1e-6))
    assert choice == "cpu" and "CPU-sized checkpoints" in note


def test_on_zerogpu_only_the_device_work_is_decorated(tmp_path: Any, monkeypatch: Any) -> None:
    """With a stand-in ``spaces`` (arguments and every yielded result pickled, as ZeroGPU's
    forked worker does), the app decorates one function, the server's device work, with a
    duration that grows with the work; every page goes through it, a cache hit does not,
    and ``spaces`` is the app's first import."""
    import ast
    import importlib.util
    import pickle
    import sys
    import types
    from pathlib import Path

    decorated: list[Any] = []
    calls: list[tuple[str, int]] = []

    def gpu(fn: Any = None, *, duration: Any = None) -> Any:
        def decorate(f: Any) -> Any:
            decorated.append((f, duration))

            def worker(*args: Any) -> Iterator[Any]:
                calls.append((args[0].__module__, duration(*args)))
                for item in f(*pickle.loads(pickle.dumps(args))):
                    yield pickle.loads(pickle.dumps(item))

            return worker

        return decorate(fn) if callable(fn) else decorate

    monkeypatch.setitem(sys.modules, "spaces", types.SimpleNamespace(GPU=gpu))
    monkeypatch.setenv("WNE_DEMO_MAX_SIDE", "64")
    root = Path(__file__).resolve().parents[1]
    first = ast.parse((root / "app.py").read_text()).body[1]  # after the module docstring
    assert isinstance(first, ast.Try) and first.body[0].names[0].name == "spaces"
    spec = importlib.util.spec_from_file_location("app_on_zerogpu", root / "app.py")
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    zoo = Zoo.discover(make_demo_checkpoints(tmp_path, broken=False), device="cpu", hub_repo="")
    server = app.make_server(zoo)
    assert decorated == [(server._device_work, server.gpu_seconds)] and not server.in_process
    scene = compare.Scene(1.0, 0.0, 25.0, 0, 25, ("dncnn",), "shift-then-noise", 64, False,
                          "gaussian", 20.0, 1.0, 30, "best")  # fmt: skip
    pixels = np.random.default_rng(0).random((48, 64, 3), dtype=np.float32)
    assert len(list(server.stream(compare.run, pixels, scene))) >= 2  # streamed from the worker
    assert len(list(server.stream(compare.run, pixels, scene))) == 1  # the cache: no device time
    walks = app.restore.Walks("inpaint", 10.0, 25.0, 4, 10.0, "dncnn", 25, 0, 4, 32, False)
    assert list(server.stream(app.restore.run, pixels, walks))[-1].done
    assert [c[0] for c in calls] == ["wne.demo.pages.compare", "wne.demo.pages.restore"]
    big = server.gpu_seconds(compare.run, np.zeros((512, 512, 3), np.float32), scene)
    assert all(1 <= s <= big <= 120 for _, s in calls)
