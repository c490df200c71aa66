"""The benchmark (``wne bench``, wne.lab.bench): its outputs are well formed and its machinery
does what it says. No test asserts anything about how fast a model is."""

from __future__ import annotations

import csv
import json
import math
from itertools import groupby
from pathlib import Path

import pytest
import torch
from torch import nn

from wne import catalog
from wne.lab import bench
from wne.lab.bench_report import headline_table, summarize_cell
from wne.wrapper import NormEquivariant


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """One ``--smoke`` run on the CPU, shared by the output tests."""
    out = tmp_path_factory.mktemp("bench")
    before = torch.get_num_threads()
    try:
        assert bench.main(["--smoke", "--device", "cpu", "--threads", "1", "--out", str(out)]) == 0
    finally:
        torch.set_num_threads(before)
    return out, json.loads((out / "bench-cpu.json").read_text())


@pytest.mark.slow
def test_smoke_json_has_every_cell_with_sane_statistics(smoke) -> None:
    """One record per family × variant × mode × shape (infer on 16², 32² and the 2×1×16×16
    batch; the train modes on the batch), finite positive times and ratios, plain's ratios 1."""
    _, doc = smoke
    shapes = {"infer": ["1x1x16x16", "1x1x32x32", "2x1x16x16"]}
    shapes["train"] = shapes["train-step"] = ["2x1x16x16"]
    want = {(f, v.name, m, s) for f, vs in bench.groups().items() for v in vs
            for m in bench.MODES for s in shapes[m]}  # fmt: skip
    records = doc["results"]
    assert {(r["family"], r["variant"], r["mode"], r["shape"]) for r in records} == want
    assert len(records) == len(want)
    for r in records:
        assert r["device"] == "cpu" and r["dtype"] == "fp32" and r["repeats"] == 3
        assert len(r["times_s"]) == 3 and r["inner"] >= 1 and r["params"] > 0
        assert r["q1_s"] <= r["median_s"] <= r["q3_s"] and r["min_s"] > 0
        for key in ("ratio_of_medians", "paired_ratio_median", "paired_ratio_q1"):
            assert math.isfinite(r[key]) and r[key] > 0, key
        if r["variant"] == "plain":
            assert r["ratio_of_medians"] == 1.0 == r["paired_ratio_median"]
    assert doc["machine"]["torch_threads"] == 1 and doc["machine"]["cpu_model"]
    assert "Timer" in doc["protocol"]["timer"] and doc["settings"]["smoke"]


