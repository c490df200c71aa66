"""Load and latency test of the Gradio demo, on loopback (a script, not a unit test).

``wne-loadtest`` (or ``python -m wne.lab.loadtest``) starts the demo's ``app.py``
(``--app``, default ``app.py`` in the current directory) in a child process on a free
``127.0.0.1`` port (Hub access off: ``WNE_HUB_REPO`` unset, ``HF_HUB_OFFLINE=1``),
talks to it only through ``gradio_client`` and plain loopback HTTP, and stops it
at the end. Every phase is bounded in requests and in time (``--max-seconds``);
the script always terminates the server.

Phases (each request is the app's default comparison: the first example image,
every other argument the app's own default, read from its API description):

1. **cold start**: process start → first ``/denoise`` answer;
2. **sequential**: ``--sequential`` requests one after the other (p50/p95 until the
   complete result with its files fetched, and until the first streamed step holding a
   model's output, ``first_model_result``; ``model_time`` sums the models' own times,
   which overlap where the app ran two side by side);
3. **concurrent**: ``--concurrent`` clients × ``--concurrent-requests`` (p50/p95);
4. **load**: ``--clients`` clients × ``--requests`` each, all at once (errors, p50/p95,
   throughput);
5. **memory**: the server's RSS after the 10th and after the 100th request
   (more requests are sent if the phases above made fewer than 100);
6. **overflow**: one burst of ``WNE_CONCURRENT_REQUESTS + WNE_QUEUE_SIZE + --overflow-extra``
   cheap requests (64 px, CNN only; the requests the app handles at once plus those that
   may wait, and more) submitted at once: the surplus must be refused cleanly
   ("Queue is full") while the accepted ones complete; then a normal request must
   still succeed.

7. **classroom** (``--mode classroom``, ``app-classroom.json``): ``--clients`` (default
   30) clients at once, each sending one of the bundled examples (as its button does:
   the example's settings, the rest the page's defaults; client ``i`` takes example
   ``i mod n``, so the class shares a few examples) and then one upload of its own (a
   distinct image). p50/p95 of each phase and of its first streamed answer, errors,
   refusals ("Queue is full"), the server's RSS (before, peak, after) and the server's
   result-cache counts (from its log). The app warms its cache with the examples at
   start-up (``--no-warm``: ``WNE_WARM_EXAMPLES=0``); the class starts once that is done.
   Each client is a browser stand-in: one persistent connection speaking Gradio's
   documented HTTP API (upload, ``/gradio_api/call/denoise`` and its event stream, then
   the output images), a few ms of CPU per request where gradio_client takes ~0.2 s:
   thirty of those would take the server's cores, while a class's browsers have their own.

In phases 2–6 every request has its own noise seed, so the server computes each one
(the same cost as the default request; no result-cache hit, no coalescing), and the
app does not warm its cache (``WNE_WARM_EXAMPLES=0``): they measure the computation.

``--mode latency`` runs 1–3 and writes ``app-latency.json``; ``--mode load`` runs
1 and 4–6 and writes ``app-load.json``; ``--mode all`` (default) runs everything but the
classroom and writes both (into ``--out``, default ``assets/results`` under the current
directory); ``--mode classroom`` runs 1 and 7.
``--latency`` is short for ``--mode latency``. Checkpoints: ``--checkpoints DIR``,
the bundled ones (default), or ``--random`` (random-init models of the catalog's
σ_train = 25 entries, built from :mod:`wne.catalog`: the bundled models' sizes, so
the same compute). The request image defaults to the first example of
``assets/examples`` beside the app.
``--profile N`` also times N default requests in this process, stage by stage
(image reading, models, display conversion, PNG encoding) with a cProfile summary.
The machine's load average is recorded: on a shared machine latencies are inflated.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["AppProcess", "launch_app", "main", "run", "summarize", "write_random_checkpoints"]

TARGETS = {"p50_s": 3.0, "cold_start_s": 20.0, "rss_growth": 0.10, "class_examples_p95_s": 5.0}
"""Targets on 2 CPU cores: p50 ≤ 3 s, cold start ≤ 20 s, RSS(100) within 10 % of RSS(10), and
in the classroom 0 errors with the example requests' p95 ≤ 5 s."""
CLASS_SIZE = 30
"""Default number of clients of the classroom scenario."""
UPLOAD_SIDE = 512
"""Side of the classroom's distinct uploads (downscaled by the app to its working size)."""
DEFAULT_APP = Path("app.py")


def write_random_checkpoints(root: Path, sigma_train: int = 25) -> Path:
    """Writes random-init checkpoints of the catalog's entries at ``sigma_train``.

    Each is built from its :class:`wne.catalog.Entry` (backbone of the bundled
    recipe's size, WNE-wrapped for WNE entries), so it costs the same compute as the
    trained checkpoint it stands in for; it carries that checkpoint's recorded Set12
    numbers (``metrics.set12``, when the bundled folder has them), so the demo picks the
    same "best available" checkpoints as with the trained ones.

    Args:
        root: Folder to write ``root/<key>/`` into.
        sigma_train: Which σ_train group of the catalog.

    Returns:
        ``root``.
    """
    import torch

    import wne
    from wne import catalog, models

    bundled = wne.checkpoints.default_root()
    for i, entry in enumerate(catalog.entries(sigma_train=sigma_train)):
        kwargs = dict(entry.recipe().arch_kwargs)
        torch.manual_seed(i)
        model = models.build(entry.arch, **kwargs)
        if entry.wrapper == "wne":
            model = wne.NormEquivariant(model)
        try:
            set12 = wne.checkpoints.read_config(bundled / entry.key).metrics.get("set12")
        except wne.checkpoints.CheckpointError:
            set12 = None
        wne.save(
            model,
            root / entry.key,
            key=entry.key,
            arch=entry.arch,
            arch_kwargs=kwargs,
            sigma_train=entry.sigma_train,
            recipe={"note": "random init, benchmark only; metrics of the bundled checkpoint"},
            metrics={"set12": set12} if set12 else {},
        )
    return root


