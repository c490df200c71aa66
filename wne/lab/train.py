"""Train a blind Gaussian denoiser, plain or WNE-wrapped, with one fair recipe.

``wne train --arch dncnn --wrapper wne --sigma 25 --data DIR --out checkpoints/KEY`` (``wne zoo
--print KEY``: every catalogued checkpoint's command). Plain and WNE runs with the same arguments
see the same patches, augmentations and noise (:mod:`wne.lab.data`), loss (MSE on the raw output),
optimizer (Adam), schedule (linear warm-up, cosine decay) and steps. CUDA runs use bf16 autocast;
``torchrun --nproc_per_node N -m wne.lab.train ...`` runs data-parallel (gloo on CPU, nccl on
GPU; every rank's final weight digest goes into the recipe).

The rivals' options (:func:`wne.catalog.rivals`): ``--wrapper input`` (input-only
normalization, trained on the raw clean target like every run), ``--sigma-range LO HI``
instead of ``--sigma`` (σ ~ U[LO, HI] per patch, validated at the range's middle) and
``--soft-ne`` (each pair (y, x) becomes (α·y + μ, α·x + μ) per patch after the noise,
α ~ U(``--soft-ne-alpha``), μ ~ U(``--soft-ne-mu``); validated on plain noisy images). Both
draws come from the step's generator after the noise, so they are as deterministic and
resumable as the rest; they enter the recipe only when used.

Interruptions: the state folder (``--work``, default ``runs/<key>``) holds the weights, the
optimizer, torch's random state, the loss average and the step, written atomically every
``--save-every`` steps and whenever the run stops early: before ``--budget-s`` wall seconds are
up (the longest stretch between two checks and the longest save kept in reserve), after
``--stop-after`` steps, or at the next check after SIGTERM or SIGUSR1. Rerunning the command
resumes and ends with the weights of an uninterrupted run: bit for bit on the CPU (CUDA picks the
fastest kernels, not bitwise reproducible); a state of another recipe is refused. Exit status 75
(EX_TEMPFAIL): "stopped early, run the command again".
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm import tqdm

from wne import catalog, checkpoints, models
from wne.degrade import add_gaussian_noise
from wne.device import pick_device
from wne.lab.data import DevicePatchSampler, PatchSampler, load_folder, step_generator
from wne.metrics import psnr
from wne.wrapper import InputNormalized, NormEquivariant

__all__ = [
    "EX_TEMPFAIL", "main", "parse_args", "recipe_fingerprint", "stop_on_signals", "train",
    "training_pair", "validation_sigma", "weights_digest",
]  # fmt: skip

log = logging.getLogger(__name__)

STATE = "train_state"
"""Stem of the state files in ``--work``: ``.safetensors`` (tensors) and ``.json`` (the rest)."""
EX_TEMPFAIL = 75
"""Exit status of a run that stopped early with its state saved."""
_now = time.perf_counter  # the budget's clock (tests replace it)

# The arguments that fix a run's trajectory: resuming under other values is refused.
RECIPE_FIELDS = (
    "arch", "arch_kwargs", "wrapper", "mode", "sigma", "steps", "batch", "patch",
    "lr", "lr_min_ratio", "warmup", "seed", "val_images", "sampler", "init",
)  # fmt: skip
# Trajectory-defining too, but in the fingerprint only when used (the rivals' options), so
# every run without them keeps the fingerprint it had before they existed.
OPTIONAL_RECIPE_FIELDS = ("sigma_range", "soft_ne")
# Arguments that change how a run is carried out, not what it computes.
_NOT_RECIPE = ("out", "work", "no_progress", "device", "threads", "key", "budget_s", "stop_after")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The ``wne train`` command line (``argv``: default ``sys.argv[1:]``)."""
    p = argparse.ArgumentParser(prog="wne train", description=__doc__.split("\n")[0])
    a = p.add_argument
    a("--arch", required=True, choices=models.available())
    a("--arch-kwargs", default="{}", help="JSON dict of backbone arguments")
    a("--wrapper", choices=checkpoints.WRAPPERS, default="none", help="input: input-only (rival)")
    a("--mode", choices=("direct", "residual"), default="direct", help="WNE mode")
    a("--sigma", type=float, help="training noise σ (0–255 scale)")
    a("--sigma-range", type=float, nargs=2, metavar=("LO", "HI"), help="σ ~ U[LO, HI] per patch")
    a("--soft-ne", action="store_true", help="soft-NE augmentation (y, x) → (α·y + μ, α·x + μ)")
    alpha, mu = (list(catalog.SOFT_NE[k]) for k in ("alpha", "mu"))
    a("--soft-ne-alpha", type=float, nargs=2, metavar=("LO", "HI"), help=f"α's range {alpha}")
    a("--soft-ne-mu", type=float, nargs=2, metavar=("LO", "HI"), help=f"μ's range {mu}")
    a("--data", required=True, help="folder of training images")
    a("--out", required=True, help="checkpoint folder to write")
    a("--key", help="model key (default: the --out folder name)")
    a("--work", help="state folder (default: runs/<key>)")
    a("--steps", type=int, default=3000)
    a("--batch", type=int, default=16, help="patches per step per process")
    a("--patch", type=int, default=48)
    a("--lr", type=float, default=1e-3)
    a("--lr-min-ratio", type=float, default=0.01, help="final LR / peak LR")
    a("--warmup", type=float, default=0.02, help="warm-up fraction of the steps")
    a("--seed", type=int, default=0)
    a("--val-images", type=int, default=8, help="held out from the end of --data")
    a("--val-every", type=int, default=500)
    a("--save-every", type=int, default=250, help="state-saving cadence (steps)")
    a("--budget-s", type=float, default=0.0, help="stop, state saved, within this many seconds")
    a("--stop-after", type=int, default=0, help="stop, state saved, after this many steps")
    a("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    a("--device", default="auto", help="auto, cpu or cuda[:i]")
    a("--amp", action=argparse.BooleanOptionalAction, default=True, help="bf16 autocast on CUDA")
    a("--sampler", choices=("auto", "host", "device"), default="auto", help="auto: device on CUDA")
    a("--sync-every", type=int, default=0, help="loss read-back, budget check (0: CPU 1, CUDA 50)")
    a("--init", help="checkpoint folder whose weights start the run (same model, verified)")
    a("--channels-last", action="store_true", help="channels-last model and batches")
    a("--no-progress", action="store_true")
    args = p.parse_args(argv)
    for name in ("steps", "batch", "patch", "val_every", "save_every"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    try:
        kwargs = json.loads(args.arch_kwargs)
    except ValueError:
        kwargs = None
    if not isinstance(kwargs, dict):
        p.error(f"--arch-kwargs must be a JSON object, got {args.arch_kwargs!r}")
    if (args.sigma is None) == (args.sigma_range is None):
        p.error("give either --sigma or --sigma-range")
    for name in ("sigma_range", "soft_ne_alpha", "soft_ne_mu"):
        lo_hi = getattr(args, name)
        if lo_hi is not None and not (0 <= lo_hi[0] <= lo_hi[1] and math.isfinite(lo_hi[1])):
            p.error(f"--{name.replace('_', '-')} needs 0 <= LO <= HI, got {lo_hi}")
    if not args.soft_ne and (args.soft_ne_alpha or args.soft_ne_mu):
        p.error("--soft-ne-alpha and --soft-ne-mu need --soft-ne")
    if args.soft_ne:
        args.soft_ne_alpha = args.soft_ne_alpha or alpha
        args.soft_ne_mu = args.soft_ne_mu or mu
    return args


def lr_at(step: int, args: argparse.Namespace) -> float:
    """Learning rate for ``step``: linear warm-up, then cosine to ``lr·lr_min_ratio``."""
    warm = max(1, int(args.warmup * args.steps))
    if step < warm:
        return args.lr * (step + 1) / warm
    t = (step - warm) / max(1, args.steps - warm)
    lo = args.lr * args.lr_min_ratio
    return lo + 0.5 * (args.lr - lo) * (1 + math.cos(math.pi * min(1.0, t)))


def recipe_fingerprint(args: argparse.Namespace) -> dict[str, Any]:
    """The trajectory-defining arguments of a run, as stored in its state
    (:data:`OPTIONAL_RECIPE_FIELDS` only when used)."""
    out = {k: getattr(args, k, None) for k in RECIPE_FIELDS}
    out["arch_kwargs"] = json.loads(args.arch_kwargs)
    if getattr(args, "sigma_range", None) is not None:
        out["sigma_range"] = list(args.sigma_range)
    if getattr(args, "soft_ne", False):
        out["soft_ne"] = {"alpha": list(args.soft_ne_alpha), "mu": list(args.soft_ne_mu)}
    return out


def validation_sigma(args: argparse.Namespace) -> float:
    """The σ of the held-out validation: ``--sigma``, or the middle of ``--sigma-range``."""
    return args.sigma if args.sigma is not None else sum(args.sigma_range) / 2


def training_pair(
    clean: torch.Tensor, gen: torch.Generator, args: argparse.Namespace
) -> tuple[torch.Tensor, torch.Tensor]:
    """One step's ``(noisy, target)`` from its clean patches ``[B, C, H, W]`` and generator:
    Gaussian noise of σ ``--sigma`` (or σ ~ U[``--sigma-range``] per patch), never clipped;
    with ``--soft-ne`` both then become ``α·t + μ`` per patch (α ~ U(``--soft-ne-alpha``),
    μ ~ U(``--soft-ne-mu``)). The draws follow each other in that order on ``gen``."""
    noise = torch.randn(clean.shape, generator=gen, device=clean.device)
    b, shape = clean.shape[0], (clean.shape[0], 1, 1, 1)

    def uniform(lo_hi: list[float], scale: float = 1.0) -> torch.Tensor:
        u = torch.rand(b, generator=gen, device=clean.device).view(shape)
        return (lo_hi[0] + (lo_hi[1] - lo_hi[0]) * u) * scale

    if args.sigma_range is None:
        noisy = clean + noise * (args.sigma / 255.0)
    else:
        noisy = clean + noise * uniform(args.sigma_range, 1 / 255.0)
    if args.soft_ne:
        alpha, mu = uniform(args.soft_ne_alpha), uniform(args.soft_ne_mu)
        noisy, clean = alpha * noisy + mu, alpha * clean + mu
    return noisy, clean


def weights_digest(model: nn.Module) -> str:
    """sha256 of a model's parameters (names and float32 values), to compare replicas."""
    h = hashlib.sha256()
    for name, p in model.named_parameters():
        h.update(name.encode())
        h.update(p.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _save_state(work: Path, model: nn.Module, opt: torch.optim.Optimizer, meta: dict) -> None:
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    for name, p in model.named_parameters():
        for field, value in opt.state.get(p, {}).items():
            tensors[f"opt.{name}.{field}"] = torch.as_tensor(value).detach().cpu().contiguous()
    tensors["rng.cpu"] = torch.get_rng_state()
    if meta["device"].startswith("cuda"):
        tensors["rng.cuda"] = torch.cuda.get_rng_state(meta["device"])
    for suffix, write in (
        (".safetensors", lambda path: save_file(tensors, str(path))),
        (".json", lambda path: path.write_text(json.dumps(meta, indent=2), encoding="utf-8")),
    ):
        tmp = work / f"{STATE}{suffix}.tmp"
        write(tmp)
        os.replace(tmp, work / f"{STATE}{suffix}")


def _load_state(
    work: Path, model: nn.Module, opt: torch.optim.Optimizer, args: argparse.Namespace, device: str
) -> dict[str, Any] | None:
    """Restores a saved state into ``model``, ``opt`` and torch's random state."""
    if not (work / f"{STATE}.json").is_file():
        return None
    meta = json.loads((work / f"{STATE}.json").read_text(encoding="utf-8"))
    now = recipe_fingerprint(args)
    saved = meta.get("recipe", {})
    keys = [*now, *(k for k in saved if k not in now)]
    diff = [
        f"{k}: state {saved.get(k)!r} != now {now.get(k)!r}"
        for k in keys
        if saved.get(k) != now.get(k)
    ]
    if diff:
        raise SystemExit(
            f"refusing to resume {work} (step {meta.get('step')}) with a different recipe: "
            + "; ".join(diff)
            + ". Use another --work folder or delete the old state."
        )
    tensors = load_file(str(work / f"{STATE}.safetensors"))
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    for name, p in model.named_parameters():
        prefix = f"opt.{name}."
        state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        # moments in the parameter's own device and memory layout (channels-last runs)
        opt.state[p] = {
            k: torch.empty_like(p).copy_(v) if v.shape == p.shape else v for k, v in state.items()
        }
    if "rng.cpu" in tensors:
        torch.set_rng_state(tensors["rng.cpu"])
    if "rng.cuda" in tensors and meta.get("device") == device:
        torch.cuda.set_rng_state(tensors["rng.cuda"], device)
    return meta


def load_init(model: nn.Module, args: argparse.Namespace) -> dict[str, Any]:
    """Loads the ``--init`` checkpoint (sha256-verified, of the same arch, arguments and
    wrapper, else SystemExit) into ``model``; returns its key, sha256 and total steps."""
    try:
        start = checkpoints.load_dir(args.init)
    except checkpoints.CheckpointError as exc:
        raise SystemExit(f"--init {args.init}: {exc}") from None
    cfg: checkpoints.ModelConfig = start.wne_config  # type: ignore[assignment]
    want = (args.arch, json.loads(args.arch_kwargs), args.wrapper)
    have = (cfg.arch, dict(cfg.arch_kwargs), cfg.wrapper)
    if want != have or (args.wrapper == "wne" and cfg.wrapper_mode not in (None, args.mode)):
        raise SystemExit(
            f"--init {args.init} is {have[0]} {have[1]} wrapper {have[2]!r}; "
            f"this run trains {want[0]} {want[1]} wrapper {want[2]!r}"
        )
    model.load_state_dict(start.state_dict(), strict=True)
    steps = cfg.recipe.get("total_steps", cfg.recipe.get("steps", 0))
    return {"key": cfg.key, "sha256": cfg.sha256, "steps": int(steps)}


@torch.no_grad()
def validate(
    model: nn.Module, images: list[torch.Tensor], sigma: float, device: torch.device
) -> float:
    """Mean PSNR (dB, outputs clamped to [0, 1]) on held-out images at ``sigma``."""
    was_training = model.training
    model.eval()
    vals = []
    for i, clean in enumerate(images):
        noisy = add_gaussian_noise(clean, sigma, seed=10_000 + i).to(device)
        vals.append(float(psnr(model(noisy).clamp(0, 1), clean.to(device), 1.0)))
    model.train(was_training)
    return sum(vals) / max(1, len(vals))


def _agree(flag: bool, world: int, device: torch.device) -> bool:
    """True on every rank when ``flag`` is true on any (ranks must stop at the same step)."""
    if world == 1:
        return flag
    t = torch.tensor([float(flag)], device=device if dist.get_backend() == "nccl" else "cpu")
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def train(args: argparse.Namespace, stop: threading.Event | None = None) -> dict[str, Any]:
    """Runs or resumes one job (:func:`parse_args`); writes the checkpoint when all steps are
    done. ``stop``: when set, the run stops at its next check, state saved.

    Returns:
        ``{"stopped_at": step, "steps": total}`` when it stopped early; else (rank 0) the final
        validation PSNR, steps, wall time, start step and loss averages.
    """
    began = _now()
    world, rank, local_rank = (
        int(os.environ.get(k, d)) for k, d in (("WORLD_SIZE", 1), ("RANK", 0), ("LOCAL_RANK", 0))
    )
    try:
        device = pick_device(args.device)
    except ValueError as exc:
        raise SystemExit(f"--device: {exc}") from None
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True  # fastest kernels over bitwise reproducibility
    if args.sampler == "auto":
        args.sampler = "device" if device.type == "cuda" else "host"
    check_every = args.sync_every or (50 if device.type == "cuda" else 1)

    key = args.key or Path(args.out).name
    work = Path(args.work or Path("runs") / key)
    try:
        images = load_folder(args.data)
    except (OSError, ValueError) as exc:  # missing folder, unreadable image
        raise SystemExit(f"--data: {exc}") from None
    work.mkdir(parents=True, exist_ok=True)
    if args.val_images >= len(images):
        raise SystemExit(f"--val-images {args.val_images} leaves no training image in {args.data}")
    split = len(images) - args.val_images
    val_imgs = [torch.from_numpy(im)[None, None] for im in images[split:]]
    sampler: PatchSampler | DevicePatchSampler = (
        DevicePatchSampler(images[:split], args.patch, device)
        if args.sampler == "device"
        else PatchSampler(images[:split], args.patch)
    )
    gen_device = device if args.sampler == "device" else torch.device("cpu")

    arch_kwargs = json.loads(args.arch_kwargs)
    torch.manual_seed(args.seed)
    backbone = models.build(args.arch, **arch_kwargs)
    model = backbone
    if args.wrapper == "wne":
        model = NormEquivariant(backbone, mode=args.mode)
    elif args.wrapper == "input":
        model = InputNormalized(backbone)
    init = load_init(model, args) if args.init else None
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    model.to(device, memory_format=fmt).train()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    blank = {"step": 0, "wall_s": 0.0, "history": []}
    meta = _load_state(work, model, opt, args, str(device)) or blank
    start, history, ema = int(meta["step"]), list(meta["history"]), meta.get("loss_ema")
    stop_at = min(args.steps, start + args.stop_after) if args.stop_after > 0 else args.steps
    ddp_model: nn.Module = model
    if world > 1:
        ids = [device.index] if device.type == "cuda" else None
        ddp_model = nn.parallel.DistributedDataParallel(model, device_ids=ids)

    t0 = _now()
    longest_save = 0.0

    def save(step: int) -> None:
        nonlocal longest_save
        t = _now()
        wall = float(meta["wall_s"]) + t - t0
        record = {"step": step, "wall_s": wall, "history": history, "loss_ema": ema}
        record |= {"recipe": recipe_fingerprint(args), "device": str(device)}
        _save_state(work, model, opt, record)
        longest_save = max(longest_save, _now() - t)

    if args.budget_s > 0 and rank == 0:
        save(start)  # measures the save that the budget keeps in reserve
    losses: list[float] = []
    pending: list[torch.Tensor] = []  # losses not read back yet (reading synchronizes)

    def read_back() -> None:
        nonlocal ema
        for lv in torch.stack(pending).float().cpu().tolist() if pending else []:
            losses.append(lv)
            ema = lv if ema is None else 0.98 * ema + 0.02 * lv
        pending.clear()

    amp, val_sigma = args.amp and device.type == "cuda", validation_sigma(args)
    last_check, longest_stretch, step = _now(), 0.0, start
    quiet = args.no_progress or rank != 0
    bar = tqdm(range(start, stop_at), initial=start, total=args.steps, desc=key, disable=quiet)
    for step in bar:
        if (step - start) % check_every == 0:
            now = _now()
            longest_stretch = max(longest_stretch, now - last_check)
            last_check = now
            late = now - began + longest_stretch + longest_save > args.budget_s > 0
            if _agree(late or (stop is not None and stop.is_set()), world, device):
                break
        gen = step_generator(args.seed, step, rank, gen_device)
        noisy, clean = training_pair(sampler.sample(args.batch, gen), gen, args)
        clean, noisy = (t.to(device, memory_format=fmt) for t in (clean, noisy))
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            out = ddp_model(noisy)
        loss = nn.functional.mse_loss(out.float(), clean)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        pending.append(loss.detach())
        done = step + 1
        due_val, due_save = done % args.val_every == 0, done % args.save_every == 0
        if len(pending) >= check_every or due_val or due_save:
            read_back()
            bar.set_postfix(loss=f"{ema:.2e}", lr=f"{lr_at(step, args):.1e}")
        if rank == 0 and (due_val or done == args.steps):
            v = validate(model, val_imgs, val_sigma, device)
            history.append({"step": done, "val_psnr": round(v, 4), "loss_ema": ema})
            bar.write(f"[{key}] step {done}: val PSNR {v:.3f} dB, loss {ema:.3e}")
        if rank == 0 and due_save and done < stop_at:
            save(done)
        step = done
    bar.close()
    read_back()
    if rank == 0:
        save(step)
    if step < args.steps:  # stopped early: the state is saved, no checkpoint yet
        if world > 1:
            dist.barrier()
            dist.destroy_process_group()
        return {"stopped_at": step, "steps": args.steps}
    replicas = [weights_digest(model)]
    if world > 1:
        replicas = [None] * world
        dist.all_gather_object(replicas, weights_digest(model))
        if len(set(replicas)) > 1:
            log.warning("data-parallel replicas ended with different weights: %s", replicas)
    summary: dict[str, Any] = {}
    if rank == 0:
        wall = float(meta["wall_s"]) + _now() - t0
        recipe = {k: v for k, v in vars(args).items() if k not in _NOT_RECIPE}
        for name in ("sigma_range", "soft_ne", "soft_ne_alpha", "soft_ne_mu"):
            recipe.pop(name)
        recipe |= {k: v for k, v in recipe_fingerprint(args).items() if k in OPTIONAL_RECIPE_FIELDS}
        recipe |= {
            "loss": "mse", "optimizer": "adam", "schedule": "linear warm-up + cosine",
            "world_size": world, "global_batch": args.batch * world, "device": str(device),
            "torch": torch.__version__, "wall_time_s": round(wall, 1),
            "train_images": split, "val_images": len(val_imgs),
        }  # fmt: skip
        if init is not None:
            recipe |= {"init": init, "total_steps": init["steps"] + args.steps}
        if device.type == "cuda":
            recipe["gpu"] = torch.cuda.get_device_name(device)
        if world > 1:
            recipe["replica_weights_sha256"] = replicas
        final_val = history[-1]["val_psnr"]
        k = max(1, min(5, len(losses) // 2))
        summary = {
            "val_psnr": final_val, "steps": args.steps, "wall_time_s": round(wall, 1),
            "start_step": start,
            "loss_start": sum(losses[:k]) / k if losses else None,
            "loss_end": sum(losses[-k:]) / k if losses else None,
        }  # fmt: skip
        checkpoints.save(
            model.cpu(), args.out, key=key, arch=args.arch, arch_kwargs=arch_kwargs,
            sigma_train=args.sigma, recipe=recipe,
            metrics={"train_val_psnr": final_val, "history": history},
            sigma_range=args.sigma_range,
            augment={"soft_ne": recipe["soft_ne"]} if args.soft_ne else None,
        )  # fmt: skip
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return summary


@contextlib.contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event that SIGTERM and SIGUSR1 set while the block runs (a batch system's warning
    signals); the previous handlers come back after it. Outside the main thread, no signal
    sets it."""
    stop = threading.Event()
    caught = [getattr(signal, n) for n in ("SIGTERM", "SIGUSR1") if hasattr(signal, n)]
    if threading.current_thread() is not threading.main_thread():
        caught = []
    before = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in caught}
    try:
        yield stop
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> int:
    """``wne train``: 0 when the checkpoint is written, :data:`EX_TEMPFAIL` when the run
    stopped early (SIGTERM and SIGUSR1 stop it)."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    with stop_on_signals() as stop:
        summary = train(args, stop)
    if summary:
        print(json.dumps(summary), flush=True)
    return EX_TEMPFAIL if "stopped_at" in summary else 0


if __name__ == "__main__":
    sys.exit(main())
