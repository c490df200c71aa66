"""Identical requests computed once (:mod:`wne.demo.cache`) and the comparison as it comes.

The cache on its own (LRU in entries and bytes, errors never kept, concurrent
identical requests coalesced, thread safety), the model queue (first come first
served, background work last), and through the handlers: what makes two requests
the same (pixels at working size, settings, checkpoints' hashes) and the streamed
comparison (noisy input and target first, then one model after another).
No timing is asserted: waits use events, with generous deadlines only against hangs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from app_fixtures import DEMO_KEYS, save_demo_checkpoint
from PIL import Image

from wne import catalog
from wne.demo import DemoHandlers, Zoo
from wne.demo.cache import (
    BACKGROUND,
    Flight,
    ModelQueue,
    ResultCache,
    cache_from_env,
    nbytes,
    pixel_digest,
    request_key,
)

HANG = 60.0
"""Seconds after which a wait counts as a hang (never reached when things work)."""


def _const(value: Any, calls: list[Any] | None = None) -> Callable[[Callable[[Any], None]], Any]:
    """A job returning ``value`` (recording its calls)."""

    def job(publish: Callable[[Any], None]) -> Any:
        if calls is not None:
            calls.append(value)
        return value

    return job


def _get(cache: ResultCache, key: str, job: Any, **kw: Any) -> list[tuple[Any, str]]:
    return list(cache.stream(key, job, **kw))


# ----------------------------------------------------------------------------- the cache


def test_a_repeat_is_served_from_the_cache_without_computing() -> None:
    cache, calls = ResultCache(), []
    assert _get(cache, "k", _const("v", calls)) == [("v", "computed")]
    assert _get(cache, "k", _const("other", calls)) == [("v", "cache")]
    assert calls == ["v"]
    s = cache.stats()
    assert (s.hits, s.misses, s.joins, s.entries) == (1, 1, 0, 1)


def test_lru_bounded_in_entries() -> None:
    cache = ResultCache(max_entries=2)
    for key in ("a", "b"):
        _get(cache, key, _const(key))
    _get(cache, "a", _const("x"))  # a is now the most recently used
    _get(cache, "c", _const("c"))
    assert "a" in cache and "c" in cache and "b" not in cache
    assert cache.stats().evictions == 1 and len(cache) == 2


def test_lru_bounded_in_bytes_and_too_big_results_are_not_kept() -> None:
    kb = np.zeros(1000, dtype=np.uint8)
    cache = ResultCache(max_entries=100, max_bytes=2500, sizeof=lambda v: v.nbytes)
    for key in ("a", "b", "c"):
        _get(cache, key, _const(kb.copy()))
    assert ["b" in cache, "c" in cache, "a" in cache] == [True, True, False]
    assert cache.stats().bytes == 2000
    big = np.zeros(3000, dtype=np.uint8)
    assert _get(cache, "big", _const(big))[0][1] == "computed"
    assert "big" not in cache and "b" in cache and "c" in cache  # nothing evicted for it


def test_zero_entries_keeps_nothing() -> None:
    cache, calls = ResultCache(max_entries=0), []
    _get(cache, "k", _const(1, calls))
    _get(cache, "k", _const(1, calls))
    assert calls == [1, 1] and len(cache) == 0
    with pytest.raises(ValueError, match=">= 0"):
        ResultCache(max_entries=-1)


def test_errors_reach_the_request_and_are_not_cached() -> None:
    cache = ResultCache()

    def boom(publish: Callable[[Any], None]) -> Any:
        raise RuntimeError("model failed")

    with pytest.raises(RuntimeError, match="model failed"):
        _get(cache, "k", boom)
    assert "k" not in cache
    assert _get(cache, "k", _const("ok")) == [("ok", "computed")]  # computed again


def _blocking_job(
    gate: threading.Event, calls: list[int], partials: tuple[Any, ...] = ()
) -> Callable[[Callable[[Any], None]], Any]:
    def job(publish: Callable[[Any], None]) -> Any:
        calls.append(1)
        for p in partials:
            publish(p)
        assert gate.wait(HANG)
        return "final"

    return job


def _wait_until(cond: Callable[[], bool]) -> None:
    done = threading.Event()
    for _ in range(int(HANG / 0.01)):
        if cond():
            return
        done.wait(0.01)
    raise AssertionError("condition not reached (hang)")


def test_concurrent_identical_requests_are_computed_once() -> None:
    """Eight requests for one key while its computation runs: one computation, eight
    identical answers; the followers join, nothing is computed twice."""
    cache, queue, gate, calls = ResultCache(), ModelQueue(), threading.Event(), []
    results: list[list[tuple[Any, str]]] = []
    lock = threading.Lock()

    def request() -> None:
        out = _get(cache, "k", _blocking_job(gate, calls), submit=queue.submit)
        with lock:
            results.append(out)

    threads = [threading.Thread(target=request) for _ in range(8)]
    for t in threads:
        t.start()
    _wait_until(lambda: cache.stats().misses + cache.stats().joins == 8)
    gate.set()
    for t in threads:
        t.join(HANG)
    assert calls == [1]
    assert sorted(r[-1][1] for r in results) == ["computed"] + ["joined"] * 7
    assert all(r[-1][0] == "final" for r in results)
    s = cache.stats()
    assert (s.misses, s.joins, s.hits, s.entries) == (1, 7, 0, 1)


def test_followers_see_the_partial_results_in_order() -> None:
    flight = Flight()
    flight.publish(1)
    seen = flight.follow()
    assert next(seen) == 1
    flight.publish(2)
    assert next(seen) == 2
    flight.finish(3)
    assert list(seen) == [3]
    assert list(flight.follow()) == [1, 2, 3]  # a late follower gets every step too
    failed = Flight()
    failed.fail(ValueError("bad pixels"))
    with pytest.raises(ValueError, match="bad pixels"):
        list(failed.follow())


def test_a_request_that_goes_away_does_not_stop_its_computation() -> None:
    """The first caller stops reading after the first partial result: the computation
    finishes in the queue and the next identical request is a cache hit."""
    cache, queue, gate, calls = ResultCache(), ModelQueue(), threading.Event(), []
    stream = cache.stream("k", _blocking_job(gate, calls, ("partial",)), submit=queue.submit)
    assert next(stream) == ("partial", "computed")
    stream.close()
    gate.set()
    _wait_until(lambda: "k" in cache)
    assert _get(cache, "k", _const("other")) == [("final", "cache")] and calls == [1]


def test_the_cache_is_thread_safe_under_mixed_load() -> None:
    """32 threads × 20 requests over 6 keys (bounded to 4 entries, so entries are also
    evicted while others read): every answer is its key's value, the counters add up."""
    cache, queue = ResultCache(max_entries=4), ModelQueue()
    wrong: list[tuple[str, Any]] = []

    def worker(i: int) -> None:
        for j in range(20):
            key = f"k{(i * 7 + j) % 6}"
            out = _get(cache, key, _const(key), submit=queue.submit)
            if out[-1][0] != key:
                wrong.append((key, out))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(HANG)
    s = cache.stats()
    assert not wrong
    assert s.hits + s.joins + s.misses == 32 * 20
    assert s.entries <= 4 and s.misses >= 6


