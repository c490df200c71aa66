"""Compare: plain vs WNE denoisers on one shifted, noisy image (``[H, W, C]`` in [0, 1], σ on
the 0–255 scale; colour channels go through the grayscale models as one batch).
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from wne import catalog
from wne.degrade import NOISES
from wne.demo.errors import DemoInputError
from wne.demo.figure import Tile, render_figure
from wne.demo.imaging import Native, to_display
from wne.demo.schema import noise_setting, setting, to_dict, typed
from wne.demo.zoo import CHECKPOINTS, ModelUnavailableError, Zoo
from wne.device import synchronize
from wne.metrics import estimate_sigma, psnr, ssim
from wne.settings import EnvSettings
from wne.tiling import apply_tiled, tile_count, tile_size

ORDERS: dict[str, str] = {
    "shift-then-noise": "shift the clean scene, then add noise",
    "noise-then-shift": "add noise, then shift the noisy image",
}
TABLE_HEADERS = ["model", "PSNR (dB)", "SSIM", "time (ms)"]


SIGMA_CHOICES = tuple((f"σ = {s}", s) for s in catalog.SIGMA_TRAINS)
"""The training σ choices (the page marks those without models)."""
BACKBONES = tuple((f.label, f.id) for f in catalog.families(zoo_only=True))
"""The backbones a page offers."""
WORKING_SIZE = "working size (longest side, px)"
NOISE_PARAMS = list(dict.fromkeys(p.name for n in NOISES.values() for p in n.params))
"""Every noise type's level settings (σ, photons, read noise, JPEG quality); the page shows
those of the chosen type (:func:`noise_params_of`)."""


def noise_params_of(noise: str) -> list[str]:
    """The settings of noise type ``noise``."""
    return [p.name for p in NOISES[noise].params]


@dataclass(frozen=True)
class Scene:
    """One request's scene (the Compare page's settings): the shift ``a·x + b`` (b in [0, 1]
    units), the noise (``noise`` a key of :data:`wne.degrade.NOISES`; σ on the 0–255 scale,
    ``photons``/``read_noise`` for low light, ``quality`` for JPEG), ``seed``, the models
    (``backbones`` in display order, ``sigma_train``, ``checkpoint`` of
    :data:`wne.demo.zoo.CHOICES`), ``order`` (a key of :data:`ORDERS`), ``max_side`` (px) and
    ``clip`` (model inputs and outputs to [0, 1]). ``Scene()`` is the page's default scene."""

    a: float = setting(
        1.0, "contrast a", info="x → a·x + b", lo=0.1, hi=4, step=0.01, elem_id="contrast-a"
    )
    b: float = setting(
        0.0, "brightness b", info="in [0, 1] units", lo=-1, hi=1, step=0.01, elem_id="brightness-b"
    )
    sigma: float = noise_setting("sigma")
    seed: int = setting(0, "noise seed", lo=0, hi=2**31 - 1, widget="number")
    sigma_train: int = setting(25, "models' training σ", choices=SIGMA_CHOICES)
    backbones: tuple[str, ...] = setting(("dncnn", "swinir"), "backbones", choices=BACKBONES)
    order: str = setting(
        "shift-then-noise", "order of operations", choices=[(t, k) for k, t in ORDERS.items()]
    )
    max_side: int = setting(
        256,
        WORKING_SIZE,
        info="larger images are downscaled; large ones run in tiles",
        lo=32,
        hi=2048,
        step=16,
    )
    clip: bool = setting(
        False,
        "clip to [0, 1]",
        info="as an 8-bit image; breaks exact equivariance where values saturate",
    )
    noise: str = setting(
        "gaussian",
        "noise type",
        choices=[(n.label, k) for k, n in NOISES.items()],
        widget="dropdown",
        elem_id="noise-type",
    )
    photons: float = noise_setting("photons")
    read_noise: float = noise_setting("read_noise")
    quality: int = noise_setting("quality")
    checkpoint: str = setting(
        "best",
        "checkpoints",
        choices=[(text, k) for k, text in CHECKPOINTS.items()],
        info="which trained models run; the notes name the checkpoints that ran",
        elem_id="checkpoint",
    )

    __post_init__ = typed
    to_dict = to_dict


