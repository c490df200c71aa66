"""Latency benchmark of the demo, end to end through ``gradio_client`` (not a test).

``python -m wne.demo.bench`` starts ``python app.py`` as a child process on a free
loopback port, measures the cold start (process start → first ``/denoise``
answer) and then the latency of ``--repeat`` default requests (example image,
CNN + transformer, plain + WNE, the app's default working size), and prints a Markdown
summary (``--json`` writes the raw numbers). CPU seconds (server user + system,
plus the client's own) are reported beside wall times: on a shared, loaded machine
they approximate what the same work costs on idle cores.

``--random`` benchmarks random-init checkpoints of the bundled recipes' sizes
(same compute as the trained ones) written to a temp folder, for use before the
trained checkpoints exist; ``--cores 0,1`` pins the server to those CPU cores.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psutil

__all__ = ["main", "write_random_checkpoints"]

REPO = Path(__file__).resolve().parents[2]
DEFAULT_IMAGE = REPO / "assets" / "examples" / "parrots.png"
RECIPE_KEYS = (
    "dncnn-plain-s25",
    "dncnn-wne-s25",
    "swinir-plain-s25",
    "swinir-wne-s25",
    "fdncnn-ne-s25",
)


def write_random_checkpoints(root: Path) -> Path:
    """Writes random-init checkpoints with the bundled recipes' architectures (σ_train 25)."""
    import torch

    import wne
    from wne import models

    arch = {"dncnn": "dncnn", "swinir": "swinir", "fdncnn": "fdncnn_ne"}
    for i, key in enumerate(RECIPE_KEYS):
        family, variant = key.split("-")[:2]
        torch.manual_seed(i)
        model = models.build(arch[family])
        if variant == "wne":
            model = wne.NormEquivariant(model)
        wne.save(
            model,
            root / key,
            key=key,
            arch=arch[family],
            sigma_train=25,
            recipe={"note": "random init, benchmark only"},
        )
    return root


def _cpu(proc: psutil.Process) -> float:
    """CPU seconds (user + system) used by a process so far."""
    t = proc.cpu_times()
    return t.user + t.system


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_server(url: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"app.py exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/gradio_api/info", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"app.py did not answer within {timeout:.0f} s")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Runs the benchmark; returns the numbers."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--checkpoints",
        type=Path,
        default=None,
        help="checkpoint folder (default: the app's bundled one)",
    )
    p.add_argument(
        "--random",
        action="store_true",
        help="use random-init checkpoints of the bundled recipes' sizes",
    )
    p.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    p.add_argument("--repeat", type=int, default=10)
    p.add_argument("--cores", default=None, help="CPU cores for the server, e.g. 0,1")
    p.add_argument("--json", type=Path, default=None, help="write the numbers here")
    args = p.parse_args(argv)

    import psutil  # a dev requirement, like this benchmark
    from gradio_client import Client, handle_file

    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "GRADIO_ANALYTICS_ENABLED": "False",
            "GRADIO_EXAMPLES_CACHE": str(Path(tmp) / "examples"),
        }
        if args.random:
            env["WNE_CHECKPOINT_DIR"] = str(write_random_checkpoints(Path(tmp) / "ckpt"))
        elif args.checkpoints is not None:
            env["WNE_CHECKPOINT_DIR"] = str(args.checkpoints)
        port = _free_port()
        env.update(GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(port))
        cores = [int(c) for c in args.cores.split(",")] if args.cores else None
        client_cpu0 = time.process_time()
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, str(REPO / "app.py")],
            cwd=tmp,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=(lambda: os.sched_setaffinity(0, cores)) if cores else None,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_for_server(url, proc, timeout=300)
            ready = time.perf_counter() - start
            server = psutil.Process(proc.pid)
            ready_cpu = _cpu(server)
            client = Client(url, verbose=False)
            image = handle_file(str(args.image))  # every other argument: the app's default
            client.predict(image=image, api_name="/denoise")
            cold = time.perf_counter() - start
            cold_cpu = _cpu(server) + time.process_time() - client_cpu0
            req_cpu = []
            times, model_ms = [], []
            for _ in range(args.repeat):
                t = time.perf_counter()
                c0 = _cpu(server) + time.process_time()
                _, _, _, summary = client.predict(image=image, api_name="/denoise")
                times.append(time.perf_counter() - t)
                req_cpu.append(_cpu(server) + time.process_time() - c0)
                model_ms.append(1000 * sum(m["seconds"] or 0 for m in summary["models"].values()))
        finally:
            proc.terminate()
            proc.wait(timeout=30)

    result = {
        "image": args.image.name,
        "working_size": f"{summary['image']['width']}×{summary['image']['height']}",
        "models": ", ".join(summary["models"]),
        "cores": args.cores or f"all ({os.cpu_count()})",
        "load_average_1min": os.getloadavg()[0],
        "server_ready_s": round(ready, 2),
        "cold_start_to_first_answer_s": round(cold, 2),
        "request_p50_s": round(statistics.median(times), 3),
        "request_min_s": round(min(times), 3),
        "request_max_s": round(max(times), 3),
        "model_time_p50_ms": round(statistics.median(model_ms), 1),
        "server_cpu_to_ready_s": round(ready_cpu, 2),
        "cpu_to_first_answer_s": round(cold_cpu, 2),
        "request_cpu_p50_s": round(statistics.median(req_cpu), 3),
        "repeat": args.repeat,
    }
    print("| measure | value |\n|---|---|")
    for k, v in result.items():
        print(f"| {k} | {v} |")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
