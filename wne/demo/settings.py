"""The demo's settings, defined once: defaults, ranges, labels and validation.

:class:`Settings` is the one definition of a request's controls. Each field
carries a :class:`Param` (label, range, step, choices, help) in its metadata;
from it the app builds the page's controls, the API's parameters (names,
order, defaults) and :func:`parse_settings`, the single validation layer that
every value from a browser or an API client passes through. Problems raise
:class:`DemoInputError`, whose message names the argument and the accepted
range; the app turns it into a ``gr.Error`` in one place
(:func:`wne.demo.errors.user_facing`).

:class:`RestoreSettings` is the same for the "Restore from a few pixels" page
(:mod:`wne.demo.restore`, ``/restore``), validated by :func:`parse_restore_settings`.

Values that depend on the hardware or on the loaded models (the working size's
default and upper limit, the default backbones and σ_train) are resolved by
:meth:`wne.demo.handlers.DemoHandlers.params` from these definitions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from wne import catalog

__all__ = [
    "BACKBONE",
    "BEST",
    "CHECKPOINTS",
    "COMPARE_PARAMS",
    "DEFAULT_BACKBONES",
    "EQUIVARIANCE_PARAMS",
    "INSIDE_BACKBONE",
    "INSIDE_PARAMS",
    "NOISE_CONTROLS",
    "NOISE_LEVEL",
    "NOISE_PARAMS",
    "NOISE_TYPES",
    "OPTIONAL_CONTROLS",
    "ORDERS",
    "RESTORE_LEVEL",
    "RESTORE_PARAMS",
    "RESTORE_TASKS",
    "SWEEP_PARAMS",
    "DemoInputError",
    "Param",
    "RestoreSettings",
    "Settings",
    "params",
    "parse_choice",
    "parse_choices",
    "parse_flag",
    "parse_number",
    "parse_param",
    "parse_restore_settings",
    "parse_settings",
    "restore_params",
    "shown_noise_controls",
    "shown_restore_controls",
]

ORDERS: dict[str, str] = {
    "shift-then-noise": "shift the clean scene, then add noise",
    "noise-then-shift": "add noise, then shift the noisy image",
}
NOISE_TYPES: dict[str, str] = {
    "gaussian": "Gaussian",
    "uniform": "uniform",
    "laplace": "Laplace",
    "rayleigh": "Rayleigh (not zero-mean: it also brightens the image)",
    "lowlight": "low light (Poisson–Gaussian: few photons)",
    "jpeg": "JPEG of the noisy image",
}
"""The noise types (:mod:`wne.degrade`) by key, with their labels on the page."""
NOISE_LEVEL: dict[str, str] = {
    "gaussian": "sigma",
    "uniform": "sigma",
    "laplace": "sigma",
    "rayleigh": "sigma",
    "lowlight": "photons",
    "jpeg": "quality",
}
"""The setting that is a noise type's level (the noise sweep's x-axis)."""
NOISE_PARAMS: dict[str, tuple[str, ...]] = {
    "gaussian": ("sigma",),
    "uniform": ("sigma",),
    "laplace": ("sigma",),
    "rayleigh": ("sigma",),
    "lowlight": ("photons", "read_noise"),
    "jpeg": ("sigma", "quality"),
}
"""The settings each noise type uses (only these are shown on the page)."""
DEFAULT_BACKBONES: tuple[str, ...] = ("dncnn", "swinir")
"""The backbones compared by default: a CNN and a transformer."""
BEST = "best"
CHECKPOINTS: dict[str, str] = {
    BEST: "best available (highest Set12 PSNR)",
    **{size: catalog.SIZE_LABELS[size] for size in catalog.SIZES},
}
"""Which checkpoint fills a slot (:meth:`wne.demo.zoo.Zoo.select`): the best available
one (:data:`BEST`, ranked by the Set12 PSNR its ``config.json`` records), or one size."""


class DemoInputError(ValueError):
    """A problem with a user's request; the message names it and is shown as is."""


