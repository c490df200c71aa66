"""The fifth H200 job: the paper-size transformer with its head size padded for CUDA's fused
attention kernels (``wne.models.swinir.window_attention``) against the unpadded path that
fell back to the math kernel, then the demo's comparison with the retrained paper-size
DnCNN twins and paper-size SwinIR stand-ins.

Run from the repo root with ``runs/gpu-cont`` carried: ``python
assets/results/gpu-h200/run/job5-script.py [--tiny]``. Writes ``$OUT/job5.json`` after
every step.
"""

import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, os.getcwd())

import wne.models.swinir as swin
from wne.device import synchronize
from wne.lab import gpu
from wne.wrapper import NormEquivariant

tiny = "--tiny" in sys.argv
dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
out: dict = {
    "device": torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu",
    "torch": torch.__version__,
}
OUTDIR = Path(os.environ.get("OUT", "/tmp/gpu5out"))
OUTDIR.mkdir(parents=True, exist_ok=True)


def save() -> None:
    (OUTDIR / "job5.json").write_text(json.dumps(out, indent=1))


paper = dict(embed_dim=60, depths=[6, 6, 6, 6], num_heads=6, window_size=8, mlp_ratio=2)
small = dict(embed_dim=12, depths=[1], num_heads=2, window_size=8, mlp_ratio=1)
torch.manual_seed(0)
model = NormEquivariant(swin.SwinIR(**(small if tiny else paper))).eval().to(dev)
align = 8 if dev.type == "cuda" else 1  # CPU dry run: nothing to compare


def timed(x: torch.Tensor) -> float:
    synchronize(dev)
    t = time.perf_counter()
    model(x)
    synchronize(dev)
    return time.perf_counter() - t


res = {}
for side in (32, 64) if tiny else (512, 1024):
    x = torch.rand(3, 1, side, side, device=dev)
    ts: dict[int, list[float]] = {1: [], align: []}
    with torch.inference_mode():
        ys = {}
        for a in (1, align):
            swin.HEAD_ALIGN = a
            ys[a] = model(x)
            model(x)
        for _ in range(2 if tiny else 5):
            for a in (1, align):
                swin.HEAD_ALIGN = a
                ts[a].append(timed(x))
    res[str(side)] = {
        "unpadded_s": round(min(ts[1]), 4),
        "padded_s": round(min(ts[align]), 4),
        "max_abs_diff": float((ys[1] - ys[align]).abs().max()),
    }
    print(f"[swinir-wne 3x{side}²] {res[str(side)]}", flush=True)
out["swinir_wne_head_padding"] = res
save()
swin.HEAD_ALIGN = align
if dev.type == "cuda":
    from torch.profiler import ProfilerActivity, profile

    x = torch.rand(3, 1, 1024, 1024, device=dev)
    with torch.inference_mode(), profile(activities=[ProfilerActivity.CUDA]) as prof:
        model(x)
        synchronize(dev)
    out["profile_padded_1024"] = prof.key_averages().table(sort_by="cuda_time_total", row_limit=12)
    print(out["profile_padded_1024"], flush=True)
    save()
model.cpu()
state = Path("runs/gpu-cont")
plan = {**gpu.load_plan(state), "tiny": tiny}
root, stand = gpu._timing_root(state, plan)
out["stand_ins"] = stand
out["compare"] = gpu.time_comparison(root, dev.type, (32, 64) if tiny else (512, 1024), 3)
save()
print(json.dumps({k: v for k, v in out.items() if not k.startswith("profile")})[:3000])
