"""The demo's output images as files, each written once and only ever complete.

Gradio 6.31 saves an image *array* returned by a handler under a name derived
from the hash of its bytes and rewrites that file in place on every request
(``processing_utils.save_pil_to_cache``: ``Path.write_bytes``), so a client
downloading the same output of an earlier, identical request (a class running
the same example) can read a truncated file. The demo's handlers therefore
return *paths* of PNGs they wrote themselves, here: content-addressed, written
to a temporary name and renamed into place (``os.replace``), an existing file
kept. Gradio serves a path inside its cache folder as it is (no copy), and copies
other paths with its own atomic ``save_file_to_cache``.

``tests/test_reliability.py`` checks that Gradio still rewrites in place; when
that test fails, Gradio has fixed it and returning arrays is safe again.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["OutputFiles"]


class OutputFiles:
    """Writes output images as lossless PNG files into one folder.

    An image written before (the same pixels, e.g. a streamed comparison's noisy input
    at every step, or a result served again from the cache) is not encoded again:
    the paths of the last ``memo`` images are remembered by a hash of their pixels.

    Args:
        folder: Where to write (created); for Gradio, a folder inside its cache
            folder (``gradio.utils.get_upload_folder()``) so it is served as is.
        memo: How many images' paths to remember.
    """

    def __init__(self, folder: str | Path, memo: int = 512) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._memo: OrderedDict[str, Path] = OrderedDict()
        self._memo_size = memo
        self._lock = threading.Lock()

    def png(self, pixels: np.ndarray | None) -> str | None:
        """Saves a uint8 image (``[H, W]`` or ``[H, W, 3]``) and returns its path.

        The name is the hash of the PNG's bytes: an identical image maps to the
        existing, complete file (its time stamp refreshed for cache expiry).

        Args:
            pixels: The image, or None.

        Returns:
            The absolute path, or None for None.
        """
        if pixels is None:
            return None
        arr = np.ascontiguousarray(pixels, dtype=np.uint8)
        digest = hashlib.sha256(f"{arr.shape}|".encode() + arr.tobytes()).hexdigest()
        with self._lock:
            known = self._memo.get(digest)
            if known is not None:
                self._memo.move_to_end(digest)
        if known is not None and known.is_file():
            with contextlib.suppress(OSError):
                os.utime(known)
            return str(known)
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="png")
        data = buf.getvalue()
        path = (self.folder / f"{hashlib.sha256(data).hexdigest()[:40]}.png").resolve()
        if not (path.is_file() and path.stat().st_size == len(data)):
            tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        else:
            with contextlib.suppress(OSError):
                os.utime(path)
        with self._lock:
            self._memo[digest] = path
            while len(self._memo) > self._memo_size:
                self._memo.popitem(last=False)
        return str(path)
