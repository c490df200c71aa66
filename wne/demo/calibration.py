"""The page's defaults for a device: a working size within the latency target and the
checkpoints that run (the catalog's pick, :func:`wne.catalog.best_size`, told the measured time
of the comparison), as a typed :class:`Defaults`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np

from wne import catalog
from wne.demo.pages import compare
from wne.demo.zoo import Zoo
from wne.settings import EnvSettings

log = logging.getLogger(__name__)

MIN_CPU_SIDE = 256
"""The CPU calibration never picks a default working size below this."""
CPU_SIDE_LIMIT, GPU_SIDE = 1024, 512
"""The largest working size on a CPU, and the default on a GPU."""
DEFAULT_BACKBONES = ("dncnn", "swinir")
"""The backbones compared by default: a CNN and a transformer."""


@dataclass(frozen=True)
class Defaults:
    """The page's default working size (px) and checkpoint choice (a key of
    :data:`wne.demo.zoo.CHECKPOINTS`), with a note on them for the page ("" for none)."""

    side: int = MIN_CPU_SIDE
    checkpoint: str = "best"
    note: str = ""


def checkpoint_keys(zoo: Zoo, backbones: Iterable[str], sigma_train: int) -> list[str | None]:
    """The keys every variant of ``backbones`` runs under ``zoo``'s choice."""
    slots = [(b, v) for b in backbones for v in catalog.FAMILIES[b].variants]
    return [zoo.checkpoint(b, v, sigma_train) for b, v in slots]


def cpu_defaults(zoo: Zoo, scene: compare.Scene, target_seconds: float) -> Defaults:
    """The page's defaults for a comparison on a CPU.

    Times two probes and fits ``overhead + cost · pixels``. The checkpoints are the catalog's
    pick for the device and the latency (:func:`wne.catalog.best_size`, given the comparison's
    time at :data:`MIN_CPU_SIDE` as the seconds of its larger sizes): the best available, else
    the CPU-sized ones. The side is the largest multiple of 16 in [:data:`MIN_CPU_SIDE`, 512]
    within ``target_seconds``.
    """

    def fit(choice: str) -> tuple[float, float]:
        def probe(side: int) -> float:
            yy, xx = np.mgrid[0:side, 0:side] / side
            img = np.stack([0.5 + 0.3 * np.sin(7 * xx + k) * np.cos(5 * yy) for k in range(3)], -1)
            start = time.perf_counter()
            for _ in compare.run(zoo, img.astype(np.float32), replace(scene, checkpoint=choice)):
                pass
            return time.perf_counter() - start

        probe(64)
        small, big = probe(64), probe(128)
        cost = max(big - small, 1e-6) / (128**2 - 64**2)
        return max(small - cost * 64**2, 0.0), cost

    choice, note, st = scene.checkpoint, "", scene.sigma_train
    overhead, cost = fit(choice)
    slow = overhead + cost * MIN_CPU_SIDE**2
    sized = {b: {catalog.get(k).size for k in checkpoint_keys(zoo.select(choice), [b], st) if k}
             for b in scene.backbones}  # fmt: skip
    seconds = dict.fromkeys(set().union(*sized.values()) - {"cpu"}, slow)
    picks = {b: catalog.best_size(b, st, zoo.psnrs, device=zoo.device, seconds=seconds,
                                  budget=target_seconds) for b in scene.backbones}  # fmt: skip
    if any(picks[b] == "cpu" and sized[b] - {"cpu"} for b in scene.backbones):
        choice, (overhead, cost) = "cpu", fit("cpu")
        note = (
            f"On this CPU the best available checkpoints would take {slow:.1f} s for the default "
            f"comparison at {MIN_CPU_SIDE} px (target {target_seconds:g} s): the default is the "
            "CPU-sized checkpoints; choose 'best available' under 'checkpoints' for the others."
        )
    side = int(math.sqrt(max(target_seconds - overhead, 0.0) / cost)) // 16 * 16
    side = max(MIN_CPU_SIDE, min(512, side))
    log.info("CPU calibration: working size %d px, %s checkpoints", side, choice)
    return Defaults(side, choice, note)


def calibrate(zoo: Zoo, env: EnvSettings | None = None) -> Defaults:
    """The page's defaults on ``zoo``'s device: 512 px on a GPU, sized to
    ``$WNE_LATENCY_TARGET`` on a CPU by the measured :func:`cpu_defaults` (the one latency
    rule), unless ``$WNE_DEMO_MAX_SIDE`` fixes the size."""
    env = env or EnvSettings.from_env()
    st = zoo.default_sigma()
    fixed = max(32, min(CPU_SIDE_LIMIT, env.demo_max_side)) if env.demo_max_side else None
    best, cpu = (checkpoint_keys(zoo.select(c), DEFAULT_BACKBONES, st) for c in ("best", "cpu"))
    if zoo.device.type == "cuda" or not zoo.models:
        return Defaults(fixed or (GPU_SIDE if zoo.device.type == "cuda" else MIN_CPU_SIDE))
    if fixed and best == cpu:
        return Defaults(fixed)
    # a comparison's time depends on its models and size, not on the shift or the noise
    have = zoo.backbones()
    chosen = tuple(b for b in DEFAULT_BACKBONES if b in have) or tuple(have[:1])
    scene = compare.Scene(sigma_train=st, backbones=chosen)
    calibrated = cpu_defaults(zoo, scene, env.latency_target)
    return replace(calibrated, side=fixed) if fixed else calibrated
