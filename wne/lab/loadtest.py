"""Latency and load test of the demo through ``gradio_client`` (``wne loadtest``, a script).

Starts ``app.py`` on a loopback port (Hub off) or uses ``--url``; writes ``OUT/app-<mode>.json``.
``latency``: cold start (process start → first ``/denoise`` answer), sequential requests, then
concurrent clients. ``load``: many clients at once; a burst beyond the app's queue (the surplus
refused with "Queue is full"); requests up to the 100th (or ``--soak``) with the server's RSS
every 10; a last request. ``classroom``: 30 clients at once, each one example with its settings
(client ``i`` takes example ``i mod n``), then an upload of its own; RSS before, peak, after and
the server's result-cache outcomes (its log). ``restore``: ``/restore`` per backbone, size and
step budget. Latencies: p50/p95 to the complete answer (its images fetched once over HTTP, as a
page shows them) and to the first streamed step with a model's output. gradio_client's own
downloads are off: it fetches every file of every streamed step, in Python, on the machine under
test (its cost: the lab book). Outside the classroom each request has its own seed (computed,
never a cache hit) and the app does not warm its cache.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from wne.demo.content import load_examples
from wne.lab.bench import machine_info
from wne.settings import EnvSettings

CLASS_SIZE, UPLOAD_SIDE = 30, 512  # the classroom's clients, the side of their own uploads
Plan = list[tuple[str, Any, dict[str, Any]]]  # one client's requests: endpoint, image, arguments


def summarize(seconds: Sequence[float]) -> dict[str, Any]:
    """Count, p50 and p95 (numpy's linear interpolation), mean, min and max, in seconds."""
    if not len(seconds):
        return {"n": 0}
    stats = dict(zip(("p50_s", "p95_s"), np.percentile(seconds, [50, 95]), strict=True))
    stats |= {"mean_s": np.mean(seconds), "min_s": np.min(seconds), "max_s": np.max(seconds)}
    return {"n": len(seconds), **{k: round(float(v), 3) for k, v in stats.items()}}


@dataclass
class Result:
    """One request: ``seconds`` to the complete answer, ``first_s`` to the first streamed step
    with a model's output, the answer's JSON record (``summary``) and the ``steps`` streamed."""

    seconds: float
    first_s: float | None = None
    error: str = ""
    summary: dict[str, Any] = field(default_factory=dict)
    steps: int = 0


def _summary(output: Any) -> dict[str, Any]:
    """The JSON record of an endpoint's output (its dict with ``models``)."""
    items = output if isinstance(output, list | tuple) else [output]
    return next((o for o in reversed(items) if isinstance(o, dict) and "models" in o), {})


def _has_model(output: Any) -> bool:
    models = _summary(output).get("models", {}).values()
    return any(isinstance(m, dict) and m.get("available", True) for m in models)


def _file_urls(output: Any, root_url: str) -> list[str]:
    """The URLs the files of an endpoint's output are served at (as gradio_client builds them)."""
    from gradio_client.utils import encode_file_path, is_file_obj_with_meta, traverse

    paths: list[str] = []
    traverse(output, lambda f: paths.append(f["path"]) or f, is_file_obj_with_meta)
    return [f"{root_url}file={encode_file_path(p)}" for p in paths]


def _refused(error: str) -> bool:
    return "queue is full" in error.lower()


@dataclass
class Server:
    """A running app: its ``url``, our process of it (``None`` for ``--url``) and its log; counts
    finished requests and keeps the server's RSS (MiB) after every 10th in ``rss_trace``."""

    url: str
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    timeout: float = 300.0
    started: float = field(default_factory=time.perf_counter)
    done: int = 0
    rss_trace: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _http: Any = None

    def rss_mb(self) -> float:
        """The server process's resident memory (0 when the process is not ours)."""
        import psutil

        return psutil.Process(self.proc.pid).memory_info().rss / 2**20 if self.proc else 0.0

    def http(self) -> Any:
        """One HTTP connection pool of the test's (``httpx``), for the answers' files."""
        import httpx

        with self.lock:
            self._http = self._http or httpx.Client(timeout=self.timeout)
        return self._http

    def cache_stats(self) -> dict[str, Any]:
        """The app's result-cache counters (its ``/cache_stats`` endpoint)."""
        from gradio_client import Client

        return Client(self.url, verbose=False).predict(api_name="/cache_stats")

    def log_text(self) -> str:
        """The server's log so far."""
        return self.log.read_text(errors="replace") if self.log and self.log.is_file() else ""

    def call(self, client: Any, endpoint: str, image: Any, **kw: Any) -> Result:
        """Sends one request through ``client`` and times it; errors are recorded, not raised."""
        from gradio_client import handle_file

        t, first, seen = time.perf_counter(), None, 0
        try:
            job = client.submit(image=handle_file(str(image)), api_name=endpoint, **kw)
            while not job.done() and time.perf_counter() - t < self.timeout:
                outputs = job.outputs()  # the streamed steps so far, files fetched
                if first is None and any(_has_model(o) for o in outputs[seen:]):
                    first = time.perf_counter() - t
                seen = len(outputs)
                time.sleep(0.02)
            final = job.result(timeout=max(1.0, self.timeout - (time.perf_counter() - t)))
            for url in _file_urls(final, client.src_prefixed):
                self.http().get(url).raise_for_status()
            seconds, ok = time.perf_counter() - t, _has_model(final)
            error = "" if ok else "no model output"
            steps, first = max(seen, len(job.outputs())), first or (seconds if ok else None)
            return Result(seconds, first, error, _summary(final), steps)
        except Exception as exc:
            return Result(time.perf_counter() - t, error=f"{type(exc).__name__}: {exc}"[:300])
        finally:
            with self.lock:
                self.done += 1
                if self.done % 10 == 0 and self.proc:
                    self.rss_trace[str(self.done)] = round(self.rss_mb(), 1)

    def clients(self, plans: list[Plan]) -> tuple[list[list[Result]], float]:
        """One gradio_client per plan, all started at once, each sending its requests in turn."""
        from gradio_client import Client

        clients = [Client(self.url, verbose=False, download_files=False) for _ in plans]
        barrier = threading.Barrier(len(plans))

        def user(i: int) -> list[Result]:
            barrier.wait()
            return [self.call(clients[i], ep, img, **kw) for ep, img, kw in plans[i]]

        t = time.perf_counter()
        with ThreadPoolExecutor(len(plans)) as pool:
            results = list(pool.map(user, range(len(plans))))
        return results, time.perf_counter() - t


@contextlib.contextmanager
def launch_app(
    app: Path, workdir: Path, env: dict[str, str], timeout: float = 300
) -> Iterator[Server]:
    """Starts ``python app.py`` on a free loopback port and stops it on exit (ValueError: not
    loopback; FileNotFoundError: no app; RuntimeError: it exits or does not answer in time)."""
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    full = {k: v for k, v in os.environ.items() if not k.startswith("WNE_HUB_")}
    full |= {"GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port)}
    full |= {"GRADIO_ANALYTICS_ENABLED": "False", "GRADIO_TEMP_DIR": str(workdir / "gradio")}
    full |= {"HF_HUB_OFFLINE": "1", "PYTHONPATH": str(Path(app).resolve().parent), **env}
    if full["GRADIO_SERVER_NAME"] not in ("127.0.0.1", "localhost"):
        raise ValueError("the load test only talks to loopback servers")
    if not Path(app).is_file():
        raise FileNotFoundError(f"demo app {app} not found: run from the repository or pass --app")
    log = workdir / "app.log"
    with open(log, "wb") as out:
        cmd = [sys.executable, str(Path(app).resolve())]
        proc = subprocess.Popen(cmd, cwd=workdir, env=full, stdout=out, stderr=subprocess.STDOUT)
    server = Server(f"http://127.0.0.1:{port}", proc, log)
    try:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(server.url + "/gradio_api/info", timeout=5).status_code == 200:
                    break
            if proc.poll() is not None or time.perf_counter() - server.started > timeout:
                raise RuntimeError(f"app.py exited or did not answer:\n{server.log_text()[-3000:]}")
            time.sleep(0.25)
        yield server
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)
        proc.kill()  # a no-op when it has exited
        proc.wait()


def _phase(results: list[Result], wall: float) -> dict[str, Any]:
    ok = [r for r in results if not r.error]
    errors = [r.error for r in results if r.error and not _refused(r.error)]
    doc = {"requests": len(results), "errors": len(errors), "samples": sorted(set(errors))[:5]}
    doc["refused_queue_full"] = len(results) - len(ok) - len(errors)
    doc["latency"] = summarize([r.seconds for r in ok])
    doc["first_model_result"] = summarize([r.first_s for r in ok if r.first_s is not None])
    return doc | {"wall_s": round(wall, 2), "throughput_rps": round(len(ok) / max(wall, 1e-9), 3)}


def examples_of(app: Path) -> list[tuple[Path, dict[str, Any]]]:
    """The demo's examples beside ``app`` (:func:`wne.demo.content.load_examples`)."""
    return [(e.path, e.settings) for e in load_examples(app.resolve().parent / "assets/examples")]


def distinct_uploads(
    images: list[Path], n: int, folder: Path, side: int = UPLOAD_SIDE
) -> list[Path]:
    """``n`` distinct colour PNGs in ``folder``: the images in turn, resized to ``side``², shifted
    by a different offset each and mirrored every other round."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        with Image.open(images[i % len(images)]) as im:
            img = np.asarray(im.convert("RGB").resize((side, side), Image.Resampling.BICUBIC))
        img = np.roll(img, (17 * i + 5, 31 * i + 3), axis=(0, 1))[:, :: (-1) ** (i // len(images))]
        Image.fromarray(np.ascontiguousarray(img)).save(folder / f"upload-{i:02d}.png")
    return [folder / f"upload-{i:02d}.png" for i in range(n)]


def cache_counts(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, int]]:
    """The server's result-cache outcomes per computation between two ``/cache_stats``."""
    was, now = before["computations"], after["computations"]
    none = {"cache": 0, "joined": 0, "computed": 0}
    return {
        kind: {k: n - was.get(kind, none)[k] for k, n in counts.items()}
        for kind, counts in now.items()
        if counts != was.get(kind, none)
    }


def _overflow(server: Server, client: Any, image: Path, n: int, seeds: Iterator[int]) -> dict:
    """Submits ``n`` cheap requests (64 px, CNN only) at once: completed, refused, other."""
    from gradio_client import handle_file

    cheap = {"api_name": "/denoise", "backbones": ["dncnn"], "max_side": 64}
    jobs = [client.submit(image=handle_file(str(image)), seed=s, **cheap)
            for s in itertools.islice(seeds, n)]  # fmt: skip
    outcomes = [""] * n
    for i, job in enumerate(jobs):
        try:
            job.result(timeout=server.timeout)
        except Exception as exc:
            outcomes[i] = f"{type(exc).__name__}: {exc}"[:200]
    other = sorted({o for o in outcomes if o and not _refused(o)})
    done = {"completed": outcomes.count(""), "refused_queue_full": sum(map(_refused, outcomes))}
    return {"submitted": n, **done, "other_errors": n - sum(done.values()), "samples": other[:5]}


def _classroom(server: Server, args: argparse.Namespace) -> dict[str, Any]:
    """Every client at once: an example (its settings), then its own upload."""
    lesson: dict[str, Any] = {"clients": args.clients}
    t = time.perf_counter()
    while args.warm and server.proc and time.perf_counter() - t < 600:
        if server.cache_stats()["warmed"]:  # the app's start-up warming is done
            lesson["warm_waited_s"] = round(time.perf_counter() - t, 2)
            break
        time.sleep(0.5)
    examples = examples_of(args.app)
    uploads = distinct_uploads([p for p, _ in examples], args.clients, args.workdir / "uploads")
    plans = [[("/denoise", *examples[i % len(examples)]), ("/denoise", up, {})]
             for i, up in enumerate(uploads)]  # fmt: skip
    peak, stop, before = [server.rss_mb()], threading.Event(), server.cache_stats()

    def sample() -> None:
        while not stop.wait(0.5):
            peak.append(server.rss_mb())

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        results, wall = server.clients(plans)
    finally:
        stop.set()
        sampler.join()
    for i, name in enumerate(("examples_phase", "uploads_phase")):
        lesson[name] = _phase([rs[i] for rs in results if len(rs) > i], wall)
    rss = {"before": peak[0], "peak": max(peak), "after": server.rss_mb()}
    lesson["rss_mb"] = {k: round(v, 1) for k, v in rss.items()}
    lesson["server_cache"] = cache_counts(before, server.cache_stats())
    return lesson


def run(args: argparse.Namespace, server: Server) -> dict[str, Any]:
    """Runs ``args.mode`` against ``server`` and returns the JSON document."""
    from gradio_client import Client

    seeds = itertools.count(1000)  # a seed of its own per request: no cache hit, no sharing
    image, client = args.image, Client(server.url, verbose=False, download_files=False)

    def denoise(n: int) -> list[Result]:
        return [server.call(client, "/denoise", image, seed=next(seeds)) for _ in range(n)]

    def plans(clients: int, n: int) -> list[Plan]:
        return [[("/denoise", image, {"seed": s}) for s in itertools.islice(seeds, n)]
                for _ in range(clients)]  # fmt: skip

    first = denoise(1)[0]
    if first.error:
        raise RuntimeError(f"the first request failed: {first.error}\n{server.log_text()[-3000:]}")
    doc: dict[str, Any] = {"mode": args.mode, "machine": machine_info(), "image": image.name}
    doc |= {"checkpoints": str(args.checkpoints or "bundled"), "first_s": round(first.seconds, 2)}
    shown = first.summary.get("settings", {})  # what the page's defaults ran
    doc["request"] = {"max_side": shown.get("max_side"), "models": sorted(first.summary["models"])}
    if server.proc:
        doc["cold_start_s"] = round(time.perf_counter() - server.started, 2)
    if args.mode == "latency":
        seq = denoise(args.sequential)
        doc["sequential"] = _phase(seq, sum(r.seconds for r in seq))
        results, wall = server.clients(plans(args.concurrent, args.concurrent_requests))
        doc[f"concurrent_{args.concurrent}"] = _phase([r for rs in results for r in rs], wall)
    elif args.mode == "load":
        results, wall = server.clients(plans(args.clients, args.requests))
        doc["load"] = {"clients": args.clients, "requests_per_client": args.requests}
        doc["load"] |= _phase([r for rs in results for r in rs], wall)
        room = EnvSettings.from_env()  # the app's room: handled at once, then waiting
        burst = room.concurrent_requests + room.queue_size + args.overflow_extra
        doc["overflow"] = _overflow(server, client, image, burst, seeds)
        extra = denoise(max(args.soak, args.rss_requests - server.done))
        trace, last = server.rss_trace, str(args.rss_requests)
        growth = trace[last] / trace["10"] - 1 if {"10", last} <= trace.keys() else None
        doc["memory"] = {"rss_mb_every_10_requests": trace, f"growth_10_to_{last}": growth}
        doc["memory"]["extra_requests"] = len(extra)
        last = denoise(1)[0]
        alive = server.proc is None or server.proc.poll() is None
        doc["after"] = {"ok": not last.error, "error": last.error, "alive": alive}
    elif args.mode == "classroom":
        doc["classroom"] = _classroom(server, args)
    else:
        doc["restore"] = []
        keep = ("label", "steps", "stop", "seconds", "psnr")
        for backbone, side, steps in itertools.product(args.backbones, args.sizes, args.steps):
            kw = {"backbone": backbone, "max_side": side, "max_steps": steps}
            kw = {k: v for k, v in kw.items() if v is not None}
            kw |= {"sigma_train": args.sigma_train} if args.sigma_train is not None else {}
            r = server.call(client, "/restore", image, **kw)
            got = r.summary.get("models", {}).items()
            models = {k: {f: m.get(f) for f in keep} for k, m in got}
            row = {"request": kw, "wall_s": round(r.seconds, 2), "snapshots": r.steps}
            doc["restore"].append({**row, "error": r.error, "models": models})
    doc["loadavg_end"] = machine_info()["loadavg"]
    return doc


def build_parser() -> argparse.ArgumentParser:
    """The ``wne loadtest`` argument parser."""
    p = argparse.ArgumentParser(prog="wne loadtest", description=__doc__.split("\n")[0])
    add = p.add_argument
    add("--mode", choices=("latency", "load", "classroom", "restore"), default="latency")
    add("--url", help="a running app (default: start --app on a loopback port)")
    add("--app", type=Path, default=Path("app.py"), help="the demo's app.py")
    add("--checkpoints", type=Path, help="the started app's checkpoint folder (default: bundled)")
    add("--image", type=Path, help="request image (default: the first example)")
    add("--sequential", type=int, default=20)
    add("--concurrent", type=int, default=4)
    add("--concurrent-requests", type=int, default=5)
    add("--clients", type=int, help=f"load: 16 (default); classroom: {CLASS_SIZE}")
    add("--requests", type=int, default=5, help="per client in the load mode")
    add("--overflow-extra", type=int, default=8, help="requests beyond the queue in the burst")
    add("--soak", type=int, default=0, help="sequential requests after the load")
    add("--rss-requests", type=int, default=100, help="load: RSS growth from request 10 to N")
    add("--no-warm", dest="warm", action="store_false", help="the app does not warm its cache")
    add("--backbones", nargs="+", default=["dncnn", "swinir"], help="restore: backbones")
    add("--sizes", type=int, nargs="+", default=[None], help="restore: working sizes")
    add("--steps", type=int, nargs="+", default=[None], help="restore: step budgets")
    add("--sigma-train", type=int, help="restore: the models' training σ (default: the app's)")
    add("--request-timeout", type=float, default=300.0)
    add("--out", type=Path, default=Path("assets/results"), help="folder of app-<mode>.json")
    add("--no-write", action="store_true", help="print only")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """``wne loadtest``: exit status 0 (bad arguments exit with 2)."""
    p = build_parser()
    args = p.parse_args(argv)
    if args.clients is None:
        args.clients = CLASS_SIZE if args.mode == "classroom" else 16
    for name in ("sequential", "concurrent", "concurrent_requests", "clients", "requests"):
        if not 0 < getattr(args, name) <= 64:
            p.error(f"--{name.replace('_', '-')} must be in [1, 64] (the test is bounded)")
    if args.url is None and not args.app.is_file():
        p.error(f"demo app {args.app} not found: run from the repository or pass --app PATH")
    args.image = args.image or next(iter(examples_of(args.app)), [None])[0]
    if args.image is None:
        p.error("no example image beside the app: pass --image")
    env = {} if args.mode == "classroom" and args.warm else {"WNE_WARM_EXAMPLES": "0"}
    if args.checkpoints:
        env["WNE_CHECKPOINT_DIR"] = str(args.checkpoints.resolve())
    with tempfile.TemporaryDirectory(prefix="wne-") as tmp, contextlib.ExitStack() as stack:
        args.workdir = Path(tmp)
        started = None if args.url else launch_app(args.app, args.workdir, env)
        server = stack.enter_context(started) if started else Server(args.url)
        server.timeout = args.request_timeout
        doc = run(args, server)
    text = json.dumps(doc, indent=2)
    if not args.no_write:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"app-{args.mode}.json").write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
