"""Process-level settings of the demo server.

Gradio runs each request on a worker thread of a pool, and glibc gives every new
thread that allocates its own malloc arena (up to 8 per core). Memory freed in an
arena stays mapped, so under concurrent load the server's RSS climbs by one
arena's high-water mark per thread before it plateaus (measured with
``python -m wne.loadtest``: +28 % between the 10th and the 100th request with 16
clients, flat afterwards; with 2 arenas +2 %). :func:`limit_malloc_arenas` caps
the arenas before the server starts its threads.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys

logger = logging.getLogger(__name__)

_M_ARENA_MAX = -8  # glibc's mallopt parameter number (malloc.h)


def limit_malloc_arenas(n: int = 2) -> bool:
    """Caps glibc's malloc arenas for threads created from now on.

    Does nothing when ``MALLOC_ARENA_MAX`` is set in the environment (glibc
    already applied it at start-up) or when the C library is not glibc.

    Args:
        n: Maximum number of arenas (>= 1).

    Returns:
        Whether the cap was applied.

    Raises:
        ValueError: If ``n`` < 1.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if os.environ.get("MALLOC_ARENA_MAX") or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl or an unusual libc: nothing to cap
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = bool(mallopt(_M_ARENA_MAX, n))
    logger.info("malloc arenas capped at %d: %s", n, ok)
    return ok