def test_the_model_queue_runs_requests_first_come_first_served_then_background() -> None:
    queue, gate, order = ModelQueue(), threading.Event(), []
    started, finished = threading.Event(), threading.Event()

    def blocker() -> None:
        started.set()
        assert gate.wait(HANG)
        order.append("blocker")

    queue.submit(blocker)
    assert started.wait(HANG)
    warm = queue.submit(lambda: order.append("background"), BACKGROUND)
    first = queue.submit(lambda: order.append("first"))
    second = queue.submit(lambda: order.append("second"))
    assert (queue.ahead(first), queue.ahead(second), queue.ahead(warm)) == (1, 2, 3)
    assert queue.pending() == 4
    queue.submit(finished.set, BACKGROUND)
    gate.set()
    assert finished.wait(HANG)
    assert order == ["blocker", "first", "second", "background"]


def test_sizes_keys_and_env_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    a = np.zeros((10, 10), dtype=np.float32)
    assert nbytes({"x": a, "y": [a, a]}) < 2 * a.nbytes  # a shared array counts once
    assert nbytes([a, a.copy()]) >= 2 * a.nbytes
    b = a.copy()
    b[3, 4] = 1e-7
    assert pixel_digest(a) == pixel_digest(a.copy()) != pixel_digest(b)
    assert pixel_digest(a) != pixel_digest(a.reshape(100, 1))
    base = request_key("compare", a, {"a": 1.0}, [("m", "h1")])
    assert base == request_key("compare", a.copy(), {"a": 1.0}, [("m", "h1")])
    others = [
        request_key("sweep", a, {"a": 1.0}, [("m", "h1")]),
        request_key("compare", b, {"a": 1.0}, [("m", "h1")]),
        request_key("compare", a, {"a": 0.5}, [("m", "h1")]),
        request_key("compare", a, {"a": 1.0}, [("m", "h2")]),
        request_key("compare", a, {"a": 1.0}, [("m", "h1")], backbone="x"),
    ]
    assert len({base, *others}) == 6
    monkeypatch.setenv("WNE_RESULT_CACHE_ENTRIES", "3")
    monkeypatch.setenv("WNE_RESULT_CACHE_MB", "2")
    c = cache_from_env()
    assert (c.max_entries, c.max_bytes) == (3, 2 * 2**20)
    monkeypatch.setenv("WNE_RESULT_CACHE_ENTRIES", "many")
    assert cache_from_env().max_entries == 64


