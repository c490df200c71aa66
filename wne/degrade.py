"""Degradations: contrast/brightness shifts, seeded noise models, JPEG.

Images are on the [0, 1] scale, σ on the 0–255 scale; noisy images are never clipped
(but by JPEG). :data:`NOISES` is the one table of noise models that training,
evaluation, the sampler CLI and the demo use; a new noise type is one entry.

The additive kinds (:data:`NOISE_KINDS`, the paper's App. P) are unit-std draws times
``σ / 255``: ``gaussian`` N(0, 1), ``uniform`` U[−√3, √3], ``laplace`` Laplace(0, 1/√2)
and ``rayleigh`` Rayleigh(1) / √((4 − π)/2), **not recentred** as the paper defines it
(mean :data:`RAYLEIGH_MEAN` ≈ 1.913 times σ/255: it also brightens the image).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import torch

__all__ = [
    "NOISES",
    "NOISE_KINDS",
    "RAYLEIGH_MEAN",
    "Noise",
    "NoiseParam",
    "add_gaussian_noise",
    "add_noise",
    "equivalent_sigma",
    "gaussian_noise",
    "jpeg",
    "low_light",
    "noise",
    "noise_model",
    "shift",
]

NOISE_KINDS: tuple[str, ...] = ("gaussian", "uniform", "laplace", "rayleigh")
_RAYLEIGH_STD = math.sqrt((4 - math.pi) / 2)
RAYLEIGH_MEAN = math.sqrt(math.pi / 2) / _RAYLEIGH_STD
"""Mean of the unit-std (not recentred) Rayleigh noise, ≈ 1.913."""


def shift(x: torch.Tensor, a: float, b: float) -> torch.Tensor:
    """Contrast/brightness shift ``a·x + b`` (no clipping; ``b`` in [0, 1] units).

    Raises:
        ValueError: If ``a`` is not a positive finite number or ``b`` is not finite.
    """
    if not (math.isfinite(a) and a > 0):
        raise ValueError(f"contrast a must be a positive finite number, got {a}")
    if not math.isfinite(b):
        raise ValueError(f"brightness b must be finite, got {b}")
    return a * x + b


def gaussian_noise(
    shape: torch.Size | tuple[int, ...], sigma: float, seed: int, **kwargs: Any
) -> torch.Tensor:
    """Seeded white Gaussian noise of std ``sigma / 255``: ``noise("gaussian", ...)``
    (``kwargs``: ``dtype``, ``device``)."""
    return noise("gaussian", shape, sigma, seed, **kwargs)


def add_gaussian_noise(x: torch.Tensor, sigma: float, seed: int) -> torch.Tensor:
    """``x`` plus seeded Gaussian noise of std ``sigma / 255`` (:func:`add_noise`)."""
    return add_noise(x, "gaussian", sigma, seed)


def noise(
    kind: str,
    shape: torch.Size | tuple[int, ...],
    sigma: float,
    seed: int,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Seeded noise of a kind from :data:`NOISE_KINDS`, standard deviation ``sigma / 255``;
    the draw depends only on ``kind``, ``shape`` and ``seed``.

    Raises:
        ValueError: For an unknown kind, or ``sigma`` negative or not finite.
    """
    if kind not in NOISE_KINDS:
        raise ValueError(f"unknown noise kind {kind!r}; choose from {', '.join(NOISE_KINDS)}")
    if not (math.isfinite(sigma) and sigma >= 0):
        raise ValueError(f"noise sigma must be a finite number >= 0, got {sigma}")
    if not dtype.is_floating_point:
        raise ValueError(f"noise dtype must be floating point, got {dtype}")
    gen = torch.Generator().manual_seed(int(seed))
    if kind == "gaussian":  # float32 draws: the committed results depend on this exact stream
        unit = torch.randn(tuple(shape), generator=gen, dtype=torch.float32)
        return (unit * (sigma / 255.0)).to(dtype=dtype, device=device)
    u = torch.rand(tuple(shape), generator=gen, dtype=torch.float64)
    if kind == "uniform":
        unit = (2 * u - 1) * math.sqrt(3)
    elif kind == "laplace":  # inverse CDF of Laplace(0, b = 1/√2), std 1
        c = u - 0.5
        unit = -torch.sign(c) * torch.log1p(-2 * c.abs()) / math.sqrt(2)
    else:  # rayleigh, inverse CDF √(−2·log(1 − u)), scaled to unit std, not recentred
        unit = torch.sqrt(-2 * torch.log1p(-u)) / _RAYLEIGH_STD
    return (unit * (sigma / 255.0)).to(dtype=dtype, device=device)


