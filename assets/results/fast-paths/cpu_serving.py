"""The transformer on the CPU as the demo serves it (lab book, "Fast inference paths"):
SwinIR-WNE on 3 × 256² under inference mode, all windows at once vs the Swin block's chunks
of 4096 / 8192 / 16384 tokens, on one and two threads; then the same model on the main thread vs
a new thread
(:class:`torch.utils.benchmark.Timer`, fastest block of 2 s). The served app's latency is
``wne loadtest --mode latency``.

Run from the repository root: ``PYTHONPATH=. python assets/results/fast-paths/cpu_serving.py``.
"""

import threading

import torch
from torch.utils.benchmark import Timer

import wne
import wne.models.swinir as swin

model = wne.load("swinir-wne-s25").eval()
x = torch.rand(3, 1, 256, 256, generator=torch.Generator().manual_seed(0))


def fastest(threads: int = 2) -> float:
    with torch.inference_mode():
        timer = Timer("model(x)", globals={"model": model, "x": x}, num_threads=threads)
        return min(timer.blocked_autorange(min_run_time=2).times)


for threads in (1, 2):
    for chunk in (10**9, 4096, 8192, 16384):
        swin.CHUNK_TOKENS = chunk
        label = "all at once" if chunk == 10**9 else chunk
        print(f"{threads} thread(s), {label}: {fastest(threads):.3f} s")
swin.CHUNK_TOKENS = 4096
print(f"main thread: {fastest():.3f} s")
worker = threading.Thread(target=lambda: print(f"new thread: {fastest():.3f} s"))
worker.start()
worker.join()
