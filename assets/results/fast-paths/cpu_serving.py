"""The CPU measurements behind issue 13's serving fixes (lab book, "Latency": session 7).

Run from the repository root on a quiet machine::

    PYTHONPATH=. python assets/results/fast-paths/cpu_serving.py            # in process
    PYTHONPATH=. python assets/results/fast-paths/cpu_serving.py --url http://127.0.0.1:7861

Parts (the bundled CPU-sized σ=25 checkpoints, the parrots example at 256 px, colour):

- ``side-by-side``: :func:`wne.demo.compare.compare`, the four models one after the other on
  two threads vs a backbone's two models side by side on one thread each (median of 5
  paired runs, alternated);
- ``chunks``: SwinIR-WNE on 3 × 256² under ``inference_mode``, all windows at once vs
  chunks of 4096 / 8192 / 16384 tokens, on one and on two threads (min of 5);
- ``thread``: the same model on the main thread vs a new thread (two threads, min of 5);
- ``handler``: ``DemoHandlers.denoise_stream`` to its last step (p50 of 6 after 2 warm-ups);
- ``--url``: against a running ``WNE_DEMO_MAX_SIDE=256 python app.py``: fetching a result's
  files with a new HTTP client each (as ``gradio_client`` does) vs one connection, and
  ``gradio_client`` requests with and without fetching the files (p50 of 6, new seeds).
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

PARROTS = Path("assets/examples/parrots.png")


def _min_time(fn: Any, n: int = 5) -> float:
    fn()
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return min(ts)


def side_by_side() -> dict[str, float]:
    from wne.demo import compare as cmp
    from wne.demo.settings import Settings
    from wne.demo.zoo import Zoo
    from wne.imageio import read_image

    zoo = Zoo.discover(None, hub_repo="").select("cpu")
    clean = read_image(PARROTS, channels=3)
    settings = Settings(sigma_train=25, backbones=("dncnn", "swinir"), checkpoint="cpu")
    times: dict[str, list[float]] = {"one after the other": [], "side by side": []}
    for i in range(6):
        for label, env in (("one after the other", "0"), ("side by side", "1")):
            os.environ[cmp.SIDE_BY_SIDE_ENV] = env
            t = time.perf_counter()
            cmp.compare(zoo, clean, settings)
            if i:  # the first round warms up
                times[label].append(time.perf_counter() - t)
    os.environ.pop(cmp.SIDE_BY_SIDE_ENV)
    return {k: round(statistics.median(v), 3) for k, v in times.items()}


def chunks() -> dict[str, float]:
    import wne
    import wne.models.swinir as swin

    model = wne.load("swinir-wne-s25").eval()
    x = torch.rand(3, 1, 256, 256, generator=torch.Generator().manual_seed(0))
    out = {}
    before = (torch.get_num_threads(), swin.CHUNK_TOKENS)
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for size in (10**9, 4096, 8192, 16384):
            swin.CHUNK_TOKENS = size
            with torch.inference_mode():
                s = _min_time(lambda: model(x))
            out[f"{threads} thread(s), {'all at once' if size == 10**9 else size}"] = round(s, 3)
    torch.set_num_threads(before[0])
    swin.CHUNK_TOKENS = before[1]
    return out


def thread() -> dict[str, float]:
    import wne

    model = wne.load("swinir-wne-s25").eval()
    x = torch.rand(3, 1, 256, 256, generator=torch.Generator().manual_seed(0))
    out: dict[str, float] = {}

    def run(label: str) -> None:
        with torch.inference_mode():
            out[label] = round(_min_time(lambda: model(x)), 3)

    run("main thread")
    worker = threading.Thread(target=run, args=("new thread",))
    worker.start()
    worker.join()
    return out


def handler() -> dict[str, float]:
    from wne.demo import DemoHandlers, Zoo

    h = DemoHandlers(Zoo.discover(None, hub_repo=""))
    times = []
    for i in range(8):
        t = time.perf_counter()
        for _ in h.denoise_stream(str(PARROTS), None, seed=300 + i, checkpoint="cpu", max_side=256):
            pass
        if i >= 2:
            times.append(time.perf_counter() - t)
    return {"denoise_stream p50": round(statistics.median(times), 3)}


def fetch(url: str) -> dict[str, float]:
    import httpx
    from gradio_client import Client, handle_file

    def files(value: Any) -> list[str]:
        if isinstance(value, dict):
            own = [value["url"]] if isinstance(value.get("url"), str) else []
            return own + [u for v in value.values() for u in files(v)]
        if isinstance(value, list | tuple):
            return [u for v in value for u in files(v)]
        return []

    plain = Client(url, verbose=False, download_files=False)
    kw = {"checkpoint": "cpu", "max_side": 256, "api_name": "/denoise"}
    urls = files(plain.predict(image=handle_file(str(PARROTS)), seed=9000, **kw)[:3])
    out: dict[str, float] = {"files": len(urls)}
    t = time.perf_counter()
    for u in urls:
        with httpx.stream("GET", u) as r:
            r.read()
    out["ms per file, a new client each"] = round(1000 * (time.perf_counter() - t) / len(urls), 1)
    with httpx.Client() as one:
        t = time.perf_counter()
        for u in urls:
            one.get(u).raise_for_status()
    out["ms per file, one connection"] = round(1000 * (time.perf_counter() - t) / len(urls), 1)
    seed = 10_000 + int(time.time()) % 100_000
    for label, client in (("fetching", Client(url, verbose=False)), ("not fetching", plain)):
        times = []
        for _ in range(6):
            seed += 1
            t = time.perf_counter()
            client.predict(image=handle_file(str(PARROTS)), seed=seed, **kw)
            times.append(time.perf_counter() - t)
        out[f"gradio_client p50, {label}"] = round(statistics.median(times), 3)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--url", help="a running app: measure the client's file fetches only")
    args = p.parse_args()
    np.set_printoptions(precision=3)
    parts = (
        {"fetch": lambda: fetch(args.url)}
        if args.url
        else {
            "side-by-side": side_by_side,
            "chunks": chunks,
            "thread": thread,
            "handler": handler,
        }
    )
    for name, fn in parts.items():
        print(f"{name}: {fn()}", flush=True)


if __name__ == "__main__":
    main()
