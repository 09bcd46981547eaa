"""Tiling: padding an image to the model's grid, cutting it into equal overlapping tiles, blending them.

The generators are fully convolutional but want H and W divisible by ``model.pad_multiple``, and a large
photo needs more activation memory than one forward can have. So:

- an image is padded (reflect, so the borders look like image content) to the multiple and cropped back;
- a large one is cut into equal-sized overlapping tiles aligned to the multiple (so each tile sees the
  same stride-2 sampling grid as the whole image would; equal sizes batch together);
- the tiles' outputs are blended with linear ramps over the overlap, so that the tile borders, where a
  convolution sees zero padding instead of the neighbouring pixels, get ~zero weight. The full image,
  the accumulator and the blend weights stay on the CPU in float32; only tiles travel to the device.

When to tile and how large (`auto_tile`) depends on the device: its memory, and on CPUs cache-sized
tiles. The `Editor` (runtime.editor) decides with these functions and runs the model; nothing here does.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from ..errors import UsageError

# CPU: images above this many pixels are tiled. Tiles of ~512 px keep the activations in cache-sized
# pieces (no slower than one big forward) and the peak memory bounded; below this size the untiled
# default de-raining net needs only a few hundred MB.
CPU_MAX_UNTILED_PIXELS = 1536 * 1024
CPU_TILE = 512
MPS_MAX_UNTILED_PIXELS = 4 << 20
MPS_TILE = 1024
# CUDA: tiles are sized from the memory budget (runtime.editor), within these bounds.
CUDA_TILE_RANGE = (256, 4096)

__all__ = [
    "CPU_MAX_UNTILED_PIXELS",
    "CPU_TILE",
    "CUDA_TILE_RANGE",
    "MPS_MAX_UNTILED_PIXELS",
    "MPS_TILE",
    "TilePlan",
    "auto_tile",
    "blend_tiles",
    "pad",
    "pad_amount",
    "plan_tiles",
    "ramp",
    "tile_starts",
]


@dataclass(frozen=True)
class TilePlan:
    """Equal-sized tiles covering a padded image: their size, start offsets and blend-ramp length."""

    height: int
    width: int
    ys: tuple[int, ...]
    xs: tuple[int, ...]
    ramp: int  # = tile - stride: the (smallest) overlap of neighbours, over which weights ramp


def pad_amount(n: int, multiple: int) -> int:
    """Pixels to add to a side of `n` px to reach the next multiple of `multiple`."""
    return -n % multiple


def pad(a: np.ndarray, ph: int, pw: int) -> np.ndarray:
    """`a` (H x W or H x W x C) padded by `ph` rows at the bottom and `pw` columns at the right."""
    if ph == 0 and pw == 0:
        return a
    # reflect looks like more of the image (no hard edge for the convolutions to react to); it needs
    # the pad to be shorter than the image, so tiny images are padded by repeating their last row/column.
    mode: Literal["reflect", "edge"] = "reflect" if ph < a.shape[0] and pw < a.shape[1] else "edge"
    widths = ((0, ph), (0, pw)) + ((0, 0),) * (a.ndim - 2)
    return np.pad(a, widths, mode=mode)


def tile_starts(size: int, tile: int, stride: int) -> list[int]:
    """Start offsets of tiles of `tile` px covering [0, size): every `stride` px, the last one shifted
    inward to end exactly at `size` so that all tiles have the same size (and batch together)."""
    if size <= tile:
        return [0]
    starts = list(range(0, size - tile, stride))
    starts.append(size - tile)
    return starts


def auto_tile(
    device_type: str,
    h: int,
    w: int,
    multiple: int,
    *,
    budget: float = 0.0,
    bytes_per_pixel: float = 0.0,
    batch_size: int = 1,
) -> int | None:
    """The tile size for an image of padded size h x w on a device of this type, or None if it fits in
    one forward. CUDA: `budget` bytes for a batch of `batch_size` tiles at `bytes_per_pixel` each."""
    if device_type == "cuda":
        if h * w * bytes_per_pixel <= budget:
            return None
        lo, hi = CUDA_TILE_RANGE
        tile = min(max(int(math.sqrt(budget / (bytes_per_pixel * batch_size))), lo), hi)
    elif device_type == "mps":
        if h * w <= MPS_MAX_UNTILED_PIXELS:
            return None
        tile = MPS_TILE
    else:
        if h * w <= CPU_MAX_UNTILED_PIXELS:
            return None
        tile = CPU_TILE
    return max(tile // multiple, 2) * multiple


def plan_tiles(h: int, w: int, tile: int | None, overlap: int | None, multiple: int) -> TilePlan | None:
    """How to tile a padded h x w image in tiles of `tile` px, or None to run it whole (no tile size, or
    the image fits in one tile). `overlap` None: tile / 16 within 32..128 px."""
    if not tile or (h <= tile and w <= tile):
        return None
    overlap = overlap if overlap is not None else min(128, max(32, tile // 16), tile // 4)
    if 2 * overlap >= tile:
        raise UsageError(f"overlap {overlap} px is too large for {tile} px tiles (must be < tile / 2)")
    # Strides on the model's grid, so that every tile sees the stride-2 sampling of the whole
    # image; the real overlap (tile - stride) is therefore at least the one asked for.
    stride = max(multiple, (tile - overlap) // multiple * multiple)
    th, tw = min(tile, h), min(tile, w)
    return TilePlan(
        height=th,
        width=tw,
        ys=tuple(tile_starts(h, th, stride)),
        xs=tuple(tile_starts(w, tw, stride)),
        ramp=tile - stride,
    )


def ramp(length: int, ramp_px: int, *, rise: bool, fall: bool) -> torch.Tensor:
    """1-D blend weights of a tile: 1 inside; at a side that overlaps a neighbour (by >= `ramp_px`),
    ~0 over the outer quarter of the overlap, a linear rise over its middle half, 1 after.

    The outer pixels of a tile are the least trustworthy (their convolutions saw zero padding instead of
    image) and the neighbour sees them well inside itself, so they are left to the neighbour; the two
    ramps are mirror images, so the weights sum to ~1 across the overlap. Never exactly 0: every pixel
    keeps a positive total weight.
    """
    w = torch.ones(length)
    if ramp_px > 0:
        d = torch.arange(ramp_px, dtype=torch.float32) + 0.5  # distance of each pixel centre from the edge
        up = ((d - ramp_px / 4) / (ramp_px / 2)).clamp_(1e-3, 1.0)
        if rise:
            w[:ramp_px] = torch.minimum(w[:ramp_px], up)
        if fall:
            w[-ramp_px:] = torch.minimum(w[-ramp_px:], up.flip(0))
    return w


def blend_tiles(
    rgb: np.ndarray,
    mask: np.ndarray | None,
    plan: TilePlan,
    run: Callable[[np.ndarray, np.ndarray | None], torch.Tensor],
    *,
    batch: int,
    feather: bool = True,
    tick: Callable[[], None] = lambda: None,
) -> torch.Tensor:
    """Run a padded H x W x 3 image (+ H x W mask) tile by tile, `batch` tiles a forward, and blend the
    outputs: H x W x 3 float32 on the CPU.

    `run(tiles, masks)`: N x th x tw x 3 pixels (+ N x th x tw masks) -> N x th x tw x 3 float32 on the
    CPU. ``feather=False`` adds hard-edged tiles (tests show that the blending is what hides the seams).
    `tick` is called after every forward.
    """
    hp, wp = rgb.shape[:2]
    th, tw = plan.height, plan.width
    ramp_px = plan.ramp if feather else 0
    acc = torch.zeros(hp, wp, 3)
    wsum = torch.zeros(hp, wp, 1)
    boxes = [(y, x) for y in plan.ys for x in plan.xs]
    for i in range(0, len(boxes), batch):
        chunk = boxes[i : i + batch]
        tiles = np.stack([rgb[y : y + th, x : x + tw] for y, x in chunk])
        masks = None if mask is None else np.stack([mask[y : y + th, x : x + tw] for y, x in chunk])
        out = run(tiles, masks)
        for (y, x), tile_out in zip(chunk, out, strict=True):
            wy = ramp(th, ramp_px, rise=y > 0, fall=y + th < hp)
            wx = ramp(tw, ramp_px, rise=x > 0, fall=x + tw < wp)
            weight = (wy[:, None] * wx[None, :]).unsqueeze(2)
            acc[y : y + th, x : x + tw].addcmul_(tile_out, weight)
            wsum[y : y + th, x : x + tw] += weight
        tick()
    return acc.div_(wsum)
