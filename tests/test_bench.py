"""Tests of the benchmark CLI (wne-bench, wne.lab.bench): output well-formedness and the
measurement machinery. No test asserts anything about how fast a model is."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from wne import catalog
from wne.lab import bench
from wne.lab.bench_report import CSV_FIELDS, headline_table, summarize_cell
from wne.wrapper import NormEquivariant

RATIO_KEYS = ("ratio_of_medians", "paired_ratio_median", "paired_ratio_q1", "paired_ratio_q3")


@pytest.fixture
def one_thread():
    """Runs a test with one torch thread and restores the previous count."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def smoke_report(tmp_path_factory) -> tuple[Path, dict]:
    """One ``--smoke`` run on CPU shared by the output tests."""
    out = tmp_path_factory.mktemp("bench")
    before = torch.get_num_threads()
    try:
        argv = ["--smoke", "--device", "cpu", "--threads", "1", "--out", str(out)]
        status = bench.main([*argv, "--repeats-large", "2", "--large-pixels", str(32 * 32)])
    finally:
        torch.set_num_threads(before)
    assert status == 0
    return out, json.loads((out / "bench-cpu.json").read_text())


def _expected_cells() -> set[tuple[str, str, str, str]]:
    """(family, variant, mode, shape) of a smoke run: infer on 16², 32² and the
    2×1×16×16 batch; train and train-step on the batch only."""
    shapes = {"infer": ["1x1x16x16", "1x1x32x32", "2x1x16x16"]}
    shapes["train"] = shapes["train-step"] = ["2x1x16x16"]
    return {
        (family, v.name, mode, shape)
        for family, variants in bench.groups().items()
        for v in variants
        for mode in bench.MODES
        for shape in shapes[mode]
    }


@pytest.mark.slow
def test_smoke_json_has_every_variant_mode_shape_and_ratio(smoke_report):
    """The smoke JSON holds one record per family × variant × mode × shape, each with
    finite positive times and ratios, plain ratios exactly 1, and repeats as asked
    (--repeats-large 2 from 32² = 1024 pixels on, 3 below)."""
    _out, report = smoke_report
    records = report["results"]
    got = {(r["family"], r["variant"], r["mode"], r["shape"]) for r in records}
    assert got == _expected_cells()
    assert len(records) == len(got)
    for r in records:
        assert r["device"] == "cpu" and r["dtype"] == "fp32"
        assert r["repeats"] == (2 if r["pixels"] >= 1024 else 3) == len(r["times_s"])
        for key in ("median_s", "q1_s", "q3_s", "min_s", "mean_s"):
            assert math.isfinite(r[key]) and r[key] > 0, key
        assert r["q1_s"] <= r["median_s"] <= r["q3_s"]
        assert r["iqr_s"] == pytest.approx(r["q3_s"] - r["q1_s"])
        for key in RATIO_KEYS:
            assert math.isfinite(r[key]) and r[key] > 0, key
        if r["variant"] == "plain":
            assert r["ratio_of_medians"] == 1.0 == r["paired_ratio_median"]
        assert r["params"] > 0 and r["arch_kwargs"] == {}
        if bench.cpu_peak_supported():
            assert isinstance(r["peak_mem_bytes"], int) and r["peak_mem_bytes"] >= 0


@pytest.mark.slow
def test_smoke_json_describes_machine_protocol_and_headline(smoke_report):
    """The JSON names the CPU, core count, torch version and threads, says how memory
    was measured, and has a headline row per family × variant (which the Markdown
    table lists)."""
    _out, report = smoke_report
    machine = report["machine"]
    assert machine["cpu_model"] and machine["logical_cpus"] >= 1
    assert machine["torch"] == torch.__version__ and machine["torch_threads"] == 1
    assert report["settings"]["smoke"] is True and report["settings"]["dtypes"] == ["fp32"]
    assert "memory" in report["protocol"] and report["run"]["wall_s"] > 0
    heads = {(h["family"], h["variant"]) for h in report["headline"]}
    assert heads == {(f, v.name) for f, vs in bench.groups().items() for v in vs}
    for h in report["headline"]:
        assert h["batch_shape"] == "2x1x16x16"
        assert h["train_step_batch_s"] > 0 and h["train_step_batch_ratio"] > 0
        assert h["infer_256_s"] is None  # not run in smoke mode
    table = headline_table(report)
    assert table.count("\n") == 1 + len(report["headline"])
    assert "ne_arch" in table and "swinir" in table


