"""Training patches, sampled statelessly from grayscale images.

Images are read by :func:`wne.imageio.read_image` (8-bit values / 255, 16-bit / 65535). The
patches, augmentations and noise of step ``t`` on rank ``r`` come from a generator seeded with
``(seed, t, r)``, so a run resumed at step ``t`` sees the batches of an uninterrupted run.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from wne.imageio import list_images, read_image

__all__ = ["DevicePatchSampler", "PatchSampler", "load_folder", "step_generator"]


def load_folder(folder: str | Path) -> list[np.ndarray]:
    """All images of a folder as grayscale (luma) ``[H, W]`` float32 arrays in [0, 1].

    Raises:
        FileNotFoundError: If the folder does not exist or holds no image.
        wne.imageio.ImageReadError: For an unreadable image.
    """
    return [read_image(p, channels=1)[..., 0] for p in list_images(folder)]


def step_generator(
    seed: int, step: int, rank: int = 0, device: str | torch.device = "cpu"
) -> torch.Generator:
    """A generator (on ``device``) determined by ``(seed, step, rank)`` alone."""
    mixed = (seed * 1_000_003 + step) * 1_000_033 + rank
    return torch.Generator(device=device).manual_seed(mixed % (2**63 - 1))


class PatchSampler:
    """Random ``patch``-side squares with the 8 dihedral augmentations, in [0, 1], of
    grayscale float ``[H, W]`` or ``[H, W, 1]`` ``images`` (as :func:`load_folder` returns).

    Raises:
        ValueError: On no images, images that are not grayscale floats, or smaller than ``patch``.
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


class DevicePatchSampler:
    """:class:`PatchSampler`'s distribution drawn on ``device`` (a GPU) with one gather per
    batch: the images stacked once, zero-padded, into ``[N, H, W]`` (each image's own size
    bounds its crops); indices, corners and dihedral transforms drawn as tensors. With a
    generator on ``device`` nothing synchronizes with the host. The draws differ from
    :class:`PatchSampler`'s, so the recipe records the sampler. Arguments and errors as
    :class:`PatchSampler`'s."""

    def __init__(
        self, images: Sequence[np.ndarray], patch: int, device: str | torch.device
    ) -> None:
        base = PatchSampler(images, patch)  # the same checks
        self.device = torch.device(device)
        self.patch = patch
        h = max(int(im.shape[0]) for im in base.images)
        w = max(int(im.shape[1]) for im in base.images)
        stack = torch.zeros(len(base.images), h, w)
        for k, im in enumerate(base.images):
            stack[k, : im.shape[0], : im.shape[1]] = im
        self.images = stack.to(self.device)
        self.heights = torch.tensor([im.shape[0] for im in base.images], device=self.device)
        self.widths = torch.tensor([im.shape[1] for im in base.images], device=self.device)
        self._ramp = torch.arange(patch, device=self.device)

    def sample(self, batch: int, gen: torch.Generator) -> torch.Tensor:
        """Draws ``batch`` patches ``[batch, 1, patch, patch]`` with ``gen`` (on the device)."""
        p, dev = self.patch, self.device
        idx = torch.randint(len(self.images), (batch,), generator=gen, device=dev)
        u = torch.rand(batch, 2, generator=gen, device=dev)
        top = (u[:, 0] * (self.heights[idx] - p + 1)).long()
        left = (u[:, 1] * (self.widths[idx] - p + 1)).long()
        t = torch.randint(8, (batch, 1, 1), generator=gen, device=dev)
        # The dihedral group as index maps: optional reversal of each axis, then an
        # optional transpose; output pixel (i, j) reads the crop at (a, b).
        i = self._ramp.view(1, p, 1).expand(batch, p, p)
        j = self._ramp.view(1, 1, p).expand(batch, p, p)
        i = torch.where(t & 1 == 1, p - 1 - i, i)
        j = torch.where(t & 2 == 2, p - 1 - j, j)
        swap = t & 4 == 4
        a, b = torch.where(swap, j, i), torch.where(swap, i, j)
        rows = top.view(batch, 1, 1) + a
        cols = left.view(batch, 1, 1) + b
        out = self.images[idx.view(batch, 1, 1), rows, cols]
        return out.unsqueeze(1)
