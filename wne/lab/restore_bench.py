"""How long the demo's "Restore from a few pixels" run takes (``python -m wne.lab.restore_bench``).

Runs the page's computation (:meth:`wne.demo.restore.Restorer.restore`, the function behind
the tab and ``/restore``) with the page's defaults, or the given task, working sizes and step
budgets, on one image, for each backbone: both walks (plain and WNE) to the end, every
streamed snapshot turned into PNG files as the endpoint does (:class:`wne.demo.outputs.
OutputFiles`). Reports the wall time of the whole run, each walk's steps, stop reason, time
and final PSNR, and the machine (CPU count, torch threads, load average before and after:
on a shared machine the times are upper bounds).

Writes ``OUT/restore-bench-<device>.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from wne import __version__, catalog
from wne.demo.outputs import OutputFiles
from wne.demo.restore import Restorer
from wne.demo.settings import RESTORE_TASKS
from wne.demo.zoo import Zoo
from wne.lab import cli

__all__ = ["bench_restore", "main", "markdown_table"]

log = logging.getLogger("wne.lab.restore_bench")


def bench_restore(
    restorer: Restorer,
    image: str | Path,
    runs: Sequence[dict[str, Any]],
    files: OutputFiles,
) -> list[dict[str, Any]]:
    """Times one page run per request.

    Args:
        restorer: The page's handler.
        image: The image file.
        runs: Raw ``/restore`` arguments per run (left out: the page's defaults).
        files: Where the snapshots' PNG files go.

    Returns:
        One row per run: its settings, wall seconds, snapshots, and per model steps, stop,
        seconds and final PSNR.
    """
    rows = []
    for raw in runs:
        start = time.perf_counter()
        snapshots = 0
        view = None
        for view in restorer.restore(str(image), **raw):
            snapshots += 1
            for img in (view.observed, *view.images):
                files.png(img)
        wall = time.perf_counter() - start
        if view is None or not view.done:
            raise RuntimeError(f"the run {raw} ended without its final snapshot")
        s = view.summary
        rows.append(
            {
                "settings": s["settings"],
                "image": s["image"],
                "wall_seconds": round(wall, 2),
                "snapshots": snapshots,
                "models": {
                    key: {f: m[f] for f in ("label", "steps", "stop", "seconds", "psnr")}
                    for key, m in s["models"].items()
                },
            }
        )
        log.info("%s: %.1f s", raw, wall)
    return rows


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as a Markdown table (one line per run)."""
    lines = [
        "| backbone | σ_train | task | size | budget | wall (s) | plain: steps, stop, s, PSNR "
        "| WNE: steps, stop, s, PSNR |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        s, im = r["settings"], r["image"]
        cells = []
        for variant in ("plain", "wne"):
            m = r["models"].get(catalog.key(s["backbone"], variant, s["sigma_train"]))
            psnr = "–" if not m or m["psnr"] is None else f"{m['psnr']:.2f} dB"
            cells.append(
                "–" if m is None else f"{m['steps']}, {m['stop']}, {m['seconds']:.1f}, {psnr}"
            )
        lines.append(
            f"| {s['backbone']} | {s['sigma_train']} | {s['task']} | {im['width']}×{im['height']} "
            f"| {s['max_steps']} | {r['wall_seconds']:.1f} | {cells[0]} | {cells[1]} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", default="assets/examples/parrots.png", help="image file")
    parser.add_argument("--checkpoints", default=None, help="checkpoint folder (default: bundled)")
    parser.add_argument("--backbones", nargs="+", default=["dncnn", "swinir"])
    parser.add_argument("--task", default=None, choices=list(RESTORE_TASKS))
    parser.add_argument("--sizes", type=int, nargs="+", default=None, help="working sizes (px)")
    parser.add_argument("--steps", type=int, nargs="+", default=None, help="step budgets")
    parser.add_argument("--sigma-train", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default="assets/results", help="folder of the JSON")
    args = cli.parse(parser, argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    zoo = Zoo.discover(args.checkpoints, device=args.device, hub_repo="")
    restorer = Restorer(zoo)
    fixed = {"task": args.task, "sigma_train": args.sigma_train}
    fixed = {k: v for k, v in fixed.items() if v is not None}
    runs = [
        {
            **fixed,
            "backbone": bb,
            **({"max_side": side} if side else {}),
            **({"max_steps": n} if n else {}),
        }
        for bb in args.backbones
        for side in (args.sizes or [None])
        for n in (args.steps or [None])
    ]
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        rows = bench_restore(restorer, args.image, runs, OutputFiles(tmp))
    load_after = os.getloadavg()
    result = {
        "wne_version": __version__,
        "machine": {
            "cpu_count": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "device": str(zoo.device),
            "load_average_before": [round(v, 2) for v in load_before],
            "load_average_after": [round(v, 2) for v in load_after],
        },
        "image": str(args.image),
        "defaults": restorer.defaults(),
        "runs": rows,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"restore-bench-{zoo.device.type}.json"
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(markdown_table(rows))
    print(f"load average before {load_before}, after {load_after}; written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
