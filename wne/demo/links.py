"""Scenario links: the page's settings written into its address, and read back.

A teacher prepares a lesson by copying a link such as::

    http://127.0.0.1:7860/?image=parrots&a=0.3&b=0&sigma=25&seed=0&sigma_train=25
        &backbones=dncnn,swinir&order=noise-then-shift&max_side=256&clip=false
        &backbone=dncnn&tab=compare&present=false

Opening it sets every control and runs the comparison once. The query
parameters are the :class:`~wne.demo.settings.Settings` fields (so a field
added there is carried by links automatically), the equivariance tab's
``backbone``, plus ``image`` (a bundled example's id, or ``upload``: uploaded
images are never part of a link), ``tab`` (the open tab) and ``present``
(presentation mode). Each value is parsed with the same
:class:`~wne.demo.settings.Param` as its control
(:func:`~wne.demo.settings.parse_param`); a bad or unknown parameter is ignored
with a note, never an error.

Plain functions, no Gradio.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from wne.demo.settings import DemoInputError, Param, parse_param

__all__ = [
    "MAX_PARAMS",
    "MAX_VALUE_CHARS",
    "UPLOAD",
    "LinkRequest",
    "build_link",
    "build_query",
    "encode_value",
    "example_id",
    "identify_image",
    "link_params",
    "parse_link",
]

UPLOAD = "upload"
"""The ``image`` value of a link made with an uploaded image (which a link cannot carry)."""
MAX_PARAMS = 64
"""Query parameters read from one address (the rest are ignored with a note)."""
MAX_VALUE_CHARS = 200
"""Longest value read; longer ones are ignored with a note."""
_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,40}$")


def link_params(
    params: Mapping[str, Param],
    images: Sequence[tuple[str, str]],
    tabs: Sequence[tuple[str, str]],
    *,
    default_image: str | None = None,
    default_tab: str | None = None,
) -> dict[str, Param]:
    """Every parameter a link carries, in the link's order.

    Args:
        params: The request's parameters as the page shows them
            (:meth:`wne.demo.handlers.DemoHandlers.params`: the :class:`Settings`
            fields with this hardware's limits, then ``backbone``).
        images: ``(label, id)`` of the bundled examples (``upload`` is added).
        tabs: ``(label, id)`` of the page's tabs.
        default_image: The image the page opens with (default: the first example).
        default_tab: The tab the page opens with (default: the first tab).

    Returns:
        ``image``, the entries of ``params``, ``tab`` and ``present``, by name.
    """
    image_choices = (*tuple(images), ("uploaded image (not in the link)", UPLOAD))
    out = {
        "image": Param(
            "choice",
            "image",
            "image",
            default=default_image or image_choices[0][1],
            choices=image_choices,
            name="image",
        )
    }
    out.update(params)
    tab_default = default_tab or (tabs[0][1] if tabs else None)
    out["tab"] = Param("choice", "open tab", "tab", default=tab_default, choices=tuple(tabs))
    out["present"] = Param("flag", "presentation mode", "present", default=False)
    return out


def _number(value: float) -> str:
    """The shortest text that parses back to exactly ``value`` (``1.0`` → ``"1"``)."""
    if math.isfinite(value) and value == int(value) and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def encode_value(param: Param, value: Any) -> str:
    """A validated value as its query text (:func:`parse_link` reads it back exactly).

    Raises:
        DemoInputError: If the value is not valid for ``param``.
    """
    value = parse_param(param, value)
    if param.kind == "float":
        return _number(value)
    if param.kind == "choices":
        return ",".join(str(v) for v in value)
    if param.kind == "flag":
        return "true" if value else "false"
    return str(value)


def build_query(values: Mapping[str, Any], spec: Mapping[str, Param]) -> str:
    """The query string (``"?a=0.3&..."``) of the given values, in ``spec``'s order.

    Args:
        values: Values by parameter name; names missing here or whose value is
            None are left out (the page's default applies when the link is opened).
        spec: The link's parameters (:func:`link_params`).

    Returns:
        The query string, ``""`` when there is nothing to carry.

    Raises:
        DemoInputError: If a name is not a link parameter or a value is invalid.
    """
    unknown = sorted(set(values) - set(spec))
    if unknown:
        raise DemoInputError(f"not link parameter(s): {unknown}; expected some of {list(spec)}")
    pairs = [
        (name, encode_value(param, values[name]))
        for name, param in spec.items()
        if values.get(name) is not None
    ]
    return "?" + urlencode(pairs, safe=",", quote_via=quote) if pairs else ""


def build_link(base_url: str, values: Mapping[str, Any], spec: Mapping[str, Param]) -> str:
    """The page's address with the given values in its query string.

    Args:
        base_url: The page's address (``http(s)://host[:port]/path``); its query and
            fragment are dropped. Anything else (empty, another scheme) gives a
            relative link (``"?a=..."``).
        values: Values by parameter name (see :func:`build_query`).
        spec: The link's parameters (:func:`link_params`).

    Raises:
        DemoInputError: If a name is not a link parameter or a value is invalid.
    """
    query = build_query(values, spec)
    parts = urlsplit((base_url or "").strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return query or "?"
    return f"{parts.scheme}://{parts.netloc}{parts.path or '/'}{query}"


@dataclass
class LinkRequest:
    """What an opened address asks for.

    Attributes:
        values: Validated values by parameter name (only those given and valid).
        notes: One line per ignored parameter or caveat (Markdown-safe).
        given: Names of the recognized parameters that were present (valid or not).
    """

    values: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    given: list[str] = field(default_factory=list)

    @property
    def is_scenario(self) -> bool:
        """Whether the address carried a setting (then the page runs the comparison)."""
        return bool(set(self.values) - {"present"})

    def markdown(self) -> str:
        """The notes as a Markdown list headed by what happened ("" when nothing to say)."""
        if not self.notes:
            return ""
        head = (
            "**Opened from a scenario link.**"
            if self.is_scenario
            else "**This link's settings could not be used; the page shows its defaults.**"
        )
        return "\n".join([head, *(f"- {n}" for n in self.notes)])


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~>])")


def _safe(text: str, limit: int = 60) -> str:
    """User text quoted for a Markdown note: shortened, HTML and Markdown escaped."""
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", text)


def _shown(param: Param) -> str:
    """The default of a parameter as link text (for notes)."""
    try:
        return encode_value(param, param.default)
    except DemoInputError:
        return "the default"


def _pairs(query: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> list[tuple[str, str]]:
    items = query.items() if isinstance(query, Mapping) else query
    out: list[tuple[str, str]] = []
    for name, value in items:
        for v in value if isinstance(value, list | tuple) else [value]:
            out.append((str(name), "" if v is None else str(v)))
    return out


def parse_link(
    query: Mapping[str, Any] | Iterable[tuple[str, Any]], spec: Mapping[str, Param]
) -> LinkRequest:
    """Reads an address's query parameters; never raises on user input.

    Each value is validated with its parameter's :class:`Param` through
    :func:`~wne.demo.settings.parse_param`, as the page's controls are. Unknown
    names, invalid or overlong values and repeats are ignored with a note;
    ``backbones`` (any ``choices`` parameter) is a comma-separated list (also
    accepted as repeated parameters). ``image=upload`` keeps the page's image and
    notes that the link cannot carry an uploaded image.

    Args:
        query: The query parameters (a mapping, or ``(name, value)`` pairs such as
            Starlette's ``query_params.multi_items()``).
        spec: The link's parameters (:func:`link_params`).

    Returns:
        The valid values and the notes.
    """
    req = LinkRequest()
    raw: dict[str, list[str]] = {}
    unknown: list[str] = []
    pairs = _pairs(query)
    if len(pairs) > MAX_PARAMS:
        req.notes.append(f"only the first {MAX_PARAMS} of {len(pairs)} parameters were read.")
        pairs = pairs[:MAX_PARAMS]
    for name, value in pairs:
        key = name.strip()
        if key in spec:
            raw.setdefault(key, []).append(value)
        elif key and key not in unknown:
            unknown.append(key)
    if unknown:
        shown = ", ".join(f"`{_safe(n, 30)}`" if _NAME.match(n) else _safe(n, 30) for n in unknown)
        req.notes.append(f"ignored unknown parameter(s) {shown}; known: {', '.join(spec)}.")
    for name, param in spec.items():
        if name not in raw:
            continue
        req.given.append(name)
        values = raw[name]
        if param.kind == "choices":
            items = [v.strip() for text in values for v in text.split(",") if v.strip()]
            text_value: Any = items
            too_long = any(len(text) > MAX_VALUE_CHARS for text in values)
        else:
            if len(values) > 1:
                req.notes.append(f"`{name}` was given {len(values)} times; the last one is used.")
            text_value = values[-1].strip()
            too_long = len(text_value) > MAX_VALUE_CHARS
        if too_long:
            req.notes.append(f"ignored `{name}`: the value is longer than {MAX_VALUE_CHARS} chars.")
            continue
        try:
            req.values[name] = parse_param(param, text_value)
        except DemoInputError as exc:
            req.notes.append(
                f"ignored `{name}`: {_safe(str(exc), 160)} (kept {_safe(_shown(param))})."
            )
    if req.values.get("image") == UPLOAD:
        req.notes.append(
            "this link was made with an uploaded image, which links do not carry: upload "
            "it again (the link's settings are applied to the example image shown)."
        )
    return req


def example_id(path: str | Path) -> str:
    """A bundled example's id in links: its file name without the extension."""
    return Path(path).stem


def identify_image(image: str | Path | None, examples: Mapping[str, str | Path]) -> str:
    """The link's ``image`` value of the page's image: the id of the bundled example
    with the same pixels, else :data:`UPLOAD`.

    Args:
        image: The page's image file (Gradio re-encodes it, so pixels are compared,
            not bytes); None gives :data:`UPLOAD`.
        examples: Example files by id.
    """
    import numpy as np
    from PIL import Image

    if image is None:
        return UPLOAD
    try:
        with Image.open(image) as im:
            size, pixels = im.size, None
            for ex_id, path in examples.items():
                with Image.open(path) as ex:
                    if ex.size != size:
                        continue
                    if pixels is None:
                        pixels = np.asarray(im.convert("RGBA"))
                    if np.array_equal(pixels, np.asarray(ex.convert("RGBA"))):
                        return ex_id
    except (OSError, ValueError, Image.DecompressionBombError):
        return UPLOAD
    return UPLOAD