@dataclass(frozen=True)
class Param:
    """How one request argument is shown, documented and validated.

    Attributes:
        kind: ``"float"``, ``"int"``, ``"choice"``, ``"choices"`` or ``"flag"``.
        label: The control's label on the page.
        arg: The argument's name in error messages (``"contrast a"``).
        default: The default value (the page's initial value, the API's default).
        lo: Smallest accepted number.
        hi: Largest accepted number.
        step: The slider's step.
        choices: ``(label, value)`` pairs of a choice; every value is accepted.
        info: One line of help under the control.
        name: The argument's name in the API (set by :func:`params`).
    """

    kind: str
    label: str
    arg: str
    default: Any = None
    lo: float | None = None
    hi: float | None = None
    step: float | None = None
    choices: tuple[tuple[str, Any], ...] = ()
    info: str = ""
    name: str = ""

    @property
    def values(self) -> list[Any]:
        """The accepted values of a choice."""
        return [v for _, v in self.choices]


def _spec(default: Any, param: Param) -> Any:
    """A dataclass field whose default and :class:`Param` are given together."""
    return field(default=default, metadata={"param": replace(param, default=default)})


def _choice(default: str, label: str, arg: str, options: Mapping[str, str], info: str = "") -> Any:
    """A choice field whose values are the keys of ``options`` (value → its text on the page)."""
    choices = tuple((text, key) for key, text in options.items())
    return _spec(default, Param("choice", label, arg, choices=choices, info=info))


_FAMILIES = tuple((f.label, f.id) for f in catalog.families(zoo_only=True))


@dataclass(frozen=True)
class Settings:
    """One validated request (the fields' metadata define the controls).

    Attributes:
        a: Contrast factor, ``x → a·x + b``.
        b: Brightness offset in [0, 1] units.
        sigma: Test noise level on the 0–255 scale.
        seed: Noise seed.
        sigma_train: The models' training noise level (selects checkpoints).
        backbones: Backbone ids to show, in display order.
        order: ``"shift-then-noise"`` (target ``a·x+b`` observed with noise σ) or
            ``"noise-then-shift"`` (the noisy image ``x+n`` is shifted, so the
            noise becomes ``a·σ``).
        max_side: Working size: longest side of the processed image in pixels
            (the hardware may lower the upper limit and change the default).
        clip: Clip the model inputs (and outputs) to [0, 1], as an 8-bit image
            would be; this breaks exact equivariance where values saturate.
        noise: The noise type, a key of :data:`NOISE_TYPES` (``"gaussian"``: the
            original behaviour, bit for bit).
        photons: Low light: expected photons per pixel at white.
        read_noise: Low light: the sensor's read noise in photo-electrons.
        quality: JPEG: the quality factor applied to the noisy image.
        checkpoint: Which checkpoint of each model runs, a key of :data:`CHECKPOINTS`
            (``"best"``: the best available by recorded Set12 PSNR).
    """

    a: float = _spec(
        1.0,
        Param("float", "contrast a", "contrast a", lo=0.1, hi=4.0, step=0.01, info="x → a·x + b"),
    )
    b: float = _spec(
        0.0,
        Param(
            "float",
            "brightness b",
            "brightness b",
            lo=-1.0,
            hi=1.0,
            step=0.01,
            info="in [0, 1] units",
        ),
    )
    sigma: float = _spec(
        25.0, Param("float", "noise σ (0–255 scale)", "noise sigma", lo=0.0, hi=100.0, step=1)
    )
    seed: int = _spec(0, Param("int", "noise seed", "seed", lo=0, hi=2**31 - 1))
    sigma_train: int = _spec(
        25,
        Param(
            "choice",
            "models' training σ",
            "training sigma",
            choices=tuple((f"σ = {s}", s) for s in catalog.SIGMA_TRAINS),
        ),
    )
    backbones: tuple[str, ...] = _spec(
        DEFAULT_BACKBONES, Param("choices", "backbones", "backbones", choices=_FAMILIES)
    )
    order: str = _choice("shift-then-noise", "order of operations", "order of operations", ORDERS)
    max_side: int = _spec(
        256,
        Param(
            "int",
            "working size (longest side, px)",
            "working size",
            lo=32,
            hi=2048,
            step=16,
            info="larger images are downscaled; large ones run in tiles",
        ),
    )
    clip: bool = _spec(
        False,
        Param(
            "flag",
            "clip to [0, 1]",
            "clip to [0,1]",
            info="as an 8-bit image would be; breaks exact equivariance where values saturate",
        ),
    )

    # New fields go last: /denoise's older positional calls keep working.
    noise: str = _choice(
        "gaussian",
        "noise type",
        "noise type",
        NOISE_TYPES,
        "Rayleigh is not zero-mean; low light and JPEG report an equivalent σ",
    )
    photons: float = _spec(
        20.0,
        Param(
            "float",
            "photons per pixel at white",
            "photons at white",
            lo=1.0,
            hi=1000.0,
            step=1,
            info="low light: fewer photons, more (signal-dependent) noise",
        ),
    )
    read_noise: float = _spec(
        1.0,
        Param(
            "float",
            "read noise (photo-electrons)",
            "read noise",
            lo=0.0,
            hi=20.0,
            step=0.1,
            info="low light: the sensor's own Gaussian noise",
        ),
    )
    quality: int = _spec(
        30,
        Param(
            "int",
            "JPEG quality",
            "JPEG quality",
            lo=1,
            hi=95,
            step=1,
            info="applied to the noisy image (1 worst, 95 best)",
        ),
    )

    checkpoint: str = _choice(
        BEST,
        "checkpoints",
        "checkpoint",
        CHECKPOINTS,
        "which trained models run; the notes name the checkpoints that ran",
    )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the backbones as a list)."""
        out = asdict(self)
        out["backbones"] = list(self.backbones)
        return out


BACKBONE = Param(
    "choice",
    "backbone",
    "backbone",
    default=DEFAULT_BACKBONES[0],
    choices=_FAMILIES,
    name="backbone",
)
"""The equivariance tab's single backbone (not a :class:`Settings` field)."""
INSIDE_BACKBONE = replace(
    BACKBONE,
    choices=tuple((f.label, f.id) for f in catalog.families(zoo_only=True) if "wne" in f.variants),
    info="a backbone with a WNE wrapper",
)
"""The "Inside WNE" tab's backbone: only the wrapped ones (API name ``backbone`` too)."""
NOISE_CONTROLS: tuple[str, ...] = ("noise", "photons", "read_noise", "quality")
"""The noise settings (after the original :class:`Settings` fields), appended to every
endpoint."""
OPTIONAL_CONTROLS: tuple[str, ...] = (*NOISE_CONTROLS, "checkpoint")
"""The settings added after the original ones, last in every endpoint (a direct call may
leave them out: Gaussian noise, the best available checkpoints)."""