def add_noise(x: torch.Tensor, kind: str, sigma: float, seed: int) -> torch.Tensor:
    """``x`` plus seeded noise of ``kind`` (std ``sigma / 255``), never clipped.

    Raises:
        ValueError: If ``x`` is not floating point (convert to [0, 1] floats first), or
            as :func:`noise`.
    """
    _check_float(x)
    return x + noise(kind, x.shape, sigma, seed, dtype=x.dtype, device=x.device)


def low_light(
    x: torch.Tensor, photons: float, seed: int, *, read_noise: float = 0.0, clip: bool = False
) -> torch.Tensor:
    """A photo of ``x`` taken in the dark: ``y = (Poisson(photons·x) + N(0, read_noise²)) /
    photons``, so ``E[y] = x`` and ``Var[y] = x / photons + (read_noise / photons)²``.

    Args:
        x: Clean images on the [0, 1] scale (negative values count as 0 photons).
        photons: Expected photons at white (1: very dark, 1000: dim), > 0.
        seed: Random seed.
        read_noise: Standard deviation of the read noise in photo-electrons, >= 0.
        clip: Clip the result to [0, 1] (as a camera's 8-bit output would).

    Raises:
        ValueError: On a non-floating-point ``x``, ``photons <= 0`` or negative
            ``read_noise`` (or either not finite).
    """
    _check_float(x)
    if not (math.isfinite(photons) and photons > 0):
        raise ValueError(f"photons at white must be a positive number, got {photons}")
    if not (math.isfinite(read_noise) and read_noise >= 0):
        raise ValueError(f"read noise must be a finite number >= 0, got {read_noise}")
    gen = torch.Generator().manual_seed(int(seed))
    rate = x.detach().to("cpu", torch.float64).clamp_min(0) * photons
    counts = torch.poisson(rate, generator=gen)
    if read_noise > 0:
        counts = counts + read_noise * torch.randn(rate.shape, generator=gen, dtype=torch.float64)
    y = (counts / photons).to(dtype=x.dtype, device=x.device)
    return y.clamp(0, 1) if clip else y


def _check_float(x: torch.Tensor) -> None:
    if not x.is_floating_point():
        raise ValueError(f"expected a floating-point image on the [0, 1] scale, got {x.dtype}")


def equivalent_sigma(noisy: torch.Tensor, clean: torch.Tensor) -> float:
    """The Gaussian σ (0–255 scale) with the same mean squared error: ``255·RMS(noisy − clean)``."""
    return float(255.0 * (noisy.double() - clean.double()).square().mean().sqrt())


