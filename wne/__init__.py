"""wne: exact normalization equivariance for any image denoiser.

``f(y) = std(y)·g((y − mean(y)) / std(y)) + mean(y)`` makes any backbone ``g``
satisfy ``f(a·y + b) = a·f(y) + b`` for ``a > 0``.

>>> import wne
>>> model = wne.NormEquivariant(wne.models.build("swinir"))
"""

__version__ = "0.1.0"

from wne import models
from wne.checkpoints import available_checkpoints, load, push, save
from wne.wrapper import NormEquivariant, ne_defect, normalization_stats

__all__ = [
    "NormEquivariant",
    "__version__",
    "available_checkpoints",
    "load",
    "models",
    "ne_defect",
    "normalization_stats",
    "push",
    "save",
]
