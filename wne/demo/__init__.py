"""The Gradio demo's logic, importable and testable without Gradio.

- :mod:`wne.demo.validation`: the single validation layer (raw values → :class:`Settings`).
- :mod:`wne.demo.imaging`: safe image reading/conversion and display helpers.
- :mod:`wne.demo.zoo`: discovering the checkpoints and loading each model once.
- :mod:`wne.demo.compare`: comparison, equivariance map and noise sweep.
- :mod:`wne.demo.handlers`: request handlers returning display-ready views.
- :mod:`wne.demo.errors`: turning exceptions into user-facing ``gr.Error``.

``app.py`` at the repository root lays out the page and wires these together.
"""

from wne.demo.handlers import DemoConfig, DemoHandlers
from wne.demo.validation import DemoInputError, Settings, parse_settings
from wne.demo.zoo import Zoo

__all__ = ["DemoConfig", "DemoHandlers", "DemoInputError", "Settings", "Zoo", "parse_settings"]