def jpeg(x: torch.Tensor, quality: int) -> torch.Tensor:
    """JPEG compression at ``quality`` (1 worst to 95) of ``[B, C, H, W]`` or ``[C, H, W]``
    images (C = 1 or 3), clipped and rounded to 8 bits first, each encoded on its own by
    Pillow (4:2:0 chroma), decoded back to the [0, 1] scale in ``x``'s dtype and device.

    Raises:
        ValueError: For another quality, channel count or shape.
    """
    import io

    import numpy as np
    from PIL import Image

    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 95:
        raise ValueError(f"JPEG quality must be a whole number in [1, 95], got {quality!r}")
    single = x.ndim == 3
    batch = x[None] if single else x
    if batch.ndim != 4 or batch.shape[1] not in (1, 3):
        raise ValueError(
            f"expected [B, C, H, W] or [C, H, W] with C in (1, 3), got {tuple(x.shape)}"
        )
    arr = (batch.detach().float().cpu().clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    out = []
    for img in arr:
        pil = Image.fromarray(img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0))
        buf = io.BytesIO()
        pil.save(buf, format="JPEG", quality=quality)
        with Image.open(io.BytesIO(buf.getvalue())) as dec:
            a = np.asarray(dec.convert(pil.mode), dtype=np.float32) / 255.0
        out.append(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))
    res = torch.from_numpy(np.stack(out)).to(dtype=x.dtype, device=x.device)
    return res[0] if single else res


@dataclass(frozen=True)
class NoiseParam:
    """One parameter of a noise model, as a control shows it.

    Attributes:
        name: Keyword of :meth:`Noise.apply` (also the demo's and the API's name).
        label: The control's label.
        default: The default value.
        info: One line of help.
        lo, hi, step: The control's range and step (:meth:`Noise.apply` takes any value
            the noise allows).
        integer: Whole numbers only.
        sweep: The values a level sweep walks through.
    """

    name: str
    label: str
    default: float
    lo: float
    hi: float
    step: float
    integer: bool = False
    info: str = ""
    sweep: tuple[float, ...] = ()


@dataclass(frozen=True)
class Noise:
    """One noise model: its name, label, parameters and seeded corruption.

    Attributes:
        name: Key in :data:`NOISES` (and the demo's and the CLIs' value).
        label: Its name on a page.
        params: Its parameters; the first is its level (σ, photons or quality).
        corrupt: ``corrupt(x, seed, **params)``, all parameters given.
        note: What it is, in words; a template of its parameters and ``eq``, the
            measured equivalent σ ("" for none).
        levels: The evaluation's default level grid (None: the paper's σ grid).
    """

    name: str
    label: str
    params: tuple[NoiseParam, ...]
    corrupt: Callable[..., torch.Tensor]
    note: str = ""
    levels: tuple[float, ...] | None = None

    @property
    def level(self) -> NoiseParam:
        """The parameter that is this noise's level (a sweep's or an evaluation's x-axis)."""
        return self.params[0]

    def values(self, source: Mapping[str, Any] | None = None, **params: Any) -> dict[str, Any]:
        """Every parameter's value: from ``params``, else from ``source`` (a wider mapping,
        e.g. a request's settings: other keys are ignored), else its default.

        Raises:
            ValueError: On a parameter this noise does not take, or a non-integral
                value of an integer one.
        """
        names = [p.name for p in self.params]
        unknown = sorted(set(params) - set(names))
        if unknown:
            raise ValueError(f"{self.name} noise takes {', '.join(names)}; got {unknown}")
        out: dict[str, Any] = {}
        for p in self.params:
            v = params.get(p.name, (source or {}).get(p.name, p.default))
            if p.integer:
                if isinstance(v, bool) or float(v) != round(float(v)):
                    raise ValueError(f"{p.name} must be a whole number, got {v!r}")
                v = round(float(v))
            out[p.name] = v
        return out

    def apply(self, x: torch.Tensor, seed: int, **params: Any) -> torch.Tensor:
        """``x`` (floating point, [0, 1] scale) observed with this noise, unclipped (but JPEG);
        the draw depends only on ``seed``, the parameters (missing: defaults) and the shape.

        Raises:
            ValueError: On an unknown parameter or a value the noise cannot take.
        """
        return self.corrupt(x, seed, **self.values(**params))

    def equivalent_sigma(self, noisy: torch.Tensor, clean: torch.Tensor, **params: Any) -> float:
        """The σ (0–255) of this corruption: the level of a σ-level noise, else measured
        (:func:`equivalent_sigma`)."""
        if self.level.name == "sigma":
            return float(self.values(**params)["sigma"])
        return equivalent_sigma(noisy, clean)

    def describe(self, eq: float | None = None, **params: Any) -> str:
        """:attr:`note` filled in with the parameters and the equivalent σ ``eq``."""
        return self.note.format(eq=eq if eq is not None else math.nan, **self.values(**params))


