"""ε_NE across test noise levels (``wne defect``): the paper's App. E protocol
(``eval_ne_violation.py``), for the rivals' lab-book numbers.

Per model, image and σ_test: one noisy image ``y = x + σ·n`` (the evaluation's seeds,
:func:`wne.lab.protocol.noise_seed`; σ = 0: the clean image), ``pairs`` random ``(a, b)`` with
a ~ U(0.5, 1.5), b ~ U(−0.25, 0.25) (the same for every model), and the relative defect
``‖f(a·y + b) − (a·f(y) + b)‖ / ‖a·f(y) + b‖`` on the raw outputs (:func:`wne.ne_defect_map`);
mean and max over images and pairs. ``wne defect --models KEY ... --data DIR --out FILE.csv``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

import wne
from wne import degrade
from wne.lab import protocol as pr
from wne.lab.evaluate import common_parser, guarded, load_run, start
from wne.lab.report import write_csv

__all__ = ["COLUMNS", "PAPER_SIGMAS", "defect_sweep", "main"]

log = logging.getLogger(__name__)

COLUMNS = ("model", "sigma_test", "defect_mean", "defect_max", "n")
PAPER_SIGMAS: tuple[float, ...] = tuple(float(s) for s in range(0, 100, 5))
"""The paper's σ_test of the defect figure (App. E, Fig. 9): 0, 5, …, 95."""


def _pairs(seed: int, image: int, sigma: float, n: int) -> torch.Tensor:
    """``n`` pairs ``(a, b)`` of one cell, ``[n, 2]`` float64, shared by every model."""
    rng = np.random.default_rng([seed, image, round(sigma * 1000), 7])
    return torch.from_numpy(np.stack([rng.uniform(0.5, 1.5, n), rng.uniform(-0.25, 0.25, n)], 1))


@torch.inference_mode()
def defect_sweep(
    models: Sequence[pr.EvalModel],
    images: Sequence[tuple[str, torch.Tensor]],
    sigmas: Sequence[float] = PAPER_SIGMAS,
    *,
    pairs: int = 8,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Rows of :data:`COLUMNS`: per model and σ_test, the mean and max of ε_NE over the
    images and ``pairs`` random ``(a, b)`` each (module docstring)."""
    rows = []
    for m in models:
        for s in sigmas:
            values: list[float] = []
            for i, (_, x) in enumerate(images):
                y = x + degrade.gaussian_noise(x.shape, s, pr.noise_seed(seed, i, 0, s)) if s else x
                ab = _pairs(seed, i, s, pairs)
                a, b = ab[:, 0].view(-1, 1, 1, 1), ab[:, 1].view(-1, 1, 1, 1)
                shifted = (a * y.double() + b).to(y.dtype)
                got = torch.cat([m.model(shifted[k : k + 1]) for k in range(pairs)])
                values += wne.ne_defect_map(m.model(y), got, a, b)[1].tolist()
            row = (m.key, s, float(np.mean(values)), float(np.max(values)), len(values))
            rows.append(dict(zip(COLUMNS, row, strict=True)))
            log.info("%s σ = %g: ε_NE mean %.3g, max %.3g", *row[:4])
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """``wne defect``: exit status 0, or 2 on bad input."""
    p = common_parser("wne defect", __doc__.split("\n")[0], device="cpu")
    p.add_argument("--sigmas", type=float, nargs="+", default=list(PAPER_SIGMAS), metavar="S")
    p.add_argument("--pairs", type=int, default=8, help="random (a, b) per image and σ (8)")
    args = start(p, argv)
    if not args.models:
        p.error("give --models")

    def run() -> None:
        models, images = load_run(args.models, args, torch.device(args.device), sigma_train=0.0)
        rows = defect_sweep(models, images, args.sigmas, pairs=args.pairs, seed=args.seed)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        write_csv(Path(args.out), COLUMNS, rows)
        for r in rows:
            print(f"{r['model']:<22} σ {r['sigma_test']:>5g}  mean {r['defect_mean']:.3e}  "
                  f"max {r['defect_max']:.3e}")  # fmt: skip

    return guarded(run)


if __name__ == "__main__":
    raise SystemExit(main())