def _check_app(app: Path) -> Path:
    if not app.is_file():
        raise FileNotFoundError(
            f"demo app {app} not found: run from the repository root or pass --app PATH/app.py"
        )
    return app.resolve()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def summarize(seconds: list[float]) -> dict[str, Any]:
    """Count, p50, p95, mean, min and max of latencies (seconds, 3 decimals)."""
    if not seconds:
        return {"n": 0}
    xs = sorted(seconds)

    def pct(q: float) -> float:
        # Linear interpolation between closest ranks (numpy's default).
        pos = q * (len(xs) - 1)
        lo = int(pos)
        hi = min(lo + 1, len(xs) - 1)
        return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)

    return {
        "n": len(xs),
        "p50_s": round(pct(0.50), 3),
        "p95_s": round(pct(0.95), 3),
        "mean_s": round(statistics.fmean(xs), 3),
        "min_s": round(xs[0], 3),
        "max_s": round(xs[-1], 3),
    }


@dataclass
class AppProcess:
    """A running ``app.py`` child process.

    Attributes:
        proc: The process.
        url: ``http://127.0.0.1:<port>``.
        started: ``time.perf_counter()`` at launch.
        ready_s: Seconds from launch until the HTTP server answered.
        log: The server's combined stdout/stderr file.
    """

    proc: subprocess.Popen[bytes]
    url: str
    started: float
    ready_s: float
    log: Path

    def rss_mb(self) -> float:
        """Resident memory of the server process (MiB)."""
        import psutil

        return psutil.Process(self.proc.pid).memory_info().rss / 2**20

    def cpu_s(self) -> float:
        """CPU seconds (user + system) the server has used so far."""
        import psutil

        t = psutil.Process(self.proc.pid).cpu_times()
        return t.user + t.system

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.proc.poll() is None

    def log_text(self) -> str:
        """The server's log so far."""
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def log_tail(self, n: int = 3000) -> str:
        """The end of the server's log."""
        return self.log_text()[-n:]


@contextlib.contextmanager
def launch_app(
    *,
    checkpoint_dir: Path | None,
    workdir: Path,
    env: dict[str, str] | None = None,
    timeout: float = 300.0,
    app: Path = DEFAULT_APP,
) -> Iterator[AppProcess]:
    """Starts ``python app.py`` on a free loopback port; always stops it on exit.

    Args:
        checkpoint_dir: ``WNE_CHECKPOINT_DIR`` for the app (None: its default).
        workdir: The app's working directory (Gradio writes ``.gradio/`` there) and
            where its log and upload cache go.
        env: Extra environment variables (override the defaults set here).
        timeout: Seconds to wait for the server to answer.
        app: The demo's ``app.py`` (its folder is put on ``PYTHONPATH``, for a
            source checkout).

    Yields:
        The running app.

    Raises:
        ValueError: For a bind address other than loopback.
        FileNotFoundError: If ``app`` does not exist.
        RuntimeError: If the app exits or does not answer within ``timeout``.
    """
    import urllib.request

    port = _free_port()
    full_env = {
        k: v for k, v in os.environ.items() if k not in ("WNE_HUB_REPO", "WNE_HUB_REVISION")
    }
    full_env.update(
        {
            "GRADIO_SERVER_NAME": "127.0.0.1",
            "GRADIO_SERVER_PORT": str(port),
            "GRADIO_ANALYTICS_ENABLED": "False",
            "GRADIO_TEMP_DIR": str(workdir / "gradio-cache"),
            "GRADIO_EXAMPLES_CACHE": str(workdir / "examples-cache"),
            "HF_HUB_OFFLINE": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(Path(app).resolve().parent), os.environ.get("PYTHONPATH")])
            ),
        }
    )
    if checkpoint_dir is not None:
        full_env["WNE_CHECKPOINT_DIR"] = str(checkpoint_dir)
    full_env.update(env or {})
    if full_env["GRADIO_SERVER_NAME"] not in ("127.0.0.1", "localhost"):
        raise ValueError("the load test only talks to loopback servers")
    app = _check_app(Path(app))
    log = workdir / "app.log"
    start = time.perf_counter()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(app)],
            cwd=workdir,
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    app = AppProcess(proc, url, start, 0.0, log)
    try:
        deadline = start + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"app.py exited with code {proc.returncode}:\n{app.log_tail()}")
            try:
                with urllib.request.urlopen(url + "/gradio_api/info", timeout=5):
                    break
            except OSError:
                if time.perf_counter() > deadline:
                    raise RuntimeError(
                        f"app.py did not answer within {timeout:.0f} s:\n{app.log_tail()}"
                    ) from None
                time.sleep(0.25)
        app.ready_s = time.perf_counter() - start
        yield app
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)


