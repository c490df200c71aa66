"""The demo's comparison and the transformer's attention on a device (lab book, "The demo's
comparison on the GPU").

1. The default four-model comparison (CNN + transformer, plain + WNE, σ_train = 25, a colour
   image) through the page function ``compare.run`` with the installed checkpoints, at each
   side: synchronized, after a warm-up, min of ``--repeats``.
2. The paper-size SwinIR-WNE (random weights, the catalog's paper recipe) on 3 × side², its
   head size padded for the fused attention kernels (``swinir.HEAD_ALIGN``) against unpadded:
   min of ``--repeats`` each, alternately, and the max abs difference.

Run from the repository root:
``PYTHONPATH=. python assets/results/fast-paths/gpu_compare.py --device cuda --sizes 512 1024``
(``--out FILE`` writes the JSON).
"""

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

import wne
import wne.models.swinir as swin
from wne import catalog
from wne.demo import Zoo
from wne.demo.pages import compare
from wne.device import synchronize


def timed(fn: Callable[[], object], device: torch.device, repeats: int) -> float:
    """Min seconds of ``fn()`` over ``repeats`` synchronized calls, after one warm-up."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    """Command-line entry point."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    dev = torch.device(args.device)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    doc: dict = {"device": name, "torch": torch.__version__, "comparison_s": {}, "attention": {}}
    zoo = Zoo.discover(device=dev, hub_repo="")
    rng = np.random.default_rng(0)
    for side in args.sizes:
        img = rng.random((side, side, 3), dtype=np.float32)
        s = compare.Scene(1.0, 0.0, 25.0, 0, 25, ("dncnn", "swinir"), "shift-then-noise", side,
                          False, "gaussian", 20.0, 1.0, 30, "best")  # fmt: skip
        run = lambda: list(compare.run(zoo, img, s))  # noqa: B023, E731
        doc["comparison_s"][side] = timed(run, dev, args.repeats)
    kwargs = catalog.FAMILIES["swinir"].paper.arch_kwargs
    torch.manual_seed(0)
    model = wne.NormEquivariant(wne.models.build("swinir", **kwargs)).eval().to(dev)
    aligned = swin.HEAD_ALIGN
    for side in args.sizes:
        x, row, outs = torch.rand(3, 1, side, side, device=dev), {}, {}
        with torch.inference_mode():
            for name, align in (("padded", aligned), ("unpadded", 1)):
                swin.HEAD_ALIGN = align
                row[f"{name}_s"] = timed(lambda: model(x), dev, args.repeats)  # noqa: B023
                outs[name] = model(x)
        swin.HEAD_ALIGN = aligned
        row["max_abs_diff"] = float((outs["padded"] - outs["unpadded"]).abs().max())
        doc["attention"][side] = row
    text = json.dumps(doc, indent=1)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
