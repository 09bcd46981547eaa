"""Deterministic synthesis of PAN training pairs from clean photo crops.

There are no rainy/clean, holed/whole or sketch/photo pairs for the photographs we can train on, so the
degraded half of each pair is made on the fly from a clean crop: rain streaks for de-raining, hole masks for
inpainting, line drawings for sketch → photo. Every function takes an explicit ``torch.Generator`` (or an
int seed) and never touches torch's global RNG, so a data-loader worker, a resumed run and an evaluation
set all reproduce exactly the same pairs.

Conventions (the same as the rest of ganedit):

* images are float tensors ``3 x H x W`` in [0, 1] (scale to [-1, 1] at the model boundary);
* masks are ``1 x H x W`` float tensors in {0, 1}, 1 = hole to fill (the white of ``ganedit inpaint``);
* sketches are 1 = white paper, 0 = black line.

Lengths and widths are in pixels and the samplers' defaults suit crops of about 256 px; pass
``scale=min(H, W) / 256`` to the samplers for larger crops. The functions are meant to run in data-loader
workers (one torch thread each): they are made of many small tensor ops, which extra intra-op threads only
slow down on a busy CPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..io.picture import REC601_LUMA

__all__ = [
    "RAIN_SAMPLERS",
    "RainLayer",
    "RainParams",
    "Rng",
    "SketchParams",
    "add_rain",
    "as_generator",
    "gaussian_blur",
    "make_mask",
    "make_sketch",
    "paint_stripes",
    "rec601_luma",
    "sample_faint_rain_params",
    "sample_fine_rain_params",
    "sample_long_rain_params",
    "sample_rain_params",
    "sample_sketch_params",
    "sample_streak_rain_params",
]

BLENDS = ("over", "screen", "add")  # RainParams.blend

Rng = torch.Generator | int
"""A generator to draw from (advanced in place) or an int seed (a fresh generator on the data's device)."""


# --------------------------------------------------------------------------------------------- helpers


def as_generator(rng: Rng, device: torch.device | str | None = None) -> torch.Generator:
    """Return ``rng`` itself, or a new generator on ``device`` (default CPU) seeded with the int ``rng``.

    A generator passed in is used as is (and advanced), so one generator per data-loader worker gives a
    reproducible stream of samples; an int gives the same sample every time.
    """
    if isinstance(rng, torch.Generator):
        return rng
    if isinstance(rng, bool) or not isinstance(rng, int):
        raise TypeError(f"rng must be a torch.Generator or an int seed, not {type(rng).__name__}")
    generator = torch.Generator(device=device if device is not None else "cpu")
    generator.manual_seed(rng)
    return generator


def _uniform(g: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=g, device=g.device))


def _log_uniform(g: torch.Generator, low: float, high: float) -> float:
    return math.exp(_uniform(g, math.log(low), math.log(high)))


def _normal(g: torch.Generator, mean: float, std: float) -> float:
    return mean + std * float(torch.randn((), generator=g, device=g.device))


def _randint(g: torch.Generator, low: int, high: int) -> int:
    """An int in [low, high)."""
    return int(torch.randint(low, high, (), generator=g, device=g.device))


def _lerp(a: float, b: float, t: float) -> float:
    return a + (b - a) * t


def rec601_luma(rgb: Tensor) -> Tensor:
    """Rec. 601 luma (0.299 R + 0.587 G + 0.114 B, as Pillow's ``convert("L")``) of a 3 x H x W image, H x W
    float32: what a sketch is drawn from and what a black-and-white training pair is made of."""
    weights = torch.tensor(REC601_LUMA, device=rgb.device).view(3, 1, 1)
    return (rgb.float() * weights).sum(0)


def _check_image(clean: Tensor, what: str) -> None:
    if clean.ndim != 3 or clean.shape[0] != 3 or not clean.is_floating_point():
        raise ValueError(
            f"{what} expects a 3 x H x W float tensor in [0, 1], got {tuple(clean.shape)} {clean.dtype}"
        )


