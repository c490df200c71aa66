"""tools/aot_check.py end to end on tiny checkpoints.

``torch.export``'s own ``.pt2`` (``torch.export.save`` / ``load``) stands in for the
AOTInductor compile, a C++ build of a minute or more per model: the test proves the
tool's export attempts, fallbacks, padding, wrapping and report, not AOTInductor.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType

import pytest
import torch
import torch._inductor

ROOT = Path(__file__).resolve().parent.parent


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("aot_check", ROOT / "tools" / "aot_check.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _export_package(ep: torch.export.ExportedProgram, package_path: str) -> str:
    torch.export.save(ep, package_path)
    return package_path


def test_report_records_attempts_and_matches_eager(
    bundled_checkpoints: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every model gets a working compiled stand-in equal to eager at every shape it has a
    package for, the unseen shape included when its package is dynamic; each failed
    attempt names its exception; eager models keep working after export."""
    tool = _tool()
    monkeypatch.setattr(torch._inductor, "aoti_compile_and_package", _export_package)
    monkeypatch.setattr(
        torch._inductor, "aoti_load_package", lambda p: torch.export.load(p).module()
    )
    monkeypatch.setattr(tool, "ROUNDS", 1)
    out, packages = tmp_path / "aot.json", tmp_path / "pt2"
    keys = ["dncnn-plain-tiny", "dncnn-wne-tiny", "swinir-wne-tiny"]
    argv = f"--sizes 32 --models {','.join(keys)} --out {out} --packages {packages}".split()
    assert tool.main(argv) == 0
    models = json.loads(out.read_text())["models"]
    assert [m["key"] for m in models] == keys
    for m in models:
        attempts = m["attempts"]
        assert attempts[0]["what"] == "whole model, dynamic H, W"
        assert all(re.match(r"\w+: \S", a["reason"]) for a in attempts if not a["ok"])
        ok = [a for a in attempts if a["ok"]]
        assert ok and m["compiled"].startswith(ok[-1]["what"].split(",")[0])
        dynamic = m["compiled"].endswith("dynamic")
        if dynamic:  # the package is kept where --packages says
            assert (packages / f"{m['key']}.pt2").stat().st_size == ok[-1]["bytes"]
        assert [r["shape"] for r in m["sizes"]] == [[32, 32], [37, 29]]
        for r in m["sizes"]:
            if dynamic or r["seen_at_export"]:
                assert r["max_abs_diff"] < 1e-5, (m["key"], r)
                assert r["eager_ms"] > 0 and r["compiled_ms"] > 0
            else:
                assert "no package for shape (40, 32)" in r["error"]
    plain, wne_dncnn = models[0], models[1]
    assert plain["compiled"] == "whole model, dynamic" and not plain["sizes"][1]["seen_at_export"]
    assert wne_dncnn["compiled"].endswith("dynamic")  # one package serves every shape


def test_rejects_sizes_below_16(capsys: pytest.CaptureFixture[str]) -> None:
    """Sides under 16 are refused, naming the option (SwinIR needs sides window·k, k ≥ 2)."""
    with pytest.raises(SystemExit):
        _tool().main(["--sizes", "8,64"])
    assert "--sizes must be >= 16, got 8,64" in capsys.readouterr().err