def _additive(kind: str) -> Callable[..., torch.Tensor]:
    def corrupt(x: torch.Tensor, seed: int, sigma: float) -> torch.Tensor:
        return add_noise(x, kind, sigma, seed)

    return corrupt


def _low_light(x: torch.Tensor, seed: int, photons: float, read_noise: float) -> torch.Tensor:
    return low_light(x, photons, seed, read_noise=read_noise)


def _jpeg(x: torch.Tensor, seed: int, quality: int, sigma: float) -> torch.Tensor:
    return jpeg(add_noise(x, "gaussian", sigma, seed) if sigma > 0 else x, quality)


_SIGMA = NoiseParam(
    "sigma", "noise σ (0–255 scale)", 25.0, 0.0, 100.0, 1.0,
    sweep=(5.0, 10.0, 15.0, 25.0, 35.0, 50.0, 75.0, 100.0),
)  # fmt: skip
_PHOTONS = NoiseParam(
    "photons", "photons per pixel at white", 20.0, 1.0, 1000.0, 1.0,
    info="low light: fewer photons, more (signal-dependent) noise",
    sweep=(2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 300.0, 1000.0),
)  # fmt: skip
_READ_NOISE = NoiseParam(
    "read_noise", "read noise (photo-electrons)", 1.0, 0.0, 20.0, 0.1,
    info="low light: the sensor's own Gaussian noise",
)  # fmt: skip
_QUALITY = NoiseParam(
    "quality", "JPEG quality", 30, 1, 95, 1, integer=True,
    info="applied to the noisy image (1 worst, 95 best)",
    sweep=(5.0, 10.0, 20.0, 30.0, 50.0, 70.0, 85.0, 95.0),
)  # fmt: skip
_STD_NOTE = " noise of std σ = {sigma:g}."

NOISES: Mapping[str, Noise] = MappingProxyType(
    {
        n.name: n
        for n in (
            Noise("gaussian", "Gaussian", (_SIGMA,), _additive("gaussian")),
            Noise("uniform", "uniform", (_SIGMA,), _additive("uniform"), "uniform" + _STD_NOTE),
            Noise("laplace", "Laplace", (_SIGMA,), _additive("laplace"), "Laplace" + _STD_NOTE),
            Noise(
                "rayleigh",
                "Rayleigh (not zero-mean: it also brightens the image)",
                (_SIGMA,),
                _additive("rayleigh"),
                "Rayleigh noise (σ = {sigma:g}) is not zero-mean: it also brightens the image "
                "by about 1.9·σ/255.",
            ),
            Noise(
                "lowlight",
                "low light (Poisson–Gaussian: few photons)",
                (_PHOTONS, _READ_NOISE),
                _low_light,
                "Low light: {photons:g} photons per pixel at white, read noise {read_noise:g} "
                "e⁻, brightened back; equivalent Gaussian σ ≈ {eq:.1f} (the noise is stronger "
                "in bright regions, the signal-to-noise ratio worse in dark ones).",
                levels=(1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0),
            ),
            Noise(
                "jpeg",
                "JPEG of the noisy image",
                (_QUALITY, _SIGMA),
                _jpeg,
                "JPEG at quality {quality} of the noisy image (Gaussian σ = {sigma:g}); "
                "equivalent Gaussian σ ≈ {eq:.1f}.",
                levels=(10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0),
            ),
        )
    }
)
"""Every noise model by name, in display order."""


def noise_model(name: str) -> Noise:
    """The noise model called ``name``; a ValueError listing the known ones for another."""
    if name not in NOISES:
        raise ValueError(f"unknown noise type {name!r}; choose from {', '.join(NOISES)}")
    return NOISES[name]