def _gaussian_kernel(sigma: float, *, device: torch.device, peak: bool = False) -> Tensor:
    """A 1-D Gaussian of radius ceil(3 sigma), normalised to unit sum (or unit peak when ``peak``)."""
    radius = max(1, math.ceil(3.0 * sigma))
    x = torch.arange(-radius, radius + 1, device=device, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    return kernel / (kernel.max() if peak else kernel.sum())


def _filter_axis(x: Tensor, kernel: Tensor, dim: int, *, replicate: bool) -> Tensor:
    """Correlate ``x`` along ``dim`` (-1 or -2) with an odd 1-D ``kernel``, keeping the size.

    A sum of shifted slices rather than ``conv2d``: our kernels are short, and oneDNN builds (slowly) a new
    primitive for every new tensor or kernel shape, which random canvas sizes and sigmas would hit each call.
    """
    radius = kernel.numel() // 2
    pad = (radius, radius, 0, 0) if dim == -1 else (0, 0, radius, radius)
    padded = F.pad(x, pad, mode="replicate") if replicate else F.pad(x, pad)
    size = x.shape[dim]
    out = torch.zeros_like(x)
    for i, weight in enumerate(kernel.tolist()):
        out += weight * padded.narrow(dim, i, size)
    return out


def gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of an ``N x C x H x W`` tensor, replicated borders; sigma <= 0 is a no-op."""
    if sigma <= 0:
        return x
    kernel = _gaussian_kernel(sigma, device=torch.device("cpu"))
    x = _filter_axis(x, kernel, -1, replicate=True)
    return _filter_axis(x, kernel, -2, replicate=True)


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


# ------------------------------------------------------------------------------------------------ rain


@dataclass(frozen=True)
class RainLayer:
    """One sheet of parallel streaks, e.g. the near, large, blurred drops or the far, fine drizzle."""

    density: float
    """Probability that a pixel of the layer's canvas starts a streak (0 < density <= 0.2)."""
    length: float
    """Streak length in px (the motion blur of a falling drop during the exposure)."""
    angle: float
    """Degrees from vertical; positive streaks run from upper left to lower right (|angle| <= 80)."""
    width: float
    """Streak thickness in px (full width at half maximum)."""
    blur: float
    """Gaussian sigma in px of the defocus blur applied to the whole layer (0 = sharp)."""
    brightness: float
    """Opacity of a streak's core, 0 < brightness <= 1 (streaks are composited over the scene)."""
    faint: float = 0.0
    """How unequal the layer's streaks are, in [0, 1]. Each streak's strength (a factor on ``brightness``) is
    drawn as ``lo + (1 - lo) * U ** p`` with ``lo = 0.4 (1 - faint)`` and ``p = 1 + 3 faint``: at 0 all
    streaks are 0.4-1 (the first synthesisers), at 1 most are faint and a few bright, as in real showers
    (a few drops near the lens among many dim ones; ``derain/real``)."""

    def __post_init__(self) -> None:
        _require(0.0 < self.density <= 0.2, f"RainLayer.density must be in (0, 0.2], got {self.density}")
        _require(1.0 <= self.length <= 1024.0, f"RainLayer.length must be in [1, 1024] px, got {self.length}")
        _require(abs(self.angle) <= 80.0, f"RainLayer.angle must be within ±80 degrees, got {self.angle}")
        _require(0.0 < self.width <= 32.0, f"RainLayer.width must be in (0, 32] px, got {self.width}")
        _require(0.0 <= self.blur <= 16.0, f"RainLayer.blur must be in [0, 16] px, got {self.blur}")
        _require(
            0.0 < self.brightness <= 1.0, f"RainLayer.brightness must be in (0, 1], got {self.brightness}"
        )
        _require(0.0 <= self.faint <= 1.0, f"RainLayer.faint must be in [0, 1], got {self.faint}")


@dataclass(frozen=True)
class RainParams:
    """Everything `add_rain` needs besides the random streak positions: fix one for an evaluation set.

    The composite follows the usual rain imaging model (Garg & Nayar 2007; the heavy-rain model of
    Li et al., CVPR 2019): each layer's streaks are alpha-blended towards the ambient ``light``, then a veil
    of scattered light (``haze``) lowers contrast: ``O = (1 - t) * ((1 - a) * B + a * A) + t * A``.
    """

    layers: tuple[RainLayer, ...]
    haze: float = 0.0
    """Mean opacity of the veil of scattered light, in [0, 0.9]; it varies smoothly across the image."""
    veil_variation: float = 0.15
    """Relative spatial variation of the veil in [0, 1]: ``haze * (1 ± veil_variation)``, ~256 px cells."""
    darken: float = 0.0
    """Fraction by which the scene is dimmed under the overcast sky, in [0, 0.9]."""
    light: tuple[float, float, float] = (0.9, 0.9, 0.9)
    """RGB ambient light in [0, 1]: the colour of the streaks and of the veil."""
    blend: str = "over"
    """How streaks meet the scene: ``over`` alpha-blends towards ``light`` (opaque drops); ``screen``
    adds light, ``1 - (1 - B)(1 - a * light)``: bright on dark backgrounds, barely visible on bright ones,
    and whitish (a dark channel gains most); ``add`` is the additive model ``O = B + S`` of the papers
    that made the synthetic benchmark sets (Li et al. 2016, Yang et al. 2017): ``B + a * light``, clipped,
    so a streak keeps the hue of the scene under it (yellowish on yellow) and saturates on bright parts;
    its veil adds light too (``+ haze * light``, as SIRR's, a grey offset of 10-60 levels), where the
    other blends' veil lowers contrast."""

    def __post_init__(self) -> None:
        _require(
            self.blend in BLENDS, f"RainParams.blend must be one of {', '.join(BLENDS)}, got {self.blend!r}"
        )
        _require(len(self.layers) >= 1, "RainParams.layers needs at least one RainLayer")
        _require(
            all(isinstance(layer, RainLayer) for layer in self.layers), "RainParams.layers: RainLayer only"
        )
        _require(0.0 <= self.haze <= 0.9, f"RainParams.haze must be in [0, 0.9], got {self.haze}")
        _require(0.0 <= self.darken <= 0.9, f"RainParams.darken must be in [0, 0.9], got {self.darken}")
        _require(
            0.0 <= self.veil_variation <= 1.0,
            f"RainParams.veil_variation must be in [0, 1], got {self.veil_variation}",
        )
        _require(
            len(self.light) == 3 and all(0.0 <= v <= 1.0 for v in self.light),
            f"RainParams.light must be three values in [0, 1], got {self.light}",
        )


def _layers(
    drafts: list[list[float]], boost: float, *, min_width: float = 0.0, faint: float = 0.0
) -> tuple[RainLayer, ...]:
    """RainLayers from drafts [coverage, length, width, blur, brightness, angle]: the density follows from
    the wanted coverage (times ``boost``), so long and short streaks cover comparable areas."""
    return tuple(
        RainLayer(
            density=min(0.2, max(1e-5, coverage * boost / (length * width))),
            length=min(1024.0, max(1.0, length)),
            angle=angle,
            width=min(32.0, max(min_width, width)),
            blur=min(16.0, blur),
            brightness=brightness,
            faint=faint,
        )
        for coverage, length, width, blur, brightness, angle in drafts
    )


def _ambient_light(g: torch.Generator, low: float) -> tuple[float, float, float]:
    """A grey in [low, 1] with a slight blue cast: the colour of the streaks and of the veil."""
    grey = _uniform(g, low, 1.0)
    blue = _uniform(g, 0.0, 0.06)
    return (grey - blue, grey - blue / 2, min(1.0, grey + blue))


def sample_rain_params(rng: Rng, *, scale: float = 1.0) -> RainParams:
    """Draw a rain look from a deliberately wide distribution.

    1-4 layers, each at a random depth: near layers get long, thick, sparse, bright and defocused streaks,
    far layers short, thin, dense and dim ones, with independent jitter on every quantity so that thin
    long streaks or thick short ones also occur. A third of the showers fall near-vertically, the rest at
    up to ±40°; a global "heaviness" drives streak coverage and haze together, from a light
    drizzle to a downpour. ``scale`` multiplies all lengths in px (use ``min(H, W) / 256``).
    """
    g = as_generator(rng)
    heaviness = _uniform(g, 0.0, 1.0)
    vertical = _uniform(g, 0.0, 1.0) < 1.0 / 3.0
    base_angle = _normal(g, 0.0, 3.0) if vertical else _uniform(g, -40.0, 40.0)
    drafts = []
    for _ in range(_randint(g, 1, 5)):
        depth = _uniform(g, 0.0, 1.0)  # 0 = just in front of the lens, 1 = far away
        length = math.exp(_lerp(math.log(60.0), math.log(6.0), depth)) * _log_uniform(g, 0.6, 1.6) * scale
        width = _lerp(3.0, 0.6, depth) * _log_uniform(g, 0.7, 1.5) * scale
        blur = _lerp(1.5, 0.0, depth) * _uniform(g, 0.0, 1.0) * scale
        # Expected fraction of the image under this layer's streaks; the density follows from it, so that
        # long and short streaks cover comparable areas.
        coverage = _lerp(0.015, 0.12, heaviness) * _log_uniform(g, 0.5, 2.0)
        brightness = min(1.0, _lerp(0.9, 0.45, depth) * _uniform(g, 0.75, 1.15))
        angle = max(-80.0, min(80.0, base_angle + _normal(g, 0.0, 3.0)))
        drafts.append([coverage, length, width, blur, brightness, angle])
    # Even the lightest drizzle must be visible, or the pair teaches nothing: at least 5 % of the image
    # under a streak in all.
    boost = max(1.0, 0.05 / sum(d[0] for d in drafts))
    layers = _layers(drafts, boost)
    light = _ambient_light(g, 0.7)
    # No dimming of the scene: a darker overcast scene is not something a de-raining model can or should
    # undo (its clean photo was taken under the same sky), and a global brightness change is ambiguous to a
    # network that sees a patch. The veil stays, and is smooth (see `add_rain`).
    return RainParams(
        layers=layers,
        haze=heaviness * _uniform(g, 0.0, 0.4),
        light=light,
    )


def sample_streak_rain_params(rng: Rng, *, scale: float = 1.0) -> RainParams:
    """Draw streak rain as real and benchmark rain looks: long, thin, motion-blurred streaks.

    One dominant direction per image (within about ±30° of vertical, most often near it), each depth
    layer split into three sheets whose angles jitter by a few degrees, so streaks are not all parallel;
    lengths from a few px to over half the crop (near, fast drops), widths 1-4 px, from sparse drizzle to
    a dense downpour with a veil of accumulated rain. Half the images add light to the scene (``screen``:
    streaks bright on dark backgrounds, faint on bright ones), half blend drops over it (``over``).
    ``scale`` multiplies all lengths in px (use ``min(H, W) / 256``). `sample_rain_params`, the first
    synthesiser, stays one component of the training mix (`ganedit.train.data`, ``rain = "mixed"``).
    """
    g = as_generator(rng)
    heaviness = _uniform(g, 0.0, 1.0) ** 1.5  # more light rain than downpours
    base_angle = max(-30.0, min(30.0, _normal(g, 0.0, 12.0)))
    sheets: list[list[float]] = []
    for _ in range(_randint(g, 1, 4)):
        depth = _uniform(g, 0.0, 1.0)  # 0 = near the lens, 1 = far away
        length = math.exp(_lerp(math.log(150.0), math.log(8.0), depth)) * _log_uniform(g, 0.6, 1.5) * scale
        width = _lerp(3.5, 1.0, depth) * _log_uniform(g, 0.8, 1.25) * scale
        blur = _lerp(1.2, 0.0, depth) * _uniform(g, 0.0, 1.0) * scale
        coverage = _lerp(0.02, 0.2, heaviness) * _log_uniform(g, 0.5, 2.0)
        brightness = min(1.0, _lerp(0.95, 0.35, depth) * _uniform(g, 0.7, 1.1))
        layer_angle = base_angle + _normal(g, 0.0, 3.0)
        for _sheet in range(3):
            angle = max(-80.0, min(80.0, layer_angle + _normal(g, 0.0, 2.5)))
            sheets.append([coverage / 3.0, length, width, blur, brightness, angle])
    boost = max(1.0, 0.04 / sum(s[0] for s in sheets))  # even a drizzle must show
    layers = _layers(sheets, boost, min_width=0.5)
    light = _ambient_light(g, 0.75)
    return RainParams(
        layers=layers,
        haze=heaviness * _uniform(g, 0.0, 0.3),
        light=light,
        blend="screen" if _uniform(g, 0.0, 1.0) < 0.5 else "over",
    )


def sample_fine_rain_params(rng: Rng, *, scale: float = 1.0) -> RainParams:
    """Draw dense sheets of fine rain: many thin, sharp, bright streaks, as the synthetic benchmark sets have.

    The streak synthesiser's drops are mostly sparse or wide and soft; the paired benchmarks' rain (looked
    at, never fitted: see ``rain_contact_sheet.py``) is often a dense sheet of 1-px streaks covering a
    quarter of the picture, at one angle, added as light over the scene with no veil. One or two layers of
    streaks 0.6-1.6 px wide, nearly sharp, 10-120 px long, covering 8-40 % of the image, ``screen``-blended
    four times in five; a faint veil at most. ``scale`` multiplies all lengths in px.
    """
    g = as_generator(rng)
    base_angle = max(-30.0, min(30.0, _normal(g, 0.0, 10.0)))
    drafts: list[list[float]] = []
    for _ in range(_randint(g, 1, 3)):  # one or two depths
        length = _log_uniform(g, 10.0, 120.0) * scale
        width = _log_uniform(g, 0.6, 1.6) * scale
        blur = _uniform(g, 0.0, 0.4) * scale
        coverage = _log_uniform(g, 0.08, 0.4)
        brightness = _uniform(g, 0.35, 0.95)
        layer_angle = base_angle + _normal(g, 0.0, 2.0)
        for _sheet in range(2):
            angle = max(-80.0, min(80.0, layer_angle + _normal(g, 0.0, 1.5)))
            drafts.append([coverage / 2.0, length, width, blur, brightness, angle])
    return RainParams(
        layers=_layers(drafts, 1.0, min_width=0.5),
        haze=_uniform(g, 0.0, 0.1) if _uniform(g, 0.0, 1.0) < 0.3 else 0.0,
        light=_ambient_light(g, 0.8),
        blend="screen" if _uniform(g, 0.0, 1.0) < 0.8 else "over",
    )


def sample_faint_rain_params(rng: Rng, *, scale: float = 1.0) -> RainParams:
    """Draw rain as it looks in real photographs: dense, faint, soft streaks, a few bright among many dim.

    Looked at, never fitted (``scripts/rain_contact_sheet.py``, ``derain/real``): in real rain photos the
    streaks are low-contrast (a few to a few dozen levels), dense, thin or softly defocused, long, and
    unequal: a few bright drops near the lens among many dim ones, often over a veil. The other
    synthesisers draw bright streaks of nearly equal strength (opacity 0.25-1), which the models learned
    to remove while faint real streaks stayed. Two to four depths of two sheets each at one dominant angle
    (within about ±30° of vertical), opacity 0.09-0.6 with ``RainLayer.faint`` 0.2-0.8, seeded densely
    enough to cover the picture, and a veil growing with the shower's heaviness; ``screen`` or ``over``
    blending with even odds. ``scale`` multiplies all lengths in px.
    """
    g = as_generator(rng)
    heaviness = _uniform(g, 0.0, 1.0)
    base_angle = max(-30.0, min(30.0, _normal(g, 0.0, 10.0)))
    drafts: list[list[float]] = []
    for _ in range(_randint(g, 2, 5)):  # two to four depths
        depth = _uniform(g, 0.0, 1.0)  # 0 = near the lens, 1 = far away
        length = math.exp(_lerp(math.log(200.0), math.log(12.0), depth)) * _log_uniform(g, 0.6, 1.5) * scale
        width = _lerp(2.5, 0.7, depth) * _log_uniform(g, 0.8, 1.25) * scale
        blur = _lerp(1.5, 0.0, depth) * _uniform(g, 0.0, 1.0) * scale
        coverage = _lerp(0.15, 1.0, heaviness) * _log_uniform(g, 0.5, 2.0)
        brightness = _lerp(0.5, 0.15, depth) * _uniform(g, 0.6, 1.2)
        layer_angle = base_angle + _normal(g, 0.0, 3.0)
        for _sheet in range(2):
            angle = max(-80.0, min(80.0, layer_angle + _normal(g, 0.0, 2.0)))
            drafts.append([coverage / 2.0, length, width, blur, brightness, angle])
    faint = _uniform(g, 0.2, 0.8)
    return RainParams(
        layers=_layers(drafts, 1.0, min_width=0.5, faint=faint),
        haze=heaviness * _uniform(g, 0.0, 0.35),
        light=_ambient_light(g, 0.7),
        blend="screen" if _uniform(g, 0.0, 1.0) < 0.5 else "over",
    )


def sample_long_rain_params(rng: Rng, *, scale: float = 1.0) -> RainParams:
    """Draw long rain: thin lines crossing much of the picture, or wide soft bands, at one angle.

    Looked at, never fitted (``scripts/rain_contact_sheet.py``, zoomed crops): the benchmark sets' streaks
    are often far longer than the other synthesisers draw. Rain100L's are sharp 1-2 px lines running a third
    of the picture or more; SIRR's are wide, soft, faint vertical bands from top to bottom, the near drops of
    a shower out of focus. The other synthesisers' thin streaks are mostly 10-60 px, and on Rain100L the
    shipped model left most of the long lines in place (seen in its outputs, not measured by length). Each
    of one to three depths is either thin (0.8-2.2 px, 60-400 px long, brightness 0.3-0.9, sharp) or a soft
    band (3-12 px wide, blurred by 1-4 px, 150-800 px long, brightness 0.06-0.3), as two sheets a degree or
    so apart; each streak's opacity is its layer's brightness times 0.2-1 (``RainLayer.faint`` 0-0.5). One
    dominant angle within ±25° of vertical (most often near it), depths and sheets a few degrees around it;
    no veil half of the time. ``scale`` multiplies all lengths in px.
    """
    g = as_generator(rng)
    base_angle = max(-25.0, min(25.0, _normal(g, 0.0, 8.0)))
    drafts: list[list[float]] = []
    for _ in range(_randint(g, 1, 4)):  # one to three depths
        if _uniform(g, 0.0, 1.0) < 0.6:  # thin, sharp lines
            length = _log_uniform(g, 60.0, 400.0) * scale
            width = _log_uniform(g, 0.8, 2.2) * scale
            blur = _uniform(g, 0.0, 0.3) * scale
            brightness = _uniform(g, 0.3, 0.9)
            coverage = _log_uniform(g, 0.03, 0.2)
        else:  # wide, soft bands
            length = _log_uniform(g, 150.0, 800.0) * scale
            width = _log_uniform(g, 3.0, 12.0) * scale
            blur = _uniform(g, 1.0, 4.0) * scale
            brightness = _uniform(g, 0.06, 0.3)
            coverage = _log_uniform(g, 0.15, 0.6)
        layer_angle = base_angle + _normal(g, 0.0, 2.0)
        for _sheet in range(2):
            angle = max(-80.0, min(80.0, layer_angle + _normal(g, 0.0, 1.0)))
            drafts.append([coverage / 2.0, length, width, blur, brightness, angle])
    return RainParams(
        layers=_layers(drafts, 1.0, min_width=0.5, faint=_uniform(g, 0.0, 0.5)),
        haze=_uniform(g, 0.0, 0.25) if _uniform(g, 0.0, 1.0) < 0.5 else 0.0,
        light=_ambient_light(g, 0.75),
        blend="screen" if _uniform(g, 0.0, 1.0) < 0.7 else "over",
    )


# The rain synthesisers by the one name each has everywhere (`ganedit train pan --set rain=`, `ganedit eval
# --rain`): training and evaluation both draw from this table.
RAIN_SAMPLERS = {
    "classic": sample_rain_params,
    "streaks": sample_streak_rain_params,
    "fine": sample_fine_rain_params,
    "faint": sample_faint_rain_params,
    "long": sample_long_rain_params,
}


def _box_rows(x: Tensor, n: int) -> Tensor:
    """Sum of ``n`` consecutive rows around each row of an ``N x C x H x W`` tensor (zeros outside).

    A running sum costs the same for any ``n``, unlike a convolution with a long kernel.
    """
    if n <= 1:
        return x
    before, after = (n - 1) // 2, n // 2
    total = F.pad(x, (0, 0, before + 1, after)).cumsum(dim=2)
    return total[:, :, n:, :] - total[:, :, :-n, :]


def _streak_layer(
    layer: RainLayer, height: int, width: int, g: torch.Generator, device: torch.device
) -> Tensor:
    """Render one layer as an ``H x W`` opacity map in [0, brightness].

    Sparse random seeds on a canvas whose axes are turned by the layer's angle are smeared along the
    canvas's columns into streaks with soft ends (a trapezoid: two running sums, cheap for any length) and
    across them by the streak's width combined with the defocus blur (one short 1-D convolution), then the
    canvas is resampled into the image frame with one ``grid_sample``. The canvas covers the rotated image
    plus one streak length, so streaks also enter from outside the frame.
    """
    theta = math.radians(layer.angle)
    cos, sin = math.cos(theta), math.sin(theta)
    sigma_w = max(layer.width, 0.3) / 2.355
    core = max(1, round(0.75 * layer.length))  # flat middle part
    ramp = max(1, round(0.25 * layer.length))  # soft ends
    margin = math.ceil(3.0 * (sigma_w + layer.blur)) + 2
    canvas_w = math.ceil(width * abs(cos) + height * abs(sin)) + 2 * margin
    canvas_h = math.ceil(width * abs(sin) + height * abs(cos)) + core + ramp + 2 * margin

    count = round(layer.density * canvas_h * canvas_w)
    seeds = torch.zeros(canvas_h * canvas_w, device=device)
    if count:
        where = torch.randint(canvas_h * canvas_w, (count,), generator=g, device=g.device).to(device)
        draw = torch.rand(count, generator=g, device=g.device)
        if layer.faint == 0.0:
            strength = 0.4 + 0.6 * draw  # the arithmetic of the first synthesisers: same pairs as before
        else:
            low = 0.4 * (1.0 - layer.faint)
            strength = low + (1.0 - low) * draw.pow(1.0 + 3.0 * layer.faint)
        strength = strength.to(device)
        seeds.index_put_((where,), strength, accumulate=True)
    x = _box_rows(_box_rows(seeds.view(1, 1, canvas_h, canvas_w), core), ramp) / min(core, ramp)

    # Across the streak: its own profile (peak 1) widened by the defocus blur (unit sum).
    across = _gaussian_kernel(sigma_w, device=torch.device("cpu"), peak=True)
    if layer.blur > 0:
        defocus = _gaussian_kernel(layer.blur, device=torch.device("cpu"))
        across = torch.from_numpy(np.convolve(across.numpy(), defocus.numpy()))
    x = _filter_axis(x, across, -1, replicate=False)

    ys = torch.arange(height, device=device, dtype=torch.float32) - (height - 1) / 2
    xs = torch.arange(width, device=device, dtype=torch.float32) - (width - 1) / 2
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    u = (cos * xx - sin * yy) / ((canvas_w - 1) / 2)
    v = (sin * xx + cos * yy) / ((canvas_h - 1) / 2)
    grid = torch.stack((u, v), dim=-1)[None]
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    return out[0, 0].clamp(0.0, 1.0) * layer.brightness


def add_rain(clean: Tensor, rng: Rng, *, params: RainParams | None = None) -> Tensor:
    """Return a rainy version of ``clean`` (``3 x H x W`` in [0, 1]), same shape, dtype and device.

    Without ``params`` a look is drawn with `sample_rain_params` from the same generator; with them (an
    evaluation set's fixed distribution) only the streak positions and the veil's variation are random.
    Cheap next to a training step (benchmarks/synth_speed.py times it).
    """
    _check_image(clean, "add_rain")
    g = as_generator(rng, device=clean.device)
    if params is None:
        params = sample_rain_params(g)
    height, width = clean.shape[-2:]
    device = clean.device
    scene = clean.float() * (1.0 - params.darken)
    light = torch.tensor(params.light, device=device, dtype=torch.float32).view(3, 1, 1)

    alpha = torch.zeros(height, width, device=device)
    for layer in params.layers:
        # Union of semi-transparent sheets: 1 - prod(1 - a_i).
        alpha = 1.0 - (1.0 - alpha) * (1.0 - _streak_layer(layer, height, width, g, device))
    if params.blend == "screen":
        rainy = 1.0 - (1.0 - scene) * (1.0 - alpha * light)
    elif params.blend == "add":
        rainy = scene + alpha * light  # clipped below, with the veil
    else:
        rainy = scene + alpha * (light - scene)

    # The veil is light scattered by drops between the camera and the scene: it follows the depth of the
    # scene, so it changes slowly, over cells of ~256 px, not over a fixed grid per image (a per-crop grid
    # made the veil vary every ~24 px in 96 px training crops, which no model can tell from the scene).
    cells = 2 + max(height, width) // 256
    coarse = torch.rand(1, 1, cells, cells, generator=g, device=g.device).to(device)
    variation = F.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=True)[0]
    veil = (params.haze * (1.0 + params.veil_variation * (2.0 * variation - 1.0))).clamp(0.0, 0.95)
    # The additive model adds its veil too (O = B + S + haze * light); the others lower contrast.
    rainy = rainy + veil * light if params.blend == "add" else rainy + veil * (light - rainy)
    return rainy.clamp(0.0, 1.0).to(clean.dtype)