COMPARE_PARAMS: tuple[str, ...] = tuple(f.name for f in fields(Settings))
"""The arguments of ``/denoise`` after the image, in API order."""
EQUIVARIANCE_PARAMS: tuple[str, ...] = (
    "a",
    "b",
    "sigma",
    "seed",
    "sigma_train",
    "backbone",
    "max_side",
    "clip",
    *NOISE_CONTROLS,
    "checkpoint",
)
"""The arguments of ``/equivariance`` after the image, in API order."""
INSIDE_PARAMS: tuple[str, ...] = EQUIVARIANCE_PARAMS
"""The arguments of ``/inside`` after the image, in API order (``backbone``: a wrapped one)."""
SWEEP_PARAMS: tuple[str, ...] = (
    "a",
    "b",
    "seed",
    "sigma_train",
    "backbones",
    "order",
    "clip",
    "noise",
    "read_noise",
    "checkpoint",
)
"""The arguments of ``/sweep`` after the image, in API order (the noise level is swept, the
working size fixed; JPEG is applied to Gaussian noise of σ = 25)."""


def params() -> dict[str, Param]:
    """Every request argument's :class:`Param` by name (the :class:`Settings` fields, then
    ``backbone``), before any hardware- or zoo-specific adjustment."""
    out = {f.name: replace(f.metadata["param"], name=f.name) for f in fields(Settings)}
    out["backbone"] = BACKBONE
    return out


