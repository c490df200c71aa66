"""The second H200 job (as run, reformatted): Swin block old vs new, demo comparison with
GPU tiles vs 512 px tiles. Ran from the repo root with ``runs/gpu`` (the run book's state)
and ``runs/gpu2/swinir_old.py`` (wne/models/swinir.py before commit 2541e33) carried."""

import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, os.getcwd())
import swinir_old

import wne.tiling
from wne.device import synchronize
from wne.lab import gpu
from wne.models.swinir import SwinIR

tiny = "--tiny" in sys.argv
dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
name = torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu"
out = {"device": name, "torch": torch.__version__}
OUTDIR = Path(os.environ.get("OUT", "/tmp/gpu2out"))
OUTDIR.mkdir(parents=True, exist_ok=True)


def save() -> None:
    (OUTDIR / "bench2.json").write_text(json.dumps(out, indent=1))


paper = dict(embed_dim=60, depths=[6, 6, 6, 6], num_heads=6, window_size=8, mlp_ratio=2)
small = dict(embed_dim=12, depths=[1], num_heads=2, window_size=8, mlp_ratio=1)
kw = small if tiny else paper
new = SwinIR(**kw).eval().to(dev)
old = swinir_old.SwinIR(**kw)
old.load_state_dict(new.state_dict())
old = old.eval().to(dev)
sides = (32, 64) if tiny else (512, 1024)
res = {}


def timed(model: torch.nn.Module, x: torch.Tensor) -> float:
    synchronize(dev)
    t = time.perf_counter()
    model(x)
    synchronize(dev)
    return time.perf_counter() - t


for side in sides:
    x = torch.rand(3, 1, side, side, device=dev)
    for dtype in ("fp32", "bf16"):
        ta, tb = [], []
        bf16 = dtype == "bf16" and dev.type == "cuda"
        with torch.inference_mode(), torch.autocast(dev.type, torch.bfloat16, enabled=bf16):
            d = float((new(x).float() - old(x).float()).abs().max())
            for _ in range(2):
                old(x)
                new(x)
            for _ in range(2 if tiny else 5):
                ta.append(timed(old, x))
                tb.append(timed(new, x))
        res[f"{side}-{dtype}"] = {"old_s": min(ta), "new_s": min(tb), "max_abs_diff": d}
        print(f"[swinir 3x{side}² {dtype}] old {min(ta) * 1e3:.1f} ms new {min(tb) * 1e3:.1f} ms")
out["swinir_block"] = res
save()
del new, old
state = Path("runs/gpu")
plan = {**gpu.load_plan(state), "tiny": tiny}
root, stand = gpu._timing_root(state, plan)
out["stand_ins"] = stand
dev_s = "cuda" if dev.type == "cuda" else "cpu"
out["compare_gpu_tiles"] = gpu.time_comparison(root, dev_s, sides, 2 if tiny else 5)
save()
wne.tiling.GPU_TILE_SIZE = 512
out["compare_512_tiles"] = gpu.time_comparison(root, dev_s, sides, 2 if tiny else 3)
save()
wne.tiling.GPU_TILE_SIZE = 2048
shipped = gpu.time_comparison(Path("checkpoints"), dev_s, sides, 2 if tiny else 5)
out["compare_shipped_gpu_tiles"] = shipped
save()
print(json.dumps(out)[:3000])