@pytest.mark.slow
def test_smoke_csv_matches_json_and_png_is_written(smoke_report):
    """The CSV has the documented columns and one row per JSON record with the same
    medians; the plot is a PNG file."""
    out, report = smoke_report
    with (out / "bench-cpu.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == CSV_FIELDS
    assert len(rows) == len(report["results"])
    for row, rec in zip(rows, report["results"], strict=True):
        assert (row["family"], row["variant"], row["shape"]) == (
            rec["family"],
            rec["variant"],
            rec["shape"],
        )
        assert float(row["median_s"]) == pytest.approx(rec["median_s"])
        assert float(row["paired_ratio_median"]) == pytest.approx(rec["paired_ratio_median"])
    pytest.importorskip("matplotlib")
    assert (out / "bench-cpu.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_time_interleaved_runs_each_variant_once_per_repeat_with_rotation():
    """Every repeat calls each step once (inner = 1), starting one variant later each
    time: A B C, B C A, C A B, A B C; warm-up rounds come first, interleaved too."""
    calls: list[str] = []
    steps = {name: (lambda n=name: calls.append(n)) for name in "ABC"}
    times, inner = bench.time_interleaved(steps, repeats=4, warmup=2)
    assert inner == 1
    assert {k: len(v) for k, v in times.items()} == {"A": 4, "B": 4, "C": 4}
    assert calls[:6] == list("ABCABC")
    assert calls[6:] == list("ABCBCACABABC")


def test_time_interleaved_cell_budget_lowers_repeats_to_the_floor():
    """A cell budget too small for any repeat keeps min_repeats samples per step; at
    least one repeat is required."""
    steps = {"plain": lambda: None, "wne": lambda: None}
    times, _ = bench.time_interleaved(steps, repeats=10, warmup=0, max_cell_s=0.0, min_repeats=3)
    assert {k: len(v) for k, v in times.items()} == {"plain": 3, "wne": 3}
    times, _ = bench.time_interleaved(steps, repeats=10, warmup=0, max_cell_s=1e6)
    assert {k: len(v) for k, v in times.items()} == {"plain": 10, "wne": 10}
    with pytest.raises(ValueError, match="repeats"):
        bench.time_interleaved(steps, repeats=0, warmup=0)


def test_summarize_cell_ratio_of_medians_and_paired_ratios():
    """Ratios are to plain: the ratio of medians and the quantiles of the per-repeat
    ratios, which differ when the variants' noise is paired."""
    times = {"plain": [1.0, 2.0, 4.0], "wne": [1.1, 2.0, 4.8]}
    memory = {"plain": 100, "wne": 150}
    meta = {v: {"arch": "x", "wrapped": v == "wne", "arch_kwargs": {}, "params": 1} for v in times}
    recs = summarize_cell(
        family="f", mode="infer", shape=(1, 1, 8, 8), dtype="fp32", device="cpu",
        times=times, inner=1, warmup=1, memory=memory, meta=meta,
    )  # fmt: skip
    plain, wne = recs
    assert plain["ratio_of_medians"] == 1.0 == plain["paired_ratio_median"]
    assert wne["median_s"] == 2.0 and wne["ratio_of_medians"] == pytest.approx(1.0)
    assert wne["paired_ratio_median"] == pytest.approx(1.1)  # median of 1.1, 1.0, 1.2
    assert wne["paired_ratio_q1"] == pytest.approx(1.05)
    assert wne["peak_mem_ratio"] == pytest.approx(1.5)
    assert wne["pixels"] == 64 and wne["shape"] == "1x1x8x8"
    with pytest.raises(ValueError, match="plain"):
        summarize_cell(
            family="f", mode="infer", shape=(1, 1, 8, 8), dtype="fp32", device="cpu",
            times={"wne": [1.0]}, inner=1, warmup=1, memory={}, meta=meta,
        )  # fmt: skip


class _Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def test_make_step_modes_do_what_they_say(one_thread):
    """infer leaves weights and grads untouched; train (fwd + out.mean() + bwd +
    zero_grad) leaves no grads and the weights unchanged; train-step moves the
    weights (Adam step); unknown modes and dtypes are rejected."""
    x, target = torch.randn(2, 1, 8, 8), torch.randn(2, 1, 8, 8)
    model = NormEquivariant(_Tiny())
    w0 = model.backbone.conv.weight.detach().clone()
    bench.make_step(model, "infer", x, target)()
    assert not model.training and model.backbone.conv.weight.grad is None
    bench.make_step(model, "train", x, target)()
    assert model.training and model.backbone.conv.weight.grad is None
    assert torch.equal(model.backbone.conv.weight, w0)
    bench.make_step(model, "train-step", x, target)()
    assert not torch.equal(model.backbone.conv.weight, w0)
    with pytest.raises(ValueError, match="mode"):
        bench.make_step(model, "fit", x, target)
    with pytest.raises(ValueError, match="dtype"):
        bench.make_step(model, "infer", x, target, dtype="fp16")


def test_paper_config_builds_the_paper_fdncnn_sizes():
    """--config paper gives the paper's FDnCNN / NE-arch FDnCNN (depth 20, width 64;
    665,920 and 664,704 parameters per the paper notes); default is build(arch)."""
    sizes = {}
    for v in bench.groups()["fdncnn"]:
        model, kwargs = bench.build_variant(v, "paper")
        assert kwargs == {"depth": 20, "width": 64}
        assert isinstance(model, NormEquivariant) == v.wrapped
        sizes[v.name] = sum(p.numel() for p in model.parameters())
    assert sizes == {"plain": 665_920, "wne": 665_920, "ne_arch": 664_704}
    model, kwargs = bench.build_variant(bench.groups()["swinir"][0], "default")
    assert kwargs == {}
    with pytest.raises(ValueError, match="config"):
        bench.build_variant(bench.groups()["swinir"][0], "huge")


def test_peak_memory_sees_a_large_temporary_allocation():
    """The CPU peak-RSS method catches a 64 MB tensor that is freed inside the call."""
    if not bench.cpu_peak_supported():
        pytest.skip("needs Linux /proc/self/clear_refs")
    nbytes = 64 * 2**20

    def step() -> None:
        torch.ones(nbytes // 4)

    peak = bench.measure_peak_memory(step, torch.device("cpu"))
    assert peak is not None and peak >= 0.9 * nbytes


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--sizes", "4"], ">= 8"),
        (["--sizes", "a,b"], "integers"),
        (["--families", "unet"], "unknown family"),
        (["--modes", "infer,fit"], "unknown mode"),
        (["--batch-shape", "16x64x64"], "BxCxHxW"),
        (["--dtypes", "bf16", "--device", "cpu"], "CUDA only"),
        (["--repeats", "0"], "--repeats"),
        (["--repeats-large", "0"], "--repeats-large"),
        (["--device", "tpu"], "device"),
    ],
)
def test_cli_rejects_bad_arguments_with_a_clear_message(argv, message, tmp_path, capsys):
    """Bad options stop the CLI (exit status 2) with a message naming the problem."""
    with pytest.raises(SystemExit) as exc:
        bench.main([*argv, "--out", str(tmp_path), "--smoke", "--families", "fdncnn"])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_rejects_cuda_when_absent(tmp_path, capsys):
    """Asking for CUDA on a machine without it is an error, not a silent CPU run."""
    if torch.cuda.is_available():
        pytest.skip("CUDA is present")
    with pytest.raises(SystemExit):
        bench.main(["--device", "cuda", "--smoke", "--out", str(tmp_path)])
    assert "CUDA is not available" in capsys.readouterr().err


def test_profile_wrapper_cli_lists_the_wrapper_ops_by_function(tmp_path, capsys, one_thread):
    """--profile-wrapper times the wrapper around an identity backbone and lists its
    operators in call order under the wrapper function that issued them (in infer mode
    every operator comes from wne/wrapper.py), plus the autograd nodes in train mode; it
    compares with plain times of an existing bench JSON. Which operators the wrapper
    calls is its own business: no operator name is asserted."""
    plain = {"family": "dncnn", "variant": "plain", "dtype": "fp32", "median_s": 0.5}
    (tmp_path / "bench-cpu.json").write_text(
        json.dumps({"results": [{**plain, "mode": "infer", "shape": "1x1x16x16"}]})
    )
    argv = ["--profile-wrapper", "--device", "cpu", "--sizes", "16", "--batch-shape", "none"]
    assert bench.main([*argv, "--repeats", "2", "--out", str(tmp_path)]) == 0
    doc = json.loads((tmp_path / "wrapper-profile-cpu.json").read_text())
    by_mode = {r["mode"]: r for r in doc["results"]}
    assert set(by_mode) == {"infer", "train"}
    for r in by_mode.values():
        assert r["shape"] == "1x1x16x16" and r["wrapper_s"] > 0
        assert r["ops"] and all(o["op"] and o["us"] >= 0 for o in r["ops"])
        total = sum(o["us"] for o in r["ops"])
        assert sum(r["by_function_us"].values()) == pytest.approx(total)
    assert all(o["where"].startswith("wne/wrapper.py") for o in by_mode["infer"]["ops"])
    train_places = {o["where"].split("(")[0].strip() for o in by_mode["train"]["ops"]}
    assert "backward" in train_places and "wne/wrapper.py" in train_places
    assert train_places <= {"backward", "wne/wrapper.py", "bench harness"}
    text = (tmp_path / "wrapper-profile-cpu.txt").read_text()
    assert "of dncnn (0.500 s)" in text and "top-level operators in call order" in text
    assert "wrapper alone" in capsys.readouterr().out


def test_groups_come_from_the_catalog():
    """One group per catalog family with plain and WNE variants; a family's NE twin is
    timed beside it as ne_arch; --config paper uses the catalog's paper sizes."""
    groups = bench.groups()
    pairs = [f for f in catalog.families() if {"plain", "wne"} <= set(f.variants)]
    assert list(groups) == [f.id for f in pairs]
    for fam in pairs:
        names = [v.name for v in groups[fam.id]]
        assert names == ["plain", "wne"] + (["ne_arch"] if fam.ne_twin else [])
        assert [v.arch for v in groups[fam.id][:2]] == [fam.arch, fam.arch]
    (ne,) = [v for v in groups["fdncnn"] if v.name == "ne_arch"]
    assert ne.arch == catalog.FAMILIES[catalog.FAMILIES["fdncnn"].ne_twin].arch
    _model, kwargs = bench.build_variant(groups["swinir"][1], "paper")
    assert kwargs == dict(catalog.FAMILIES["swinir"].paper.arch_kwargs)