# ----------------------------------------------------------------------------------------------- masks


def _capsule(canvas: Tensor, p0: tuple[float, float], p1: tuple[float, float], radius: float) -> None:
    """Set, in place, the pixels of ``canvas`` within ``radius`` of the segment p0-p1 (points are (x, y))."""
    height, width = canvas.shape
    (x0, y0), (x1, y1) = p0, p1
    xa, xb = max(0, math.floor(min(x0, x1) - radius)), min(width, math.ceil(max(x0, x1) + radius) + 1)
    ya, yb = max(0, math.floor(min(y0, y1) - radius)), min(height, math.ceil(max(y0, y1) + radius) + 1)
    if xa >= xb or ya >= yb:
        return
    px = torch.arange(xa, xb, device=canvas.device, dtype=torch.float32)[None, :] - x0
    py = torch.arange(ya, yb, device=canvas.device, dtype=torch.float32)[:, None] - y0
    dx, dy = x1 - x0, y1 - y0
    length2 = dx * dx + dy * dy
    t = ((px * dx + py * dy) / length2).clamp(0.0, 1.0) if length2 > 0 else torch.zeros_like(px * py)
    canvas[ya:yb, xa:xb] |= (px - t * dx) ** 2 + (py - t * dy) ** 2 <= radius * radius


