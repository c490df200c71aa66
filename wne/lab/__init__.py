"""The lab: training, evaluation and benchmark tools around the :mod:`wne` library.

Nothing here is needed to use a denoiser. Each command-line module has a ``main(argv)``
that ``wne <subcommand>`` runs (:mod:`wne.cli`): ``train`` (:mod:`wne.lab.train`, with its
patches from :mod:`wne.lab.data`), ``zoo`` (:mod:`wne.lab.zoo`: the catalog's training
commands), ``evaluate``, ``sample``, ``bench``, ``loadtest`` and ``denoise``.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence


def parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parses ``argv`` (default ``sys.argv[1:]``) and shows warnings and ``wne``'s info lines."""
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("wne").setLevel(logging.INFO)
    return args
