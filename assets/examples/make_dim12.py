"""Makes ``lighthouse_12bit.png``: Kodak kodim21 as a dim 12-bit frame in a 16-bit PNG.

The clean frame is ``200 + 3000·x`` (x: the 8-bit gray crop in [0, 1]); the noise is
Poisson–Gaussian (100 photons at white, read noise 2 e⁻), seeded. With ``--score`` it
prints the PSNR in the data's units (data range 3000) of plain and WNE models vs the clean
frame. Run from the repo root: ``PYTHONPATH=. python assets/examples/make_dim12.py KODAK_DIR``.
"""

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

OUT = Path(__file__).with_name("lighthouse_12bit.png")
LOW, SPAN, PHOTONS, READ = 200, 3000, 100.0, 2.0


def frames(kodak: Path) -> tuple[np.ndarray, np.ndarray]:
    """The clean and the noisy frame, float64 and uint16, ``[256, 256]``."""
    im = Image.open(kodak / "kodim21.png").convert("L")
    w, h = im.size
    box = ((w - 500) // 2, (h - 500) // 2, (w + 500) // 2, (h + 500) // 2)
    x = np.asarray(im.crop(box).resize((256, 256), Image.Resampling.BICUBIC)) / 255.0
    rng = np.random.default_rng(0)
    counts = rng.poisson(PHOTONS * x) + rng.normal(0.0, READ, x.shape)
    noisy = np.clip(np.rint(LOW + SPAN * counts / PHOTONS), 0, 4095).astype(np.uint16)
    return LOW + SPAN * x, noisy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kodak", type=Path, help="the Kodak24 folder (kodim21.png)")
    parser.add_argument("--score", nargs="*", default=None, help="catalog keys to score")
    args = parser.parse_args()
    clean, noisy = frames(args.kodak)
    Image.fromarray(noisy).save(OUT)
    print(f"{OUT.name}: values {noisy.min()}–{noisy.max()} of 4095")
    if args.score is not None:
        import wne

        def psnr(y: np.ndarray) -> float:
            return float(10 * np.log10(SPAN**2 / np.mean((y.astype(np.float64) - clean) ** 2)))

        print(f"noisy: {psnr(noisy):.2f} dB")
        for key in args.score or ["dncnn-plain-s25", "dncnn-wne-s25"]:
            print(f"{key}: {psnr(wne.denoise(noisy, key, 'cpu')):.2f} dB")


if __name__ == "__main__":
    main()