def _stroke(height: int, width: int, g: torch.Generator, size: float) -> Tensor:
    """A free-form brush stroke (after DeepFill v2's masks): a random walk of round-capped thick segments."""
    canvas = torch.zeros(height, width, dtype=torch.bool)
    radius = _uniform(g, 3.0, 18.0) * size / 256.0 + 0.5
    x, y = _uniform(g, 0.0, width - 1.0), _uniform(g, 0.0, height - 1.0)
    heading = _uniform(g, 0.0, 2.0 * math.pi)
    for _ in range(_randint(g, 2, 9)):
        heading += _uniform(g, -1.2, 1.2)
        step = _uniform(g, 0.05, 0.3) * size
        nx = min(width - 1.0, max(0.0, x + step * math.cos(heading)))
        ny = min(height - 1.0, max(0.0, y + step * math.sin(heading)))
        _capsule(canvas, (x, y), (nx, ny), radius)
        x, y = nx, ny
    return canvas


def _box(height: int, width: int, g: torch.Generator, shrink: float) -> Tensor:
    """An axis-aligned rectangle of 10-50 % of each side (times ``shrink``), anywhere in the image."""
    canvas = torch.zeros(height, width, dtype=torch.bool)
    bw = max(1, round(_uniform(g, 0.1, 0.5) * shrink * width))
    bh = max(1, round(_uniform(g, 0.1, 0.5) * shrink * height))
    x0, y0 = _randint(g, 0, width - bw + 1), _randint(g, 0, height - bh + 1)
    canvas[y0 : y0 + bh, x0 : x0 + bw] = True
    return canvas


