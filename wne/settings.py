"""Every ``WNE_*`` environment variable, read in one place; a value that does not parse
is logged and its default used, so a typo never stops the library or the app.

>>> EnvSettings.from_env({"WNE_QUEUE_SIZE": "10"}).queue_size
10
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

__all__ = ["EnvSettings"]

log = logging.getLogger(__name__)

_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _flag(text: str) -> bool:
    if text.strip().lower() not in _TRUE + _FALSE:
        raise ValueError(f"expected one of {_TRUE + _FALSE}")
    return text.strip().lower() in _TRUE


def _count(text: str) -> int:
    if int(text) < 0:
        raise ValueError("expected a whole number >= 0")
    return int(text)


def _var(name: str, default: Any, parse: Callable[[str], Any] = str) -> Any:
    return field(default=default, metadata={"env": name, "parse": parse})


@dataclass(frozen=True)
class EnvSettings:
    """The ``WNE_*`` variables (:meth:`from_env`); each attribute is the variable of its
    upper-case name (``queue_size``: ``WNE_QUEUE_SIZE``).

    Attributes:
        device: Where models run by default (``cpu``, ``cuda:1``; None: CUDA if available).
        checkpoint_dir: The local checkpoint folder (None: ``checkpoints/`` found from the
            working directory or the package).
        hub_repo: Hub repo of the checkpoints (None: local only).
        hub_revision: Its revision, ideally a pinned commit.
        fast: Run the frozen CPU graphs of :mod:`wne.fast`.
        side_by_side: The demo runs two models at once on a CPU.
        latency_target: Seconds of model time the demo's CPU working size aims at.
        demo_max_side: The demo's working size (None: calibrated on a CPU, fixed on a GPU).
        result_cache_entries: Results the demo keeps (0: none).
        result_cache_mb: Their size bound in MiB.
        concurrent_requests: Requests the app handles at once.
        queue_size: Requests the app's queue holds.
        max_file_size: The largest upload (Gradio's format, ``25mb``).
        malloc_arenas: glibc malloc arenas of the app (0: glibc's default; bounds memory).
        warm_examples: The app computes its examples at start-up.
    """

    device: str | None = _var("WNE_DEVICE", None)
    checkpoint_dir: Path | None = _var("WNE_CHECKPOINT_DIR", None, Path)  # noqa: RUF009
    hub_repo: str | None = _var("WNE_HUB_REPO", None)
    hub_revision: str = _var("WNE_HUB_REVISION", "main")
    fast: bool = _var("WNE_FAST", True, _flag)
    side_by_side: bool = _var("WNE_SIDE_BY_SIDE", True, _flag)
    latency_target: float = _var("WNE_LATENCY_TARGET", 1.8, float)
    demo_max_side: int | None = _var("WNE_DEMO_MAX_SIDE", None, int)
    result_cache_entries: int = _var("WNE_RESULT_CACHE_ENTRIES", 64, _count)
    result_cache_mb: int = _var("WNE_RESULT_CACHE_MB", 256, _count)
    concurrent_requests: int = _var("WNE_CONCURRENT_REQUESTS", 24, int)
    queue_size: int = _var("WNE_QUEUE_SIZE", 48, int)
    max_file_size: str = _var("WNE_MAX_FILE_SIZE", "25mb")
    malloc_arenas: int = _var("WNE_MALLOC_ARENAS", 2, _count)
    warm_examples: bool = _var("WNE_WARM_EXAMPLES", True, _flag)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> EnvSettings:
        """The settings from ``environ`` (default: ``os.environ``); unset or empty
        variables, and values that do not parse (logged), take their defaults."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            text = env.get(f.metadata["env"], "")
            if not text:
                continue
            try:
                values[f.name] = f.metadata["parse"](text)
            except ValueError as exc:
                log.warning("ignoring %s=%r (%s)", f.metadata["env"], text, exc)
        return cls(**values)
