"""Typed page settings: one frozen dataclass per page is the one schema of that page.

Each field is declared with :func:`setting` (its default, label, help, range or choices in the
field's metadata). From that one declaration ``app.py`` builds the page's control and the named
API endpoint's parameter, the scenario links read their values, and :class:`Form` checks every
value a client, a link or the page sends. A new setting is one field. No Gradio here.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import sys
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Generic, TypeVar

from wne.degrade import NOISES
from wne.demo.errors import DemoInputError

T = TypeVar("T")


@dataclass(frozen=True)
class Spec:
    """How a setting is shown and checked.

    Attributes:
        label: The control's label (also the name in error messages).
        info: One line of help.
        lo, hi, step: A number's range and step.
        choices: ``(label, value)`` pairs of a choice (or of a multiple choice).
        widget: ``"number"`` for a number box, ``"dropdown"`` for a drop-down (default: a
            slider for numbers, radio buttons for choices).
        elem_id: The control's HTML id.
    """

    label: str
    info: str = ""
    lo: float | None = None
    hi: float | None = None
    step: float | None = None
    choices: tuple[tuple[str, Any], ...] = ()
    widget: str = ""
    elem_id: str | None = None

    @property
    def values(self) -> list[Any]:
        """The allowed values of a choice."""
        return [v for _, v in self.choices]


def setting(default: Any, label: str, **spec: Any) -> Any:
    """A settings dataclass field: its default and its :class:`Spec`."""
    if "choices" in spec:
        spec["choices"] = tuple(spec["choices"])
    return field(default=default, metadata={"spec": Spec(label, **spec)})


def noise_setting(name: str) -> Any:
    """The field of a noise parameter, as :data:`wne.degrade.NOISES` defines it."""
    p = next(p for n in NOISES.values() for p in n.params if p.name == name)
    default = int(p.default) if p.integer else float(p.default)
    elem_id = f"noise-{name.replace('_', '-')}"
    return setting(default, p.label, info=p.info, lo=p.lo, hi=p.hi, step=p.step, elem_id=elem_id)


@dataclass(frozen=True)
class Setting:
    """One field of a settings class: name, type (``float``, ``int``, ``bool``, ``str`` or
    ``tuple`` of strings), default and :class:`Spec`."""

    name: str
    kind: type
    default: Any
    spec: Spec

    @property
    def hint(self) -> Any:
        """The type an API client sends (a list for a multiple choice)."""
        return list[str] if self.kind is tuple else self.kind


@functools.cache
def settings_of(cls: type) -> tuple[Setting, ...]:
    """The settings of a dataclass declared with :func:`setting`, in field order."""
    hints = typing.get_type_hints(cls)
    return tuple(
        Setting(
            f.name, typing.get_origin(hints[f.name]) or hints[f.name], f.default, f.metadata["spec"]
        )
        for f in fields(cls)
    )


def typed(obj: Any) -> None:
    """Gives a frozen settings dataclass's fields their declared types (``1`` → ``1.0``,
    lists → tuples), so equal requests are equal, whoever sent them (and share a cache key).
    Call it from ``__post_init__``."""
    for s in settings_of(type(obj)):
        object.__setattr__(obj, s.name, s.kind(getattr(obj, s.name)))


def derive(
    cls: type,
    name: str,
    *,
    drop: Iterable[str] = (),
    replace: Mapping[str, tuple[str, type, Any]] | None = None,
    add: Iterable[tuple[str, type, Any]] = (),
    doc: str = "",
    namespace: Mapping[str, Any] | None = None,
) -> type:
    """A settings class made from another's fields: ``drop`` some, ``replace`` some by
    ``(name, type, setting(...))`` in their place, ``add`` more after them; frozen, typed,
    with ``to_dict``."""
    replace, hints = replace or {}, typing.get_type_hints(cls)
    made = [
        replace[f.name] if f.name in replace else (f.name, hints[f.name], _copy(f))
        for f in fields(cls)
        if f.name not in set(drop)
    ] + list(add)
    ns = {"__post_init__": typed, "to_dict": to_dict, "__doc__": doc, **(namespace or {})}
    made_cls = dataclasses.make_dataclass(name, made, frozen=True, namespace=ns)
    made_cls.__module__ = sys._getframe(1).f_globals["__name__"]  # where it is defined: pickles
    return made_cls


def _copy(f: dataclasses.Field) -> Any:
    return field(default=f.default, metadata=f.metadata)


def to_dict(obj: Any) -> dict[str, Any]:
    """A settings object's JSON-ready form (tuples as lists)."""
    return {
        s.name: list(v) if isinstance(v := getattr(obj, s.name), tuple) else v
        for s in settings_of(type(obj))
    }


