"""Command line of the denoiser-as-prior sampler (``wne sample``).

``wne sample --models KEY ... --data DIR --out OUT`` runs Kadkhodaie & Simoncelli's sampler
(:mod:`wne.sampler`: tasks, measurements, the paper's parameters) with each checkpoint as the
prior on every image, with the WNE paper's protocols (App. N): ``denoise`` (Table 11,
residual-stopped), ``inpaint`` (Table 12), and ``center_hole``, ``superres``. Levels are on
the 0–255 scale; image ``idx`` (its place in the sorted folder) seeds its start and walk with
``seed + idx``, its mask with ``seed + 1,000,003·(idx + 1)``. Scores: PSNR and SSIM of results
clamped to [0, 1]; a run whose state stops being finite is ``diverged`` (no scores). Files in
``OUT/<task>/``: ``runs.csv``, ``trajectory.csv``, ``summary.json`` (with the paper's table),
``sampler.png``, ``trajectory.gif``; ``--task residual_scale``: :func:`residual_scale`'s.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wne import __version__, degrade, sampler
from wne.device import pick_device
from wne.lab.evaluate import common_parser, guarded, load_run, positive, start
from wne.lab.paper import SAMPLER
from wne.lab.protocol import EvalModel
from wne.lab.report import write_csv, write_json
from wne.metrics import psnr, ssim

log = logging.getLogger(__name__)

TASKS: tuple[str, ...] = tuple(sampler.TASKS)
MASK_SEED_STRIDE = 1_000_003
GIF_MAX_BYTES = 2_000_000
LEVELS = dict(denoise="sigma0", inpaint="keep", center_hole="hole_fraction", superres="factor")
"""Task → its setting that is :func:`wne.sampler.problem`'s level."""
RUN_COLUMNS = (
    "image", "index", "model", "task", "seed", "input_psnr", "one_pass_psnr", "one_pass_ssim",
    "best_psnr", "best_step", "final_psnr", "final_ssim", "final_minus_best",
    "final_minus_one_pass", "steps", "stop", "last_sigma_hat", "seconds",
)  # fmt: skip
TRAJECTORY_COLUMNS = ("image", "model", "step", "sigma_hat", "error_rms", "psnr")
RESIDUAL_SIGMAS: tuple[float, ...] = (1.0, 2.55, 5.0, 10.0, 25.0, 50.0, 100.0, 255.0)
RESIDUAL_COLUMNS = ("image", "model", "sigma", "sigma_hat", "gain", "removed")
_WALK = ("h0", "beta", "sigma0", "sigma_stop", "max_steps")


