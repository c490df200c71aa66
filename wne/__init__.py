"""wne: exact normalization equivariance for any image denoiser.

``f(y) = std(y)·g((y − mean(y)) / std(y)) + mean(y)`` makes any backbone ``g``
satisfy ``f(a·y + b) = a·f(y) + b`` for ``a > 0``.

>>> import wne
>>> model = wne.NormEquivariant(wne.models.build("swinir"))
"""

__version__ = "0.1.0"

from wne import catalog, degrade, imageio, metrics, models
from wne.checkpoints import available_checkpoints, load, push, save
from wne.device import pick_device
from wne.native import denoise
from wne.tiling import apply_tiled
from wne.wrapper import NormEquivariant, WrapperSteps, ne_defect, ne_defect_map, normalization_stats

__all__ = [
    "NormEquivariant",
    "WrapperSteps",
    "__version__",
    "apply_tiled",
    "available_checkpoints",
    "catalog",
    "degrade",
    "denoise",
    "imageio",
    "load",
    "metrics",
    "models",
    "ne_defect",
    "ne_defect_map",
    "normalization_stats",
    "pick_device",
    "push",
    "save",
]
