"""Scenario links: the page's settings in its address (``/?image=parrots&a=0.3&sigma=25
&backbones=dncnn,swinir&tab=compare``), and read back; a bad or unknown parameter is ignored
with a note, never an error. No Gradio here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

UPLOAD = "upload"
"""The ``image`` value of a link made with an uploaded image (which a link cannot carry)."""
MAX_PARAMS = 64
"""Query parameters read from one address (the rest are ignored with a note)."""
MAX_VALUE_CHARS = 200
"""Longest value read; longer ones are ignored with a note."""
_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,40}$")
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~>])")


def safe(text: str, limit: int = 60) -> str:
    """User text quoted for a Markdown note: shortened, HTML and Markdown escaped."""
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", text)


def parse_query(
    pairs: Iterable[tuple[str, Any]],
    names: Iterable[str],
    check: Callable[[str, Any], Any],
    lists: Iterable[str] = (),
) -> tuple[dict[str, Any], list[str]]:
    """Reads query ``pairs``; never raises on user input.

    Args:
        pairs: ``(name, value)`` pairs (e.g. ``query_params.multi_items()``).
        names: The link's parameters, in order.
        check: ``check(name, text) -> value``, raising ``ValueError`` on a bad value.
        lists: Parameters taking a comma-separated list (or repeated).

    Returns:
        ``(values, notes)``: valid values by name, one note per ignored parameter.
    """
    names, lists = list(names), set(lists)
    pairs = [(str(k).strip(), "" if v is None else str(v)) for k, v in pairs]
    notes = (
        [f"only the first {MAX_PARAMS} of {len(pairs)} parameters were read."]
        if len(pairs) > MAX_PARAMS
        else []
    )
    raw: dict[str, list[str]] = {}
    unknown: list[str] = []
    for k, v in pairs[:MAX_PARAMS]:
        if k in names:
            raw.setdefault(k, []).append(v)
        elif k and k not in unknown:
            unknown.append(k)
    if unknown:
        shown = ", ".join(f"`{safe(n, 30)}`" if _NAME.match(n) else safe(n, 30) for n in unknown)
        notes.append(f"ignored unknown parameter(s) {shown}; known: {', '.join(names)}.")
    values: dict[str, Any] = {}
    for name in (n for n in names if n in raw):
        texts = raw[name]
        if any(len(t) > MAX_VALUE_CHARS for t in texts):
            notes.append(f"ignored `{name}`: the value is longer than {MAX_VALUE_CHARS} chars.")
            continue
        if name in lists:
            text: Any = [item.strip() for t in texts for item in t.split(",") if item.strip()]
        else:
            if len(texts) > 1:
                notes.append(f"`{name}` was given {len(texts)} times; the last one is used.")
            text = texts[-1].strip()
        try:
            values[name] = check(name, text)
        except ValueError as exc:
            notes.append(f"ignored `{name}`: {safe(str(exc), 160)} (kept the page's value).")
    if values.get("image") == UPLOAD:
        notes.append(
            "this link was made with an uploaded image, which links do not carry: "
            "upload it again (the link's settings apply to the example image shown)."
        )
    return values, notes


def encode(value: Any) -> str:
    """A value as its query text (:func:`parse_query` reads it back exactly)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(encode(v) for v in value)
    if isinstance(value, float):
        whole = math.isfinite(value) and value == int(value) and abs(value) < 2**53
        return str(int(value)) if whole else repr(value)
    return str(value)


def build_link(base_url: str, values: Mapping[str, Any]) -> str:
    """The page's address with ``values`` in its query (None values left out); a base that
    is not an http(s) address gives a relative link (``"?a=..."``)."""
    pairs = [(k, encode(v)) for k, v in values.items() if v is not None]
    query = "?" + urlencode(pairs, safe=",", quote_via=quote) if pairs else "?"
    parts = urlsplit((base_url or "").strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return query
    return f"{parts.scheme}://{parts.netloc}{parts.path or '/'}{query}"


def identify_image(image: str | Path | None, examples: Mapping[str, str | Path]) -> str:
    """The link's ``image`` value: the id of the bundled example with the same pixels
    (Gradio re-encodes uploads, so pixels are compared), else :data:`UPLOAD`."""
    import numpy as np
    from PIL import Image

    if image is None:
        return UPLOAD
    try:
        with Image.open(image) as im:
            pixels = np.asarray(im.convert("RGBA"))
        for ex_id, path in examples.items():
            with Image.open(path) as ex:
                if ex.size == im.size and np.array_equal(pixels, np.asarray(ex.convert("RGBA"))):
                    return ex_id
    except (OSError, ValueError, Image.DecompressionBombError):
        return UPLOAD
    return UPLOAD