def shown_noise_controls(kind: Any) -> dict[str, bool]:
    """Which level controls the page shows for a noise type (:data:`NOISE_PARAMS`).

    Args:
        kind: A key of :data:`NOISE_TYPES` (anything else counts as Gaussian).

    Returns:
        ``{"sigma", "photons", "read_noise", "quality"}`` → shown.
    """
    used = NOISE_PARAMS.get(kind, NOISE_PARAMS["gaussian"]) if isinstance(kind, str) else ()
    used = used or NOISE_PARAMS["gaussian"]
    return {name: name in used for name in ("sigma", "photons", "read_noise", "quality")}


# --------------------------------------------------------------------------- parsers


def parse_number(
    value: Any,
    name: str,
    lo: float,
    hi: float,
    *,
    integer: bool = False,
) -> float | int:
    """Parses a finite number within ``[lo, hi]``.

    Accepts ints, floats and numeric strings (API clients send either).

    Args:
        value: The raw value.
        name: The argument's name, used in the message.
        lo: Smallest accepted value.
        hi: Largest accepted value.
        integer: Require an integral value and return an ``int``.

    Returns:
        The number.

    Raises:
        DemoInputError: If the value is missing, not numeric, not finite, not
            integral when required, or out of range.
    """
    if value is None or isinstance(value, bool):
        raise DemoInputError(f"{name} must be a number in [{lo:g}, {hi:g}], got {value!r}")
    if isinstance(value, str):
        text = value.strip()
        try:
            value = float(text)
        except ValueError:
            raise DemoInputError(
                f"{name} must be a number in [{lo:g}, {hi:g}], got {text[:40]!r}"
            ) from None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise DemoInputError(
            f"{name} must be a number in [{lo:g}, {hi:g}], got a {type(value).__name__}"
        ) from None
    if not math.isfinite(number):
        raise DemoInputError(f"{name} must be a finite number, got {number}")
    if integer and number != int(number):
        raise DemoInputError(f"{name} must be a whole number, got {number:g}")
    if not lo <= number <= hi:
        raise DemoInputError(f"{name} must be in [{lo:g}, {hi:g}], got {number:g}")
    return int(number) if integer else number


