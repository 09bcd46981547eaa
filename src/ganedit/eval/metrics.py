"""Full-reference image quality metrics: PSNR and SSIM, optionally restricted to a mask.

Perceptual metrics (LPIPS, FID) download ImageNet backbones at run time, which ganedit's offline users
cannot do, so evaluation reports the two classic metrics, implemented here so that their exact
definition is ours to document rather than a dependency's default:

* **Images** are float arrays or tensors, ``H x W x C`` (channels last, as `ganedit.io.Picture` and
  `Editor.edit` use) or ``H x W`` (gray), with values in ``[0, data_range]`` (``data_range=1.0``: floats
  in [0, 1]). numpy arrays and torch tensors (any device; gradients are not kept) are both accepted. A
  ``C x H x W`` tensor is refused (``tensor.permute(1, 2, 0)`` it) rather than guessed at.
* **PSNR** is ``10 log10(data_range**2 / MSE)`` with the MSE over every pixel and channel (or every
  channel of the masked pixels); identical images give ``inf``.
* **SSIM** follows Wang, Bovik, Sheikh & Simoncelli, "Image quality assessment: from error visibility to
  structural similarity", IEEE TIP 13(4), 2004: an 11 x 11 Gaussian window with sigma 1.5, K1 = 0.01,
  K2 = 0.03, population (not sample) variances. It is computed **on each RGB channel separately and
  averaged over the channels** (not on luma): colour errors, the whole point of sketch2photo, must count.
  Without a mask the score is the mean of the SSIM map over the pixels at least 5 px from the border
  (the window's radius), as in the authors' MATLAB code (``filter2(..., 'valid')``) and scikit-image's
  ``structural_similarity(..., gaussian_weights=True, sigma=1.5, use_sample_covariance=False)``, so the
  numbers compare with published ones. With a mask it is the mean of the map over the masked pixels, the
  border band included; there the window is completed by mirroring the image (half-sample symmetric, as
  scikit-image/SciPy ``mode="reflect"``).

Everything is computed in float64 (the SSIM of near-identical images is a difference of close numbers).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ..io.picture import REC601_LUMA

__all__ = [
    "SSIM_K1",
    "SSIM_K2",
    "SSIM_SIGMA",
    "SSIM_WINDOW",
    "bt601_luma",
    "colour_histogram_distance",
    "gradient_energy",
    "mean_chroma",
    "psnr",
    "ssim",
]

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
_RADIUS = SSIM_WINDOW // 2


def _as_image(x: Any, what: str) -> torch.Tensor:
    """Return ``x`` as a float64 CPU tensor H x W x C (a 2-D input gets C = 1)."""
    if isinstance(x, torch.Tensor):
        t = x.detach().to(device="cpu", dtype=torch.float64)
    else:
        t = torch.from_numpy(np.array(x, dtype=np.float64))
    if t.ndim == 2:
        t = t[:, :, None]
    if t.ndim != 3 or t.shape[2] > 4 or 0 in t.shape:
        raise ValueError(
            f"{what} must be H x W or H x W x C with C <= 4 (channels last), got shape {tuple(t.shape)}; "
            "permute a C x H x W tensor with .permute(1, 2, 0)"
        )
    return t


def _pair(a: Any, b: Any, data_range: float) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = _as_image(a, "a"), _as_image(b, "b")
    if x.shape != y.shape:
        raise ValueError(f"images differ in shape: {tuple(x.shape)} and {tuple(y.shape)}")
    if not data_range > 0:
        raise ValueError(f"data_range must be positive, got {data_range}")
    for t, what in ((x, "a"), (y, "b")):
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{what} contains NaN or infinite values")
        peak = float(t.abs().max())
        # Catches the classic mistake of 8-bit pixels measured with data_range=1.0 (PSNR off by 48 dB).
        if peak > data_range * 1.001:
            raise ValueError(
                f"{what} has values up to {peak:g}, beyond data_range={data_range:g}; "
                "pass data_range=255 (8-bit) or 65535 (16-bit), or scale the image to [0, 1]"
            )
    return x, y


def _as_mask(mask: Any, shape: tuple[int, ...]) -> torch.Tensor:
    """Return ``mask`` as an H x W bool tensor (nonzero = counts); H x W x 1 is accepted too."""
    m = mask.detach().cpu() if isinstance(mask, torch.Tensor) else torch.from_numpy(np.array(mask))
    if m.ndim == 3 and m.shape[2] == 1:
        m = m[:, :, 0]
    if tuple(m.shape) != tuple(shape[:2]):
        raise ValueError(f"mask is {tuple(m.shape)} but the images are {tuple(shape[:2])} (H x W)")
    m = m != 0
    if not bool(m.any()):
        raise ValueError("mask selects no pixel")
    return m


def psnr(a: Any, b: Any, *, data_range: float = 1.0, mask: Any = None) -> float:
    """Peak signal-to-noise ratio of ``a`` against ``b`` in dB (symmetric); ``inf`` when they are equal.

    ``mask`` (H x W, nonzero = counts) restricts the mean squared error to those pixels, all channels:
    for inpainting, the hole, where the model's work is (outside it the output is the input).
    """
    x, y = _pair(a, b, data_range)
    err = (x - y).square_()
    if mask is not None:
        err = err[_as_mask(mask, tuple(x.shape))]
    mse = float(err.mean())
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(data_range * data_range / mse)


def _gaussian_window() -> torch.Tensor:
    d = torch.arange(SSIM_WINDOW, dtype=torch.float64) - _RADIUS
    w = torch.exp(-(d * d) / (2.0 * SSIM_SIGMA * SSIM_SIGMA))
    return w / w.sum()


def _symmetric_index(n: int) -> torch.Tensor:
    """Indices that pad a length-n axis by the window radius, mirrored about the edge (d c b a | a b c d)."""
    i = torch.arange(-_RADIUS, n + _RADIUS)
    i = torch.where(i < 0, -i - 1, i)
    return torch.where(i >= n, 2 * n - 1 - i, i)


def _ssim_map(x: torch.Tensor, y: torch.Tensor, data_range: float) -> torch.Tensor:
    """The local SSIM of two H x W x C images at every pixel, averaged over the channels (H x W).

    Images are mirrored at the border (half-sample symmetric) to complete the window there; `ssim`
    without a mask ignores that 5 px border band. Both sides must be at least 11 px.
    """
    height, width, _ = x.shape
    if min(height, width) < SSIM_WINDOW:
        raise ValueError(
            f"SSIM needs images of at least {SSIM_WINDOW} x {SSIM_WINDOW} px, got {height} x {width}"
        )
    # The five local moments of every channel in one separable filtering: 5 x C x H x W, contiguous.
    rows, cols = _symmetric_index(height), _symmetric_index(width)
    x = x.permute(2, 0, 1).index_select(1, rows).index_select(2, cols)
    y = y.permute(2, 0, 1).index_select(1, rows).index_select(2, cols)
    stack = torch.stack([x, y, x * x, y * y, x * y])
    w = _gaussian_window().tolist()
    # Sums of shifted slices, accumulated in place: torch's float64 conv2d is ~10x slower on the CPU.
    vertical = stack[:, :, :height] * w[0]
    for i in range(1, SSIM_WINDOW):
        vertical.add_(stack[:, :, i : i + height], alpha=w[i])
    moments = vertical[:, :, :, :width] * w[0]
    for i in range(1, SSIM_WINDOW):
        moments.add_(vertical[:, :, :, i : i + width], alpha=w[i])
    mu_x, mu_y, xx, yy, xy = moments
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    mu_xy = mu_x * mu_y
    mu_xx, mu_yy = mu_x * mu_x, mu_y * mu_y
    var_x, var_y, cov = xx - mu_xx, yy - mu_yy, xy - mu_xy
    numerator = (2.0 * mu_xy + c1) * (2.0 * cov + c2)
    denominator = (mu_xx + mu_yy + c1) * (var_x + var_y + c2)
    return (numerator / denominator).mean(0)


def ssim(a: Any, b: Any, *, data_range: float = 1.0, mask: Any = None) -> float:
    """Structural similarity of ``a`` and ``b`` (Wang et al. 2004; see the module docstring): 1 when equal.

    Without ``mask``: the mean SSIM over the pixels at least 5 px from the border, averaged over the
    channels (= scikit-image's ``structural_similarity(a, b, data_range=..., channel_axis=-1,
    gaussian_weights=True, sigma=1.5, use_sample_covariance=False)``). With ``mask`` (H x W, nonzero =
    counts): the mean of the local SSIM map over the masked pixels, wherever they are.
    """
    x, y = _pair(a, b, data_range)
    full = _ssim_map(x, y, data_range)
    if mask is None:
        return float(full[_RADIUS:-_RADIUS, _RADIUS:-_RADIUS].mean())
    return float(full[_as_mask(mask, tuple(x.shape))].mean())


# ------------------------------------------------------------------------------------------- texture


def gradient_energy(rgb: Any, mask: Any = None) -> float:
    """Mean squared luminance gradient, ``(dY/dx)^2 + (dY/dy)^2`` by forward differences, over the image or
    over the pixels of ``mask`` (H x W, True = counted). Compared with the truth's inside a filled hole it
    says whether a fill has texture (ratio near 1) or is a blur (near 0), which PSNR cannot: a blur is what
    PSNR rewards when the content is uncertain."""
    image = _as_image(rgb, "image").numpy()
    luma = image[:, :, :3] @ np.array(REC601_LUMA) if image.shape[2] >= 3 else image[:, :, 0]
    gx = np.zeros_like(luma)
    gy = np.zeros_like(luma)
    gx[:, :-1] = luma[:, 1:] - luma[:, :-1]
    gy[:-1, :] = luma[1:, :] - luma[:-1, :]
    energy = gx**2 + gy**2
    if mask is None:
        return float(energy.mean())
    selected = np.asarray(mask, dtype=bool)
    if selected.shape != energy.shape:
        raise ValueError(f"mask shape {selected.shape} differs from the image's {energy.shape}")
    return float(energy[selected].mean()) if selected.any() else float("nan")


# ------------------------------------------------------------------------------------------- luma


def bt601_luma(rgb: Any) -> np.ndarray:
    """The Y channel of BT.601 YCbCr as de-raining papers measure it: MATLAB's ``rgb2ycbcr`` on RGB in
    [0, 1], ``Y = (16 + 65.481 R + 128.553 G + 24.966 B) / 255``, so Y spans [16/255, 235/255] and PSNR /
    SSIM on it with ``data_range=1.0`` are the published figures' (peak 255 on the 8-bit scale).
    Returns an ``H x W`` float64 array."""
    image = _as_image(rgb, "image").numpy()
    if image.shape[2] < 3:
        gray = image[:, :, 0]
        return (16.0 + 219.0 * gray) / 255.0  # R = G = B: the weights sum to 219
    r, g, b = image[:, :, 0], image[:, :, 1], image[:, :, 2]
    return (16.0 + 65.481 * r + 128.553 * g + 24.966 * b) / 255.0


# ------------------------------------------------------------------------------------------- colour
#
# PSNR and SSIM reward a grey average: a generator that paints every facade the same beige scores well.
# The PAN paper's image-to-image comparison is about realism, so colour tasks (sketch2photo,
# labels2photo) also report how colourful the output is and how its colours are distributed.


def _srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB in [0, 1] (H x W x 3) -> CIELAB (D65 white), float64."""
    c = np.asarray(rgb, dtype=np.float64)
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array(
        [
            [0.4124564, 0.3575761, 0.1804375],
            [0.2126729, 0.7151522, 0.0721750],
            [0.0193339, 0.1191920, 0.9503041],
        ]
    )
    xyz = linear @ m.T / np.array([0.95047, 1.0, 1.08883])
    eps, kappa = 216 / 24389, 24389 / 27
    f = np.where(xyz > eps, np.cbrt(xyz), (kappa * xyz + 16) / 116)
    return np.stack(
        [116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1
    )


def mean_chroma(rgb: Any) -> float:
    """Mean CIELAB chroma C*ab = sqrt(a*^2 + b*^2) of an RGB image in [0, 1]: 0 for gray, about 10-30
    for everyday photos."""
    image = _as_image(rgb, "image").numpy()
    if image.shape[2] < 3:
        return 0.0
    lab = _srgb_to_lab(np.clip(image[:, :, :3], 0.0, 1.0))
    return float(np.hypot(lab[..., 1], lab[..., 2]).mean())


def colour_histogram_distance(a: Any, b: Any, *, bins: int = 8) -> float:
    """Total-variation distance between the RGB colour histograms of two images in [0, 1] (``bins`` per
    channel, so 512 colour cells): 0 for the same colour distribution, 1 for disjoint ones. Position
    plays no part: it measures the palette, not the layout."""
    x, y = (_as_image(v, name).numpy() for v, name in ((a, "a"), (b, "b")))
    if x.shape[2] < 3 or y.shape[2] < 3:
        raise ValueError("colour_histogram_distance needs RGB images")

    def histogram(image: np.ndarray) -> np.ndarray:
        cells = np.clip((image[:, :, :3] * bins).astype(np.int64), 0, bins - 1)
        index = (cells[..., 0] * bins + cells[..., 1]) * bins + cells[..., 2]
        counts = np.bincount(index.ravel(), minlength=bins**3).astype(np.float64)
        return counts / counts.sum()

    return float(0.5 * np.abs(histogram(x) - histogram(y)).sum())