def _blob(height: int, width: int, g: torch.Generator, shrink: float) -> Tensor:
    """An object-shaped hole: a smooth closed outline (a circle whose radius varies with a few random
    harmonics, like the silhouette of a thing someone wants gone), 15-55 % of the shorter side across
    (times ``shrink``), anywhere in the image, stretched up to 2 : 1 either way."""
    size = min(height, width) * shrink
    radius = _uniform(g, 0.075, 0.275) * size
    stretch = _log_uniform(g, 0.5, 2.0)
    rx, ry = radius * math.sqrt(stretch), radius / math.sqrt(stretch)
    cx, cy = _uniform(g, 0.0, width - 1.0), _uniform(g, 0.0, height - 1.0)
    harmonics = [(k, _uniform(g, 0.0, 0.35) / k, _uniform(g, 0.0, 2.0 * math.pi)) for k in range(2, 6)]
    ys = torch.arange(height, dtype=torch.float32)[:, None] - cy
    xs = torch.arange(width, dtype=torch.float32)[None, :] - cx
    angle = torch.atan2(ys / ry, xs / rx)
    reach = torch.ones_like(angle)
    for k, a, phase in harmonics:
        reach += a * torch.cos(k * angle + phase)
    return (xs / rx) ** 2 + (ys / ry) ** 2 <= reach.clamp(min=0.3) ** 2


