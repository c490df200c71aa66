"""Fast inference paths vs eager (lab book, "Fast inference paths"): each bundled σ=25 model,
eager and :func:`wne.fast.accelerate`, on 3 × 256², 5 interleaved Timer samples each
(:func:`wne.lab.bench.time_interleaved`), with the largest output difference.

Run from the repository root: ``PYTHONPATH=. python assets/results/fast-paths/paired_timing.py``.
"""

import numpy as np
import torch

import wne
from wne.fast import accelerate, is_accelerated
from wne.lab.bench import time_interleaved

torch.set_num_threads(2)
x = torch.rand(3, 1, 256, 256, generator=torch.Generator().manual_seed(0))
for key in ["dncnn-plain-s25", "dncnn-wne-s25", "swinir-wne-s25"]:
    eager, fast = wne.load(key).eval(), accelerate(wne.load(key).eval())
    with torch.inference_mode():
        diff = float((eager(x) - fast(x)).abs().max())
        steps = {"eager": lambda m=eager: m(x), "fast": lambda m=fast: m(x)}
        s = time_interleaved(steps, repeats=5, warmup=1, min_sample_s=0.5)
    ratio = np.median([f.median / e.median for e, f in zip(s["eager"], s["fast"], strict=True)])
    print(f"{key}: compiled {is_accelerated(fast)}, fast/eager {ratio:.2f}, max diff {diff:.1e}")
