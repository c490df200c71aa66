"""Scenario links (wne.demo.links with the pages' settings): settings → link → settings.

Every parameter a link took before still opens the same scenario (a link printed on a
slide), every control round-trips exactly, and bad, unknown, repeated, overlong or too
many parameters are ignored with a note, never an exception. The page's image is
recognised as a bundled example by its pixels. The page is built, not served.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import gradio as gr
import numpy as np
import pytest
import torch
from PIL import Image

import app
from wne.demo import DemoInputError, Zoo, content, links
from wne.demo import site as site_links

EXAMPLES = {e.path.stem: e.path for e in content.load_examples(app.ASSETS / "examples")}
BASE = "http://127.0.0.1:7860/"
SLIDE = (
    "?image=parrots&a=0.3&b=0&sigma=25&seed=0&sigma_train=25&backbones=dncnn,swinir"
    "&order=noise-then-shift&max_side=256&clip=false&backbone=dncnn&tab=compare&present=false"
)
"""A link as the demo printed it before (issue 23 keeps every such link working)."""


@pytest.fixture(scope="module")
def demo() -> gr.Blocks:
    """The page built without any checkpoint (a page, not a crash)."""
    demo = app.build_demo(Zoo({}, torch.device("cpu")))
    assert {d.api_name for d in demo.fns.values()} >= {"denoise", "sweep", "restore"}
    return demo


@pytest.fixture(scope="module")
def controls(demo: gr.Blocks) -> dict[str, Any]:
    """The page's controls of the linked settings, each made from its page's schema."""
    return demo.wne_controls  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def site(demo: gr.Blocks) -> Any:
    """The page's settings forms and examples (what a link is checked against)."""
    site = demo.wne_site  # type: ignore[attr-defined]
    assert site.examples == EXAMPLES
    return site


def parse(site: Any, pairs: Any) -> tuple[dict[str, Any], list[str]]:
    return links.parse_query(pairs, site_links.LINKS, site.link_value, ["backbones"])


def other_value(control: Any) -> Any:
    """A valid value of a control that differs from its default (and is not round)."""
    if isinstance(control, gr.Checkbox):
        return not control.value
    if isinstance(control, gr.CheckboxGroup):
        return [v for _, v in control.choices if v not in control.value] or [control.choices[0][1]]
    if isinstance(control, gr.Radio | gr.Dropdown):
        return next(v for _, v in control.choices if v != control.value)
    lo, hi = control.minimum, control.maximum
    value = lo + (hi - lo) / 3
    return int(value) if control.precision == 0 else value


def test_a_link_printed_before_opens_the_same_scenario(site: Any) -> None:
    values, notes = parse(site, parse_qsl(SLIDE[1:]))
    assert not notes
    assert values == {
        "image": "parrots",
        "a": 0.3,
        "b": 0.0,
        "sigma": 25.0,
        "seed": 0,
        "sigma_train": 25,
        "backbones": ["dncnn", "swinir"],
        "order": "noise-then-shift",
        "max_side": 256,
        "clip": False,
        "backbone": "dncnn",
        "tab": "compare",
        "present": False,
    }
    noise, _ = parse(
        site,
        {
            "noise": "lowlight",
            "photons": "10",
            "read_noise": "1",
            "quality": "30",
            "checkpoint": "cpu",
        }.items(),
    )
    assert noise == {
        "noise": "lowlight",
        "photons": 10.0,
        "read_noise": 1.0,
        "quality": 30,
        "checkpoint": "cpu",
    }


def test_every_control_round_trips_exactly(controls: dict[str, Any], site: Any) -> None:
    names = [n for n in site_links.LINKS if n not in ("image", "tab", "present")]
    assert set(names) == {*site_links.SCENE, "backbone"}
    values = {
        "image": "caps",
        **{n: other_value(controls[n]) for n in names},
        "tab": "sweep",
        "present": True,
    }
    link = links.build_link(BASE, values)
    assert link.startswith(BASE + "?image=caps&a=")
    back, notes = parse(site, parse_qsl(urlsplit(link).query))
    assert not notes and back == values


def test_malformed_parameters_are_ignored_with_a_note(site: Any) -> None:
    pairs = [
        ("a", "banana"),
        ("sigma", "500"),
        ("zzz<b>", "1"),
        ("b", "0.25"),
        ("backbones", "dncnn"),
        ("backbones", " swinir "),
        ("seed", "1"),
        ("seed", "2"),
        ("order", "x" * 300),
        ("image", "upload"),
    ]
    values, notes = parse(site, pairs)
    assert values == {"b": 0.25, "backbones": ["dncnn", "swinir"], "seed": 2, "image": "upload"}
    text = "\n".join(notes)
    assert "contrast a must be a number" in text and "got 500" in text
    assert "zzz&lt;b&gt;" in text and "given 2 times" in text and "longer than" in text
    assert "uploaded image" in text
    many, notes = parse(site, [("a", "1")] * (links.MAX_PARAMS + 5))
    assert many == {"a": 1.0} and f"first {links.MAX_PARAMS}" in notes[0]


def test_a_link_cannot_name_a_value_the_page_refuses(site: Any) -> None:
    with pytest.raises(DemoInputError, match=r"working size .* must be in \[32, 1024\]"):
        site.link_value("max_side", "2048")  # the page's CPU limit
    with pytest.raises(DemoInputError, match="tab must be one of"):
        site.link_value("tab", "settings")
    assert links.build_link("javascript:alert(1)", {"a": 0.5}) == "?a=0.5"
    assert links.encode(1 / 3) == repr(1 / 3) and links.encode(2.0) == "2"


def test_identify_image_by_pixels(tmp_path: Path) -> None:
    """Gradio re-encodes the page's image: the example is recognised by its pixels."""
    copy = tmp_path / "image.png"
    Image.open(EXAMPLES["caps"]).save(copy, compress_level=1)  # other bytes, same pixels
    assert copy.read_bytes() != EXAMPLES["caps"].read_bytes()
    assert links.identify_image(copy, EXAMPLES) == "caps"
    pixels = np.asarray(Image.open(EXAMPLES["caps"])).copy()
    pixels[0, 0] ^= 1
    Image.fromarray(pixels).save(copy)
    assert links.identify_image(copy, EXAMPLES) == links.UPLOAD
    assert links.identify_image(None, EXAMPLES) == links.UPLOAD
    assert links.identify_image(tmp_path / "missing.png", EXAMPLES) == links.UPLOAD
