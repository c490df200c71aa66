"""The Why-not-simpler page's numbers and time on one image, for the lab book.

``python tools/rivals_page.py [IMAGE] --side 192 --a 0.5 --b 0.2 --sigma 25 --repeats 3``
prints each model's PSNR at y and at a·y + b and ε_NE (a Markdown table), then the page's
wall time per repeat (the bundled checkpoints, this machine's threads).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from wne.demo.imaging import load_image
from wne.demo.pages import rivals
from wne.demo.zoo import Zoo

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    """Runs the page ``--repeats`` times and prints its table and times."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("image", nargs="?", default=str(ROOT / "assets" / "examples" / "parrots.png"))
    p.add_argument("--side", type=int, default=rivals.SIDE)
    p.add_argument("--a", type=float, default=0.5)
    p.add_argument("--b", type=float, default=0.2)
    p.add_argument("--sigma", type=float, default=25.0)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    zoo = Zoo.discover(device="cpu", hub_repo="")
    clean = load_image(args.image, max_side=args.side).pixels
    r = rivals.Rivals(a=args.a, b=args.b, sigma=args.sigma, max_side=args.side)
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        res = list(rivals.run(zoo, clean, r))[-1]
        times.append(time.perf_counter() - start)
    table = rivals.outputs(res, [])[4]
    print("| " + " | ".join(rivals.TABLE_HEADERS) + " |\n|" + "---|" * len(rivals.TABLE_HEADERS))
    print("\n".join("| " + " | ".join(row) + " |" for row in table))
    h, w = clean.shape[:2]
    print(f"\n{w}×{h} px, {len(res.runs)} models: " + ", ".join(f"{t:.2f} s" for t in times))


if __name__ == "__main__":
    main()
