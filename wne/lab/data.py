"""Training patches, sampled statelessly from grayscale images.

Images are read with the library's one reader, :func:`wne.imageio.read_image`
(``[H, W, C]`` float32 in [0, 1]; 8-bit values divided by 255, 16-bit by 65535).
Sampling is stateless: the patches, augmentations and noise of step ``t`` on
rank ``r`` come from a generator seeded with ``(seed, t, r)``, so a run resumed
at step ``t`` sees exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from wne.imageio import list_images, read_image

__all__ = ["PatchSampler", "load_folder", "step_generator"]

log = logging.getLogger(__name__)


def load_folder(folder: str | Path) -> list[np.ndarray]:
    """All images of a folder as grayscale ``[H, W]`` float32 arrays in [0, 1].

    Colour images are converted to luma by :func:`wne.imageio.read_image`.

    Raises:
        FileNotFoundError: If the folder does not exist or holds no image.
        wne.imageio.ImageReadError: For an unreadable image.
    """
    return [read_image(p, channels=1)[..., 0] for p in list_images(folder)]


def step_generator(seed: int, step: int, rank: int = 0) -> torch.Generator:
    """A CPU generator determined by ``(seed, step, rank)`` alone."""
    mixed = (seed * 1_000_003 + step) * 1_000_033 + rank
    return torch.Generator().manual_seed(mixed % (2**63 - 1))


class PatchSampler:
    """Random square patches with the 8 dihedral augmentations, in [0, 1].

    Args:
        images: Grayscale images in [0, 1], ``[H, W]`` or ``[H, W, 1]`` float arrays
            (as :func:`load_folder` returns), each at least ``patch`` pixels per side.
        patch: Patch side.

    Raises:
        ValueError: On no images, images that are not grayscale floats, or images
            smaller than ``patch``.
    """

    def __init__(self, images: Sequence[np.ndarray], patch: int) -> None:
        if not images:
            raise ValueError("no training images")
        arrays = [im[..., 0] if im.ndim == 3 and im.shape[-1] == 1 else im for im in images]
        bad = [i for i, im in enumerate(arrays) if im.ndim != 2 or im.dtype.kind != "f"]
        if bad:
            raise ValueError(
                f"{len(bad)} image(s) are not grayscale float arrays [H, W] in [0, 1] "
                "(read them with wne.imageio.read_image(path, channels=1))"
            )
        small = [i for i, im in enumerate(arrays) if min(im.shape) < patch]
        if small:
            raise ValueError(f"{len(small)} image(s) smaller than the patch size {patch}")
        self.images = [
            torch.from_numpy(np.ascontiguousarray(im, dtype=np.float32)) for im in arrays
        ]
        self.patch = patch

    def sample(self, batch: int, gen: torch.Generator) -> torch.Tensor:
        """Draws ``batch`` patches, ``[batch, 1, patch, patch]`` float32 in [0, 1]."""
        p = self.patch
        idx = torch.randint(len(self.images), (batch,), generator=gen).tolist()
        out = torch.empty(batch, 1, p, p)
        for k, i in enumerate(idx):
            im = self.images[i]
            h, w = im.shape
            top = int(torch.randint(h - p + 1, (1,), generator=gen))
            left = int(torch.randint(w - p + 1, (1,), generator=gen))
            crop = im[top : top + p, left : left + p]
            t = int(torch.randint(8, (1,), generator=gen))
            crop = torch.rot90(crop, t % 4, dims=(0, 1))
            if t >= 4:
                crop = crop.flip(1)
            out[k, 0] = crop
        return out
