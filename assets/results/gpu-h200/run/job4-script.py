"""The fourth H200 job: where the paper-size transformer's time goes at 3×1024² and what
TF32 matmuls and ``torch.compile`` do to it (issue 16's 0.3 s comparison target).

Run from the repo root: ``python assets/results/gpu-h200/run/job4-script.py [--tiny]
[--budget-s S]``. Writes ``$OUT/job4.json`` after every step (a job cut at its limit still
returns what it measured) and prints a line per measurement.
"""

import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, os.getcwd())

from wne.device import synchronize
from wne.models.swinir import SwinIR
from wne.wrapper import NormEquivariant

T0 = time.perf_counter()
tiny = "--tiny" in sys.argv
budget = float(sys.argv[sys.argv.index("--budget-s") + 1]) if "--budget-s" in sys.argv else 170.0
dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
out: dict = {
    "device": torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu",
    "torch": torch.__version__,
}
OUTDIR = Path(os.environ.get("OUT", "/tmp/gpu3out"))
OUTDIR.mkdir(parents=True, exist_ok=True)


def left() -> float:
    return budget - (time.perf_counter() - T0)


def save() -> None:
    (OUTDIR / "job4.json").write_text(json.dumps(out, indent=1))


paper = dict(embed_dim=60, depths=[6, 6, 6, 6], num_heads=6, window_size=8, mlp_ratio=2)
small = dict(embed_dim=12, depths=[1], num_heads=2, window_size=8, mlp_ratio=1)
torch.manual_seed(0)
model = NormEquivariant(SwinIR(**(small if tiny else paper))).eval().to(dev)
side = 64 if tiny else 1024
x = torch.rand(3, 1, side, side, device=dev)  # a colour image, channel by channel
repeats = 2 if tiny else 5


def timed(fn, n: int = repeats) -> float:
    ts = []
    for _ in range(n):
        synchronize(dev)
        t = time.perf_counter()
        fn()
        synchronize(dev)
        ts.append(time.perf_counter() - t)
    return min(ts)


def run(fn, label: str, ref: torch.Tensor | None = None) -> torch.Tensor:
    with torch.inference_mode():
        t_first = timed(fn, 1)
        y = fn()
        t = timed(fn)
    row = {"first_s": round(t_first, 4), "best_s": round(t, 4)}
    if ref is not None:
        row["max_abs_diff_vs_eager_fp32"] = float((y.float() - ref.float()).abs().max())
    out.setdefault(f"swinir_wne_3x{side}", {})[label] = row
    print(f"[{label}] first {t_first:.3f} s, best {t:.4f} s {row}", flush=True)
    save()
    return y


ref = run(lambda: model(x), "eager fp32")
torch.backends.cuda.matmul.allow_tf32 = True
run(lambda: model(x), "eager tf32 matmul", ref)


def bf16() -> torch.Tensor:
    with torch.autocast(dev.type, torch.bfloat16, enabled=dev.type == "cuda"):
        return model(x)


run(bf16, "eager bf16 autocast", ref)
torch.backends.cuda.matmul.allow_tf32 = False

# where the eager fp32 time goes
if left() > 60:
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
    with torch.inference_mode(), profile(activities=acts) as prof:
        model(x)
        synchronize(dev)
    sort = "cuda_time_total" if dev.type == "cuda" else "cpu_time_total"
    table = prof.key_averages().table(sort_by=sort, row_limit=15)
    out["profile_eager_fp32"] = table
    print(table, flush=True)
    save()

# torch.compile of the backbone (the wrapper's statistics stay eager around it)
for label, tf32, mode in (("compile fp32", False, None), ("compile tf32", True, None)):
    if left() < (40 if tiny else 70):
        out.setdefault("skipped", []).append(label)
        save()
        continue
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch._dynamo.reset()
    compiled = NormEquivariant(torch.compile(model.backbone, mode=mode, dynamic=False)).eval()
    try:
        run(lambda c=compiled: c(x), label, ref)
    except Exception as exc:  # a failed compile is a result too
        out.setdefault("errors", {})[label] = f"{type(exc).__name__}: {exc}"[:2000]
        print(f"[{label}] failed: {exc}", flush=True)
        save()
torch.backends.cuda.matmul.allow_tf32 = False
out["wall_s"] = round(time.perf_counter() - T0, 1)
save()
print(json.dumps({k: v for k, v in out.items() if k != "profile_eager_fp32"})[:3000])