def make_mask(
    height: int,
    width: int,
    rng: Rng,
    *,
    coverage: tuple[float, float] = (0.05, 0.5),
    blobs: float = 0.0,
    device: torch.device | str | None = None,
) -> Tensor:
    """Return a ``1 x H x W`` float mask in {0, 1} (1 = hole) of free-form strokes, boxes and (with
    ``blobs`` > 0) object-shaped blobs.

    A target coverage is drawn uniformly from ``coverage``; shapes are added until it is reached: a blob
    with probability ``blobs``, otherwise strokes (70 %) and boxes (30 %). ``blobs=0`` draws exactly the
    masks it always drew (the evaluation protocol's masks must not change).

    A shape that would push the hole area past the upper bound is rejected and the following shapes are
    made smaller, so the result lies within ``coverage``: if 64 shapes still fall short of the lower
    bound (it needs tiny images), the deficit is filled in raster order from a random row.
    Images of fewer than ``1 / (high - low)`` pixels cannot always meet the bounds exactly.
    """
    low, high = coverage
    _require(0.0 < low < high <= 1.0, f"make_mask: coverage must satisfy 0 < low < high <= 1, got {coverage}")
    _require(height >= 1 and width >= 1, f"make_mask: size must be positive, got {height} x {width}")
    _require(0.0 <= blobs <= 1.0, f"make_mask: blobs must be a probability in [0, 1], got {blobs}")
    g = as_generator(rng)
    area = height * width
    target = _uniform(g, low, high)
    mask = torch.zeros(height, width, dtype=torch.bool)
    covered, shrink = 0, 1.0
    for _ in range(64):
        if blobs > 0.0 and _uniform(g, 0.0, 1.0) < blobs:
            shape = _blob(height, width, g, shrink)
        elif _uniform(g, 0.0, 1.0) < 0.3:
            shape = _box(height, width, g, shrink)
        else:
            shape = _stroke(height, width, g, min(height, width) * shrink)
        candidate = mask | shape
        count = int(candidate.sum())
        if count > high * area:
            shrink *= 0.7
            continue
        mask, covered = candidate, count
        if covered >= target * area:
            break
    need = math.ceil(low * area) - covered
    if need > 0:
        shift = _randint(g, 0, height) * width
        flat = mask.flatten().roll(-shift)
        flat[(~flat).nonzero().flatten()[:need]] = True
        mask = flat.roll(shift).view(height, width)
    return mask[None].to(device=device if device is not None else "cpu", dtype=torch.float32)


