"""Scenario links (wne.demo.links, wne.demo.classroom): settings → link → settings.

Every setting a link carries round-trips exactly; bad, unknown, repeated and
overlong parameters are ignored with a note (never an exception); the page's
image is recognised as a bundled example by its pixels. No server, no models.
"""

from __future__ import annotations

import math
from dataclasses import fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import numpy as np
import pytest
from PIL import Image

from wne.demo import content
from wne.demo.classroom import ClassroomKit
from wne.demo.links import (
    MAX_VALUE_CHARS,
    UPLOAD,
    build_link,
    build_query,
    identify_image,
    link_params,
    parse_link,
)
from wne.demo.settings import DemoInputError, Param, Settings, params, parse_settings

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = content.load_examples(REPO / "assets" / "examples")
TABS = [("Compare", "compare"), ("Equivariance", "equivariance"), ("Noise sweep", "sweep")]
BASE = "http://127.0.0.1:7860/"


@pytest.fixture
def spec() -> dict[str, Param]:
    images = [(e.label, e.path.stem) for e in EXAMPLES]
    return link_params(params(), images, TABS)


def other_value(p: Param) -> Any:
    """A valid value of ``p`` that differs from its default (and is not round)."""
    if p.kind == "float":
        assert p.lo is not None and p.hi is not None
        value = p.lo + (p.hi - p.lo) / 3  # 1/3: no short decimal form
        return value if value != p.default else (p.lo + p.hi) / 7
    if p.kind == "int":
        assert p.lo is not None and p.hi is not None
        return int(p.lo + (p.hi - p.lo) // 3) if p.default != p.lo + (p.hi - p.lo) // 3 else p.hi
    if p.kind == "choice":
        return next(v for v in p.values if v != p.default)
    if p.kind == "choices":
        return tuple(v for v in p.values if v not in p.default) or tuple(p.values[:1])
    return not p.default


def test_every_settings_field_is_a_link_parameter(spec: dict[str, Param]) -> None:
    """Fields added to Settings later (e.g. the noise type) are carried automatically."""
    names = [f.name for f in fields(Settings)]
    assert set(names) <= set(spec)
    assert {"image", "tab", "present", "backbone"} <= set(spec)
    assert list(spec)[:1] + list(spec)[-2:] == ["image", "tab", "present"]


def test_each_parameter_round_trips_alone(spec: dict[str, Param]) -> None:
    """settings → link → settings, one non-default value per parameter."""
    for name, p in spec.items():
        value = other_value(p)
        link = build_link(BASE, {name: value}, spec)
        req = parse_link(parse_qsl(urlsplit(link).query, keep_blank_values=True), spec)
        assert req.notes == [] or (name == "image" and value == UPLOAD), (name, req.notes)
        assert req.values == {name: value}, (name, link)


def test_all_settings_round_trip_together(spec: dict[str, Param]) -> None:
    """A whole non-default Settings (every field) survives the link exactly."""
    chosen = {f.name: other_value(spec[f.name]) for f in fields(Settings)}
    original = parse_settings(**chosen)
    values = {
        **original.to_dict(),
        "image": "caps",
        "tab": "sweep",
        "present": True,
        "backbone": "swinir",
    }
    link = build_link(BASE, values, spec)
    assert link.startswith(BASE + "?image=caps&a=")
    req = parse_link(parse_qsl(urlsplit(link).query), spec)
    assert req.notes == []
    names = [f.name for f in fields(Settings)]
    assert parse_settings(**{n: req.values[n] for n in names}) == original
    page = (req.values["image"], req.values["tab"], req.values["present"])
    assert page == ("caps", "sweep", True)
    assert req.values["backbone"] == "swinir"
    assert req.is_scenario


@pytest.mark.parametrize("value", [0.1, 1 / 3, 0.123456789012345, 2.0, 3.999999999999999])
def test_floats_are_exact(spec: dict[str, Param], value: float) -> None:
    query = build_query({"a": value}, spec)
    assert parse_link(parse_qsl(query[1:]), spec).values["a"] == value
    assert build_query({"a": 2.0}, spec) == "?a=2"


def test_link_text_is_readable(spec: dict[str, Param]) -> None:
    link = build_link(
        "https://teacher.example/wne/?old=1#frag",
        {"a": 0.3, "backbones": ["dncnn", "swinir"], "order": "noise-then-shift", "clip": True},
        spec,
    )
    assert link == (
        "https://teacher.example/wne/?a=0.3&backbones=dncnn,swinir&order=noise-then-shift&clip=true"
    )


@pytest.mark.parametrize("base", ["", "javascript:alert(1)", "file:///etc/passwd", "not a url"])
def test_unknown_base_gives_a_relative_link(spec: dict[str, Param], base: str) -> None:
    assert build_link(base, {"a": 0.5}, spec) == "?a=0.5"


def test_building_rejects_bad_values(spec: dict[str, Param]) -> None:
    with pytest.raises(DemoInputError, match="contrast a"):
        build_query({"a": 99}, spec)
    with pytest.raises(DemoInputError, match="not link parameter"):
        build_query({"nope": 1}, spec)


MALFORMED = [
    ("a=banana", "contrast a must be a number"),
    ("a=nan", "finite"),
    ("a=1e9", "contrast a must be in"),
    ("sigma=", "noise sigma must be a number"),
    ("seed=1.5", "whole number"),
    ("sigma_train=13", "must be one of"),
    ("backbones=dncnn,resnet", "unknown value"),
    ("backbones=", "choose at least 1"),
    ("order=sideways", "order of operations must be one of"),
    ("clip=maybe", "must be true or false"),
    ("image=../../etc/passwd", "image must be one of"),
    ("tab=settings", "tab must be one of"),
    ("foo=1", "unknown parameter"),
    ("<script>alert(1)</script>=1", "unknown parameter"),
    ("a=" + "9" * (MAX_VALUE_CHARS + 1), "longer than"),
]


@pytest.mark.parametrize(("query", "message"), MALFORMED)
def test_malformed_parameters_are_ignored_with_a_note(
    spec: dict[str, Param], query: str, message: str
) -> None:
    req = parse_link(parse_qsl(query, keep_blank_values=True), spec)
    assert req.values == {}
    assert not req.is_scenario
    assert len(req.notes) == 1 and message in req.notes[0].replace("\\", ""), req.notes
    text = req.markdown()
    assert text.startswith("**This link's settings could not be used")
    assert "<script" not in text and "<" not in text.replace("&lt;", "")


def test_good_parameters_survive_bad_neighbours(spec: dict[str, Param]) -> None:
    query = "a=0.3&sigma=abc&zzz=1&order=noise-then-shift&a=0.4"
    req = parse_link(parse_qsl(query), spec)
    assert req.values == {"a": 0.4, "order": "noise-then-shift"}  # the last repeat wins
    assert len(req.notes) == 3  # unknown zzz, bad sigma, repeated a
    assert req.is_scenario and req.markdown().startswith("**Opened from a scenario link.**")


def test_repeated_backbones_and_spaces_are_accepted(spec: dict[str, Param]) -> None:
    req = parse_link([("backbones", "swinir"), ("backbones", " dncnn ")], spec)
    assert req.values == {"backbones": ("dncnn", "swinir")} and req.notes == []


def test_upload_keeps_the_image_with_a_note(spec: dict[str, Param]) -> None:
    req = parse_link({"image": "upload", "a": "0.5"}, spec)
    assert req.values == {"image": UPLOAD, "a": 0.5}
    assert any("uploaded image" in n for n in req.notes)


def test_the_working_size_follows_the_hardware_limit() -> None:
    """A link made on a GPU (2048 px) opened on a CPU server (limit 1024) keeps the default."""
    cpu = dict(params())
    cpu["max_side"] = replace(cpu["max_side"], hi=1024)
    spec = link_params(cpu, [], TABS)
    req = parse_link({"max_side": "2048", "a": "2"}, spec)
    assert req.values == {"a": 2.0}
    assert "working size must be in [32, 1024]" in req.notes[0].replace("\\", "")


def test_many_parameters_are_capped(spec: dict[str, Param]) -> None:
    req = parse_link([(f"x{i}", "1") for i in range(500)], spec)
    assert req.values == {} and "only the first" in req.notes[0]


# --------------------------------------------------------------------------- page logic


@pytest.fixture
def kit(tmp_path: Path) -> ClassroomKit:
    runs = {"compare": "denoise", "equivariance": "equivariance", "sweep": "sweep"}
    return ClassroomKit(params(), EXAMPLES, TABS, tmp_path / "figures", runs)


def test_identify_image_by_pixels(tmp_path: Path) -> None:
    """Gradio re-encodes the page's image: the example is recognised by its pixels."""
    examples = {e.path.stem: e.path for e in EXAMPLES}
    copy = tmp_path / "image.png"
    Image.open(examples["caps"]).save(copy, compress_level=1)  # other bytes, same pixels
    assert copy.read_bytes() != examples["caps"].read_bytes()
    assert identify_image(copy, examples) == "caps"
    pixels = np.asarray(Image.open(examples["caps"])).copy()
    pixels[0, 0] ^= 1
    Image.fromarray(pixels).save(copy)
    assert identify_image(copy, examples) == UPLOAD
    assert identify_image(None, examples) == UPLOAD
    assert identify_image(tmp_path / "missing.png", examples) == UPLOAD


def test_copy_then_open_reproduces_every_control(kit: ClassroomKit) -> None:
    """The page's round trip: control values → copy_link → open_link updates."""
    spec = kit.spec
    values = [other_value(spec[n]) for n in kit.controls]
    caps = next(e.path for e in EXAMPLES if e.path.stem == "caps")
    link = kit.copy_link(str(caps), *values, True, "Noise sweep", BASE)
    assert link.startswith(BASE + "?image=caps&")
    updates, run = kit.open_link(parse_qsl(urlsplit(link).query))
    assert run == "sweep"
    image, controls = updates[0], updates[1 : 1 + len(kit.controls)]
    tabs, present, note = updates[-3:]
    assert image == {"value": str(caps)}
    for name, want, got in zip(kit.controls, values, controls, strict=True):
        want = list(want) if isinstance(want, tuple) else want
        assert got == {"value": want}, name
        assert not isinstance(want, float) or math.isfinite(want)
    assert tabs == {"selected": "sweep"} and present == {"value": True}
    assert note == {"value": "", "visible": False}


def test_opening_the_plain_page_changes_nothing(kit: ClassroomKit) -> None:
    updates, run = kit.open_link([])
    assert run == "" and all(u == {} for u in updates[:-1])
    assert updates[-1] == {"value": "", "visible": False}


def test_opening_a_malformed_link_keeps_the_defaults_with_a_note(kit: ClassroomKit) -> None:
    updates, run = kit.open_link({"a": "banana", "zzz": "1"})
    assert run == "" and all(u == {} for u in updates[:-1])
    assert updates[-1]["visible"] and "could not be used" in updates[-1]["value"]


def test_presentation_alone_runs_nothing(kit: ClassroomKit) -> None:
    updates, run = kit.open_link({"present": "true"})
    assert run == "" and updates[-2] == {"value": True}


def test_copy_link_names_an_invalid_control(kit: ClassroomKit) -> None:
    values = [params()[n].default for n in kit.controls]
    values[kit.controls.index("sigma")] = 500
    with pytest.raises(DemoInputError, match="noise sigma"):
        kit.copy_link(None, *values, False, "", BASE)
    values[kit.controls.index("sigma")] = 25
    link = kit.copy_link(None, *values, False, "Unknown tab", "")
    assert link.startswith("?image=upload&") and "tab=" not in link
