"""The Gradio demo's logic, importable and testable without Gradio.

- :mod:`wne.demo.pages`: one module per page, each computation a plain typed generator.
- :mod:`wne.demo.serving`: the result cache, coalescing, the model queue, CPU sizing.
- :mod:`wne.demo.zoo`: the catalogued checkpoints, each model loaded once.
- :mod:`wne.demo.imaging`: safe image reading (upload checks) and display helpers.
- :mod:`wne.demo.links`: scenario links; :mod:`wne.demo.content`: texts and examples;
  :mod:`wne.demo.figure`: the slide figure.

``app.py`` at the repository root lays out the page and wires these together.
"""

from wne.demo.errors import DemoInputError
from wne.demo.zoo import Zoo

__all__ = ["DemoInputError", "Zoo"]
