"""Mask-aware regions: how a large photo is inpainted, hole by hole, instead of in blind tiles.

Blind tiles (runtime.tiling) serve the tasks that change every pixel. Inpainting changes only the holes,
and a hole needs what surrounds it: a tile that happens to be all hole has nothing to continue, and a
hole cut by tile borders is filled from two different contexts. So for inpainting a large photo:

- the holes are grouped (holes closer than `JOIN` px share a region) on a grid of `CELL` px cells;
- each group's box is grown by a margin of context on every side (`CONTEXT_FRACTION` of the hole's
  longer side, at least `CONTEXT_MIN` px), clipped to the image; boxes that overlap are merged;
- a region longer than `MAX_SIDE` px is scaled down to it for the model (a large hole is filled at a
  scale where the model sees its surroundings, as it did in training) and the fill scaled back up;
- only the hole's pixels are taken from the model: every known pixel stays the input's, bit for bit (the
  editor pastes them back), so there is no seam between regions to feather.

Pure planning; the `Editor` (runtime.editor) runs the model on the regions.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

CELL = 16  # px: the grid on which holes are found and grouped
JOIN = 64  # px: holes closer than this are filled together (one region, one context)
CONTEXT_MIN = 64  # px of context around a hole, at least...
CONTEXT_FRACTION = 0.75  # ... and this fraction of the hole's longer side
MAX_SIDE = 512  # px: a longer region is scaled down to this for the model

__all__ = ["CELL", "CONTEXT_FRACTION", "CONTEXT_MIN", "JOIN", "MAX_SIDE", "Region", "plan_regions"]


@dataclass(frozen=True)
class Region:
    """A box of the image (``top``, ``left``, ``height``, ``width`` in px) holding one or more holes with
    their context, and the size it runs at (``run_height`` x ``run_width``: the box, or smaller)."""

    top: int
    left: int
    height: int
    width: int
    run_height: int
    run_width: int

    @property
    def scaled(self) -> bool:
        return (self.run_height, self.run_width) != (self.height, self.width)


def _occupied(mask: np.ndarray) -> np.ndarray:
    """The cells of the `CELL` px grid that hold any hole pixel."""
    h, w = mask.shape
    gh, gw = -(-h // CELL), -(-w // CELL)
    grid = np.zeros((gh * CELL, gw * CELL), bool)
    grid[:h, :w] = mask
    return np.asarray(grid.reshape(gh, CELL, gw, CELL).any(axis=(1, 3)))


def _dilate(cells: np.ndarray, radius: int) -> np.ndarray:
    out = cells.copy()
    for _ in range(radius):
        grown = out.copy()
        grown[1:] |= out[:-1]
        grown[:-1] |= out[1:]
        grown[:, 1:] |= out[:, :-1]
        grown[:, :-1] |= out[:, 1:]
        out = grown
    return out


def _groups(cells: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Cell boxes (y0, x0, y1, x1, exclusive ends) of the hole cells, grouped when within `JOIN`."""
    joined = _dilate(cells, math.ceil(JOIN / CELL / 2))
    seen = np.zeros_like(joined)
    boxes = []
    for start in zip(*np.nonzero(cells), strict=True):
        if seen[start]:
            continue
        queue, members = deque([start]), []
        seen[start] = True
        while queue:
            y, x = queue.popleft()
            members.append((y, x))
            for ny in (y - 1, y, y + 1):
                for nx in (x - 1, x, x + 1):
                    inside = 0 <= ny < joined.shape[0] and 0 <= nx < joined.shape[1]
                    if inside and joined[ny, nx] and not seen[ny, nx]:
                        seen[ny, nx] = True
                        queue.append((ny, nx))
        holes = [(y, x) for y, x in members if cells[y, x]]
        ys, xs = [y for y, _ in holes], [x for _, x in holes]
        boxes.append((min(ys), min(xs), max(ys) + 1, max(xs) + 1))
    return boxes


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _merge(boxes: list[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
    """Union overlapping boxes until none overlap (a pixel belongs to one region's fill)."""
    merged = True
    while merged:
        merged = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                if _overlap(boxes[i], boxes[j]):
                    a, b = boxes[i], boxes.pop(j)
                    boxes[i] = (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
                    merged = True
                    break
            if merged:
                break
    return boxes


def plan_regions(mask: np.ndarray, multiple: int, max_side: int = MAX_SIDE) -> list[Region]:
    """The regions that inpaint `mask` (H x W bool, True = fill), in reading order. ``multiple``: the
    model's side multiple (a region's run size is rounded to it)."""
    h, w = mask.shape
    boxes = []
    for y0, x0, y1, x1 in _groups(_occupied(mask)):
        top, left = y0 * CELL, x0 * CELL
        bottom, right = min(h, y1 * CELL), min(w, x1 * CELL)
        margin = max(CONTEXT_MIN, round(CONTEXT_FRACTION * max(bottom - top, right - left)))
        boxes.append(
            (max(0, top - margin), max(0, left - margin), min(h, bottom + margin), min(w, right + margin))
        )
    regions = []
    for top, left, bottom, right in sorted(_merge(boxes)):
        height, width = bottom - top, right - left
        scale = min(1.0, max_side / max(height, width))
        run_h = max(multiple, round(height * scale / multiple) * multiple) if scale < 1 else height
        run_w = max(multiple, round(width * scale / multiple) * multiple) if scale < 1 else width
        regions.append(Region(top, left, height, width, run_h, run_w))
    return regions
