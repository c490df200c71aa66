"""The Gradio demo's logic without Gradio: :mod:`~wne.demo.pages` (one module per page),
:mod:`~wne.demo.serving`, :mod:`~wne.demo.zoo`, :mod:`~wne.demo.imaging`, :mod:`~wne.demo.links`,
:mod:`~wne.demo.content`, :mod:`~wne.demo.figure`; ``app.py`` wires them to the page.
"""

from wne.demo.errors import DemoInputError
from wne.demo.zoo import Zoo

__all__ = ["DemoInputError", "Zoo"]
