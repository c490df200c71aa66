"""The ``wne`` command: ``wne <subcommand> [ARGS]`` (also ``python -m wne <subcommand>``)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

__all__ = ["COMMANDS", "main"]

COMMANDS = {
    "train": ("wne.lab.train", "train one checkpoint; resumable, --budget-s for time limits"),
    "zoo": ("wne.lab.zoo", "the catalog's training commands: --list, --print KEY, --run KEY"),
    "evaluate": ("wne.lab.evaluate", "the noise-mismatch evaluation of checkpoints"),
    "defect": ("wne.lab.defect", "ε_NE across σ_test (the paper's App. E protocol)"),
    "bench": ("wne.lab.bench", "speed and memory of plain and WNE models"),
    "loadtest": ("wne.lab.loadtest", "latency and load test of the demo app"),
    "sample": ("wne.lab.sample", "the denoiser-as-prior sampler's protocols"),
    "denoise": ("wne.lab.denoise", "denoise your own images and data files"),
    "explain": ("wne.lab.explain", "why it works: Δ overlap, adaptive filters, Q-vs-Δ collapse"),
}
"""Subcommand → (module whose ``main(argv)`` runs it, one-line summary)."""


def _usage() -> str:
    lines = [f"  {name:<9} {summary}" for name, (_, summary) in COMMANDS.items()]
    return "usage: wne <subcommand> [ARGS]   (wne <subcommand> --help)\n\nsubcommands:\n" + (
        "\n".join(lines)
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Runs ``wne <subcommand>``; the subcommand's module is imported only then.

    Args:
        argv: Arguments (default: ``sys.argv[1:]``).

    Returns:
        The subcommand's exit status (2 for a missing or unknown subcommand).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(_usage(), file=sys.stdout if args else sys.stderr)
        return 0 if args else 2
    if args[0] not in COMMANDS:
        print(f"wne: unknown subcommand {args[0]!r}\n{_usage()}", file=sys.stderr)
        return 2
    name = COMMANDS[args[0]][0]
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:
            what = f"its module {name} is not in this installation"
        else:
            what = f"it needs the package {exc.name!r} (pip install 'wne[lab]')"
        print(f"wne {args[0]}: {what}", file=sys.stderr)
        return 2
    return int(module.main(args[1:]) or 0)
