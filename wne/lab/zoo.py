"""The model zoo's training commands: the exact recipe of every catalogued checkpoint.

``wne zoo --list`` prints the keys, ``wne zoo --print KEY`` the ``wne train`` command of a
key, and ``wne zoo --run KEY [KEY ...]`` trains them one after the other (each run resumes
from its state in ``runs/<key>``; ``--budget-s`` bounds the whole sequence). Plain and WNE
twins share every argument but ``--wrapper``. ``--paper`` gives the paper-size recipes (for
a GPU). Keys and recipes come from :mod:`wne.catalog`; a ``-gpu`` key's command is the recipe
its paper-size checkpoint was trained by. A recipe that continues from another checkpoint
(``--init``) has several runs, printed and run in order, the first writing ``<key>-init``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import time
from pathlib import Path

from wne import catalog
from wne.lab import train

__all__ = ["INIT_SUFFIX", "command", "main", "stages"]


def command(
    key: str,
    *,
    data: str = "../shared/data/train400",
    root: str = "checkpoints",
    paper: bool = False,
) -> list[str]:
    """The ``wne train`` argument list that trains ``key``.

    Args:
        key: A zoo key (:func:`wne.catalog.keys`).
        data: Folder of training images.
        root: Checkpoint folder; the checkpoint goes to ``root/key``.
        paper: The paper-size recipe instead of the bundled CPU one.

    Returns:
        The arguments of ``wne train`` (without the program name).

    Raises:
        ValueError: For a key the catalog does not hold.
    """
    entry = catalog.get(key)
    return _recipe_args(entry, entry.recipe(paper=paper), key, data, root)


def _recipe_args(
    entry: catalog.Entry, recipe: catalog.Recipe, key: str, data: str, root: str
) -> list[str]:
    args = [
        "--arch", entry.arch,
        "--arch-kwargs", json.dumps(dict(recipe.arch_kwargs)),
        "--wrapper", entry.wrapper,
        "--sigma", str(entry.sigma_train),
        "--data", data,
        "--out", str(Path(root) / key),
        "--steps", str(recipe.steps),
        "--batch", str(recipe.batch),
        "--patch", str(recipe.patch),
    ]  # fmt: skip
    if recipe.lr is not None:
        args += ["--lr", str(recipe.lr)]
    if recipe.sampler is not None:
        args += ["--sampler", recipe.sampler]
    if recipe.seed:
        args += ["--seed", str(recipe.seed)]
    if recipe.channels_last:
        args.append("--channels-last")
    if recipe.init is not None:
        args += ["--init", str(Path(root) / f"{key}{INIT_SUFFIX}")]
    return args


INIT_SUFFIX = "-init"
"""Folder suffix of the checkpoint a continued recipe starts from (written first)."""


def stages(
    key: str,
    *,
    data: str = "../shared/data/train400",
    root: str = "checkpoints",
    paper: bool = False,
) -> list[list[str]]:
    """Every ``wne train`` run that trains ``key``, in order: for a recipe that continues
    from another checkpoint (:attr:`wne.catalog.Recipe.init`), the runs that make that
    checkpoint first (written to ``root/<key>-init``), then :func:`command`.

    Args:
        key: A zoo key.
        data: Folder of training images.
        root: Checkpoint folder.
        paper: The paper-size recipe instead of the bundled one.

    Returns:
        The argument lists, first run first.
    """
    entry = catalog.get(key)
    chain = []
    recipe: catalog.Recipe | None = entry.recipe(paper=paper)
    while recipe is not None:
        chain.append(recipe)
        recipe = recipe.init
    out: list[list[str]] = []
    for depth, recipe in enumerate(reversed(chain)):
        run_key = key + INIT_SUFFIX * (len(chain) - 1 - depth)
        out.append(_recipe_args(entry, recipe, run_key, data, root))
    return out


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (``wne zoo``); SIGTERM and SIGUSR1 stop ``--run`` early.

    Returns:
        0, or :data:`wne.lab.train.EX_TEMPFAIL` when a run stopped early.
    """
    began = time.perf_counter()
    p = argparse.ArgumentParser(prog="wne zoo", description=__doc__.split("\n")[0])
    a = p.add_argument
    a("--list", action="store_true", help="print every zoo key")
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
        print("\n".join(catalog.keys()))
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
