"""One place where the demo's exceptions become messages for the user.

:func:`user_facing` wraps every event handler of the app: a
:class:`~wne.demo.settings.DemoInputError` (bad input, unavailable model)
becomes a ``gr.Error`` with its message; running out of memory becomes a
``gr.Error`` suggesting a smaller working size; anything else is logged with
its traceback and shown as a short internal-error message. In every case the
server keeps serving. Gradio is imported lazily, only when an error occurs.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Iterator
from typing import Any, NoReturn, TypeVar

import torch

from wne.demo.settings import DemoInputError

__all__ = ["user_facing", "user_message"]

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])


def user_message(exc: BaseException) -> str:
    """The message shown to the user for an exception raised by a handler."""
    if isinstance(exc, DemoInputError):
        return str(exc)
    if isinstance(exc, torch.OutOfMemoryError | MemoryError):
        return "Out of memory while denoising: lower the working size and try again."
    return f"Internal error ({type(exc).__name__}); the details are in the server log."


def user_facing(fn: F) -> F:
    """Wraps an event handler so every failure reaches the user as a ``gr.Error``.

    The wrapper keeps ``fn``'s signature (Gradio reads it to inject
    ``gr.Progress``). ``gr.Error`` raised by ``fn`` passes through unchanged. A
    generator function (a streaming handler) stays one: its failures while
    streaming are turned the same way.

    Args:
        fn: The handler.

    Returns:
        The wrapped handler.
    """

    def reraise(exc: Exception) -> NoReturn:
        import gradio as gr

        if isinstance(exc, gr.Error):
            raise exc
        if isinstance(exc, DemoInputError):
            log.info("rejected request: %s", exc)
            raise gr.Error(str(exc), print_exception=False) from None
        log.exception("handler %s failed", getattr(fn, "__name__", fn), exc_info=exc)
        raise gr.Error(user_message(exc), print_exception=False) from None

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def streaming(*args: Any, **kwargs: Any) -> Iterator[Any]:
            try:
                yield from fn(*args, **kwargs)
            except Exception as exc:
                reraise(exc)

        return streaming  # type: ignore[return-value]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            reraise(exc)

    return wrapper  # type: ignore[return-value]
