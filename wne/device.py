"""Choosing the compute device and waiting for it: the library's one copy of each."""

from __future__ import annotations

import torch

from wne.settings import EnvSettings

__all__ = ["pick_device", "synchronize"]


def pick_device(spec: str | torch.device | None = None) -> torch.device:
    """The device to run on.

    Args:
        spec: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, a ``torch.device``, or ``None`` /
            ``"auto"``: then ``$WNE_DEVICE`` if set, else CUDA when available, else CPU.

    Returns:
        The device.

    Raises:
        ValueError: For a device string torch does not understand, or CUDA asked for
            on a machine without it.
    """
    choice = spec if spec not in (None, "", "auto") else EnvSettings.from_env().device or "auto"
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(choice)
    except RuntimeError as exc:
        raise ValueError(f"not a device: {choice!r} ({exc})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {choice!r} asked for, but CUDA is not available here")
    return dev


def synchronize(device: str | torch.device) -> None:
    """Waits for queued work on ``device`` (a no-op on CPU); call it around timers."""
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
