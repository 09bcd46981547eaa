"""Sample grids written during training: one row per validation sample, input | output | target.

The same fixed validation samples appear in every grid of a run, so a sequence of grids shows the
generator's progress on the same pictures. Inpainting inputs show their holes in white (the colour of the
masks ``ganedit inpaint`` reads).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from ..io.atomic import write_atomic

__all__ = ["make_grid", "write_grid"]


def make_grid(
    inputs: Tensor, outputs: Tensor, targets: Tensor, mask: Tensor | None = None, gap: int = 2
) -> np.ndarray:
    """N x 3 x H x W tensors in [-1, 1] -> an (N rows x 3 columns) H x W x 3 uint8 image, white gaps."""
    inputs, outputs, targets = (t.detach().float().cpu() for t in (inputs, outputs, targets))
    if mask is not None:
        inputs = torch.where(mask.detach().cpu().bool(), torch.ones_like(inputs), inputs)
    n, _, h, w = inputs.shape
    canvas = torch.ones(3, n * h + (n - 1) * gap, 3 * w + 2 * gap)
    for i in range(n):
        y = i * (h + gap)
        for j, column in enumerate((inputs, outputs, targets)):
            x = j * (w + gap)
            canvas[:, y : y + h, x : x + w] = column[i].clamp(-1, 1).add(1).div(2)
    return canvas.mul(255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def write_grid(
    path: Path, inputs: Tensor, outputs: Tensor, targets: Tensor, mask: Tensor | None = None
) -> Path:
    """Write `make_grid`'s image as a PNG, atomically."""
    buffer = io.BytesIO()
    Image.fromarray(make_grid(inputs, outputs, targets, mask)).save(buffer, format="PNG")
    write_atomic(Path(path), buffer.getvalue())
    return Path(path)