def settings_for(
    task: str,
    *,
    h0: float | None = None,
    beta: float | None = None,
    sigma0_8bit: float | None = None,
    sigma_stop_8bit: float | None = None,
    max_steps: int = 1000,
    **level: float | None,
) -> dict[str, Any]:
    """A task's settings (ValueError for an unknown task): the paper's
    (:func:`wne.sampler.paper_parameters`), with each value given instead (``sigma0_8bit``,
    ``sigma_stop_8bit`` on the 0–255 scale; the task's level by its :data:`LEVELS` name,
    default :data:`wne.sampler.TASKS`'s)."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose from {', '.join(TASKS)}")
    paper = sampler.paper_parameters(task)
    s: dict[str, Any] = {"task": task, "h0": paper["h0"] if h0 is None else float(h0)}
    s["beta"] = paper["beta"] if beta is None else float(beta)
    s["sigma0"] = paper["sigma0"] if sigma0_8bit is None else float(sigma0_8bit) / 255
    s["sigma0_8bit"] = s["sigma0"] * 255
    s["sigma_stop"] = paper["sigma_stop"] if sigma_stop_8bit is None else sigma_stop_8bit / 255
    s |= {"sigma_stop_8bit": s["sigma_stop"] * 255, "max_steps": int(max_steps)}
    if task != "denoise":
        value = level.get(LEVELS[task])
        s[LEVELS[task]] = sampler.TASKS[task].default if value is None else value
    return s


def problem_for(
    settings: dict[str, Any], x: torch.Tensor, index: int, seed: int
) -> sampler.Problem:
    """Image ``index``'s :func:`wne.sampler.problem` (start and walk seeded ``seed + index``,
    inpainting mask ``seed + 1,000,003·(index + 1)``)."""
    task = settings["task"]
    mask_seed = seed + MASK_SEED_STRIDE * (index + 1)
    return sampler.problem(task, x, settings[LEVELS[task]], seed=seed + index, mask_seed=mask_seed)


@dataclass
class RunRecord:
    """One sampler run (an image, a model): its :data:`RUN_COLUMNS` ``row`` (``None`` where
    undefined, e.g. a diverged run's scores), σ̂_t per step, the PSNR of the clamped state
    ``x_c + (I − P)·y_t`` and the RMS error of the unclamped one for ``t = 0 … T`` ([0, 1]
    scale), and the ``(step, result)`` frames asked for."""

    row: dict[str, Any]
    sigmas: list[float]
    psnrs: list[float]
    errors: list[float] = field(default_factory=list)
    frames: list[tuple[int, torch.Tensor]] = field(default_factory=list)


def _score(img: torch.Tensor, clean: torch.Tensor, metric: Callable = psnr) -> float:
    return float(metric(img.float().clamp(0, 1), clean, 1.0)[0])


def _rms(img: torch.Tensor, clean: torch.Tensor) -> float:
    return degrade.equivalent_sigma(img, clean) / 255.0


@torch.no_grad()
def run_one(
    model: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    index: int,
    settings: dict[str, Any],
    *,
    seed: int = 0,
    frame_every: int = 0,
    labels: tuple[str, str] = ("", ""),
) -> RunRecord:
    """Runs the sampler with ``model`` (``[1, C, H, W] → [1, C, H, W]``) as the prior on the
    clean image ``x`` of folder index ``index`` (:func:`problem_for` of ``settings``), keeping
    the result every ``frame_every`` steps (0: none); ``labels``: the row's image and model.
    A diverged run has ``stop = "diverged"`` and no best or final scores."""
    prob = problem_for(settings, x, index, seed)
    meas, first, psnrs, errors = prob.measurement, [], [], []

    def prior(y: torch.Tensor) -> torch.Tensor:  # records D(y0) and every state it sees
        out = model(y)
        if not first:
            first.append(meas.complete(out.to(y)))
        state = meas.complete(y)
        psnrs.append(_score(state, x))
        errors.append(_rms(state, x))
        return out

    begin = time.perf_counter()
    res = prob.sample(prior, frame_every=frame_every, **{k: settings[k] for k in _WALK})
    seconds = time.perf_counter() - begin
    if res.stop == "max_steps":  # the last state was not given to the denoiser
        psnrs.append(_score(res.image, x))
        errors.append(_rms(res.image, x))
    one = first[0] if first and bool(torch.isfinite(first[0]).all()) else None
    row: dict[str, Any] = dict.fromkeys(RUN_COLUMNS)
    row |= {"image": labels[0], "index": index, "model": labels[1], "task": settings["task"]}
    row |= {"seed": seed + index, "input_psnr": _score(prob.shown, x)}
    if one is not None:
        row |= {"one_pass_psnr": _score(one, x), "one_pass_ssim": _score(one, x, ssim)}
    row |= {"steps": res.steps, "stop": res.stop, "seconds": seconds}
    row["last_sigma_hat"] = res.sigmas[-1] if res.sigmas else None
    finite = any(math.isfinite(p) for p in psnrs)
    if res.stop != "diverged" and finite and bool(torch.isfinite(res.image).all()):
        best = int(np.argmax(psnrs))
        final = _score(res.image, x)
        row |= {"best_psnr": psnrs[best], "best_step": best, "final_psnr": final}
        row |= {"final_ssim": _score(res.image, x, ssim), "final_minus_best": final - psnrs[best]}
        if one is not None:
            row["final_minus_one_pass"] = final - row["one_pass_psnr"]
    return RunRecord(row, list(res.sigmas), psnrs, errors, list(res.frames))


@torch.no_grad()
def residual_scale(
    model: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    sigmas: Sequence[float],
    seed: int = 0,
) -> list[dict[str, float]]:
    """How much noise a denoiser's residual reports, against the noise really there.

    For each σ (0–255): ``n = (σ/255)·z`` (``z`` seeded ``seed``, shared by all σ and models),
    ``R = D(x + n) − (x + n)``; ``sigma_hat = ‖R‖/√d`` (the sampler's σ̂, [0, 1] scale),
    ``gain = ‖R‖/‖n‖`` and ``removed = ⟨R, −n⟩/‖n‖²`` (both 1 for an oracle).
    """
    z = torch.randn(tuple(x.shape), generator=torch.Generator().manual_seed(seed)).to(x)
    out = []
    for s in sigmas:
        n = (s / 255.0) * z
        y = x + n
        r, n = (model(y).to(y) - y).double(), n.double()
        gain, removed = float(r.norm() / n.norm()), float(-(r * n).sum() / n.square().sum())
        sigma_hat = float(r.norm()) / math.sqrt(x.numel())
        out.append({"sigma": float(s), "sigma_hat": sigma_hat, "gain": gain, "removed": removed})
    return out


def predicted_steps(
    alpha: float, sigma0: float = 1.03, max_steps: int = 1000, **params: float
) -> int:
    """Steps before σ̂ ≤ ``sigma_stop`` (``max_steps`` if never) of a scalar model of the
    sampler whose residual removes a fraction ``alpha`` of the effective noise σ_t and reports
    ``σ̂_t = alpha·σ_t`` (oracle: 1): a step leaves ``(1 − h_t·alpha)·σ_t`` and injects
    ``((1 − β·h_t)² − (1 − h_t)²)·σ̂_t²``, so any ``alpha < 1`` cools faster. ``sigma0``: the
    start's σ (1.03 ≈ inpainting's); ``params``: ``h0``, ``beta``, ``sigma_stop`` (default:
    the paper's inpainting ones)."""
    p = {**sampler.paper_parameters("inpaint"), **params}  # h0, beta, sigma_stop
    sig = sigma0
    for t in range(1, max_steps + 1):
        if alpha * sig <= p["sigma_stop"]:
            return t - 1
        h = sampler.step_size(t, p["h0"])
        sig *= math.sqrt((1 - h * alpha) ** 2 + alpha**2 * sampler.injected_variance(h, p["beta"]))
    return max_steps


_NOT_MEANS = ("image", "index", "model", "task", "seed", "stop", "last_sigma_hat")


def summarize(rows: Sequence[dict[str, Any]], models: Sequence[EvalModel]) -> dict[str, Any]:
    """Per model: counts of stops and diverged runs, and ``{"mean", "std", "n"}`` (population,
    over images; ``None`` when no run has it) of each numeric column, diverged runs left out
    (but for ``steps``)."""
    out: dict[str, Any] = {}
    for m in models:
        mine = [r for r in rows if r["model"] == m.key]
        stops = [r["stop"] for r in mine]
        entry: dict[str, Any] = {"arch": m.arch, "wrapper": m.wrapper, "sigma_train": m.sigma_train}
        entry |= {"n": len(mine), "n_diverged": stops.count("diverged")}
        entry["diverged_images"] = [r["image"] for r in mine if r["stop"] == "diverged"]
        entry["stops"] = {s: stops.count(s) for s in sorted(set(stops))}
        for k in (c for c in RUN_COLUMNS if c not in _NOT_MEANS):
            vals = [float(r[k]) for r in mine if r.get(k) is not None and math.isfinite(r[k])]
            mean, std = (float(np.mean(vals)), float(np.std(vals))) if vals else (0.0, 0.0)
            entry[k] = {"mean": mean, "std": std, "n": len(vals)} if vals else None
        out[m.key] = entry
    return out


def _fmt(v: Any) -> Any:
    if isinstance(v, float):
        return f"{v:.8g}" if math.isfinite(v) else ""
    return "" if v is None else v


def write_gif(
    path: Path,
    frames: Sequence[tuple[int, torch.Tensor]],
    *,
    title: str = "",
    max_frames: int = 40,
    max_bytes: int = GIF_MAX_BYTES,
) -> Path | None:
    """Writes the frames (clamped to [0, 1]) as an animated GIF with Pillow: thinned evenly
    (first and last kept) to ``max_frames``, halved until the file is at most ``max_bytes``,
    the last frame held 2 s. Returns ``None`` when there is no frame."""
    from PIL import Image, ImageDraw

    picks = list(frames)
    while picks:
        if len(picks) > max_frames:
            idx = np.unique(np.linspace(0, len(picks) - 1, max_frames).round().astype(int))
            picks = [picks[i] for i in idx]
        images = []
        for step, img in picks:
            a = img[0].detach().float().cpu().nan_to_num(0.0).clamp(0, 1)
            arr = (a.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            pil = Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr).convert("RGB")
            draw = ImageDraw.Draw(pil)
            text = f"{title} t={step}".strip()
            draw.rectangle((0, 0, 7 * len(text) + 6, 14), fill=(0, 0, 0))
            draw.text((3, 1), text, fill=(255, 255, 0))
            images.append(pil.quantize(colors=64))
        path.parent.mkdir(parents=True, exist_ok=True)
        durations = [80] * (len(images) - 1) + [2000]
        images[0].save(path, save_all=True, append_images=images[1:], duration=durations, loop=0)
        if path.stat().st_size <= max_bytes or max_frames <= 2:
            return path
        max_frames = max(2, max_frames // 2)
    return None


def _parser() -> argparse.ArgumentParser:
    p = common_parser(
        "wne sample",
        "Kadkhodaie & Simoncelli's sampler with denoiser checkpoints as priors (the WNE "
        "paper's App. N protocols).",
        device="cpu",
    )
    tasks = (*TASKS, "residual_scale")
    help_task = f"{', '.join(tasks)} (denoise inpaint; residual_scale: ‖D(y) − y‖ vs the noise)"
    p.add_argument("--task", nargs="+", choices=tasks, metavar="TASK", help=help_task)
    sigmas = list(RESIDUAL_SIGMAS)
    p.add_argument("--residual-sigmas", type=float, nargs="+", default=sigmas, metavar="S")
    p.add_argument("--images", nargs="+", metavar="NAME", help="only these (folder index kept)")
    p.add_argument("--h0", type=float, help="initial step size (0.01)")
    p.add_argument("--beta", type=float, help="noise injection β (denoise 1, others 0.01)")
    p.add_argument("--sigma0", type=float, metavar="S", help="initial noise, 0–255 (10; 255)")
    p.add_argument("--sigma-stop", type=float, metavar="S", help="stop at σ̂ ≤ S/255 (1; 2.55)")
    p.add_argument("--max-steps", type=positive, default=1000, help="most steps (1000)")
    p.add_argument("--keep", type=float, help="inpaint: observed fraction (0.1)")
    p.add_argument("--hole-fraction", type=float, help="center_hole: hidden area (0.25)")
    p.add_argument("--factor", type=int, help="superres: block side (4)")
    p.add_argument("--show", default="07.png", metavar="IMAGE", help="trajectory image (07.png)")
    p.add_argument("--gif-model", metavar="KEY", help="GIF model (the first WNE model)")
    p.add_argument("--frame-every", type=positive, default=2, help="GIF: every N steps (2)")
    return p


def _run_task(args: argparse.Namespace, s: dict[str, Any], models: list, images: list) -> None:
    from tqdm.auto import tqdm

    from wne.lab.plots import sampler_figure

    names = [n for _, n, _ in images]
    show = args.show if args.show in names else names[0]
    gif_key = args.gif_model or next((m.key for m in models if m.wrapper == "wne"), models[0].key)
    out = args.out / s["task"]
    out.mkdir(parents=True, exist_ok=True)
    rows, traj, shown, gif = [], [], {}, []
    with tqdm(total=len(images) * len(models), desc=s["task"], disable=args.quiet) as bar:
        for idx, name, x in images:
            for m in models:
                bar.set_postfix_str(f"{name} {m.key}", refresh=False)
                every = args.frame_every if (name, m.key) == (show, gif_key) else 0
                rec = run_one(
                    m.model, x, idx, s, seed=args.seed, frame_every=every, labels=(name, m.key)
                )
                rows.append(rec.row)
                sig = [*rec.sigmas, *[None] * (len(rec.psnrs) - len(rec.sigmas))]
                for t, v in enumerate(zip(sig, rec.errors, rec.psnrs, strict=True)):
                    traj.append(dict(zip(TRAJECTORY_COLUMNS, (name, m.key, t, *v), strict=True)))
                shown |= {m.key: rec} if name == show else {}
                gif = rec.frames if every else gif
                log.info("%s %s: %s after %d steps", name, m.key, rec.row["stop"], rec.row["steps"])
                bar.update(1)
    write_csv(out / "runs.csv", RUN_COLUMNS, rows, _fmt)
    write_csv(out / "trajectory.csv", TRAJECTORY_COLUMNS, traj, _fmt)
    per_model = summarize(rows, models)
    sampler_figure(out / "sampler.png", models, per_model, shown, s["task"], s["sigma_stop"], show)
    gif_path = write_gif(out / "trajectory.gif", gif, title=f"{gif_key} {show}")
    run = {"data": str(args.data), "images": names, "image_indices": [i for i, _, _ in images]}
    run |= {"n_images": len(names), "seed": args.seed, "image_seed": "seed + idx"}
    run["mask_seed"] = "seed + 1000003·(idx + 1)" if s["task"] == "inpaint" else None
    run |= {"settings": s, "device": str(args.device)}
    run["metrics"] = (
        "PSNR and SSIM (wne.metrics: 11×11 Gaussian window σ 1.5) of results clamped to "
        "[0, 1], data range 1"
    )
    run["trajectory_image"] = show
    run["gif"] = {"model": gif_key, "image": show, "file": gif_path.name} if gif_path else None
    run |= {"wne_version": __version__, "torch_version": torch.__version__}
    summary = {"run": run, "models": per_model, "paper": SAMPLER.get(s["task"])}
    write_json(out / "summary.json", summary)

    def v(e: dict[str, Any], k: str, fmt: str = ".2f") -> str:
        return "-" if e.get(k) is None else format(e[k]["mean"], fmt)

    lines = [
        f"\n{s['task']}: results in {out}",
        f"{'model':<20} {'one-pass':>8} {'best':>7} {'final':>7} {'SSIM':>6} {'fin-best':>8} "
        f"{'steps':>7}  stops",
    ]
    for key, e in per_model.items():
        stops = ", ".join(f"{k} {n}" for k, n in e["stops"].items())
        lines.append(
            f"{key:<20} {v(e, 'one_pass_psnr'):>8} {v(e, 'best_psnr'):>7} "
            f"{v(e, 'final_psnr'):>7} {v(e, 'final_ssim', '.3f'):>6} "
            f"{v(e, 'final_minus_best'):>8} {v(e, 'steps', '.1f'):>7}  {stops}"
        )
    print("\n".join(lines))


def _run_residual_scale(args: argparse.Namespace, models: list, images: list) -> None:
    out = args.out / "residual_scale"
    out.mkdir(parents=True, exist_ok=True)
    sigmas = [float(s) for s in args.residual_sigmas]
    rows = [
        {"image": name, "model": m.key, **r}
        for idx, name, x in images
        for m in models
        for r in residual_scale(m.model, x, sigmas, args.seed + idx)
    ]
    write_csv(out / "residual_scale.csv", RESIDUAL_COLUMNS, rows, _fmt)
    means: dict[str, Any] = {}
    lines = [f"\nresidual scale (mean over {len(images)} images): gain / removed, in {out}"]
    lines.append(f"{'σ (0–255)':<20} " + " ".join(f"{s:>11g}" for s in args.residual_sigmas))
    for m in models:
        cells = [[r for r in rows if (r["model"], r["sigma"]) == (m.key, s)] for s in sigmas]
        means[m.key] = [
            {"sigma": s, **{k: float(np.mean([r[k] for r in c])) for k in RESIDUAL_COLUMNS[3:]}}
            for s, c in zip(sigmas, cells, strict=True)
        ]
        cols = " ".join(f"{e['gain']:>5.2f}/{e['removed']:<5.2f}" for e in means[m.key])
        lines.append(f"{m.key:<20} {cols}")
    run = {"data": str(args.data), "images": [n for _, n, _ in images], "seed": args.seed}
    run |= {"noise_seed": "seed + idx"}
    run["definition"] = (
        "y = x + (σ/255)·z; R = D(y) − y; sigma_hat = ‖R‖/√d; gain = ‖R‖/‖n‖; "
        "removed = ⟨R, −n⟩/‖n‖², n = (σ/255)·z"
    )
    write_json(out / "summary.json", {"run": run, "models": means})
    print("\n".join(lines))


def _run(args: argparse.Namespace, tasks: list[dict[str, Any]]) -> None:
    device = pick_device(args.device)
    args.device = device
    models, loaded = load_run(args.models, args, device, sigma_train=0.0)
    picked = [(i, n, x.to(device)) for i, (n, x) in enumerate(loaded) if n in (args.images or [n])]
    missing = sorted(set(args.images or ()) - {n for _, n, _ in picked})
    if missing:
        raise ValueError(f"--images: not in {args.data}: {', '.join(missing)}")
    if args.gif_model is not None and args.gif_model not in {m.key for m in models}:
        raise ValueError(f"--gif-model {args.gif_model!r} is not one of --models")
    for s, (idx, name, x) in itertools.product(tasks, picked):  # checked before any run
        try:
            next(problem_for(s, x, idx, args.seed).walk(lambda y: y, **{k: s[k] for k in _WALK}))
        except ValueError as exc:
            raise ValueError(f"{s['task']} on {name}: {exc}") from None
    if "residual_scale" in args.task:
        _run_residual_scale(args, models, picked)
    for s in tasks:
        _run_task(args, s, models, picked)


def main(argv: Sequence[str] | None = None) -> int:
    """``wne sample``: exit status 0 on success, 2 on bad input (``argv``: default
    ``sys.argv[1:]``)."""
    parser = _parser()
    args = start(parser, argv)
    if not args.models:
        parser.error("give --models")
    if any(not (math.isfinite(v) and v > 0) for v in args.residual_sigmas):
        parser.error("--residual-sigmas must be finite and > 0")
    given = {k: getattr(args, k) for k in ("h0", "beta", "max_steps", *list(LEVELS.values())[1:])}
    given |= {"sigma0_8bit": args.sigma0, "sigma_stop_8bit": args.sigma_stop}
    args.task = args.task or ["denoise", "inpaint"]
    tasks = [settings_for(t, **given) for t in dict.fromkeys(args.task) if t in TASKS]
    return guarded(lambda: _run(args, tasks))


if __name__ == "__main__":
    sys.exit(main())
