"""The demo's computations as event functions: each serves the page and its API.

:class:`Endpoints` builds one function per computation (``denoise``,
``equivariance``, ``sweep``, ``inside``, ``restore``). Its parameters are the image followed by the
computation's arguments from :mod:`wne.demo.settings` (the API's parameter
names and order) and a ``progress`` that Gradio fills in. It checks that the
image was uploaded, runs the handler and returns:

- the API's values, plain and JSON-ready: output images as paths of PNG files
  written by :class:`~wne.demo.outputs.OutputFiles`, galleries as
  ``(path, caption)`` pairs, JSON records;
- last, the updates of the page's other components as a list of dicts
  (``value`` / ``label`` / ``visible``; ``frame`` for a table or plot's rows),
  which the app keeps in a ``gr.State`` (not part of the API) and shows in a
  chained step.

``restore`` is a generator: it yields these values for every snapshot of the two
walks (the page streams them; a client's ``predict`` gets the last, final one).

Every failure reaches the user as a ``gr.Error`` (:func:`wne.demo.errors.user_facing`).
Gradio is imported only when the functions are built.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from wne.demo.content import API_DOCS
from wne.demo.errors import user_facing
from wne.demo.handlers import DemoHandlers
from wne.demo.imaging import require_uploaded
from wne.demo.inside import INSIDE_STEPS, InsideView
from wne.demo.outputs import OutputFiles
from wne.demo.restore import Restorer, RestoreView
from wne.demo.settings import (
    COMPARE_PARAMS,
    EQUIVARIANCE_PARAMS,
    INSIDE_PARAMS,
    OPTIONAL_CONTROLS,
    RESTORE_PARAMS,
    SWEEP_PARAMS,
    params,
)
from wne.demo.views import TABLE_HEADERS, DenoiseView

__all__ = [
    "ENDPOINTS",
    "UNCHANGED",
    "Endpoint",
    "Endpoints",
    "compare_page_updates",
    "inside_page_updates",
    "restore_page_updates",
]

Update = dict[str, Any]


@dataclass(frozen=True)
class Endpoint:
    """A named API endpoint.

    Attributes:
        name: The API name (``/denoise`` is ``"denoise"``).
        params: Its arguments after the image, in order.
        description: The API description.
    """

    name: str
    params: tuple[str, ...]
    description: str


ENDPOINTS: dict[str, Endpoint] = {
    "denoise": Endpoint("denoise", COMPARE_PARAMS, API_DOCS["denoise"]),
    "equivariance": Endpoint("equivariance", EQUIVARIANCE_PARAMS, API_DOCS["equivariance"]),
    "sweep": Endpoint("sweep", SWEEP_PARAMS, API_DOCS["sweep"]),
    "inside": Endpoint("inside", INSIDE_PARAMS, API_DOCS["inside"]),
    "restore": Endpoint("restore", RESTORE_PARAMS, API_DOCS["restore"]),
}


UNCHANGED: dict[str, str] = {"__type__": "update"}
"""An output left as it is in a streamed step (what ``gr.skip()`` returns)."""


def _saver(files: OutputFiles) -> Callable[[np.ndarray | None], str | None]:
    """``files.png`` remembering the arrays of one request (each is encoded once)."""
    memo: dict[int, str | None] = {}
    keep: list[np.ndarray] = []  # ids stay unique while the arrays live

    def save(pixels: np.ndarray | None) -> str | None:
        if pixels is None:
            return None
        if id(pixels) not in memo:
            keep.append(pixels)
            memo[id(pixels)] = files.png(pixels)
        return memo[id(pixels)]

    return save


def compare_page_updates(
    view: DenoiseView, save: Callable[[np.ndarray | None], str | None]
) -> list[Update]:
    """The Compare tab's updates: noisy and target labels; per catalogued backbone its
    header, plain (or only) output, WNE output and slider; the scores table; the notes."""
    out: list[Update] = [{"label": view.noisy_label}, {"label": view.target_label}]
    for p in view.panels:
        slider = (save(p.slider[0]), save(p.slider[1])) if p.slider is not None else None
        out += [
            {"value": p.header, "visible": p.visible},
            {"value": save(p.left), "label": p.left_label or "–", "visible": p.visible},
            {
                "value": save(p.right),
                "label": p.right_label or "–",
                "visible": p.visible and p.right_visible,
            },
            {"value": slider, "label": p.slider_label or "–", "visible": p.visible},
        ]
    out += [
        {"frame": [dict(zip(TABLE_HEADERS, row, strict=True)) for row in view.table]},
        {"value": view.notes},
    ]
    return out


def inside_page_updates(
    view: InsideView, save: Callable[[np.ndarray | None], str | None]
) -> list[Update]:
    """The Inside WNE tab's updates: per step its text and two pictures (hidden when
    missing), then the table of numbers."""
    out: list[Update] = []
    for i in range(INSIDE_STEPS):
        step = view.steps[i] if i < len(view.steps) else None
        out.append({"value": f"### {step.title}\n\n{step.text}" if step else ""})
        images = step.images if step else []
        for k in range(2):
            img, caption = images[k] if k < len(images) else (None, "–")
            out.append({"value": save(img), "label": caption, "visible": img is not None})
    out.append({"value": view.text})
    return out


def restore_page_updates(view: RestoreView) -> list[Update]:
    """The Restore tab's updates: the captions of the observed image and of the plain and
    WNE results, the σ̂ and PSNR plots (rows, x-axis spanning the step budget), the text."""
    budget = [0, view.summary["settings"]["max_steps"]]
    return [
        {"label": view.observed_label},
        *({"label": label} for label in view.labels),
        {"frame": view.sigma_rows, "x_lim": budget},
        {"frame": view.psnr_rows, "x_lim": budget},
        {"value": view.text},
    ]


class Endpoints:
    """The demo's event functions around one :class:`~wne.demo.handlers.DemoHandlers`.

    Attributes:
        denoise: ``(image, a, b, sigma, seed, sigma_train, backbones, order, max_side,
            clip, progress) -> (noisy, target, gallery, summary, page updates)``, a
            generator: the noisy input and target first (every model "computing…",
            listed in the summary's ``pending``), then after each model; the complete
            result last (what ``gradio_client``'s ``predict`` returns).
        equivariance: ``(image, a, b, sigma, seed, sigma_train, backbone, max_side, clip,
            progress) -> (gallery of maps, defects, page updates)``.
        sweep: ``(image, a, b, seed, sigma_train, backbones, order, clip, noise,
            read_noise, checkpoint, progress) -> ({title, rows, notes, x_title}, page
            updates)``.
        inside: ``(image, a, b, sigma, seed, sigma_train, backbone, max_side, clip, noise,
            photons, read_noise, quality, checkpoint, progress) -> (gallery of the steps'
            pictures, numbers, page updates)``.
        restore: ``(image, task, keep, hole, factor, noise_sigma, backbone, sigma_train,
            seed, max_steps, max_side, color, progress)`` yielding ``(observed, plain
            result, WNE result, summary, page updates)`` per snapshot (a generator).
        restorer: The Restore page's handler (its :meth:`~wne.demo.restore.Restorer.params`
            build the tab's controls).

    ``denoise`` and ``equivariance`` also take ``noise, photons, read_noise, quality,
    checkpoint`` last (defaults: Gaussian noise and the best available checkpoints).

    Args:
        handlers: The handlers.
        files: Where output images are written.
        upload_roots: The folders a request's image may name (Gradio's upload
            folder, the examples); any other server path is refused.
    """

    def __init__(
        self, handlers: DemoHandlers, files: OutputFiles, upload_roots: Sequence[str | Path]
    ) -> None:
        self.handlers = handlers
        self.files = files
        self.upload_roots = list(upload_roots)
        self.denoise = self._function(ENDPOINTS["denoise"], self._denoise, stream=True)
        self.equivariance = self._function(ENDPOINTS["equivariance"], self._equivariance)
        self.sweep = self._function(ENDPOINTS["sweep"], self._sweep)
        self.inside = self._function(ENDPOINTS["inside"], self._inside)
        self.restorer = Restorer(handlers.zoo, gpu=handlers.gpu_hook)
        self.restore = self._function(ENDPOINTS["restore"], self._restore)

    def _function(
        self,
        endpoint: Endpoint,
        run: Callable[[Any, Any, dict[str, Any]], Any],
        stream: bool = False,
    ) -> Callable[..., Any]:
        """The event function of an endpoint: its signature names the API's parameters
        (Gradio reads it, and injects ``gr.Progress`` through the ``progress`` default).
        With ``stream``, ``run`` yields the outputs and the function is a generator
        (Gradio streams each yield to the page and to API clients)."""
        import gradio as gr

        kind, empty = inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.empty
        # settings added later (noise: issue 14, checkpoint: issue 16) come last: direct calls
        # may leave them out (Gaussian noise, the best available checkpoints)
        optional = {name: params()[name].default for name in OPTIONAL_CONTROLS}
        signature = inspect.Signature(
            [
                inspect.Parameter("image", kind),
                *(
                    inspect.Parameter(name, kind, default=optional.get(name, empty))
                    for name in endpoint.params
                ),
                inspect.Parameter("progress", kind, default=gr.Progress()),
            ]
        )

        def prepare(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Any, dict]:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            values = dict(bound.arguments)
            image = require_uploaded(values.pop("image"), self.upload_roots)
            return image, values.pop("progress"), values

        def call(*args: Any, **kwargs: Any) -> tuple[Any, ...]:
            return run(*prepare(args, kwargs))

        def call_streaming(*args: Any, **kwargs: Any) -> Iterator[tuple[Any, ...]]:
            yield from run(*prepare(args, kwargs))

        # Gradio streams a generator function's values (the comparison, the restore walks)
        streams = stream or inspect.isgeneratorfunction(run)
        call = call_streaming if streams else call  # type: ignore[assignment]
        call.__signature__ = signature  # type: ignore[attr-defined]
        call.__name__ = call.__qualname__ = endpoint.name
        call.__doc__ = endpoint.description
        call.__annotations__ = {}
        return user_facing(call)

    def _denoise(self, image: Any, progress: Any, raw: dict[str, Any]) -> Iterator[tuple[Any, ...]]:
        """The comparison as it comes: noisy input and target first, then each model.

        A partial step leaves the noisy input and target :data:`UNCHANGED` once they were
        sent (an API client fetches every file of every step; the page keeps what it
        shows); the last step, what ``predict`` returns, carries every output.
        """
        sent: tuple[str | None, str | None] | None = None
        for view in self.handlers.denoise_stream(image, progress=progress, **raw):
            save = _saver(self.files)
            gallery = [(save(img), caption) for img, caption in view.gallery]
            page = compare_page_updates(view, save)
            inputs = save(view.noisy), save(view.target)
            partial = bool(view.summary.get("pending"))
            shown: tuple[Any, Any] = (
                (UNCHANGED, UNCHANGED) if partial and inputs == sent else inputs
            )
            sent = inputs
            yield *shown, gallery, view.summary, page

    def _equivariance(self, image: Any, progress: Any, raw: dict[str, Any]) -> tuple[Any, ...]:
        view = self.handlers.equivariance(image, progress=progress, **raw)
        save = _saver(self.files)
        gallery = [(save(m), caption) for m, caption in view.gallery]
        return gallery, view.summary, [{"value": view.text}]

    def _sweep(self, image: Any, progress: Any, raw: dict[str, Any]) -> tuple[Any, ...]:
        view = self.handlers.sweep(image, progress=progress, **raw)
        curves = {"title": view.title, "rows": view.rows, "notes": view.notes}
        plot = {"frame": view.rows, "x_title": view.x_title, "title": view.plot_title}
        return curves, [plot, {"value": f"**{view.title}**\n\n{view.notes}"}]

    def _inside(self, image: Any, progress: Any, raw: dict[str, Any]) -> tuple[Any, ...]:
        view = self.handlers.inside(image, progress=progress, **raw)
        save = _saver(self.files)
        gallery = [(save(img), caption) for img, caption in view.gallery]
        return gallery, view.summary, inside_page_updates(view, save)

    def _restore(self, image: Any, progress: Any, raw: dict[str, Any]) -> Iterator[tuple[Any, ...]]:
        save = _saver(self.files)
        for view in self.restorer.restore(image, progress=progress, **raw):
            images = [save(view.observed), *(save(img) for img in view.images)]
            yield (*images, view.summary, restore_page_updates(view))