@pytest.mark.slow
def test_smoke_csv_png_and_headline(smoke) -> None:
    """The CSV holds each JSON record but its raw times; the PNG is a PNG; the headline table
    has one row per family × variant."""
    out, doc = smoke
    rows = list(csv.DictReader((out / "bench-cpu.csv").read_text().splitlines()))
    assert list(rows[0]) == [k for k in doc["results"][0] if k != "times_s"]
    for row, rec in zip(rows, doc["results"], strict=True):
        assert (row["family"], row["variant"], row["shape"]) == (
            rec["family"], rec["variant"], rec["shape"])  # fmt: skip
        assert float(row["median_s"]) == pytest.approx(rec["median_s"])
    assert (out / "bench-cpu.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = headline_table(doc["results"]).splitlines()
    pairs = [(f, v.name) for f, vs in bench.groups().items() for v in vs]
    assert [tuple(row.split(" | ")[:2]) for row in table[2:]] == [(f"| {f}", v) for f, v in pairs]
    assert "fwd+bwd 2×1×16×16" in table[0] and all(" | – | – | " in row for row in table[2:])


def test_variants_are_interleaved_with_a_rotating_start() -> None:
    """Warm-up rounds call A B C; then repeat r samples every step once (a run of calls),
    starting with step r mod 3; a cell budget of 0 s lowers the repeats to the floor."""
    calls: list[str] = []
    steps = {name: (lambda n=name: calls.append(n)) for name in "ABC"}
    samples = bench.time_interleaved(steps, repeats=4, warmup=2, min_sample_s=0.001)
    assert {k: len(v) for k, v in samples.items()} == {"A": 4, "B": 4, "C": 4}
    runs = "".join(k for k, _ in groupby(calls))
    assert runs == "ABCABC" + "ABC" + "BCA" + "CAB" + "ABC"
    assert all(m.median > 0 and m.number_per_run >= 1 for ms in samples.values() for m in ms)
    few = bench.time_interleaved(steps, repeats=10, warmup=0, max_cell_s=0.0, min_repeats=3)
    assert {k: len(v) for k, v in few.items()} == {"A": 3, "B": 3, "C": 3}
    with pytest.raises(ValueError, match="repeats"):
        bench.time_interleaved(steps, repeats=0, warmup=0)


def test_summarize_cell_ratio_of_medians_and_paired_ratios() -> None:
    """Ratios are to plain: the ratio of medians and the quartiles of per-repeat ratios, which
    differ when the variants' noise is paired."""
    times = {"plain": [1.0, 2.0, 4.0], "wne": [1.1, 2.0, 4.8]}
    meta = {v: {"arch": "x", "wrapped": v == "wne", "arch_kwargs": {}, "params": 1} for v in times}
    cell = {"family": "f", "mode": "infer", "shape": (1, 1, 8, 8), "dtype": "fp32",
            "device": "cpu", "warmup": 1}  # fmt: skip
    inner, memory = {"plain": 1, "wne": 1}, {"plain": 100, "wne": 150}
    plain, wne = summarize_cell(cell, times, inner, memory, meta)
    assert plain["ratio_of_medians"] == 1.0 == plain["paired_ratio_median"]
    assert wne["median_s"] == 2.0 and wne["ratio_of_medians"] == pytest.approx(1.0)
    assert wne["paired_ratio_median"] == pytest.approx(1.1)  # median of 1.1, 1.0, 1.2
    assert wne["paired_ratio_q1"] == pytest.approx(1.05)
    assert wne["peak_mem_ratio"] == pytest.approx(1.5) and wne["pixels"] == 64
    with pytest.raises(ValueError, match="plain"):
        summarize_cell(cell, {"wne": [1.0]}, {"wne": 1}, {}, meta)


def test_make_step_modes_do_what_they_say() -> None:
    """infer leaves the weights and grads alone; train leaves no grads and the same weights;
    train-step moves the weights (Adam); unknown modes and dtypes are refused."""
    x, target = torch.randn(2, 1, 8, 8), torch.randn(2, 1, 8, 8)
    model = NormEquivariant(nn.Conv2d(1, 1, 3, padding=1))
    w0 = model.backbone.weight.detach().clone()
    bench.make_step(model, "infer", x, target)()
    assert not model.training and model.backbone.weight.grad is None
    bench.make_step(model, "train", x, target)()
    assert model.training and model.backbone.weight.grad is None
    assert torch.equal(model.backbone.weight, w0)
    bench.make_step(model, "train-step", x, target)()
    assert not torch.equal(model.backbone.weight, w0)
    with pytest.raises(ValueError, match="mode"):
        bench.make_step(model, "fit", x, target)
    with pytest.raises(ValueError, match="dtype"):
        bench.make_step(model, "infer", x, target, dtype="fp16")


def test_groups_and_sizes_come_from_the_catalog() -> None:
    """A group per family with plain and WNE variants, its NE twin as ne_arch; --config paper
    builds the paper's FDnCNN sizes (665,920 / 664,704 parameters)."""
    groups = bench.groups()
    pairs = [f for f in catalog.families() if {"plain", "wne"} <= set(f.variants)]
    assert list(groups) == [f.id for f in pairs]
    for fam in pairs:
        want = ["plain", "wne"] + ["ne_arch"] * bool(fam.ne_twin)
        assert [v.name for v in groups[fam.id]] == want
    sizes = {}
    for v in groups["fdncnn"]:
        model, kwargs = bench.build_variant(v, "paper")
        assert kwargs == {"depth": 20, "width": 64}
        assert isinstance(model, NormEquivariant) == v.wrapped
        sizes[v.name] = sum(p.numel() for p in model.parameters())
    assert sizes == {"plain": 665_920, "wne": 665_920, "ne_arch": 664_704}
    with pytest.raises(ValueError, match="config"):
        bench.build_variant(groups["swinir"][0], "huge")


def test_peak_memory_sees_a_large_temporary_allocation() -> None:
    """The CPU peak-RSS method catches a 64 MiB tensor freed inside the call."""
    peak = bench.measure_peak_memory(lambda: torch.ones(16 * 2**20), torch.device("cpu"))
    if peak is None:
        pytest.skip("needs Linux /proc/self/clear_refs")
    assert peak >= 0.9 * 64 * 2**20


BAD_ARGS = [
    ("--sizes 4", ">= 8"), ("--sizes a,b", "integers"), ("--families unet", "unknown family"),
    ("--modes infer,fit", "unknown mode"), ("--batch-shape 16x64x64", "BxCxHxW"),
    ("--dtypes bf16 --device cpu", "CUDA only"), ("--repeats 0", "--repeats"),
    ("--device tpu", "device"),
]  # fmt: skip


@pytest.mark.parametrize(("argv", "message"), BAD_ARGS)
def test_cli_refuses_bad_arguments_by_name(argv, message, tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        bench.main([*argv.split(), "--out", str(tmp_path), "--smoke", "--families", "fdncnn"])
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_profile_wrapper_times_the_wrapper_and_lists_its_operators(tmp_path) -> None:
    """--profile-wrapper times the wrapper around an identity against the bare identity, gives
    its share of a plain backbone of a bench JSON and writes torch.profiler's operator table."""
    plain = {"family": "dncnn", "variant": "plain", "dtype": "fp32", "median_s": 0.5}
    plain |= {"mode": "infer", "shape": "1x1x16x16"}
    (tmp_path / "bench-cpu.json").write_text(json.dumps({"results": [plain]}))
    argv = ["--profile-wrapper", "--device", "cpu", "--sizes", "16", "--batch-shape", "none"]
    assert bench.main([*argv, "--out", str(tmp_path)]) == 0
    doc = json.loads((tmp_path / "wrapper-profile-cpu.json").read_text())
    by_mode = {r["mode"]: r for r in doc["results"]}
    assert set(by_mode) == {"infer", "train"}
    for r in by_mode.values():
        assert r["shape"] == "1x1x16x16" and r["wrapper_s"] > 0
        assert r["ops"] and all(o["op"] and o["self_cpu_us"] >= 0 for o in r["ops"])
    assert by_mode["infer"]["plain_s"] == {"dncnn": 0.5} and by_mode["train"]["plain_s"] == {}
    text = (tmp_path / "wrapper-profile-cpu.txt").read_text()
    assert "of dncnn (0.500 s)" in text and "Self CPU" in text