def corrupt(x: torch.Tensor, s: Scene, level: float | None = None) -> torch.Tensor:
    """``x`` observed with the scene's noise (seeded); ``level`` overrides the noise's level."""
    noise = NOISES[s.noise]
    params = noise.values(asdict(s))
    if level is not None:
        params[noise.level.name] = round(level) if noise.level.integer else float(level)
    return noise.apply(x, s.seed, **params)


def chw(pixels: np.ndarray) -> torch.Tensor:
    """``[H, W, C]`` → ``[C, H, W]`` float32 tensor."""
    return torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32)).permute(2, 0, 1)


def hwc(t: torch.Tensor) -> np.ndarray:
    """``[C, H, W]`` → ``[H, W, C]`` float32 array."""
    return t.detach().float().cpu().permute(1, 2, 0).contiguous().numpy()


def degrade(
    clean: np.ndarray, s: Scene, level: float | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The noisy model input and the target ``a·x + b``, each ``[C, H, W]`` (shifted before or
    after the noise, per ``order``; clipped with ``clip``)."""
    x = chw(clean)
    target = s.a * x + s.b
    noisy = (
        corrupt(target, s, level)
        if s.order == "shift-then-noise"
        else s.a * corrupt(x, s, level) + s.b
    )
    if s.clip:
        noisy, target = noisy.clamp(0, 1), target.clamp(0, 1)
    return noisy, target


def noise_notes(s: Scene, noisy: torch.Tensor, target: torch.Tensor) -> list[str]:
    """The noise in words, with its equivalent Gaussian σ where it has none."""
    noise = NOISES[s.noise]
    if not noise.note:
        return []
    params = noise.values(asdict(s))
    return [noise.describe(noise.equivalent_sigma(noisy, target, **params), **params)]


def apply_model(model: nn.Module, images: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """A grayscale model on ``[N, H, W]`` images in one batch (tiled when large);
    ``[N, H, W]`` float32 on CPU, unclipped."""
    return apply_tiled(model, images.unsqueeze(1), device=device).squeeze(1)


def scores(out: torch.Tensor, target: torch.Tensor, data_range: float) -> tuple[float, float]:
    """PSNR (dB) and SSIM of ``[C, H, W]`` images against the target."""
    p = float(psnr(out[None], target[None], data_range=data_range)[0])
    return p, float(ssim(out, target, data_range))


_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="wne-side-by-side")
_THREADS = threading.Lock()


def side_by_side(device: torch.device | str) -> int:
    """How many of a backbone's models run at once: 2 on a CPU with two threads or more
    (two models on one core each finish sooner than one after the other on two cores,
    see the lab book), else 1 (``$WNE_SIDE_BY_SIDE=0`` turns it off)."""
    if not EnvSettings.from_env().side_by_side:
        return 1
    return 2 if torch.device(device).type == "cpu" and torch.get_num_threads() >= 2 else 1


def run_jobs(jobs: list[Callable[[], None]]) -> None:
    """Runs ``jobs`` one after the other, or (two or more) each on a thread of one core."""
    if len(jobs) < 2:
        for job in jobs:
            job()
        return
    with _THREADS:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            for f in [_POOL.submit(job) for job in jobs]:
                f.result()
        finally:
            torch.set_num_threads(threads)


@dataclass
class ModelRun:
    """One model's output: ``output`` ``[H, W, C]`` (None: unavailable, see ``message``),
    PSNR/SSIM vs the target, wall time in seconds, and the checkpoint key that ran; without a
    reference (:func:`has_reference`) no scores but the output's estimated noise level
    (0–255 scale) and its method noise ``y − f(y)``."""

    backbone: str
    variant: str
    key: str
    output: np.ndarray | None = None
    psnr: float | None = None
    ssim: float | None = None
    seconds: float | None = None
    message: str | None = None
    estimated_sigma: float | None = None
    residual: np.ndarray | None = None

    @property
    def label(self) -> str:
        """E.g. ``"CNN · WNE"``."""
        return catalog.label(self.backbone, self.variant)


@dataclass
class Comparison:
    """A comparison so far: the noisy input and target ``[H, W, C]``, their scores, the
    runs done, the ``(backbone, variant)`` slots still ``pending``, and notes."""

    scene: Scene
    noisy: np.ndarray
    target: np.ndarray
    noisy_psnr: float
    noisy_ssim: float
    equivalent_sigma: float
    device: str
    runs: list[ModelRun] = field(default_factory=list)
    pending: tuple[tuple[str, str], ...] = ()
    notes: list[str] = field(default_factory=list)
    reference: bool = True
    noisy_sigma: float | None = None
    """Without a reference: the noisy input's estimated noise level (0–255 scale)."""


def has_reference(s: Scene) -> bool:
    """Whether the image is a clean reference: not when no noise is added (Gaussian, σ = 0),
    the case of a photo that is noisy already, which must not be scored against itself."""
    return not (s.noise == "gaussian" and s.sigma == 0)


def run(zoo: Zoo, clean: np.ndarray, scene: Scene) -> Iterator[Comparison]:
    """Degrades ``clean`` and denoises it with every selected plain/WNE model; yields snapshots
    (inputs first, then after each backbone, the complete one last); a missing model is reported."""
    s, zoo = scene, zoo.select(scene.checkpoint)
    noisy, target = degrade(clean, s)
    slots = [(b, v) for b in s.backbones for v in catalog.FAMILIES[b].variants]
    res = Comparison(
        s,
        hwc(noisy),
        hwc(target),
        *scores(noisy, target, s.a),
        NOISES[s.noise].equivalent_sigma(noisy, target, **NOISES[s.noise].values(asdict(s))),
        str(zoo.device),
        pending=tuple(slots),
    )
    if not has_reference(s):
        res.reference, res.noisy_psnr, res.noisy_ssim = False, None, None
        res.noisy_sigma = 255 * estimate_sigma(noisy)
    yield replace(res, runs=list(res.runs))
    pairs = side_by_side(zoo.device)
    for bid in s.backbones:
        group = [(b, v) for b, v in slots if b == bid]
        for start in range(0, len(group), pairs):
            jobs, runs = [], []
            for b, v in group[start : start + pairs]:
                key = zoo.checkpoint(b, v, s.sigma_train) or catalog.key(b, v, s.sigma_train)
                r = ModelRun(b, v, key)
                runs.append(r)
                try:
                    jobs.append(_job(r, zoo.get(b, v, s.sigma_train), noisy, target, zoo.device, s))
                except ModelUnavailableError as exc:
                    r.message = str(exc)
                    res.notes.append(f"{exc}.")
            run_jobs(jobs)
            res.runs += runs
            res.pending = res.pending[len(runs) :]
            if res.pending:
                yield replace(res, runs=list(res.runs), notes=list(res.notes))
    tiles, c = tile_count(*clean.shape[:2], device=zoo.device), clean.shape[2]
    said = {
        f"Denoised in {tiles} overlapping tiles of {tile_size(zoo.device)} px (tiling keeps WNE "
        "exactly equivariant).": tiles > 1,
        "On the CPU the models of each backbone ran side by side, one core each (their times "
        "overlap).": pairs > 1 and len(slots) > 1,
        "Colour image: each channel is denoised by the same grayscale model in one batched call.": c
        == 3,
    }
    std = s.order == "noise-then-shift" and NOISES[s.noise].level.name == "sigma"
    res.notes += [
        *(n for n, on in said.items() if on),
        f"Order: {ORDERS[s.order]}"
        + (f" (the noise std becomes a·σ = {s.a * s.sigma:.1f})." if std else "."),
        *noise_notes(s, noisy, target),
        *zoo.choice_notes(s.backbones, s.sigma_train),
    ]
    yield res


def _job(
    r: ModelRun, model: nn.Module, noisy: torch.Tensor, target: torch.Tensor, device: Any, s: Scene
) -> Callable[[], None]:
    """One model's call, scores and output, filled into ``r``."""

    def job() -> None:
        synchronize(device)
        start = time.perf_counter()
        out = apply_model(model, noisy, device)
        synchronize(device)
        r.seconds = time.perf_counter() - start
        out = out.clamp(0, 1) if s.clip else out
        if has_reference(s):
            r.psnr, r.ssim = scores(out, target, s.a)
        else:  # what the model removed, and what it left
            r.estimated_sigma, r.residual = 255 * estimate_sigma(out), hwc(noisy - out)
        r.output = hwc(out)

    return job


def json_number(value: float | None, digits: int | None = None) -> float | str | None:
    """A JSON-safe number (``"inf"`` for an infinite PSNR)."""
    if value is None or not math.isfinite(value):
        return None if value is None else str(value)
    return value if digits is None else round(value, digits)


def outputs(
    res: Comparison, notes: list[str], native: Native | None = None
) -> tuple[np.ndarray, np.ndarray, list[tuple[np.ndarray, str]], dict[str, Any]]:
    """What ``/denoise`` returns: the noisy input and target as uint8, the outputs with
    captions, and the JSON summary (``notes``: the image's, first; a ``native`` image is
    shown stretched from its value range after the shift)."""
    s = res.scene
    window = (0.0, 1.0) if native is None else tuple(s.a * v + s.b for v in native.window)
    gallery = []
    shown = {
        n: to_display(p, window) for n, p in (("noisy input", res.noisy), ("target", res.target))
    }
    clipped = [n for n, (_, outside) in shown.items() if outside > 0 and native is None]
    for r in res.runs:
        if r.output is not None:
            img, outside = to_display(r.output, window)
            clipped += [r.label] if outside > 0 and native is None else []
            ms = 1000 * (r.seconds or 0)
            score = readout(r.psnr, r.ssim, r.estimated_sigma)
            gallery.append((img, f"{r.label} · {score} · {ms:.0f} ms"))
    removed = [r.residual for r in res.runs if r.residual is not None]
    if removed:  # no reference: after the outputs, the method noise on one symmetric scale
        half = max(max(float(np.quantile(np.abs(x), 0.99)) for x in removed), 1e-6)
        gallery += [
            (to_display(r.residual, (-half, half))[0], f"{r.label} · method noise y − f(y)")
            for r in res.runs
            if r.residual is not None
        ]
    notes = [*notes, *([native.note] if native else []), *res.notes]
    if clipped and not res.pending:
        notes.append(
            "Display only: values outside [0, 1] are shown clipped in "
            + ", ".join(clipped)
            + ("; the scores use the unclipped values." if not s.clip else ".")
        )
    if not res.pending and not res.reference:
        sigmas = [f"noisy input {res.noisy_sigma:.1f}"] + [
            f"{r.label} {r.estimated_sigma:.1f}" for r in res.runs if r.estimated_sigma is not None
        ]
        notes.append(
            "No noise was added and there is no clean image: the upload is the noisy input, so "
            "no PSNR or SSIM is shown (they would only score how much each model changed it). "
            "Estimated noise σ̂ (wavelet MAD, 0–255 scale): " + ", ".join(sigmas) + ". The method "
            "noise y − f(y) of each model is under 'All outputs': noise without structure is "
            "good, edges in it are lost detail."
        )
    elif not res.pending:
        notes.append(
            f"PSNR and SSIM are measured against the target a·x + b with data range a = {s.a:g}: "
            "with the shift applied to the noisy image, an equivariant model gets the same PSNR "
            "at every a, b (SSIM depends on b through its luminance term)."
        )
    h, w, c = res.noisy.shape
    summary = {
        "settings": s.to_dict(),
        "image": {"width": w, "height": h, "channels": c},
        "device": res.device,
        "psnr_data_range": s.a,
        "noise": {"type": s.noise, "equivalent_sigma": json_number(res.equivalent_sigma)},
        "reference": res.reference,
        "noisy": {
            "psnr": json_number(res.noisy_psnr),
            "ssim": json_number(res.noisy_ssim),
            "estimated_sigma": json_number(res.noisy_sigma, 3),
        },
        "models": {
            r.key: {
                "label": r.label,
                "backbone": r.backbone,
                "variant": r.variant,
                "available": r.output is not None,
                "psnr": json_number(r.psnr),
                "ssim": json_number(r.ssim),
                "seconds": json_number(r.seconds),
                "estimated_sigma": json_number(r.estimated_sigma, 3),
                "message": r.message,
            }
            for r in res.runs
        },
        "pending": [catalog.key(b, v, s.sigma_train) for b, v in res.pending],
        "notes": notes,
    }
    return shown["noisy input"][0], shown["target"][0], gallery, summary


def sci(value: float | None, digits: int = 1) -> str:
    """A small number for the page in scientific notation (``"3.2e-03"``), ``"–"`` for None."""
    return "–" if value is None else f"{value:.{digits}e}"


def figure_pixels(image: Any) -> np.ndarray:
    """A picture on the page (a path, an array, or a gallery's ``(image, caption)``) as an
    array, for the slide figures."""
    image = image[0] if isinstance(image, tuple | list) else image
    return np.asarray(Image.open(image)) if isinstance(image, str) else np.asarray(image)


def db(value: Any) -> str:
    """A PSNR for the page: ``"27.31 dB"``, ``"∞ dB"``, or ``"–"`` for None."""
    if value is None:
        return "–"
    value = float(value)
    return "∞ dB" if math.isinf(value) else f"{value:.2f} dB"


@dataclass
class Panel:
    """One backbone's group on the page: header, plain (or only) output, WNE output,
    slider pair; images are whatever the gallery holds (paths or arrays)."""

    header: str
    visible: bool
    left: Any = None
    left_label: str = "–"
    right: Any = None
    right_label: str = "–"
    right_visible: bool = True
    pair: tuple[Any, Any] | None = None
    pair_label: str = "–"


def _panel(
    fam: catalog.Family, got: list[Any], waiting: list[str], summary: dict[str, Any]
) -> Panel:
    """One backbone's panel from its models' summaries (``got``: None when unavailable)."""
    sizes = {catalog.get(m["key"]).size for m in got if m and m["key"] in set(catalog.keys())}
    header = [f"### {fam.label} · trained at σ = {summary['settings']['sigma_train']}"]
    header[0] += "".join(f" · {catalog.SIZE_LABELS[z]}" for z in catalog.SIZES if z in sizes)
    if len(got) == 2 and all(got) and all(isinstance(m["psnr"], float) for m in got):
        p0, p1 = got[0]["psnr"], got[1]["psnr"]
        header.append(f"plain **{db(p0)}** → WNE **{db(p1)}** (Δ {p1 - p0:+.2f} dB)")
    models = summary["models"].values()
    header += [f"⚠ {m['message']}" for m in models if m["backbone"] == fam.id and m["message"]]
    name = catalog.VARIANT_LABELS
    header += [f"*computing {' and '.join(name[v] for v in waiting)}…*"] if waiting else []
    labels = [
        f"{name[v]} · computing…"
        if v in waiting
        else f"{name[v]} · unavailable"
        if m is None
        else f"{'output' if v == 'ne' else name[v]} · {_score(m)}"
        for v, m in zip(fam.variants, got, strict=True)
    ]
    p = Panel("\n\n".join(header), True, got[0] and got[0]["image"], labels[0])
    if len(got) == 2:
        p.right, p.right_label = got[1] and got[1]["image"], labels[1]
    p.right_visible, outs = len(got) == 2, [m for m in got if m]
    if waiting:
        p.pair_label = "computing…"
    elif len(outs) == 2:
        p.pair, p.pair_label = (outs[0]["image"], outs[1]["image"]), "plain ↔ WNE (drag to compare)"
    elif outs:
        p.pair = (summary["noisy_image"], outs[0]["image"])
        p.pair_label = f"noisy ↔ {name[outs[0]['variant']]} (drag to compare)"
    return p


def readout(psnr_db: float | None, ssim_value: float | None, sigma: float | None) -> str:
    """A model's scores as shown under its output: PSNR and SSIM, or without a reference
    its estimated noise level σ̂."""
    if ssim_value is None and sigma is not None:
        return f"σ̂ {sigma:.1f}"
    return f"PSNR {db(psnr_db)} · SSIM {ssim_value:.3f}"


def _score(m: dict[str, Any]) -> str:
    """A model's readout: its PSNR, or without a reference its estimated σ̂."""
    sigma = m.get("estimated_sigma")
    return db(m["psnr"]) if m["psnr"] is not None or sigma is None else f"σ̂ {sigma:.1f}"


def page(noisy: Any, gallery: list[Any], summary: dict[str, Any]) -> dict[str, Any]:
    """The Compare tab shown from ``/denoise``'s values: the input's labels, one
    :class:`Panel` per catalogued backbone, the scores table and the notes."""
    s, pending = summary["settings"], set(summary["pending"])
    images = iter(gallery)
    models = [
        m | {"key": k} | ({"image": next(images)[0]} if m["available"] else {})
        for k, m in summary["models"].items()
    ]
    shown = {(m["backbone"], m["variant"]): m for m in models if m["available"]}
    panels = []
    for fam in catalog.families(zoo_only=True):
        keys = [catalog.key(fam.id, v, s["sigma_train"]) for v in fam.variants]
        waiting = [v for v, k in zip(fam.variants, keys, strict=True) if k in pending]
        got = [shown.get((fam.id, v)) for v in fam.variants]
        on = fam.id in s["backbones"]
        hidden = Panel(f"### {fam.label}", False)
        panels.append(_panel(fam, got, waiting, summary | {"noisy_image": noisy}) if on else hidden)
    noisy_scores = summary["noisy"]
    table = [["noisy input", _cell(noisy_scores["psnr"], 2), _cell(noisy_scores["ssim"], 4), "–"]]
    for m in models:
        ms = None if m["seconds"] is None else 1000 * m["seconds"]
        table.append(
            [m["label"], _cell(m["psnr"], 2), _cell(m["ssim"], 4), _cell(ms, 1)]
            if m["available"]
            else [f"{m['label']} (unavailable)", "–", "–", "–"]
        )
    table += [
        [f"{catalog.label(b, v)} (computing…)", "–", "–", "–"]
        for b in s["backbones"]
        for v in catalog.FAMILIES[b].variants
        if catalog.key(b, v, s["sigma_train"]) in pending
    ]
    eq = summary["noise"]["equivalent_sigma"]
    lossy = s["noise"] in ("lowlight", "jpeg") and isinstance(eq, float)
    eq_text = f" · equivalent σ ≈ {eq:.1f}" if lossy else ""
    referenced = summary.get("reference", True)
    return {
        "noisy_label": f"noisy input · PSNR {db(noisy_scores['psnr'])}{eq_text}"
        if referenced
        else f"noisy input (no reference) · σ̂ {noisy_scores['estimated_sigma']:.1f}",
        "target_label": f"target a·x + b (a = {s['a']:g}, b = {s['b']:g})"
        if referenced
        else "no clean reference: the shifted upload",
        "panels": panels,
        "table": table,
        "notes": "\n".join(f"- {n}" for n in summary["notes"]),
    }


def _cell(value: Any, digits: int) -> str:
    if value is None:
        return "–"
    if isinstance(value, str):
        return "∞" if value == "inf" else value
    return f"{round(value, digits):g}"


def figure_tiles(
    noisy: Any, target: Any, gallery: Any, summary: Any
) -> tuple[list[Tile], str, str]:
    """The slide figure's tiles, title and subtitle from the comparison on the page (without a
    reference: the upload's and each output's σ̂, no PSNR)."""
    if noisy is None or not summary or summary.get("pending"):
        raise DemoInputError("run a comparison first: the figure shows the comparison on the page")
    pixels = figure_pixels
    s, info, n = summary["settings"], summary["image"], summary["noisy"]
    shift = f"a = {s['a']:g}, b = {s['b']:g}"
    if summary.get("reference", True):
        tiles = [
            Tile(pixels(noisy), "noisy input", f"PSNR {db(n['psnr'])}"),
            Tile(pixels(target), "target a·x + b", shift),
        ]
        scored = "PSNR/SSIM vs a·x + b, data range a"
    else:
        tiles = [
            Tile(pixels(noisy), "noisy input (no reference)", f"σ̂ {n['estimated_sigma']:.1f}"),
            Tile(pixels(target), "the shifted upload", shift),
        ]
        scored = "no clean reference: σ̂, the estimated noise level (0–255)"
    shown = [m for m in summary["models"].values() if m["available"]]  # the gallery's order
    for (img, _), m in zip((gallery or [])[: len(shown)], shown, strict=True):
        score = readout(m["psnr"], m["ssim"], m.get("estimated_sigma"))
        tiles.append(Tile(pixels(img), m["label"], score))
    subtitle = (
        f"σ = {s['sigma']:g} ({s['noise']}), seed {s['seed']}, σ_train = {s['sigma_train']}, "
        f"{s['order']}, {info['width']}×{info['height']} px; {scored}"
    )
    return tiles, "Plain vs WNE denoisers", subtitle


def slide_figure(noisy: Any, target: Any, gallery: Any, summary: Any, folder: Path) -> list[str]:
    """The comparison shown as a slide figure (PNG and PDF): noisy input, target and every
    output with its scores from the summary, under a line with the settings
    (:func:`figure_tiles`)."""
    fig = render_figure(*figure_tiles(noisy, target, gallery, summary))
    out = folder / hashlib.sha256(fig.png).hexdigest()[:16]
    return [str(p) for p in fig.save(out, stem="wne-figure")]