@dataclass
class _Counter:
    """Counts finished requests and calls hooks when given counts are reached."""

    hooks: dict[int, Callable[[], None]] = field(default_factory=dict)
    every: int = 0
    on_every: Callable[[int], None] | None = None
    n: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def done(self) -> None:
        with self.lock:
            self.n += 1
            n = self.n
            hook = self.hooks.pop(n, None)
        if hook is not None:
            hook()
        if self.every and self.on_every is not None and n % self.every == 0:
            self.on_every(n)


@dataclass
class _Result:
    seconds: float
    ok: bool
    error: str = ""
    server_model_s: float = 0.0
    first_s: float | None = None  # until the first streamed answer (classroom)
    first_model_s: float | None = None  # until the first step with a model's output

    @property
    def refused(self) -> bool:
        """Refused because the queue was full (not an error of the app)."""
        return "queue is full" in self.error.lower()


def _client(url: str) -> Any:
    from gradio_client import Client

    return Client(url, verbose=False, httpx_kwargs={"timeout": 300})


def _file_urls(value: Any) -> list[str]:
    """The ``url`` of every file in an output left on the server."""
    if isinstance(value, dict):
        url = value.get("url")
        rest = [v for k, v in value.items() if k != "url"]
        return ([url] if isinstance(url, str) else []) + [u for v in rest for u in _file_urls(v)]
    if isinstance(value, list | tuple):
        return [u for v in value for u in _file_urls(v)]
    return []


def _request(
    client: Any,
    image: Any,
    counter: _Counter,
    timeout: float,
    **over: Any,
) -> _Result:
    """One default ``/denoise`` request (optionally with overrides), timed."""
    t = time.perf_counter()
    try:
        job = client.submit(image=image, api_name="/denoise", **over)
        first_model = None
        seen = 0
        while not job.done() and time.perf_counter() - t < timeout:
            steps = job.outputs()  # the streamed steps so far, files fetched
            for step in steps[seen:]:
                if first_model is None and _has_model(step):
                    first_model = time.perf_counter() - t
            seen = len(steps)
            time.sleep(0.02)
        out = job.result(timeout=max(timeout - (time.perf_counter() - t), 1.0))
        summary = out[3]
        ok = any(m.get("available") for m in summary.get("models", {}).values())
        model_s = sum(m.get("seconds") or 0 for m in summary["models"].values())
        seconds = time.perf_counter() - t
        first_model = first_model if first_model is not None else (seconds if ok else None)
        error = "" if ok else "no model output"
        return _Result(seconds, ok, error, model_s, first_model_s=first_model)
    except Exception as exc:
        return _Result(time.perf_counter() - t, False, f"{type(exc).__name__}: {exc}"[:300])
    finally:
        counter.done()


def _has_model(step: Any) -> bool:
    """Whether a streamed ``/denoise`` step holds at least one model's output."""
    summary = step[3] if isinstance(step, list | tuple) and len(step) > 3 else None
    models = summary.get("models", {}) if isinstance(summary, dict) else {}
    return any(m.get("available") for m in models.values())


def _phase(results: list[_Result], wall: float) -> dict[str, Any]:
    ok = [r for r in results if r.ok]
    errors = [r.error for r in results if not r.ok and not r.refused]
    return {
        "requests": len(results),
        "errors": len(errors),
        "refused_queue_full": sum(r.refused for r in results),
        "error_samples": sorted(set(errors))[:5],
        "latency": summarize([r.seconds for r in ok]),
        "first_model_result": summarize([r.first_model_s for r in ok if r.first_model_s]),
        "model_time": summarize([r.server_model_s for r in ok]),
        "wall_s": round(wall, 2),
        "throughput_rps": round(len(ok) / wall, 3) if wall > 0 else None,
    }


def _parallel(
    url: str,
    image: Any,
    clients: int,
    per_client: int,
    counter: _Counter,
    timeout: float,
    deadline: float,
    fresh: Callable[[], dict[str, Any]] = dict,
) -> tuple[list[_Result], float]:
    """``clients`` threads, each with its own gradio_client, sending requests in a row
    (each with the overrides ``fresh()`` returns, e.g. its own seed)."""
    conns = [_client(url) for _ in range(clients)]  # connected before the clock starts
    barrier = threading.Barrier(clients)

    def user(i: int) -> list[_Result]:
        barrier.wait()
        out = []
        for _ in range(per_client):
            if time.monotonic() > deadline:
                break
            out.append(_request(conns[i], image, counter, timeout, **fresh()))
        return out

    t = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = [r for rs in pool.map(user, range(clients)) for r in rs]
    return results, time.perf_counter() - t


def _overflow(
    url: str, image: Any, burst: int, timeout: float, fresh: Callable[[], dict[str, Any]] = dict
) -> dict[str, Any]:
    """Submits ``burst`` cheap requests at once; counts completed / refused / other."""
    client = _client(url)
    cheap = {"backbones": ["dncnn"], "max_side": 64}
    t = time.perf_counter()
    jobs = [
        client.submit(image=image, api_name="/denoise", **cheap, **fresh()) for _ in range(burst)
    ]
    completed, refused, other = 0, 0, []
    messages = set()
    for job in jobs:
        try:
            job.result(timeout=timeout)
            completed += 1
        except Exception as exc:
            text = f"{type(exc).__name__}: {exc}"
            if "queue is full" in text.lower():
                refused += 1
                messages.add(text[:200])
            else:
                other.append(text[:300])
    return {
        "submitted": burst,
        "completed": completed,
        "refused_queue_full": refused,
        "other_errors": len(other),
        "other_error_samples": sorted(set(other))[:5],
        "refusal_message": sorted(messages)[:1],
        "wall_s": round(time.perf_counter() - t, 2),
    }


