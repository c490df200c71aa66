"""``python -m wne <subcommand>``: the ``wne`` command (:mod:`wne.cli`)."""

import sys

from wne.cli import main

sys.exit(main())
