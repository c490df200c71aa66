"""Process tuning for the demo server (glibc's malloc): called once at start, and by the
result cache when it lets results go. Off glibc every function is a no-op returning False.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import sys
from typing import Any


@functools.cache
def _glibc() -> Any:
    """glibc's ``mallopt`` and ``malloc_trim``, typed (None off Linux or under another libc)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        libc.malloc_trim.argtypes, libc.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
    except (OSError, AttributeError):
        return None
    return libc if sys.platform.startswith("linux") else None


def limit_malloc_arenas(n: int) -> bool:
    """Caps glibc's malloc arenas (RSS climbs under load otherwise); False under
    ``$MALLOC_ARENA_MAX`` or off glibc."""
    if os.environ.get("MALLOC_ARENA_MAX") or (libc := _glibc()) is None:
        return False
    return bool(libc.mallopt(-8, n))  # -8: M_ARENA_MAX in glibc's malloc.h


def trim_heap() -> bool:
    """Hands the heap's free pages back to the system (glibc's ``malloc_trim``): results the
    cache lets go leave holes that RSS keeps otherwise. False off glibc."""
    libc = _glibc()
    return libc is not None and libc.malloc_trim(0) in (0, 1)
