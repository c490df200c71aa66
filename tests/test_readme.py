"""The README's code runs as written: the `gradio_client` block against the session's served
app (an endpoint, parameter or output the README promises cannot drift from the app), the
"Wrap your own model" block (a defect at float round-off) and the own-data block."""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")


def _block(after_heading: str) -> str:
    """The first ```python block after a heading."""
    tail = README[README.index(after_heading) :]
    match = re.search(r"```python\n(.*?)```", tail, flags=re.S)
    assert match, f"no python block after {after_heading!r}"
    return match.group(1)


def test_wrap_your_own_model_block_runs() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(_block("## Wrap your own model"), {})
    defect = float(re.findall(r"[\d.]+e-\d+|[\d.]+", out.getvalue())[0])
    assert defect < 1e-5, out.getvalue()


def test_gradio_client_block_runs_against_the_app(app_url: str, served: Any) -> None:
    code = _block("### Scripting the demo with `gradio_client`")
    assert 'Client("http://127.0.0.1:7860/")' in code
    code = code.replace('"http://127.0.0.1:7860/"', repr(app_url))
    cwd = os.getcwd()
    os.chdir(REPO)  # the README's paths are relative to the repository root
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            scope: dict[str, Any] = {}
            exec(code, scope)
    finally:
        os.chdir(cwd)
    assert set(scope["summary"]["models"]) and scope["curves"]["rows"]
    assert scope["numbers"]["normalized_max_diff"] <= 1e-5
    assert scope["result"]["done"] and scope["result"]["models"]


def test_own_data_block_keeps_the_units_and_the_quoted_scores(monkeypatch: Any) -> None:
    """The own-data block keeps the frame's dtype and shape and gives the PSNRs it quotes."""
    import numpy as np

    monkeypatch.chdir(REPO)
    exec(_block("## Denoise your own data"), scope := {})
    frame, out, truth = scope["frame"], scope["out"], 200 + 3000 * scope["clean"]
    assert out.dtype == frame.dtype == np.uint16 and out.shape == frame.shape
    plain = scope["wne"].denoise(frame, "dncnn-plain-s25")
    scores = [10 * np.log10(3000**2 / np.mean((x - truth) ** 2)) for x in (frame, out, plain)]
    pattern = r"([\d.]+) → ([\d.]+) dB \(dncnn-plain-s25: ([\d.]+)\)"
    quoted = re.search(pattern, _block("## Denoise your own data"))
    assert quoted and [round(s, 2) for s in scores] == [float(q) for q in quoted.groups()]
