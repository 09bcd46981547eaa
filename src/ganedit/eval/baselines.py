"""The baselines `ganedit eval` sets beside a model's figures: what a model has to beat on the same images.

* derain: the rainy input unchanged;
* inpaint: the harmonic (Laplace) fill of the hole from its boundary (`harmonic_fill`), the smoothest
  interpolation there is and a strong PSNR baseline; OpenCV's Telea inpainting (`telea_fill`) as a second
  one when opencv-python-headless is installed (``pip install "ganedit[eval]"``, not a runtime dependency);
* sketch2photo and labels2photo: the photo's own mean colour everywhere (`mean_colour_fill`, an oracle
  colour the model does not get);
* rerender (`ganedit.eval.tdgan`): the input unchanged.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import UsageError

__all__ = ["BASELINES", "baseline", "harmonic_fill", "mean_colour_fill", "telea_fill"]

BASELINES = {
    "derain": "the rainy input unchanged",
    "inpaint": "harmonic (Laplace) fill of the hole from its boundary, measured inside the hole",
    "sketch2photo": "the photo's mean colour everywhere",
    "labels2photo": "the photo's mean colour everywhere",
}


def baseline(task: str, input: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """The baseline output of `task` (`BASELINES`) for one evaluation item (uint8 H x W x 3)."""
    if task == "derain":
        return input
    if task == "inpaint":
        if mask is None:
            raise UsageError("the inpainting baseline needs the hole mask")
        return harmonic_fill(input, mask)
    if task in BASELINES:
        return mean_colour_fill(target)
    raise UsageError(f"no baseline for the {task!r} task; baselines: {', '.join(BASELINES)}")


def mean_colour_fill(target: np.ndarray) -> np.ndarray:
    """`target`'s mean colour (rounded to 8 bits) everywhere."""
    mean = target.reshape(-1, target.shape[-1]).mean(0)
    return np.broadcast_to(np.round(mean), target.shape).astype(np.uint8)


def _laplace(values: torch.Tensor, weight: torch.Tensor, iterations: int) -> torch.Tensor:
    """Solve Laplace's equation where `weight` is 0, `values` fixed where it is not: coarse-to-fine (each
    level starts from the upsampled coarser solution, so the low frequencies converge quickly) with Jacobi
    sweeps at every level."""
    height, width = values.shape[-2:]
    if min(height, width) > 8:
        # masked average pooling: a coarse pixel is known where any of its 4 children is
        w2 = F.avg_pool2d(weight, 2, ceil_mode=True)
        v2 = F.avg_pool2d(values * weight, 2, ceil_mode=True) / w2.clamp_min(1e-12)
        coarse = _laplace(v2, (w2 > 0).double(), iterations)
        start = F.interpolate(coarse, scale_factor=2, mode="bilinear", align_corners=False)
        start = start[..., :height, :width]
    else:
        mean = (values * weight).sum((2, 3), keepdim=True) / weight.sum().clamp_min(1e-12)
        start = mean.expand_as(values)
    known_here = weight > 0
    out = torch.where(known_here, values, start)
    kernel = torch.tensor([[0, 0.25, 0], [0.25, 0, 0.25], [0, 0.25, 0]], dtype=values.dtype)
    kernel = kernel.expand(values.shape[1], 1, 3, 3)
    for _ in range(iterations):
        smooth = F.conv2d(F.pad(out, (1, 1, 1, 1), mode="replicate"), kernel, groups=values.shape[1])
        out = torch.where(known_here, values, smooth)
    return out


def harmonic_fill(pixels: np.ndarray, hole: np.ndarray, *, iterations: int = 200) -> np.ndarray:
    """Fill `hole` (H x W bool) of `pixels` (H x W x C uint8) with the solution of Laplace's equation whose
    boundary values are the known pixels."""
    x = torch.from_numpy(pixels).permute(2, 0, 1)[None].double()
    known = torch.from_numpy(~hole)[None, None].double()
    if not bool(known.any()):
        return np.broadcast_to(pixels.reshape(-1, pixels.shape[2]).mean(0), pixels.shape).astype(pixels.dtype)
    filled = _laplace(x, known, iterations)[0].permute(1, 2, 0).round().clamp(0, 255).numpy()
    return np.where(hole[:, :, None], filled.astype(pixels.dtype), pixels)


def telea_fill(pixels: np.ndarray, hole: np.ndarray) -> np.ndarray | None:
    """OpenCV's Telea inpainting (radius 3) of `hole` in 8-bit RGB `pixels`; None without OpenCV."""
    try:
        import cv2
    except ImportError:
        return None
    bgr = np.ascontiguousarray(pixels[:, :, ::-1])
    filled = cv2.inpaint(bgr, hole.astype(np.uint8) * 255, 3, cv2.INPAINT_TELEA)
    return np.where(hole[:, :, None], filled[:, :, ::-1], pixels).astype(np.uint8)