def _machine() -> dict[str, Any]:
    import gradio_client
    import torch

    try:
        import gradio

        gradio_version = gradio.__version__
    except Exception:  # pragma: no cover - gradio is a requirement of the app
        gradio_version = None
    return {
        "cpu_count": os.cpu_count(),
        "loadavg_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads_client": torch.get_num_threads(),
        "gradio": gradio_version,
        "gradio_client": gradio_client.__version__,
    }


def _checkpoint_info(root: Path | None, source: str) -> dict[str, Any]:
    import wne

    keys = wne.available_checkpoints(root)
    params: dict[str, Any] = {}
    for key in keys:
        try:
            cfg = wne.checkpoints.read_config((root or wne.checkpoints.default_root()) / key)
            params[key] = {"arch": cfg.arch, "arch_kwargs": cfg.arch_kwargs}
        except Exception as exc:  # a broken folder is reported, not fatal
            params[key] = {"error": str(exc)}
    return {"source": source, "dir": str(root) if root else None, "keys": keys, "models": params}


def _env_int(env: dict[str, str], name: str, default: int) -> int:
    try:
        return int(env.get(name) or os.environ.get(name) or default)
    except ValueError:
        return default


def _queue_size(env: dict[str, str]) -> int:
    """The app's queue ``max_size`` (``WNE_QUEUE_SIZE``, as ``app.py`` reads it)."""
    return _env_int(env, "WNE_QUEUE_SIZE", 48)


def _active(env: dict[str, str]) -> int:
    """Requests the app handles at once (``WNE_CONCURRENT_REQUESTS``, as ``app.py`` reads it)."""
    return _env_int(env, "WNE_CONCURRENT_REQUESTS", 24)


def examples_of(app: Path) -> list[tuple[Path, dict[str, Any]]]:
    """The demo's examples beside ``app``: ``(image, settings)`` in the order of
    ``assets/examples/examples.json`` (what each example button sends).

    Raises:
        FileNotFoundError: If there is none.
    """
    folder = Path(app).resolve().parent / "assets" / "examples"
    out = []
    with contextlib.suppress(OSError, ValueError, TypeError):
        for entry in json.loads((folder / "examples.json").read_text(encoding="utf-8")):
            path = folder / str(entry["file"])
            if path.is_file():
                out.append((path, dict(entry.get("settings", {}))))
    if not out:
        raise FileNotFoundError(f"no examples in {folder}/examples.json")
    return out