class Form(Generic[T]):
    """A page's settings class with the page's own defaults (found at start: models,
    working size) and device limits (a number's range, a choice's labels): what its
    controls show, its API endpoint's defaults, and the check of every value sent.

    Args:
        cls: The settings dataclass.
        defaults: Field values replacing the class's defaults.
        spec: Per field, :class:`Spec` attributes replacing the class's (e.g. ``hi``).
    """

    def __init__(
        self,
        cls: type[T],
        defaults: Mapping[str, Any] | None = None,
        spec: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.cls = cls
        changes = spec or {}
        self.settings = {
            s.name: dataclasses.replace(
                s, spec=dataclasses.replace(s.spec, **changes.get(s.name, {}))
            )
            for s in settings_of(cls)
        }
        self.defaults: T = cls(
            **{**{s.name: s.default for s in settings_of(cls)}, **(defaults or {})}
        )

    @property
    def names(self) -> tuple[str, ...]:
        """The fields, in order (the API endpoint's parameters after the image)."""
        return tuple(self.settings)

    def default(self, name: str) -> Any:
        """A field's default on this page (a list for a multiple choice)."""
        value = getattr(self.defaults, name)
        return list(value) if isinstance(value, tuple) else value

    def from_values(self, values: Iterable[Any]) -> T:
        """The settings from every field's raw value, in order (a page's controls)."""
        return self.parse(dict(zip(self.names, values, strict=True)))

    def parse(self, values: Mapping[str, Any]) -> T:
        """The settings from raw ``values`` (missing fields take the page's defaults).

        Raises:
            DemoInputError: Naming the first bad value's setting and what it accepts.
        """
        unknown = set(values) - set(self.settings)
        if unknown:
            raise DemoInputError(f"unknown setting(s) {sorted(unknown)}; known: {list(self.names)}")
        checked = {n: self.check(n, v) for n, v in values.items()}
        return dataclasses.replace(self.defaults, **checked)

    def check(self, name: str, value: Any, label: str | None = None) -> Any:
        """One raw value (API client, link or page) checked against its setting.

        Raises:
            DemoInputError: Naming the setting (or ``label``) and what it accepts.
        """
        s = self.settings[name]
        return check(s.kind, s.spec, value, label or s.spec.label)


def check(kind: type, spec: Spec, value: Any, name: str) -> Any:
    """``value`` as a setting of type ``kind`` described by ``spec`` (lists for ``tuple``).

    Raises:
        DemoInputError: Naming ``name`` and what it accepts.
    """
    if kind is bool:
        text = str(value).strip().lower()
        if isinstance(value, bool) or text in ("true", "false", "1", "0"):
            return value if isinstance(value, bool) else text in ("true", "1")
        raise DemoInputError(f"{name} must be true or false, got {value!r}")
    allowed = spec.values
    if kind is tuple:
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list | tuple):
            raise DemoInputError(f"{name} must be a list drawn from {allowed}, got {value!r}")
        unknown = [v for v in values if v not in allowed]
        if unknown:
            raise DemoInputError(f"{name}: unknown value(s) {unknown}; choose from {allowed}")
        if not values:
            raise DemoInputError(f"{name}: choose at least 1 of {allowed}")
        return [v for v in allowed if v in values]
    if allowed:
        if kind is int and isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if value not in allowed or isinstance(value, bool):
            raise DemoInputError(f"{name} must be one of {allowed}, got {value!r}")
        return value
    lo, hi = spec.lo, spec.hi
    try:
        if isinstance(value, bool):
            raise TypeError
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError, AttributeError):
        raise DemoInputError(
            f"{name} must be a number in [{lo:g}, {hi:g}], got {str(value)[:40]!r}"
        ) from None
    if not math.isfinite(number):
        raise DemoInputError(f"{name} must be a finite number, got {value!r}")
    if kind is int and number != int(number):
        raise DemoInputError(f"{name} must be a whole number, got {number:g}")
    if not lo <= number <= hi:
        raise DemoInputError(f"{name} must be in [{lo:g}, {hi:g}], got {number:g}")
    return int(number) if kind is int else number
