"""Train a blind Gaussian denoiser, plain or WNE-wrapped, with one fair recipe.

Usage::

    wne-train --arch dncnn --wrapper wne --sigma 25 \\
        --data ../shared/data/train400 --out checkpoints/dncnn-wne-s25

(or ``python -m wne.lab.train ...``; ``wne-zoo --print KEY`` prints the exact
command of every zoo checkpoint).

Plain and WNE runs with the same arguments see exactly the same patches,
augmentations and noise (stateless per-step sampling), the same loss (MSE on the
raw output), optimizer (Adam), schedule (linear warm-up then cosine decay) and
step budget. The run is resumable (``--work`` holds the training state as
safetensors + JSON; resuming under a different recipe is refused),
deterministic for a given seed and world size, uses CUDA with bf16 autocast
when present, and runs data-parallel under ``torchrun --nproc_per_node N -m
wne.lab.train ...`` (gloo on CPU, nccl on GPU; every rank's final weight digest is
recorded in the checkpoint's recipe). Images are read with :mod:`wne.imageio`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm import tqdm

from wne import checkpoints, models
from wne.device import pick_device
from wne.imageio import list_images, read_image
from wne.lab.data import DevicePatchSampler, PatchSampler, step_generator
from wne.metrics import psnr
from wne.wrapper import NormEquivariant

log = logging.getLogger(__name__)

STATE_TENSORS = "train_state.safetensors"
STATE_JSON = "train_state.json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parses the command line."""
    p = argparse.ArgumentParser(prog="wne-train", description=__doc__.split("\n")[0])
    p.add_argument("--arch", required=True, choices=models.available())
    p.add_argument("--arch-kwargs", default="{}", help="JSON dict of backbone arguments")
    p.add_argument("--wrapper", choices=("none", "wne"), default="none")
    p.add_argument("--mode", choices=("direct", "residual"), default="direct", help="WNE mode")
    p.add_argument("--sigma", type=float, required=True, help="training noise σ (0–255 scale)")
    p.add_argument("--data", required=True, help="folder of training images")
    p.add_argument("--out", required=True, help="checkpoint folder to write")
    p.add_argument("--key", help="model key (default: the --out folder name)")
    p.add_argument("--work", help="folder for the resumable state (default: runs/<key>)")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=16, help="patches per step per process")
    p.add_argument("--patch", type=int, default=48)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--lr-min-ratio", type=float, default=0.01, help="final LR / peak LR")
    p.add_argument("--warmup", type=float, default=0.02, help="warm-up fraction of the steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--val-images", type=int, default=8, help="held out from the end of --data")
    p.add_argument("--val-every", type=int, default=500)
    p.add_argument("--save-every", type=int, default=250, help="resumable-state cadence")
    p.add_argument(
        "--stop-after",
        type=int,
        default=0,
        help="stop (saving the state, no checkpoint) after this many steps in this invocation",
    )
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:i]")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument(
        "--sampler",
        choices=("auto", "host", "device"),
        default="auto",
        help="where patches and noise are drawn: host (CPU, one loop per patch), device "
        "(images held on the GPU, whole batches drawn there); auto: device on CUDA",
    )
    p.add_argument(
        "--sync-every",
        type=int,
        default=0,
        help="read the loss back every N steps (0: every step on CPU, every 50 on CUDA)",
    )
    p.add_argument(
        "--init",
        help="checkpoint folder whose weights start the run (fine-tuning: same architecture "
        "and wrapper, sha256-verified; recorded in the checkpoint's recipe)",
    )
    p.add_argument(
        "--channels-last",
        action="store_true",
        help="channels-last memory format for the model and batches (faster cuDNN "
        "convolutions under bf16; the numbers are the same up to round-off)",
    )
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def lr_at(step: int, args: argparse.Namespace) -> float:
    """Learning rate for ``step``: linear warm-up, then cosine to ``lr·lr_min_ratio``."""
    warm = max(1, int(args.warmup * args.steps))
    if step < warm:
        return args.lr * (step + 1) / warm
    t = (step - warm) / max(1, args.steps - warm)
    lo = args.lr * args.lr_min_ratio
    return lo + 0.5 * (args.lr - lo) * (1 + math.cos(math.pi * min(1.0, t)))