def parse_flag(value: Any, name: str) -> bool:
    """Parses a boolean (``True/False``, ``0/1``, ``"true"/"false"``).

    Raises:
        DemoInputError: On anything else.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    raise DemoInputError(f"{name} must be true or false, got {value!r}")


def parse_choice(value: Any, name: str, allowed: Iterable[Any]) -> Any:
    """Parses one value from ``allowed``; numeric choices also accept numeric strings.

    Raises:
        DemoInputError: If ``value`` is not one of them.
    """
    allowed = list(allowed)
    if allowed and all(isinstance(v, int) for v in allowed):
        number = parse_number(value, name, 0, 1000)
        if number not in allowed:
            raise DemoInputError(f"{name} must be one of {allowed}, got {number:g}")
        return int(number)
    if not isinstance(value, str) or value not in allowed:
        raise DemoInputError(f"{name} must be one of {allowed}, got {value!r}")
    return value


def parse_choices(
    values: Any, name: str, allowed: Sequence[str], *, min_count: int = 1
) -> tuple[str, ...]:
    """Parses a list of distinct values from ``allowed``, returned in ``allowed``'s order.

    A single string is accepted as a one-element list.

    Raises:
        DemoInputError: On unknown values or fewer than ``min_count`` of them.
    """
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list | tuple):
        raise DemoInputError(f"{name} must be a list drawn from {list(allowed)}, got {values!r}")
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise DemoInputError(f"{name}: unknown value(s) {unknown}; choose from {list(allowed)}")
    if len(set(values)) < min_count:
        raise DemoInputError(f"{name}: choose at least {min_count} of {list(allowed)}")
    return tuple(v for v in allowed if v in values)


def parse_param(param: Param, value: Any) -> Any:
    """Validates one raw value against its :class:`Param`.

    Raises:
        DemoInputError: Naming the argument (``param.arg``) and what it accepts.
    """
    if param.kind in ("float", "int"):
        assert param.lo is not None and param.hi is not None
        number = parse_number(value, param.arg, param.lo, param.hi, integer=param.kind == "int")
        return int(number) if param.kind == "int" else float(number)
    if param.kind == "choice":
        return parse_choice(value, param.arg, param.values)
    if param.kind == "choices":
        return parse_choices(value, param.arg, param.values)
    if param.kind == "flag":
        return parse_flag(value, param.arg)
    raise ValueError(f"unknown parameter kind {param.kind!r}")


def parse_settings(
    *args: Any,
    max_side_limit: int | None = None,
    defaults: Mapping[str, Any] | None = None,
    **raw: Any,
) -> Settings:
    """Validates the raw controls of a request.

    Arguments may be given by name or positionally in :class:`Settings` field
    order; those left out take their default.

    Args:
        *args: Raw values in field order (``a, b, sigma, ...``).
        max_side_limit: A lower upper bound for ``max_side`` (e.g. on CPU).
        defaults: Defaults overriding the fields' own (e.g. the hardware's working size).
        **raw: Raw values by name.

    Returns:
        The settings.

    Raises:
        DemoInputError: Naming the first invalid (or unknown) argument.
    """
    return _parse_fields(Settings, params(), args, raw, max_side_limit, defaults)


def _parse_fields(
    cls: type[Any],
    spec: dict[str, Param],
    args: Sequence[Any],
    raw: Mapping[str, Any],
    max_side_limit: int | None,
    defaults: Mapping[str, Any] | None,
) -> Any:
    """``cls(**values)`` from raw values given positionally (in field order) or by name,
    each validated by its :class:`Param` in ``spec`` (those left out: ``defaults``, else
    the field's own), ``max_side``'s upper limit lowered to ``max_side_limit``."""
    names = [f.name for f in fields(cls)]
    if len(args) > len(names):
        raise DemoInputError(f"at most {len(names)} settings, got {len(args)}")
    values = dict(zip(names, args, strict=False))
    unknown = sorted(set(raw) - set(names))
    if unknown:
        raise DemoInputError(f"unknown argument(s) {unknown}; expected some of {names}")
    values.update(raw)
    if max_side_limit is not None:
        hi = min(max_side_limit, spec["max_side"].hi or max_side_limit)
        spec["max_side"] = replace(spec["max_side"], hi=hi)
    out = {}
    for name in names:
        default = (defaults or {}).get(name, spec[name].default)
        out[name] = parse_param(spec[name], values.get(name, default))
    return cls(**out)


# --------------------------------------------------------------------------- restore page

RESTORE_TASKS: dict[str, str] = {
    "inpaint": "inpainting: keep a random fraction of the pixels",
    "center_hole": "fill a hole in the centre",
    "superres": "super-resolution from block means",
    "denoise": "denoising, stopped by the residual",
}
"""The sampler's tasks (:mod:`wne.sampler`) by key, with their labels on the page."""
RESTORE_LEVEL: dict[str, str] = {
    "inpaint": "keep",
    "center_hole": "hole",
    "superres": "factor",
    "denoise": "noise_sigma",
}
"""The setting that is a task's level (only it is shown on the page for that task)."""
_PAIRED = tuple(
    (f.label, f.id)
    for f in catalog.families(zoo_only=True)
    if "plain" in f.variants and "wne" in f.variants
)


@dataclass(frozen=True)
class RestoreSettings:
    """One validated request of the "Restore from a few pixels" page (``/restore``).

    Attributes:
        task: A key of :data:`RESTORE_TASKS`.
        keep: ``inpaint``: the percentage of pixels observed (a seeded random mask).
        hole: ``center_hole``: the hidden centred square's share of the area, in percent.
        factor: ``superres``: the block side; the block means are observed.
        noise_sigma: ``denoise``: the noise of the start ``y0 = x + σ·z`` (0–255 scale).
        backbone: A backbone with plain and WNE variants; both run, side by side.
        sigma_train: The models' training noise level (the sampler works best with 10).
        seed: Seed of the mask, the initial state and the injected noise.
        max_steps: The step budget of each walk (the hardware sets the default).
        max_side: Working size: longest side in pixels (the hardware sets the default
            and the upper limit).
        color: Restore the three colour channels (3× the time); else the grayscale image.
    """

    task: str = _spec(
        "inpaint",
        Param(
            "choice",
            "task",
            "task",
            choices=tuple((text, key) for key, text in RESTORE_TASKS.items()),
        ),
    )
    keep: float = _spec(
        10.0,
        Param(
            "float",
            "pixels kept (%)",
            "kept pixels (%)",
            lo=1.0,
            hi=100.0,
            step=1,
            info="a random mask; the paper keeps 10 %",
        ),
    )
    hole: float = _spec(
        25.0,
        Param("float", "hole (% of the area)", "hole size (%)", lo=5.0, hi=75.0, step=1),
    )
    factor: int = _spec(
        4,
        Param(
            "choice",
            "super-resolution factor",
            "super-resolution factor",
            choices=(("×2", 2), ("×4", 4), ("×8", 8)),
            info="each factor × factor block is seen only through its mean",
        ),
    )
    noise_sigma: float = _spec(
        10.0,
        Param(
            "float",
            "noise σ of the start (0–255 scale)",
            "start noise sigma",
            lo=1.0,
            hi=100.0,
            step=1,
            info="the walk stops when σ̂ ≤ 1 (the paper starts at 10)",
        ),
    )
    backbone: str = _spec(
        DEFAULT_BACKBONES[0], Param("choice", "backbone", "backbone", choices=_PAIRED)
    )
    sigma_train: int = _spec(
        10,
        Param(
            "choice",
            "models' training σ",
            "training sigma",
            choices=tuple((f"σ = {s}", s) for s in catalog.SIGMA_TRAINS),
            info="the sampler's models are trained at σ = 10 in the paper",
        ),
    )
    seed: int = _spec(
        0, Param("int", "seed", "seed", lo=0, hi=2**31 - 1, info="mask, start and injected noise")
    )
    max_steps: int = _spec(
        150,
        Param(
            "int",
            "step budget",
            "step budget",
            lo=1,
            hi=1000,
            step=1,
            info="each walk stops here if σ̂ has not reached σ_L (the paper allows 1000)",
        ),
    )
    max_side: int = _spec(
        128,
        Param(
            "int",
            "working size (longest side, px)",
            "working size",
            lo=32,
            hi=512,
            step=16,
            info="larger images are downscaled",
        ),
    )
    color: bool = _spec(
        False,
        Param(
            "flag",
            "restore in colour",
            "colour",
            info="3× the time; off: the grayscale image, as the paper",
        ),
    )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


RESTORE_PARAMS: tuple[str, ...] = tuple(f.name for f in fields(RestoreSettings))
"""The arguments of ``/restore`` after the image, in API order."""


def restore_params() -> dict[str, Param]:
    """Every ``/restore`` argument's :class:`Param` by name, before any hardware- or
    zoo-specific adjustment."""
    return {f.name: replace(f.metadata["param"], name=f.name) for f in fields(RestoreSettings)}


def shown_restore_controls(task: Any) -> dict[str, bool]:
    """Which level control the page shows for a task (:data:`RESTORE_LEVEL`).

    Args:
        task: A key of :data:`RESTORE_TASKS` (anything else counts as inpainting).

    Returns:
        ``{"keep", "hole", "factor", "noise_sigma"}`` → shown.
    """
    level = RESTORE_LEVEL.get(task, "keep") if isinstance(task, str) else "keep"
    return {name: name == level for name in RESTORE_LEVEL.values()}


def parse_restore_settings(
    *args: Any,
    max_side_limit: int | None = None,
    defaults: Mapping[str, Any] | None = None,
    **raw: Any,
) -> RestoreSettings:
    """Validates the raw controls of a ``/restore`` request (as :func:`parse_settings`).

    Args:
        *args: Raw values in :class:`RestoreSettings` field order.
        max_side_limit: A lower upper bound for ``max_side`` (e.g. on CPU).
        defaults: Defaults overriding the fields' own (e.g. the hardware's step budget).
        **raw: Raw values by name.

    Returns:
        The settings.

    Raises:
        DemoInputError: Naming the first invalid (or unknown) argument.
    """
    return _parse_fields(RestoreSettings, restore_params(), args, raw, max_side_limit, defaults)