# ----------------------------------------------------------------------------- through the handlers


def _make_zoo(root: Path, seed_offset: int) -> Zoo:
    for i, slot in enumerate(DEMO_KEYS):
        save_demo_checkpoint(root, *slot, seed=i + seed_offset)
    return Zoo.discover(root, device="cpu", hub_repo="")


@pytest.fixture(scope="module")
def zoos(tmp_path_factory: pytest.TempPathFactory) -> tuple[Zoo, Zoo]:
    """Two zoos with the same keys and different weights."""
    return (
        _make_zoo(tmp_path_factory.mktemp("zoo_a"), 0),
        _make_zoo(tmp_path_factory.mktemp("zoo_b"), 100),
    )


def _image(tmp_path: Path, seed: int = 0, name: str = "in.png") -> Path:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:40, 0:48] / 48
    rgb = np.stack([0.5 + 0.3 * np.sin(6 * xx + k) * (yy > 0.3) for k in range(3)], -1)
    rgb = np.clip(rgb + 0.05 * rng.standard_normal(rgb.shape), 0, 1)
    path = tmp_path / name
    Image.fromarray((rgb * 255).astype(np.uint8)).save(path)
    return path


ARGS: dict[str, Any] = {"backbones": ["dncnn", "swinir"], "max_side": 48, "sigma_train": 25}


def test_fingerprints_are_the_checkpoints_sha256(zoos: tuple[Zoo, Zoo]) -> None:
    a, b = zoos
    key = catalog.key("dncnn", "wne", 25)
    assert a.fingerprint("dncnn", "wne", 25) == a.models[key].wne_config.sha256
    assert a.fingerprint("dncnn", "wne", 25) != b.fingerprint("dncnn", "wne", 25)
    assert a.fingerprint("dncnn", "wne", 10) == "none"  # missing on purpose


def test_different_pixels_settings_or_checkpoints_never_share_an_entry(
    zoos: tuple[Zoo, Zoo], tmp_path: Path
) -> None:
    """One cache shared by two handlers whose checkpoints differ: a request identical in
    everything is served once; any difference is a new entry with its own result."""
    cache = ResultCache()
    ha, hb = DemoHandlers(zoos[0], cache=cache), DemoHandlers(zoos[1], cache=cache)
    img, other = _image(tmp_path), _image(tmp_path, seed=1, name="other.png")
    first = ha.denoise(str(img), **ARGS)
    again = ha.denoise(str(img), **ARGS)
    assert cache.stats().hits == 1 and len(cache) == 1
    np.testing.assert_array_equal(again.gallery[1][0], first.gallery[1][0])
    assert again.summary == first.summary

    changed = [
        hb.denoise(str(img), **ARGS),  # other checkpoints
        ha.denoise(str(other), **ARGS),  # other pixels
        ha.denoise(str(img), **{**ARGS, "seed": 1}),  # other settings
        ha.denoise(str(img), **{**ARGS, "max_side": 40}),  # other working size
    ]
    assert cache.stats().hits == 1 and len(cache) == 5
    for view in changed:
        assert not np.array_equal(view.gallery[1][0], first.gallery[1][0])
    # a copy of the same file under another name is the same request
    copy = tmp_path / "copy.png"
    copy.write_bytes(img.read_bytes())
    ha.denoise(str(copy), **ARGS)
    assert cache.stats().hits == 2 and len(cache) == 5
    ha.equivariance(str(img), backbone="dncnn", max_side=48)
    ha.equivariance(str(img), backbone="dncnn", max_side=48)
    ha.sweep(str(img), backbones=["dncnn"])
    ha.sweep(str(img), backbones=["dncnn"])
    assert cache.stats().hits == 4 and len(cache) == 7


