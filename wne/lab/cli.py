"""What every lab command does first."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

__all__ = ["parse"]


def parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parses ``argv`` (default ``sys.argv[1:]``) and shows warnings and ``wne``'s info lines."""
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("wne").setLevel(logging.INFO)
    return args
