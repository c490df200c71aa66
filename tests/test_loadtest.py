"""The load test (``wne loadtest``, wne.lab.loadtest): its statistics, its guards, and every mode
run reduced against the real app (tiny checkpoints, 64 px, 2 running + a queue of 3)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from app_fixtures import make_demo_checkpoints
from PIL import Image

from wne.lab import loadtest

ROOT = Path(__file__).resolve().parent.parent


def test_summarize_is_numpys_percentiles() -> None:
    s = loadtest.summarize([float(x) for x in range(1, 21)])
    assert (s["n"], s["p50_s"], s["min_s"], s["max_s"]) == (20, 10.5, 1, 20)
    assert s["p95_s"] == pytest.approx(19.05) and loadtest.summarize([]) == {"n": 0}


@pytest.mark.parametrize("arg", ["--clients=0", "--requests=1000", "--sequential=-1"])
def test_the_cli_stays_bounded(arg: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        loadtest.main([arg, "--no-write"])
    assert "must be in [1, 64]" in capsys.readouterr().err


def test_bad_places_fail_before_anything_starts(tmp_path: Path, capsys) -> None:
    """A missing app stops the CLI (exit 2, naming it and --app); a server address other than
    loopback is refused before any process starts."""
    with pytest.raises(SystemExit) as exc:
        loadtest.main(["--app", str(tmp_path / "app.py"), "--no-write"])
    assert exc.value.code == 2 and "--app" in capsys.readouterr().err
    app, public = ROOT / "app.py", {"GRADIO_SERVER_NAME": "0.0.0.0"}
    with pytest.raises(ValueError, match="loopback"), loadtest.launch_app(app, tmp_path, public):
        pass
    assert not (tmp_path / "app.log").exists()


def test_classroom_material(tmp_path: Path) -> None:
    """The examples are the page's (image and settings); the uploads are distinct images; the
    server's result-cache outcomes are counted from its ``/cache_stats`` data."""
    examples = loadtest.examples_of(ROOT / "app.py")
    spec = json.loads((ROOT / "assets" / "examples" / "examples.json").read_text())
    assert [(p.name, st) for p, st in examples] == [(e["file"], e["settings"]) for e in spec]
    uploads = loadtest.distinct_uploads([p for p, _ in examples], 9, tmp_path, side=64)
    pixels = [np.asarray(Image.open(u)) for u in uploads]
    assert all(p.shape == (64, 64, 3) for p in pixels) and len({p.tobytes() for p in pixels}) == 9
    none = {"cache": 0, "joined": 0, "computed": 0}
    before = {"computations": {"compare": none | {"computed": 2}, "inside": none | {"cache": 1}}}
    now = {"compare": none | {"cache": 1, "computed": 3}, "sweep": none | {"joined": 1}}
    after = {"computations": {**before["computations"], **now}}
    want = {"compare": none | {"cache": 1, "computed": 1}, "sweep": none | {"joined": 1}}
    assert loadtest.cache_counts(before, after) == want
    out = [{"path": "/t/a b.png", "meta": {"_type": "gradio.FileData"}}, {"models": {}}]
    want_url = "http://h/gradio_api/file=/t/a%20b.png"
    assert loadtest._file_urls(out, "http://h/gradio_api/") == [want_url]


@pytest.mark.slow
def test_every_mode_against_the_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One app start, each mode reduced: no errors while 3 clients fit a queue of 3; the burst
    beyond it partly refused ("Queue is full"), nothing else; the class's examples come from the
    app's warmed cache, its uploads computed; the restore walks report their steps."""
    for name, value in {"WNE_QUEUE_SIZE": "3", "WNE_CONCURRENT_REQUESTS": "2",
                        "WNE_DEMO_MAX_SIDE": "64", "OMP_NUM_THREADS": "1"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    env = {"WNE_CHECKPOINT_DIR": str(make_demo_checkpoints(tmp_path / "ckpt", broken=False))}
    argv = ["--app", str(ROOT / "app.py"), "--sequential", "2", "--concurrent", "2"]
    argv += ["--concurrent-requests", "1", "--clients", "3", "--requests", "1", "--rss-requests"]
    argv += ["20", "--overflow-extra", "10", "--backbones", "dncnn", "--sizes", "48", "--steps"]
    argv += ["6", "--sigma-train", "25", "--request-timeout", "120"]
    docs = {}
    with loadtest.launch_app(ROOT / "app.py", tmp_path, env) as server:
        for mode in ("classroom", "latency", "load", "restore"):
            args = loadtest.build_parser().parse_args([*argv, "--mode", mode])
            args.image, args.workdir = loadtest.examples_of(args.app)[0][0], tmp_path
            docs[mode] = loadtest.run(args, server)
    lesson = docs["classroom"]["classroom"]
    for phase in ("examples_phase", "uploads_phase"):
        assert lesson[phase]["errors"] == 0 == lesson[phase]["refused_queue_full"], lesson[phase]
        assert lesson[phase]["latency"]["n"] == 3
    assert lesson["rss_mb"]["peak"] >= lesson["rss_mb"]["before"] > 0
    lat, load = docs["latency"], docs["load"]
    assert lat["cold_start_s"] > 0 and lat["sequential"]["latency"]["n"] == 2
    conc = lat["concurrent_2"]
    assert conc["errors"] == 0 and conc["first_model_result"]["n"] == 2
    assert load["load"]["errors"] == 0 and load["load"]["latency"]["n"] == 3
    burst = load["overflow"]
    assert burst["submitted"] == 2 + 3 + 10 and burst["other_errors"] == 0, burst
    assert burst["refused_queue_full"] >= 1 and burst["completed"] >= 1
    assert {"10", "20"} <= load["memory"]["rss_mb_every_10_requests"].keys()
    assert load["after"] == {"ok": True, "error": "", "alive": True}
    (walk,) = docs["restore"]["restore"]
    assert walk["error"] == "" and walk["snapshots"] >= 1 and len(walk["models"]) == 2
    assert all(0 < m["steps"] <= 6 for m in walk["models"].values()), walk
    assert lesson["server_cache"]["compare"] == {"cache": 3, "joined": 0, "computed": 3}
