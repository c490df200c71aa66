"""The load/latency script (``wne-loadtest``): a reduced smoke run and its guards.

The smoke run starts the real ``app.py`` in a child process (tiny random-init
checkpoints, working size 64, queue max_size 4) with ``WNE_HUB_REPO`` set and the
Hub endpoint pointing at a closed loopback port: the app must start on its bundled
models and serve. Then 4 clients × 2 requests get no error, a burst beyond the
queue's max_size is partly refused with "Queue is full" and nothing else, and the
server still answers afterwards. The full 16 × 5 run is done by hand (README). The
classroom scenario runs reduced too (6 clients): the examples are answered from the
cache the app warmed at start-up, each upload is computed, no error.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from test_demo_logic import make_demo_checkpoints

import wne
from wne import catalog
from wne.lab import loadtest

ROOT = Path(__file__).resolve().parent.parent


def test_summarize_percentiles() -> None:
    s = loadtest.summarize([float(x) for x in range(1, 21)])  # 1 … 20
    assert s["n"] == 20 and s["p50_s"] == 10.5 and s["min_s"] == 1 and s["max_s"] == 20
    assert s["p95_s"] == pytest.approx(19.05)
    assert loadtest.summarize([]) == {"n": 0}


def test_only_loopback_servers_are_started(tmp_path: Path) -> None:
    """Asking for another bind address fails before any process starts."""
    with (
        pytest.raises(ValueError, match="loopback"),
        loadtest.launch_app(
            checkpoint_dir=None, workdir=tmp_path, env={"GRADIO_SERVER_NAME": "0.0.0.0"}
        ),
    ):
        pass
    assert not (tmp_path / "app.log").exists()


@pytest.mark.parametrize("arg", ["--clients=0", "--requests=1000", "--sequential=-1"])
def test_the_cli_stays_bounded(arg: str) -> None:
    with pytest.raises(SystemExit):
        loadtest.main([arg, "--no-write"])


def test_a_missing_app_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The script does not assume it runs from the repository: --app names the demo, and
    a missing file stops it (exit status 2) before anything starts."""
    missing = tmp_path / "app.py"
    with pytest.raises(SystemExit) as exc:
        loadtest.main(["--app", str(missing), "--no-write"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "--app" in err
    with (
        pytest.raises(FileNotFoundError, match="--app"),
        loadtest.launch_app(checkpoint_dir=None, workdir=tmp_path, app=missing),
    ):
        pass
    assert not (tmp_path / "app.log").exists()


def test_random_checkpoints_are_the_catalog_entries(tmp_path: Path) -> None:
    """--random writes one random-init checkpoint per σ_train = 25 catalog entry, with the
    entry's architecture, recipe size and wrapper, loadable by the library."""
    root = loadtest.write_random_checkpoints(tmp_path)
    entries = catalog.entries(sigma_train=25)
    assert wne.available_checkpoints(root) == sorted(e.key for e in entries)
    for e in entries:
        cfg = json.loads((root / e.key / "config.json").read_text())
        assert (cfg["arch"], cfg["wrapper"], cfg["sigma_train"]) == (e.arch, e.wrapper, 25)
        assert cfg["arch_kwargs"] == json.loads(json.dumps(dict(e.recipe().arch_kwargs)))
        model = wne.load(e.key, root=root, source="local")
        assert isinstance(model, wne.NormEquivariant) == (e.wrapper == "wne")


def _smoke_run(tmp_path: Path, mode: str, env: dict[str, str], **kw: Any) -> dict[str, Any]:
    """``loadtest.run`` of ``mode`` on tiny checkpoints, bounded, results in tmp_path."""
    return loadtest.run(
        mode=mode,
        checkpoint_dir=make_demo_checkpoints(tmp_path / "ckpt"),
        checkpoint_source="tiny random-init (tests)",
        request_timeout=120,
        max_seconds=400,
        env=env,
        out_dir=tmp_path / "results",
        log=lambda _: None,
        app=ROOT / "app.py",
        **kw,
    )


@pytest.mark.slow
def test_smoke_run_with_a_dead_hub(tmp_path: Path) -> None:
    with socket.socket() as s:  # a loopback port nobody listens on: the "Hub" is down
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    env = {
        "WNE_HUB_REPO": "wne-test/models",
        "HF_ENDPOINT": dead,
        "HF_HUB_OFFLINE": "0",
        "HF_HOME": str(tmp_path / "hf"),
        "WNE_QUEUE_SIZE": "4",
        "WNE_CONCURRENT_REQUESTS": "2",
        "WNE_DEMO_MAX_SIDE": "64",
        "OMP_NUM_THREADS": "1",
    }
    out = _smoke_run(
        tmp_path,
        "all",
        env,
        sequential=3,
        concurrent=2,
        concurrent_requests=2,
        clients=4,
        requests=2,
        rss_at=(3, 14),
        overflow_extra=6,
    )
    lat, load = out["latency"], out["load"]
    assert lat["server"]["cold_start_s"] > 0
    assert lat["sequential"]["errors"] == 0 and lat["sequential"]["latency"]["n"] == 3
    assert lat["concurrent_2"]["errors"] == 0 and lat["concurrent_2"]["latency"]["n"] == 4
    assert lat["request"]["max_side"] == 64 and set(lat["met"]) == {"p50", "cold_start"}
    assert load["load"]["errors"] == 0, load["load"]["error_samples"]
    assert load["load"]["latency"]["n"] == 8
    assert set(load["memory"]["rss_mb_after_requests"]) == {"3", "14"}
    burst = load["overflow"]
    assert burst["submitted"] == 2 + 4 + 6 and burst["other_errors"] == 0, burst
    assert burst["refused_queue_full"] >= 1 and burst["completed"] >= 1
    assert burst["completed"] + burst["refused_queue_full"] == 12
    assert load["after"] == {"ok": True, "error": "", "alive": True}
    assert not lat["stopped_by_deadline"]
    written = json.loads((tmp_path / "results" / "app-load.json").read_text())
    assert written["load"] == load["load"]
    assert (tmp_path / "results" / "app-latency.json").is_file()


def test_classroom_uploads_are_distinct_and_the_examples_are_the_pages(tmp_path: Path) -> None:
    examples = loadtest.examples_of(ROOT / "app.py")
    spec = json.loads((ROOT / "assets" / "examples" / "examples.json").read_text())
    assert [(p.name, st) for p, st in examples] == [(e["file"], e["settings"]) for e in spec]
    uploads = loadtest.distinct_uploads([p for p, _ in examples], 9, tmp_path, side=64)
    pixels = [np.asarray(Image.open(u)) for u in uploads]
    assert all(p.shape == (64, 64, 3) for p in pixels)
    assert len({p.tobytes() for p in pixels}) == 9
    log = (
        "INFO wne.demo.cache: result cache: computed compare 1a2b (…)\n"
        "INFO wne.demo.cache: result cache: cache compare 1a2b (…)\n"
        "INFO wne.demo.cache: result cache: joined sweep 3c4d (…)\n"
    )
    assert loadtest._cache_counts(log) == {
        "compare": {"cache": 1, "joined": 0, "computed": 1},
        "sweep": {"cache": 0, "joined": 1, "computed": 0},
    }


@pytest.mark.slow
def test_classroom_smoke_run(tmp_path: Path) -> None:
    env = {"WNE_DEMO_MAX_SIDE": "64", "OMP_NUM_THREADS": "1"}
    out = _smoke_run(tmp_path, "classroom", env, clients=6)
    lesson = out["classroom"]["classroom"]
    for phase in ("examples_phase", "uploads_phase"):
        part = lesson[phase]
        assert part["errors"] == 0 and part["refused_queue_full"] == 0, part["error_samples"]
        assert part["latency"]["n"] == 6 and part["first_answer"]["n"] == 6
    # the class's examples come from the cache warmed at start-up; every upload is computed
    assert lesson["server_cache"]["compare"] == {"cache": 6, "joined": 0, "computed": 6}
    assert lesson["warm"]["enabled"] and lesson["warm"]["waited_s"] >= 0
    assert lesson["rss_mb"]["peak"] >= lesson["rss_mb"]["before"] > 0
    assert out["classroom"]["met"]["no_errors"]
    written = json.loads((tmp_path / "results" / "app-classroom.json").read_text())
    assert written["classroom"]["uploads_phase"] == lesson["uploads_phase"]