def test_the_comparison_streams_noisy_input_first_then_model_by_model(
    zoos: tuple[Zoo, Zoo], tmp_path: Path
) -> None:
    h = DemoHandlers(zoos[0], cache=ResultCache())
    views = list(h.denoise_stream(str(_image(tmp_path)), **ARGS))
    order = ["dncnn-plain-s25", "dncnn-wne-s25", "swinir-plain-s25", "swinir-wne-s25"]
    assert len(views) == len(order) + 1
    for i, view in enumerate(views):
        assert list(view.summary["models"]) == order[:i]
        assert view.summary["pending"] == order[i:]
        assert view.noisy.shape == views[-1].noisy.shape
        np.testing.assert_array_equal(view.noisy, views[-1].noisy)
        assert len(view.gallery) == i
    first = views[0]
    cnn = next(p for p in first.panels if p.backbone == "dncnn")
    assert cnn.left is None and "computing" in cnn.left_label and "computing" in cnn.header
    assert [row[0] for row in first.table][1:] == [
        "CNN · plain (computing…)",
        "CNN · WNE (computing…)",
        "Transformer · plain (computing…)",
        "Transformer · WNE (computing…)",
    ]
    half = next(p for p in views[2].panels if p.backbone == "dncnn")
    assert half.left is not None and half.right is not None and half.slider is not None
    assert "computing" not in half.header
    assert "computing" in next(p for p in views[2].panels if p.backbone == "swinir").header
    final = views[-1]
    assert final.summary["pending"] == [] and final.notes  # notes come with the last step
    repeat = list(h.denoise_stream(str(_image(tmp_path)), **ARGS))
    assert len(repeat) == 1 and repeat[0].summary == final.summary  # a hit: one final view


def test_a_shared_result_streams_to_the_request_that_joins(
    zoos: tuple[Zoo, Zoo], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two identical comparisons at once: the models run once; the second request follows
    the first one's computation and ends with the same views."""
    h = DemoHandlers(zoos[0], cache=ResultCache())
    gate, entered = threading.Event(), threading.Event()
    real = h._compute

    def held(*args: Any) -> Any:
        entered.set()
        assert gate.wait(HANG)
        return real(*args)

    monkeypatch.setattr(h, "_compute", held)
    img = str(_image(tmp_path))
    out: dict[str, list[Any]] = {}

    def request(name: str) -> None:
        out[name] = list(h.denoise_stream(img, **ARGS))

    first = threading.Thread(target=request, args=("first",))
    first.start()
    assert entered.wait(HANG)
    second = threading.Thread(target=request, args=("second",))
    second.start()
    _wait_until(lambda: h.cache.stats().joins == 1)
    gate.set()
    first.join(HANG)
    second.join(HANG)
    s = h.cache.stats()
    assert (s.misses, s.joins, s.hits) == (1, 1, 0)
    assert out["first"][-1].summary == out["second"][-1].summary
    assert len(out["second"]) >= 1


def test_warming_fills_the_cache_with_the_example_requests(
    zoos: tuple[Zoo, Zoo], tmp_path: Path
) -> None:
    h = DemoHandlers(zoos[0], cache=ResultCache())
    img = _image(tmp_path)
    requests = [(str(img), ARGS), (str(img), {**ARGS, "a": 0.5}), (str(img), {"a": "x"})]
    assert h.warm(requests) == 2  # the bad one is logged and skipped
    h.denoise(str(img), **{**ARGS, "a": 0.5})
    assert h.cache.stats().hits == 1