# --------------------------------------------------------------------------------------------- sketches


@dataclass(frozen=True)
class SketchParams:
    """Parameters of the XDoG line drawing (Winnemöller, Kyprianidis & Olsen 2012, see `make_sketch`)."""

    sigma: float = 0.8
    """Scale in px of the finer Gaussian: larger means coarser detail and thicker lines."""
    k: float = 1.6
    """Ratio of the two Gaussians' sigmas (1.6 approximates a Laplacian of Gaussian, Marr & Hildreth)."""
    p: float = 20.0
    """Edge emphasis of the sharpened image S = (1 + p) G_sigma - p G_k*sigma."""
    epsilon: float = 0.0
    """Threshold on S: where S < epsilon a line is drawn."""
    phi: float = 20.0
    """Steepness of the soft threshold 1 + tanh(phi (S - epsilon)); large values give crisp lines."""
    presmooth: float = 0.0
    """Gaussian sigma in px applied first, to drop fine texture an artist would not draw."""
    thickness: int = 0
    """Extra thickening of the dark lines: a grey-level erosion of this radius in px."""

    def __post_init__(self) -> None:
        _require(0.1 <= self.sigma <= 16.0, f"SketchParams.sigma must be in [0.1, 16], got {self.sigma}")
        _require(1.0 < self.k <= 10.0, f"SketchParams.k must be in (1, 10], got {self.k}")
        _require(0.0 < self.p <= 1000.0, f"SketchParams.p must be in (0, 1000], got {self.p}")
        _require(-1.0 <= self.epsilon <= 1.0, f"SketchParams.epsilon must be in [-1, 1], got {self.epsilon}")
        _require(0.0 < self.phi <= 1e4, f"SketchParams.phi must be in (0, 1e4], got {self.phi}")
        _require(
            0.0 <= self.presmooth <= 16.0, f"SketchParams.presmooth must be in [0, 16], got {self.presmooth}"
        )
        _require(0 <= self.thickness <= 8, f"SketchParams.thickness must be in [0, 8], got {self.thickness}")


def sample_sketch_params(rng: Rng, *, scale: float = 1.0) -> SketchParams:
    """Draw line-drawing parameters: fine to coarse detail, thin to thick lines, sparse to busy drawings.

    The ranges were chosen by eye on crops of the training photos: epsilon in [-0.3, -0.02] keeps flat
    regions white whatever their brightness (about 1-15 % of the pixels end up dark), p and phi vary how
    faint an edge still draws and how crisp the line is, and a third of the drawings get lines 2 px
    thicker. ``scale`` multiplies the spatial parameters (use ``min(H, W) / 256``).
    """
    g = as_generator(rng)
    thick = _uniform(g, 0.0, 1.0) < 1.0 / 3.0
    return SketchParams(
        sigma=_log_uniform(g, 0.6, 1.5) * scale,
        k=1.6,
        p=_log_uniform(g, 10.0, 40.0),
        epsilon=_uniform(g, -0.3, -0.02),
        phi=_log_uniform(g, 20.0, 100.0),
        presmooth=_uniform(g, 0.0, 1.5) * scale,
        thickness=max(1, round(scale)) if thick else 0,
    )