# The arguments that fix a run's trajectory: resuming under different values would
# silently mix two recipes (and record only the second), so it is refused.
RECIPE_FIELDS = (
    "arch", "arch_kwargs", "wrapper", "mode", "sigma", "steps", "batch", "patch",
    "lr", "lr_min_ratio", "warmup", "seed", "val_images", "sampler", "init",
)  # fmt: skip


def recipe_fingerprint(args: argparse.Namespace) -> dict[str, Any]:
    """The trajectory-defining arguments of a run, as stored in its resumable state."""
    out = {k: getattr(args, k, None) for k in RECIPE_FIELDS}
    out["arch_kwargs"] = json.loads(args.arch_kwargs)
    return out


def _check_resume(work: Path, meta: dict[str, Any], args: argparse.Namespace) -> None:
    saved = meta.get("recipe")
    if saved is None:
        log.warning("resuming %s: state has no recorded recipe (older format)", work)
        return
    now = recipe_fingerprint(args)
    # states written before --sampler / --init existed
    saved = {"sampler": "host", "init": None, **saved}
    diff = [f"{k}: state {saved.get(k)!r} != now {now[k]!r}" for k in now if saved.get(k) != now[k]]
    if diff:
        raise SystemExit(
            f"refusing to resume {work} (step {meta.get('step')}) with a different recipe: "
            + "; ".join(diff)
            + ". Use another --work folder or delete the old state."
        )


def _dist_info() -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return world, rank, local


def _device(spec: str, local_rank: int) -> torch.device:
    """The device of this process: :func:`wne.device.pick_device`, and for an
    unindexed CUDA device the GPU of this process's local rank."""
    try:
        dev = pick_device(spec)
    except ValueError as exc:
        raise SystemExit(f"--device: {exc}") from None
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", local_rank)
    return dev