def distinct_uploads(
    images: list[Path], n: int, folder: Path, side: int = UPLOAD_SIDE
) -> list[Path]:
    """``n`` distinct colour PNGs for the classroom's own uploads: the images in turn,
    resized to ``side``×``side``, shifted by a different offset each and mirrored every
    other round (real content, never the same pixels twice).

    Returns:
        The files, ``folder/upload-00.png``, ...
    """
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        with Image.open(images[i % len(images)]) as im:
            base = np.asarray(im.convert("RGB").resize((side, side), Image.Resampling.BICUBIC))
        img = np.roll(base, (17 * i + 5, 31 * i + 3), axis=(0, 1))
        if (i // len(images)) % 2:
            img = img[:, ::-1]
        path = folder / f"upload-{i:02d}.png"
        Image.fromarray(np.ascontiguousarray(img)).save(path)
        out.append(path)
    return out


_CACHE_LINE = re.compile(r"result cache: (cache|joined|computed) (\w+) ")


def _cache_counts(log_text: str) -> dict[str, dict[str, int]]:
    """The server's result-cache outcomes per computation, from its log lines."""
    counts: dict[str, dict[str, int]] = {}
    for source, kind in _CACHE_LINE.findall(log_text):
        per = counts.setdefault(kind, {"cache": 0, "joined": 0, "computed": 0})
        per[source] += 1
    return counts


class _Student:
    """One student's browser: a persistent HTTP connection speaking Gradio's documented
    HTTP API (upload, ``/gradio_api/call/denoise``, its event stream, the output images).

    gradio_client costs ~0.2 s of CPU per request on this machine (more with its own file
    downloads); thirty of them would take the server's two cores, where a real class's
    browsers run on their own machines. This client costs a few milliseconds.

    Args:
        url: The app.
        params: ``(name, default)`` of ``/denoise``'s arguments after the image, in order.
        timeout: Seconds a request may take.
    """

    def __init__(self, url: str, params: list[tuple[str, Any]], timeout: float) -> None:
        import httpx

        self.http = httpx.Client(base_url=url, timeout=timeout)
        self.params = params
        self.timeout = timeout

    def close(self) -> None:
        """Closes the connection."""
        self.http.close()

    def denoise(self, image: Path, counter: _Counter, **over: Any) -> _Result:
        """One ``/denoise`` request with an uploaded image, timed until its images are
        fetched; also the time until its first streamed answer."""
        t = time.perf_counter()
        first = None
        try:
            with open(image, "rb") as f:
                up = self.http.post("/gradio_api/upload", files={"files": (image.name, f)})
            up.raise_for_status()
            data = [{"path": up.json()[0], "meta": {"_type": "gradio.FileData"}}]
            data += [over.get(name, default) for name, default in self.params]
            call = self.http.post("/gradio_api/call/denoise", json={"data": data})
            if call.status_code == 503:
                raise RuntimeError(f"Queue is full: {call.text[:200]}")
            call.raise_for_status()
            event, final = "", None
            url = f"/gradio_api/call/denoise/{call.json()['event_id']}"
            with self.http.stream("GET", url) as stream:
                for line in stream.iter_lines():
                    if line.startswith("event: "):
                        event = line[len("event: ") :]
                    elif line.startswith("data: ") and event in ("generating", "complete"):
                        first = first if first is not None else time.perf_counter() - t
                        if event == "complete":
                            final = json.loads(line[len("data: ") :])
                            break
                    elif line.startswith("data: ") and event == "error":
                        raise RuntimeError(f"the app answered with an error: {line[6:200]}")
            if final is None:
                raise RuntimeError("the event stream ended without a result")
            for file_url in _file_urls(final[:3]):
                self.http.get(file_url).raise_for_status()
            summary = final[3]
            ok = any(m.get("available") for m in summary.get("models", {}).values())
            model_s = sum(m.get("seconds") or 0 for m in summary["models"].values())
            error = "" if ok else "no model output"
            return _Result(time.perf_counter() - t, ok, error, model_s, first)
        except Exception as exc:
            return _Result(time.perf_counter() - t, False, f"{type(exc).__name__}: {exc}"[:300])
        finally:
            counter.done()


def _classroom(
    server: AppProcess,
    params: list[tuple[str, Any]],
    examples: list[tuple[Path, dict[str, Any]]],
    uploads: list[Path],
    counter: _Counter,
    timeout: float,
    deadline: float,
) -> dict[str, Any]:
    """One client per upload, all at once: an example, then the client's own upload.

    Returns:
        ``examples_phase`` and ``uploads_phase`` (:func:`_phase` plus ``first_answer``),
        ``rss_mb`` (before, peak, after), ``server_cache`` and ``wall_s``.
    """
    n = len(uploads)
    students = [_Student(server.url, params, timeout) for _ in range(n)]
    barrier = threading.Barrier(n + 1)
    results: dict[str, list[_Result]] = {"examples": [], "uploads": []}
    lock = threading.Lock()
    peak = [server.rss_mb()]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.5):
            with contextlib.suppress(Exception):
                peak.append(server.rss_mb())

    def student(i: int) -> None:
        path, settings = examples[i % len(examples)]
        barrier.wait()
        for phase, image, over in (
            ("examples", path, settings),
            ("uploads", uploads[i], {}),
        ):
            if time.monotonic() > deadline:
                return
            r = students[i].denoise(image, counter, **over)
            with lock:
                results[phase].append(r)

    before = round(server.rss_mb(), 1)
    log_start = len(server.log_text())
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        with ThreadPoolExecutor(n) as pool:
            futures = [pool.submit(student, i) for i in range(n)]
            barrier.wait()
            t = time.perf_counter()
            for f in futures:
                f.result()
            wall = time.perf_counter() - t
    finally:
        stop.set()
        sampler.join(5)
        for st in students:
            st.close()
    out: dict[str, Any] = {"wall_s": round(wall, 2)}
    for phase, rs in results.items():
        out[f"{phase}_phase"] = part = _phase(rs, wall)
        part["first_answer"] = summarize([r.first_s for r in rs if r.first_s is not None])
    out["rss_mb"] = {
        "before": before,
        "peak": round(max(peak), 1),
        "after": round(server.rss_mb(), 1),
    }
    out["server_cache"] = _cache_counts(server.log_text()[log_start:])
    return out


def first_example(app: Path) -> Path:
    """The demo's first example image: the first entry of ``assets/examples/examples.json``
    beside ``app`` (else the folder's first image by name).

    Raises:
        FileNotFoundError: If there is no example image.
    """
    folder = Path(app).resolve().parent / "assets" / "examples"
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError, IndexError):
        entry = json.loads((folder / "examples.json").read_text(encoding="utf-8"))[0]
        path = folder / str(entry["file"])
        if path.is_file():
            return path
    from wne.imageio import list_images

    try:
        return list_images(folder)[0]
    except FileNotFoundError:
        raise FileNotFoundError(f"no example image in {folder}; pass --image") from None


