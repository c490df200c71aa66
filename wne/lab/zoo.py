"""The model zoo's training commands: the exact recipe of every catalogued checkpoint.

``wne zoo --list`` prints the keys, ``wne zoo --print KEY`` the ``wne train`` command of a
key, and ``wne zoo --run KEY [KEY ...]`` trains them one after the other (each run resumes
from its state in ``runs/<key>``; ``--budget-s`` bounds the whole sequence). Plain and WNE
twins share every argument but ``--wrapper``. ``--paper`` gives the paper-size recipes (for
a GPU). Keys and recipes come from :mod:`wne.catalog`; a ``-gpu`` key's command is the recipe
its paper-size checkpoint was trained by. A recipe that continues from another checkpoint
(``--init``) has several runs, printed and run in order, the first writing ``<key>-init``.
A rival's key (:func:`wne.catalog.rivals`; ``--list --rivals`` lists them) prints and runs
the same way, its wrapper, noise range or augmentation from its catalog entry.
"""

from __future__ import annotations

import argparse
import json
import shlex
import time
from pathlib import Path
from typing import Any

from wne import catalog
from wne.lab import train

__all__ = ["INIT_SUFFIX", "command", "main", "stages"]


INIT_SUFFIX = "-init"
"""Folder suffix of the checkpoint a continued recipe starts from (written first)."""


def stages(
    key: str,
    *,
    data: str = "../shared/data/train400",
    root: str = "checkpoints",
    paper: bool = False,
) -> list[list[str]]:
    """Every ``wne train`` argument list that trains ``key`` into ``root/key``, first run
    first: a recipe continued from another (:attr:`wne.catalog.Recipe.init`) first writes
    ``root/<key>-init``. ``paper``: the paper-size recipe (ValueError for an unknown key)."""
    entry = catalog.get(key)
    chain: list[catalog.Recipe] = []
    recipe: catalog.Recipe | None = entry.recipe(paper=paper)
    while recipe is not None:
        chain.append(recipe)
        recipe = recipe.init
    out = []
    for depth, recipe in enumerate(reversed(chain)):
        run_key = key + INIT_SUFFIX * (len(chain) - 1 - depth)
        noise = (
            ["--sigma", str(entry.sigma_train)]
            if entry.sigma_range is None
            else ["--sigma-range", *map(str, entry.sigma_range)]
        )
        soft = (entry.augment or {}).get("soft_ne")
        if soft is not None:
            noise.append("--soft-ne")
            for name, (lo, hi) in soft.items():
                noise += [f"--soft-ne-{name}", f"{lo:g}", f"{hi:g}"]
        args = [
            "--arch", entry.arch, "--arch-kwargs", json.dumps(dict(recipe.arch_kwargs)),
            "--wrapper", entry.wrapper, *noise, "--data", data,
            "--out", str(Path(root) / run_key), "--steps", str(recipe.steps),
            "--batch", str(recipe.batch), "--patch", str(recipe.patch),
        ]  # fmt: skip
        args += ["--lr", str(recipe.lr)] if recipe.lr is not None else []
        args += ["--sampler", recipe.sampler] if recipe.sampler is not None else []
        args += ["--seed", str(recipe.seed)] if recipe.seed else []
        args += ["--channels-last"] if recipe.channels_last else []
        args += (
            ["--init", str(Path(root) / f"{run_key}{INIT_SUFFIX}")]
            if recipe.init is not None
            else []
        )
        out.append(args)
    return out


def command(key: str, **kwargs: Any) -> list[str]:
    """The ``wne train`` arguments of ``key``'s last run (:func:`stages`' keywords)."""
    return stages(key, **kwargs)[-1]


def main(argv: list[str] | None = None) -> int:
    """``wne zoo``: 0, or :data:`wne.lab.train.EX_TEMPFAIL` when a ``--run`` stopped early
    (SIGTERM, SIGUSR1, ``--budget-s``)."""
    began = time.perf_counter()
    p = argparse.ArgumentParser(prog="wne zoo", description=__doc__.split("\n")[0])
    a = p.add_argument
    a("--list", action="store_true", help="print every zoo key")
    a("--rivals", action="store_true", help="--list: the rivals' keys (wne.catalog.rivals)")
    a("--print", nargs="*", metavar="KEY", dest="print_keys", help="print their commands")
    a("--run", nargs="*", metavar="KEY", help="train these keys, one after the other")
    a("--paper", action="store_true", help="paper-size recipes")
    a("--data", default="../shared/data/train400")
    a("--root", default="checkpoints")
    a("--threads", type=int, default=0)
    a("--budget-s", type=float, default=0.0, help="--run: stop, state saved, within this time")
    args = p.parse_args(argv)
    try:
        for key in [*(args.print_keys or []), *(args.run or [])]:
            catalog.get(key)
    except ValueError as exc:
        p.error(str(exc))
    if args.list:
        print("\n".join(catalog.rival_keys() if args.rivals else catalog.keys()))
    for key in args.print_keys or []:
        for cmd in stages(key, data=args.data, root=args.root, paper=args.paper):
            print(shlex.join(["wne", "train", *cmd]))
    with train.stop_on_signals() as stop:
        for key in args.run or []:
            for cmd in stages(key, data=args.data, root=args.root, paper=args.paper):
                if args.threads:
                    cmd += ["--threads", str(args.threads)]
                if args.budget_s > 0:
                    left = args.budget_s - (time.perf_counter() - began)
                    cmd += ["--budget-s", str(max(left, 1e-3))]  # none left: stops at once
                summary = train.train(train.parse_args(cmd), stop)
                print(json.dumps({"key": key, **summary}), flush=True)
                if "stopped_at" in summary:
                    return train.EX_TEMPFAIL
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