def make_sketch(
    clean: Tensor, rng: Rng | None = None, *, params: SketchParams | None = None, channels: int = 3
) -> Tensor:
    """Return an XDoG line drawing of ``clean``: ``channels x H x W`` in [0, 1], white paper, dark lines.

    XDoG (H. Winnemöller, J. E. Kyprianidis, S. C. Olsen, "XDoG: An eXtended difference-of-Gaussians
    compendium including advanced image stylization", Computers & Graphics 36(6):740-753, 2012):
    on the luminance L (contrast-stretched to its 1st-99th percentiles so dim photos draw like bright
    ones), ``S = (1 + p) G_sigma(L) - p G_{k sigma}(L)`` and ``T = 1`` where ``S >= epsilon``, else
    ``1 + tanh(phi (S - epsilon))``. Lines appear on the dark side of edges, where the sharpening
    undershoots. ``channels=3`` (default) repeats the drawing for the 3-channel PAN generator.

    Either ``params`` (fixed, for evaluation) or ``rng`` (to draw them with `sample_sketch_params`) is
    needed; the drawing itself is deterministic.
    """
    _check_image(clean, "make_sketch")
    _require(channels in (1, 3), f"make_sketch: channels must be 1 or 3, got {channels}")
    if params is None:
        if rng is None:
            raise ValueError("make_sketch needs params or an rng to draw them from")
        params = sample_sketch_params(as_generator(rng, device=clean.device))
    luma = rec601_luma(clean)
    sample = luma.flatten()[:: max(1, luma.numel() // 65536)]  # quantile sorts: subsample big images
    lo, hi = torch.quantile(sample, torch.tensor([0.01, 0.99], device=sample.device)).tolist()
    luma = ((luma - lo) / max(hi - lo, 1e-3)).clamp(0.0, 1.0)[None, None]
    luma = gaussian_blur(luma, params.presmooth)
    sharpened = (1.0 + params.p) * gaussian_blur(luma, params.sigma) - params.p * gaussian_blur(
        luma, params.k * params.sigma
    )
    drawing = torch.where(
        sharpened >= params.epsilon,
        torch.ones((), device=clean.device),
        1.0 + torch.tanh(params.phi * (sharpened - params.epsilon)),
    )
    if params.thickness > 0:
        size = 2 * params.thickness + 1
        drawing = -F.max_pool2d(-drawing, size, stride=1, padding=params.thickness)
    drawing = drawing[0].clamp(0.0, 1.0)
    return drawing.expand(channels, -1, -1).contiguous().to(clean.dtype)


# ----------------------------------------------------------------------------------------- scene stripes


def _smooth_noise(height: int, width: int, g: torch.Generator, cells: int) -> Tensor:
    """An H x W field of smooth random values (about N(0, 1) at the ``cells`` x ``cells`` knots), bicubic
    between the knots: the slow wobble of a zebra's stripes or a draped cloth's."""
    knots = torch.randn(1, 1, cells + 1, cells + 1, generator=g)
    return F.interpolate(knots, size=(height, width), mode="bicubic", align_corners=True)[0, 0]


def paint_stripes(clean: Tensor, rng: Rng) -> Tensor:
    """``clean`` with a striped surface painted into part of it: a zebra's coat, an awning, blinds, a
    striped shirt or a crosswalk.

    Bright bands on a de-raining training photo that are scene, not rain: what added rain looks like
    (light, hue-neutral lines) is also what such surfaces look like, and a model that never saw one dims a
    zebra's white stripes (docs/models/pan-derain.md). The stripes are opaque bands of a dark and a light
    colour repeating every 5-40 px, 30-70 % light, at any angle, bent by a smooth random warp, inside an
    object-shaped region (the inpainting blob) that covers 3-100 % of the image (a quarter on median);
    the photo's shading and fine texture show through, so the surface sits in the scene's light. Rain, by
    contrast, only brightens, is thin, and crosses everything at one angle. The result is a 3 x H x W
    image in [0, 1], a function of ``rng``.
    """
    _check_image(clean, "paint_stripes")
    g = as_generator(rng)
    _, height, width = clean.shape
    scene = clean.cpu()  # the generator and the blob live on the CPU, as the data-loader workers do
    region = _blob(height, width, g, _uniform(g, 1.0, 3.5)).float()
    # the surface's soft edge: an object's outline is a pixel or two wide at this scale
    region = gaussian_blur(region[None, None], _uniform(g, 0.5, 1.5))[0, 0]
    period = _log_uniform(g, 5.0, 40.0)
    light = _uniform(g, 0.3, 0.7)  # duty cycle: the share of each period that is the light colour
    angle = _uniform(g, 0.0, math.pi)
    warp = _uniform(g, 0.0, 1.5)  # in periods: 0 = straight blinds, 1.5 = a zebra's flank
    cells = _randint(g, 2, 7)
    ys = torch.arange(height, dtype=torch.float32)[:, None]
    xs = torch.arange(width, dtype=torch.float32)[None, :]
    phase = (xs * math.cos(angle) + ys * math.sin(angle)) / period
    phase = phase + warp * _smooth_noise(height, width, g, cells) + _uniform(g, 0.0, 1.0)
    # A band of width ``light * period`` around each integer phase, its edges anti-aliased over ~``edge`` px:
    # cos(2 pi phase) crosses cos(pi light) at the band's edges with slope 2 pi sin(pi light) / period per px.
    edge = _uniform(g, 0.6, 1.6)
    slope = 2.0 * math.pi * math.sin(math.pi * light) / period
    crossing = torch.cos(2.0 * math.pi * phase) - math.cos(math.pi * light)
    bands = torch.sigmoid(crossing / (slope * edge / 4.0))
    white = _uniform(g, 0.75, 1.0)
    bright = white * torch.tensor([_uniform(g, 0.92, 1.0) for _ in range(3)])  # a slightly warm or cool white
    if _uniform(g, 0.0, 1.0) < 0.3:  # an awning or a shirt: a coloured dark band
        dark = torch.tensor([_uniform(g, 0.0, 0.7) for _ in range(3)])
    else:  # a zebra, blinds, a crosswalk: near black against near white
        black = _uniform(g, 0.0, 0.2)
        dark = black + torch.tensor([_uniform(g, 0.0, 0.05) for _ in range(3)])
    surface = dark.view(3, 1, 1) + (bright - dark).view(3, 1, 1) * bands[None]
    luma = rec601_luma(scene)[None, None]
    smooth = gaussian_blur(luma, 4.0)
    shading = (smooth / smooth.mean().clamp(min=0.05)).clamp(0.5, 1.3)[0]  # the scene's light on the surface
    texture = (luma - smooth)[0] * _uniform(g, 0.0, 0.8)  # fur, weave, asphalt grain
    surface = (surface * shading + texture).clamp(0.0, 1.0)
    opacity = region[None] * _uniform(g, 0.85, 1.0)
    return (scene * (1.0 - opacity) + surface * opacity).clamp(0.0, 1.0).to(clean.device)