def run(
    *,
    mode: str = "all",
    checkpoint_dir: Path | None = None,
    checkpoint_source: str = "bundled",
    image: Path | None = None,
    sequential: int = 20,
    concurrent: int = 4,
    concurrent_requests: int = 5,
    clients: int | None = None,
    requests: int = 5,
    rss_at: tuple[int, int] = (10, 100),
    overflow_extra: int = 8,
    soak: int = 0,
    request_timeout: float = 300.0,
    max_seconds: float = 1800.0,
    env: dict[str, str] | None = None,
    out_dir: Path | None = None,
    log: Callable[[str], None] = print,
    app: Path = DEFAULT_APP,
    warm: bool = True,
    warm_timeout: float = 600.0,
) -> dict[str, dict[str, Any]]:
    """Runs the phases of ``mode`` against a fresh app process; returns (and writes) JSON.

    Args:
        mode: ``"all"``, ``"latency"``, ``"load"`` or ``"classroom"``.
        checkpoint_dir: The app's checkpoint folder (None: the bundled one).
        checkpoint_source: How the checkpoints were obtained (recorded).
        image: The request's image (default: the app's first example).
        sequential: Requests of the sequential latency phase.
        concurrent: Clients of the concurrent latency phase.
        concurrent_requests: Requests per client there.
        clients: Clients of the load phase (default 16) or of the classroom (default
            :data:`CLASS_SIZE`).
        requests: Requests per client in the load phase.
        rss_at: Request counts after which the server's RSS is recorded.
        overflow_extra: Requests beyond the queue's max_size in the overflow burst
            (0: no overflow phase).
        soak: Sequential requests after the load phase (the server's RSS is recorded
            every 10 requests throughout, to tell a leak from a plateau).
        request_timeout: Seconds one request may take.
        max_seconds: Time budget; phases stop sending requests once it is spent.
        env: Extra environment variables for the app.
        out_dir: Where to write ``app-<part>.json`` (None: nowhere).
        log: Progress messages.
        app: The demo's ``app.py`` (default: ``app.py`` in the current directory).
        warm: Classroom: let the app warm its cache with the examples at start-up and
            start the class once that is done.
        warm_timeout: Seconds to wait for the warming.

    Returns:
        ``{"latency": {...}, "load": {...}}`` or ``{"classroom": {...}}`` (the parts
        ``mode`` ran).
    """
    from gradio_client import handle_file

    if mode not in ("all", "latency", "load", "classroom"):
        raise ValueError(f"mode must be 'all', 'latency', 'load' or 'classroom', got {mode!r}")
    classroom = mode == "classroom"
    if clients is None:
        clients = CLASS_SIZE if classroom else 16
    env = dict(env or {})
    if not classroom or not warm:  # the other phases measure the computation itself
        env.setdefault("WNE_WARM_EXAMPLES", "0")
    seeds = itertools.count(1000)  # a seed of its own per request: no cache hit, no sharing

    def fresh() -> dict[str, Any]:
        return {"seed": next(seeds)}

    app = _check_app(Path(app))
    if image is None:
        image = first_example(app)
    deadline = time.monotonic() + max_seconds
    machine_start = _machine()
    common = {
        "machine": machine_start,
        "checkpoints": _checkpoint_info(checkpoint_dir, checkpoint_source),
        "image": image.name,
        "note": (
            "Measured on a shared machine: other jobs were running (see loadavg), so the "
            "latencies are upper bounds of what the same cores would give when idle."
        ),
    }
    latency: dict[str, Any] = {}
    load: dict[str, Any] = {}
    lesson: dict[str, Any] = {}
    rss: dict[str, float] = {}
    with (
        tempfile.TemporaryDirectory(prefix="wne-loadtest-") as tmp,
        launch_app(checkpoint_dir=checkpoint_dir, workdir=Path(tmp), env=env, app=app) as server,
    ):
        trace: dict[str, float] = {}
        counter = _Counter(
            every=10, on_every=lambda n: trace.__setitem__(str(n), round(server.rss_mb(), 1))
        )
        for n in rss_at:
            counter.hooks[n] = lambda n=n: rss.__setitem__(str(n), round(server.rss_mb(), 1))
        img = handle_file(str(image))
        client = _client(server.url)
        info = client.view_api(print_info=False, return_format="dict")
        defaults = {
            p["parameter_name"]: p.get("parameter_default")
            for p in info["named_endpoints"]["/denoise"]["parameters"]
            if p["parameter_name"] != "image"
        }
        first = _request(client, img, counter, request_timeout)
        cold = time.perf_counter() - server.started
        if not first.ok:
            raise RuntimeError(f"first request failed: {first.error}\n{server.log_tail()}")
        log(f"server ready after {server.ready_s:.1f} s, first answer after {cold:.1f} s")
        common["request"] = {"image": image.name, **defaults}
        common["server"] = {"ready_s": round(server.ready_s, 2), "cold_start_s": round(cold, 2)}
        cpu0 = server.cpu_s()

        if mode in ("all", "latency"):
            seq = []
            t = time.perf_counter()
            for _ in range(sequential):
                if time.monotonic() > deadline:
                    break
                seq.append(_request(client, img, counter, request_timeout, **fresh()))
            wall = time.perf_counter() - t
            latency["sequential"] = _phase(seq, wall)
            latency["sequential"]["server_cpu_s_per_request"] = round(
                (server.cpu_s() - cpu0) / max(len(seq), 1), 3
            )
            log(f"sequential: {latency['sequential']['latency']}")
            log(f"first model result: {latency['sequential']['first_model_result']}")
            res, wall = _parallel(
                server.url, img, concurrent, concurrent_requests, counter,
                request_timeout, deadline, fresh,
            )  # fmt: skip
            latency[f"concurrent_{concurrent}"] = _phase(res, wall)
            log(f"{concurrent} concurrent: {latency[f'concurrent_{concurrent}']['latency']}")

        if mode in ("all", "load"):
            res, wall = _parallel(
                server.url, img, clients, requests, counter, request_timeout, deadline, fresh
            )
            load["load"] = {"clients": clients, "requests_per_client": requests}
            load["load"].update(_phase(res, wall))
            log(f"load {clients}×{requests}: {load['load']['errors']} errors, "
                f"{load['load']['latency']}")  # fmt: skip
            extra = []
            while (counter.n < max(rss_at) or len(extra) < soak) and time.monotonic() < deadline:
                extra.append(_request(client, img, counter, request_timeout, **fresh()))
            load["memory"] = {
                "rss_mb_after_requests": dict(rss),
                "extra_sequential_requests": len(extra),
                "extra_errors": sum(not r.ok for r in extra),
                "rss_mb_every_10_requests": dict(trace),
            }
            lo, hi = (rss.get(str(n)) for n in rss_at)
            if lo and hi:
                growth = hi / lo - 1
                load["memory"]["growth"] = round(growth, 4)
                load["memory"]["within_10_percent"] = abs(growth) <= TARGETS["rss_growth"]
            if overflow_extra > 0 and time.monotonic() < deadline:
                room = {"concurrent_requests": _active(env), "queue_max_size": _queue_size(env)}
                burst = sum(room.values()) + overflow_extra
                load["overflow"] = room
                load["overflow"].update(_overflow(server.url, img, burst, request_timeout, fresh))
                log(f"overflow: {load['overflow']}")
            after = _request(client, img, counter, request_timeout, **fresh())
            load["after"] = {"ok": after.ok, "error": after.error, "alive": server.alive()}
        if classroom:
            room = {"concurrent_requests": _active(env), "queue_max_size": _queue_size(env)}
            lesson = {"clients": clients, "queue": room, "warm": {"enabled": warm}}
            if warm:
                t = time.perf_counter()
                while "result cache warmed" not in server.log_text():
                    if time.perf_counter() - t > warm_timeout or not server.alive():
                        raise RuntimeError(f"the app did not warm its cache:\n{server.log_tail()}")
                    time.sleep(0.5)
                lesson["warm"]["waited_s"] = round(time.perf_counter() - t, 2)
            examples = examples_of(app)
            uploads = distinct_uploads([p for p, _ in examples], clients, Path(tmp) / "uploads")
            lesson["examples"] = [
                {"image": p.name, **st} for p, st in examples[: min(clients, len(examples))]
            ]
            lesson["uploads"] = (
                f"{clients} distinct {UPLOAD_SIDE}×{UPLOAD_SIDE} PNGs (the examples in turn, "
                "resized, shifted and mirrored per client), every other argument the default"
            )
            params = list(defaults.items())
            lesson.update(
                _classroom(server, params, examples, uploads, counter, request_timeout, deadline)
            )
            for phase in ("examples_phase", "uploads_phase"):
                part = lesson[phase]
                log(f"classroom {phase}: {part['errors']} errors, "
                    f"{part['refused_queue_full']} refused, {part['latency']}")  # fmt: skip
        common["requests_total"] = counter.n
        common["server"]["log_tail_on_error"] = "" if server.alive() else server.log_tail()
    common["machine_end_loadavg"] = [round(x, 2) for x in os.getloadavg()]
    common["stopped_by_deadline"] = time.monotonic() > deadline
    out: dict[str, dict[str, Any]] = {}
    if mode in ("all", "latency"):
        seq_lat = latency["sequential"]["latency"]
        out["latency"] = {
            **common,
            **latency,
            "targets": {"p50_s": TARGETS["p50_s"], "cold_start_s": TARGETS["cold_start_s"]},
            "met": {
                "p50": seq_lat.get("p50_s", float("inf")) <= TARGETS["p50_s"],
                "cold_start": common["server"]["cold_start_s"] <= TARGETS["cold_start_s"],
            },
        }
    if mode in ("all", "load"):
        out["load"] = {**common, **load}
    if classroom:
        out["classroom"] = {
            **common,
            "classroom": lesson,
            "targets": {"errors": 0, "examples_p95_s": TARGETS["class_examples_p95_s"]},
            "met": {
                "no_errors": lesson["examples_phase"]["errors"] + lesson["uploads_phase"]["errors"]
                == 0,
                "examples_p95": lesson["examples_phase"]["latency"].get("p95_s", float("inf"))
                <= TARGETS["class_examples_p95_s"],
            },
        }
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, data in out.items():
            path = out_dir / f"app-{name}.json"
            path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
            log(f"wrote {path}")
    return out


