"""The Gradio demo's logic, importable and testable without Gradio.

- :mod:`wne.demo.settings`: the request's settings defined once (defaults, ranges,
  labels) and the single validation layer (raw values → :class:`Settings`).
- :mod:`wne.demo.imaging`: safe image reading/conversion and display helpers.
- :mod:`wne.demo.zoo`: discovering the catalogued checkpoints, loading each model once, and
  choosing the checkpoint of a slot (the best available by recorded Set12 PSNR, or a size).
- :mod:`wne.demo.compare`: comparison, equivariance map and noise sweep (noise types).
- :mod:`wne.demo.inside`: the WNE pipeline step by step (the Inside WNE tab, ``/inside``).
- :mod:`wne.demo.restore`: a denoiser as an image prior, plain vs WNE walks streamed (the
  Restore from a few pixels tab, ``/restore``).
- :mod:`wne.demo.handlers`: request handlers (validate, read, compute through the GPU hook).
- :mod:`wne.demo.cache`: identical requests computed once (result cache, coalescing) and
  the queue that runs the models one request at a time.
- :mod:`wne.demo.views`: display-ready views of the results (images, labels, tables).
- :mod:`wne.demo.endpoints`: one event function per computation, for the page and the API.
- :mod:`wne.demo.outputs`: output images as complete, content-addressed PNG files.
- :mod:`wne.demo.content`: scenarios, examples, precomputed results, page texts.
- :mod:`wne.demo.errors`: turning exceptions into user-facing ``gr.Error``.
- :mod:`wne.demo.runtime`: process-level settings of the server.

``app.py`` at the repository root lays out the page and wires these together.
"""

from wne.demo.handlers import DemoConfig, DemoHandlers
from wne.demo.settings import DemoInputError, Settings, parse_settings
from wne.demo.zoo import Zoo

__all__ = ["DemoConfig", "DemoHandlers", "DemoInputError", "Settings", "Zoo", "parse_settings"]