def weights_digest(model: nn.Module) -> str:
    """sha256 of a model's parameters (names and float32 values), to compare replicas."""
    h = hashlib.sha256()
    for name, p in model.named_parameters():
        h.update(name.encode())
        h.update(p.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _replica_digests(model: nn.Module, world: int) -> list[str]:
    """:func:`weights_digest` of every data-parallel process, in rank order.

    Data-parallel replicas must end with identical weights; a divergence (which
    would mean rank 0's checkpoint is not what the other ranks trained) is logged.
    """
    digest = weights_digest(model)
    if world == 1:
        return [digest]
    gathered: list[Any] = [None] * world
    dist.all_gather_object(gathered, digest)
    if len(set(gathered)) > 1:
        log.warning("data-parallel replicas ended with different weights: %s", gathered)
    return [str(d) for d in gathered]


def _save_state(work: Path, model: nn.Module, opt: torch.optim.Adam, meta: dict[str, Any]) -> None:
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    names = [n for n, _ in model.named_parameters()]
    params = dict(model.named_parameters())
    for name in names:
        st = opt.state.get(params[name], {})
        for field in ("exp_avg", "exp_avg_sq", "step"):
            if field in st:
                value = torch.as_tensor(st[field]).detach().cpu()
                tensors[f"opt.{name}.{field}"] = value.contiguous()
    tmp = work / (STATE_TENSORS + ".tmp")
    save_file(tensors, str(tmp))
    os.replace(tmp, work / STATE_TENSORS)
    tmpj = work / (STATE_JSON + ".tmp")
    tmpj.write_text(json.dumps(meta, indent=2), encoding="utf-8")
    os.replace(tmpj, work / STATE_JSON)


def _load_state(
    work: Path, model: nn.Module, opt: torch.optim.Adam, args: argparse.Namespace
) -> dict[str, Any] | None:
    if not (work / STATE_JSON).is_file() or not (work / STATE_TENSORS).is_file():
        return None
    meta = json.loads((work / STATE_JSON).read_text(encoding="utf-8"))
    _check_resume(work, meta, args)
    tensors = load_file(str(work / STATE_TENSORS))
    model.load_state_dict(
        {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, strict=True
    )
    for name, p in model.named_parameters():
        if f"opt.{name}.exp_avg" in tensors:
            opt.state[p] = {
                "step": tensors[f"opt.{name}.step"].float(),
                # in the parameter's own memory layout (channels-last runs)
                "exp_avg": torch.empty_like(p).copy_(tensors[f"opt.{name}.exp_avg"]),
                "exp_avg_sq": torch.empty_like(p).copy_(tensors[f"opt.{name}.exp_avg_sq"]),
            }
    return meta


def load_init(model: nn.Module, args: argparse.Namespace) -> dict[str, Any]:
    """Loads the ``--init`` checkpoint's weights into ``model`` (before any training step).

    The checkpoint must describe the run's own model: same architecture, constructor
    arguments and wrapper. Its weights are sha256-verified by :func:`wne.checkpoints.load_dir`.

    Args:
        model: The freshly built model (backbone or WNE-wrapped).
        args: The command line (``arch``, ``arch_kwargs``, ``wrapper``, ``mode``, ``init``).

    Returns:
        What the recipe records of the start: its key, weights sha256 and total steps.

    Raises:
        SystemExit: If the checkpoint is missing, invalid or of another model.
    """
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
    return {
        "key": cfg.key,
        "sha256": cfg.sha256,
        "steps": int(cfg.recipe.get("total_steps", cfg.recipe.get("steps", 0))),
    }


@torch.no_grad()
def validate(
    model: nn.Module, images: list[torch.Tensor], sigma: float, device: torch.device
) -> float:
    """Mean PSNR (dB, outputs clamped to [0, 1]) on held-out images at ``sigma``."""
    was_training = model.training
    model.eval()
    vals = []
    for i, clean in enumerate(images):
        x = clean.to(device)
        gen = torch.Generator().manual_seed(10_000 + i)
        noisy = x + (torch.randn(x.shape, generator=gen) * sigma / 255.0).to(device)
        vals.append(float(psnr(model(noisy).clamp(0, 1), x, 1.0)))
    model.train(was_training)
    return sum(vals) / max(1, len(vals))


def train(args: argparse.Namespace) -> dict[str, Any]:
    """Runs (or resumes) one training job and writes the checkpoint.

    Returns:
        A summary with the final validation PSNR, steps and wall time.
    """
    world, rank, local_rank = _dist_info()
    device = _device(args.device, local_rank)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        # Speed over bit-reproducibility on the GPU: cuDNN picks its fastest kernels
        # (the CPU path stays deterministic for a given seed and world size).
        torch.backends.cudnn.benchmark = True
    if args.sampler == "auto":
        args.sampler = "device" if device.type == "cuda" else "host"
    sync_every = args.sync_every or (50 if device.type == "cuda" else 1)

    key = args.key or Path(args.out).name
    work = Path(args.work or Path("runs") / key)
    if rank == 0:
        work.mkdir(parents=True, exist_ok=True)

    files = list_images(args.data)
    if args.val_images >= len(files):
        raise SystemExit(f"--val-images {args.val_images} leaves no training image in {args.data}")
    split = len(files) - args.val_images
    # Grayscale float32 in [0, 1] (8-bit images: exactly uint8 / 255).
    train_imgs = [read_image(p, channels=1)[..., 0] for p in files[:split]]
    val_imgs = [
        torch.from_numpy(read_image(p, channels=1)[..., 0])[None, None] for p in files[split:]
    ]
    sampler: PatchSampler | DevicePatchSampler = (
        DevicePatchSampler(train_imgs, args.patch, device)
        if args.sampler == "device"
        else PatchSampler(train_imgs, args.patch)
    )
    gen_device = device if args.sampler == "device" else torch.device("cpu")

    arch_kwargs = json.loads(args.arch_kwargs)
    torch.manual_seed(args.seed)
    backbone = models.build(args.arch, **arch_kwargs)
    model: nn.Module = (
        NormEquivariant(backbone, mode=args.mode) if args.wrapper == "wne" else backbone
    )
    init = load_init(model, args) if args.init else None
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    model.to(device, memory_format=fmt).train()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)

    # Every process reads the same state folder (one machine, shared disk).
    meta = _load_state(work, model, opt, args)
    start = int(meta["step"]) if meta else 0
    wall_before = float(meta["wall_s"]) if meta else 0.0
    history: list[dict[str, float]] = list(meta["history"]) if meta else []

    ddp_model: nn.Module = model
    if world > 1:
        ddp_model = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    use_amp = args.amp and device.type == "cuda"
    sigma = args.sigma / 255.0
    t0 = time.perf_counter()
    ema = None
    losses: list[float] = []
    pending: list[torch.Tensor] = []  # losses not read back yet (reading synchronizes)
    bar = tqdm(
        range(start, args.steps),
        initial=start,
        total=args.steps,
        desc=key,
        disable=args.no_progress or rank != 0,
        file=sys.stderr,
    )
    stop_at = start + args.stop_after if args.stop_after > 0 else args.steps
    for step in bar:
        if step >= stop_at:
            break
        gen = step_generator(args.seed, step, rank, gen_device)
        clean = sampler.sample(args.batch, gen)
        noisy = clean + torch.randn(clean.shape, generator=gen, device=gen_device) * sigma
        clean = clean.to(device, memory_format=fmt)
        noisy = noisy.to(device, memory_format=fmt)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            out = ddp_model(noisy)
        loss = torch.nn.functional.mse_loss(out.float(), clean)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        pending.append(loss.detach())
        done = step + 1
        due_val = done % args.val_every == 0 or done == args.steps
        due_save = done % args.save_every == 0 or done in (args.steps, stop_at)
        if len(pending) >= sync_every or due_val or due_save:
            for lv in torch.stack(pending).float().cpu().tolist():
                losses.append(lv)
                ema = lv if ema is None else 0.98 * ema + 0.02 * lv
            pending.clear()
        if rank == 0:
            if ema is not None:
                bar.set_postfix(loss=f"{ema:.2e}", lr=f"{lr_at(step, args):.1e}")
            if due_val:
                v = validate(model, val_imgs, args.sigma, device)
                history.append({"step": done, "val_psnr": round(v, 4), "loss_ema": ema})
                bar.write(f"[{key}] step {done}: val PSNR {v:.3f} dB, loss {ema:.3e}")
            if due_save:
                wall = wall_before + time.perf_counter() - t0
                _save_state(
                    work,
                    model,
                    opt,
                    {
                        "step": done,
                        "wall_s": wall,
                        "history": history,
                        "recipe": recipe_fingerprint(args),
                    },
                )
    bar.close()
    wall = wall_before + time.perf_counter() - t0
    summary: dict[str, Any] = {}
    if stop_at < args.steps:  # interrupted on purpose: the state is saved, no checkpoint yet
        if world > 1:
            dist.barrier()
            dist.destroy_process_group()
        return {"stopped_at": stop_at, "steps": args.steps}
    replicas = _replica_digests(model, world)
    if rank == 0:
        final_val = (
            history[-1]["val_psnr"] if history else validate(model, val_imgs, args.sigma, device)
        )
        recipe = {
            k: v
            for k, v in vars(args).items()
            if k not in ("out", "work", "no_progress", "device", "threads", "key")
        }
        recipe.update(
            {
                "loss": "mse",
                "optimizer": "adam",
                "schedule": "linear warm-up + cosine",
                "world_size": world,
                "global_batch": args.batch * world,
                "device": str(device),
                "torch": torch.__version__,
                "wall_time_s": round(wall, 1),
                "train_images": len(train_imgs),
                "val_images": len(val_imgs),
            }
        )
        if init is not None:
            recipe["init"] = init
            recipe["total_steps"] = init["steps"] + args.steps
        if device.type == "cuda":
            recipe["gpu"] = torch.cuda.get_device_name(device)
        if world > 1:
            recipe["replica_weights_sha256"] = replicas
        k = max(1, min(5, len(losses) // 2))
        summary = {
            "val_psnr": final_val,
            "steps": args.steps,
            "wall_time_s": round(wall, 1),
            "start_step": start,
            "loss_start": sum(losses[:k]) / k if losses else None,
            "loss_end": sum(losses[-k:]) / k if losses else None,
        }
        checkpoints.save(
            model.cpu(),
            args.out,
            key=key,
            arch=args.arch,
            arch_kwargs=arch_kwargs,
            sigma_train=args.sigma,
            recipe=recipe,
            metrics={"train_val_psnr": final_val, "history": history},
        )
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return summary


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point (``wne-train``).

    Args:
        argv: Arguments (default: ``sys.argv[1:]``).
    """
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    summary = train(args)
    if summary:
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
