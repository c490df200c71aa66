"""Paired timings of the fast inference paths against eager (the lab book's "Fast inference
paths" ratios): each bundled σ=25 model, eager vs :func:`wne.fast.accelerate`, 3 × 256²,
5 alternated repeats; then the demo's comparison (CPU-sized checkpoints) in one run.

Run from the repository root: ``PYTHONPATH=. python assets/results/fast-paths/paired_timing.py``.
The Swin block's old/new ratio needs the old block (commit 847a4ee's ``wne/models/swinir.py``),
see ``assets/results/gpu-h200/run/job2-script.py`` for that comparison.
"""

import statistics
import time

import numpy as np
import torch

import wne
from wne.demo import compare as cmp
from wne.demo.handlers import default_backbones
from wne.demo.settings import Settings
from wne.demo.zoo import Zoo
from wne.fast import accelerate, is_accelerated

torch.set_num_threads(2)
x = torch.rand(3, 1, 256, 256)
for key in ["dncnn-plain-s25", "dncnn-wne-s25", "swinir-wne-s25"]:
    eager = wne.load(key).eval()
    fast = accelerate(wne.load(key).eval())
    ratios = []
    with torch.inference_mode():
        diff = float((eager(x) - fast(x)).abs().max())
        for _ in range(5):
            t = time.perf_counter()
            eager(x)
            a = time.perf_counter() - t
            t = time.perf_counter()
            fast(x)
            ratios.append((time.perf_counter() - t) / a)
    print(
        f"{key}: compiled {is_accelerated(fast)}, fast/eager {statistics.median(ratios):.2f}, "
        f"max diff {diff:.1e}"
    )

zoo = Zoo.discover("checkpoints", device="cpu", hub_repo="").select("cpu")
settings = Settings(sigma_train=25, backbones=default_backbones(zoo), checkpoint="cpu")
yy, xx = np.mgrid[0:256, 0:256] / 256
img = np.stack([0.5 + 0.3 * np.sin(7 * xx + k) * np.cos(5 * yy) for k in range(3)], -1)
img = img.astype(np.float32)
cmp.compare(zoo, img, settings)
totals, per = [], {}
for _ in range(4):
    t = time.perf_counter()
    res = cmp.compare(zoo, img, settings)
    totals.append(time.perf_counter() - t)
    for r in res.runs:
        per.setdefault(r.key, []).append(r.seconds)
print(
    f"comparison 256² colour: {statistics.median(totals):.2f} s;",
    {k: round(statistics.median(v), 3) for k, v in per.items()},
)
