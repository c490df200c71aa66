"""Profile split of default "Denoise & compare" requests on the CPU: the models vs the
server's own work (reading, noise, scores, page view, PNG files as the page sends them).

Five requests (parrots, the default scene with seeds 1–5, after one warm-up) through the
page's generator under :mod:`cProfile`, every model call in this thread
(``WNE_SIDE_BY_SIDE=0``), PNG files written into a fresh folder. The argument picks the
checkpoints (default ``best``).

Run from the repository root:
``PYTHONPATH=. python assets/results/fast-paths/demo_profile.py [best|cpu|gpu]``.
"""

import cProfile
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

os.environ["WNE_SIDE_BY_SIDE"] = "0"  # before the demo reads it
os.environ["GRADIO_TEMP_DIR"] = tempfile.mkdtemp(prefix="wne-profile-")  # no file from a past run

import app
from wne.demo import Zoo
from wne.demo.imaging import save_png
from wne.demo.pages import compare
from wne.demo.serving import Server

zoo = Zoo.discover(device="cpu", hub_repo="")
server = Server(zoo, cache_mb=0)
choice = sys.argv[1] if len(sys.argv) > 1 else "best"
scene = compare.Scene(
    1.0, 0.0, 25.0, 0, 25, ("dncnn", "swinir"), "shift-then-noise", 256, False, "gaussian",
    20.0, 1.0, 30, choice,
)  # fmt: skip


def request(seed: int) -> None:
    from gradio import processing_utils, utils  # as app.py serves them

    cache = utils.get_cache_folder()
    folder = Path(utils.get_upload_folder()) / "wne-outputs"
    s = compare.Scene(**{**scene.to_dict(), "seed": seed})
    loaded = server.open(str(app.ASSETS / "examples" / "parrots.png"), s.max_side)
    for res in compare.run(zoo, loaded.pixels, s):  # the page's generator, streamed steps
        noisy, target, gallery, summary = compare.outputs(res, loaded.notes)
        compare.page(noisy, gallery, summary)
        for img in [noisy, target, *(g[0] for g in gallery)]:  # as the page sends them
            processing_utils.save_file_to_cache(save_png(img, folder), cache)


request(99)  # warm-up
profile = cProfile.Profile()
start = time.perf_counter()
profile.enable()
for seed in range(1, 6):
    request(seed)
profile.disable()
wall = time.perf_counter() - start
stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
total = sum(v[2] for v in stats.values())  # the sum of own times: the profiled CPU time


def cumulative(name: str) -> float:
    return sum(v[3] for k, v in stats.items() if k[2] == name)


model = cumulative("apply_model")
print(f"wall {wall:.2f} s for 5 requests; profiled {total:.2f} s")
print(f"models (apply_model) {model:.2f} s = {100 * model / total:.1f} %; ", end="")
print(f"server's own work {100 * (total - model) / total:.1f} %")
for name in (
    "load_image",
    "degrade",
    "scores",
    "outputs",
    "page",
    "to_display",
    "save_png",
    "save_file_to_cache",
):
    print(f"  {name}: {cumulative(name):.3f} s ({100 * cumulative(name) / total:.1f} %)")
