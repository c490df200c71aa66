"""Image folders and on-the-fly training patches.

Sampling is stateless: the patches, augmentations and noise of step ``t`` on
rank ``r`` come from a generator seeded with ``(seed, t, r)``, so a run resumed
at step ``t`` sees exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from PIL import Image

__all__ = [
    "IMAGE_SUFFIXES",
    "PatchSampler",
    "list_images",
    "load_folder",
    "load_gray",
    "step_generator",
]

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def list_images(folder: str | Path) -> list[Path]:
    """Image files of a folder (by suffix), sorted by name.

    Raises:
        FileNotFoundError: If the folder does not exist or holds no image.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder not found: {folder}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return files


def load_gray(path: str | Path) -> np.ndarray:
    """One image as grayscale uint8 ``[H, W]`` (colour images are converted to L)."""
    with Image.open(path) as im:
        return np.array(im.convert("L"), dtype=np.uint8)


def load_folder(folder: str | Path) -> list[np.ndarray]:
    """All images of a folder as grayscale uint8 arrays."""
    return [load_gray(p) for p in list_images(folder)]


def step_generator(seed: int, step: int, rank: int = 0) -> torch.Generator:
    """A CPU generator determined by ``(seed, step, rank)`` alone."""
    mixed = (seed * 1_000_003 + step) * 1_000_033 + rank
    return torch.Generator().manual_seed(mixed % (2**63 - 1))


class PatchSampler:
    """Random square patches with the 8 dihedral augmentations, in [0, 1].

    Args:
        images: Grayscale uint8 images, each at least ``patch`` pixels per side.
        patch: Patch side.
    """

    def __init__(self, images: list[np.ndarray], patch: int) -> None:
        if not images:
            raise ValueError("no training images")
        small = [i for i, im in enumerate(images) if min(im.shape[:2]) < patch]
        if small:
            raise ValueError(f"{len(small)} image(s) smaller than the patch size {patch}")
        self.images = [torch.from_numpy(np.ascontiguousarray(im)) for im in images]
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
            crop = im[top : top + p, left : left + p].float() / 255.0
            t = int(torch.randint(8, (1,), generator=gen))
            crop = torch.rot90(crop, t % 4, dims=(0, 1))
            if t >= 4:
                crop = crop.flip(1)
            out[k, 0] = crop
        return out