def profile(
    checkpoint_dir: Path | None, image: Path, repeats: int, max_side: int | None
) -> dict[str, Any]:
    """Times the default comparison in this process, stage by stage, plus a cProfile run.

    Stages: settings + image reading (``load_image``), the models (``compare`` through the
    handlers, which pick the checkpoints and name them),
    conversion for display (``_denoise_view``) and PNG encoding of the images the
    API returns (what Gradio does with each output).
    """
    import cProfile
    import io
    import pstats

    from PIL import Image

    from wne.demo import DemoHandlers, Zoo
    from wne.demo import compare as cmp
    from wne.demo.imaging import load_image

    zoo = Zoo.discover(checkpoint_dir, hub_repo="")
    h = DemoHandlers(zoo)
    side = max_side or h.config.default_max_side
    backbones = [b for b in ("dncnn", "swinir") if b in zoo.backbones()]
    settings = h.settings(1.0, 0.0, 25, 0, zoo.default_sigma(), backbones, "shift-then-noise", side)
    stages: dict[str, list[float]] = {k: [] for k in ("read", "models", "view", "png", "total")}
    prof = cProfile.Profile()
    for i in range(repeats + 2):  # run 0 warms up; the last one runs under cProfile only
        if i == repeats + 1:
            prof.enable()
        t0 = time.perf_counter()
        loaded = load_image(str(image), max_side=side)
        t1 = time.perf_counter()
        res: cmp.Comparison = h._compute("compare", loaded.pixels, settings)
        t2 = time.perf_counter()
        view = h._denoise_view(res, loaded)
        t3 = time.perf_counter()
        for arr in [view.noisy, view.target, *(g[0] for g in view.gallery)]:
            Image.fromarray(arr).save(io.BytesIO(), format="png")
        t4 = time.perf_counter()
        if 0 < i <= repeats:
            for k, v in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0), strict=True):
                stages[k].append(v)
    prof.disable()
    text = io.StringIO()
    pstats.Stats(prof, stream=text).sort_stats("cumulative").print_stats(25)
    return {
        "working_size": side,
        "backbones": backbones,
        "repeats": repeats,
        "stages_p50_s": {k: round(statistics.median(v), 4) for k, v in stages.items()},
        "model_seconds": {r.key: round(r.seconds or 0, 4) for r in res.runs},
        "cprofile_top": text.getvalue().splitlines()[:60],
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (``wne-loadtest``).

    Args:
        argv: Arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status (0; bad arguments exit with 2).
    """
    p = argparse.ArgumentParser(prog="wne-loadtest", description=__doc__.splitlines()[0])
    p.add_argument(
        "--app", type=Path, default=DEFAULT_APP, help="the demo's app.py (default: ./app.py)"
    )
    p.add_argument("--mode", choices=["all", "latency", "load", "classroom"], default="all")
    p.add_argument("--latency", action="store_true", help="short for --mode latency")
    p.add_argument("--checkpoints", type=Path, default=None, help="checkpoint folder")
    p.add_argument(
        "--random",
        action="store_true",
        help="random-init models of the catalog's σ_train = 25 entries (the bundled sizes)",
    )
    p.add_argument("--image", type=Path, default=None, help="default: the first example")
    p.add_argument("--sequential", type=int, default=20)
    p.add_argument("--concurrent", type=int, default=4)
    p.add_argument("--concurrent-requests", type=int, default=5)
    p.add_argument(
        "--clients",
        type=int,
        default=None,
        help=f"clients of the load phase (default 16) or the classroom (default {CLASS_SIZE})",
    )
    p.add_argument(
        "--no-warm",
        action="store_true",
        help="classroom: the app does not warm its cache with the examples at start-up",
    )
    p.add_argument("--requests", type=int, default=5)
    p.add_argument("--overflow-extra", type=int, default=8)
    p.add_argument("--soak", type=int, default=0, help="sequential requests after the load")
    p.add_argument("--max-seconds", type=float, default=1800.0, help="time budget")
    p.add_argument(
        "--out", type=Path, default=Path("assets/results"), help="folder of the JSON results"
    )
    p.add_argument("--no-write", action="store_true", help="print only, write no JSON")
    p.add_argument("--profile", type=int, default=0, metavar="N", help="in-process stage timing")
    args = p.parse_args(argv)
    mode = "latency" if args.latency else args.mode
    if args.clients is None:
        args.clients = CLASS_SIZE if mode == "classroom" else 16
    limits = {
        "--sequential": args.sequential,
        "--clients": args.clients,
        "--requests": args.requests,
        "--concurrent": args.concurrent,
    }
    for name, value in limits.items():
        if not 0 < value <= 64:
            p.error(f"{name} must be in [1, 64] (the test is bounded), got {value}")
    try:
        _check_app(args.app)
        image = args.image or first_example(args.app)
    except FileNotFoundError as exc:
        p.error(str(exc))
    with tempfile.TemporaryDirectory(prefix="wne-loadtest-ckpt-") as tmp:
        ckpt, source = args.checkpoints, "dir" if args.checkpoints else "bundled"
        if args.random:
            ckpt, source = write_random_checkpoints(Path(tmp)), "random-init (recipe sizes)"
        result: dict[str, Any] = run(
            mode=mode,
            checkpoint_dir=ckpt,
            checkpoint_source=source,
            image=image,
            sequential=args.sequential,
            concurrent=args.concurrent,
            concurrent_requests=args.concurrent_requests,
            clients=args.clients,
            requests=args.requests,
            overflow_extra=args.overflow_extra,
            soak=args.soak,
            max_seconds=args.max_seconds,
            out_dir=None if args.no_write else args.out,
            app=args.app,
            warm=not args.no_warm,
        )
        if args.profile > 0:
            side = result.get("latency", result.get("load", {})).get("request", {}).get("max_side")
            prof = profile(ckpt, image, args.profile, side)
            result["profile"] = prof
            if "latency" in result:
                e2e = result["latency"]["sequential"]["latency"].get("p50_s")
                inproc = prof["stages_p50_s"]["total"]
                prof["end_to_end_p50_s"] = e2e
                prof["outside_handler_s"] = round(e2e - inproc, 3) if e2e else None
            if not args.no_write:
                path = args.out / "app-profile.json"
                path.write_text(json.dumps(prof, indent=2) + "\n", encoding="utf-8")
                print(f"wrote {path}")
    for name, data in result.items():
        if name == "profile":
            print(json.dumps({k: v for k, v in data.items() if k != "cprofile_top"}, indent=2))
            continue
        keep = {k: v for k, v in data.items() if k not in ("machine", "checkpoints", "note")}
        print(f"== {name} ==\n{json.dumps(keep, indent=2)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
