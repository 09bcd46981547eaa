"""What a rerender sweep becomes on disk: output file names and the contact sheet's grid.

A sweep (`ganedit.runtime.tags.parse_tag_options`) gives one render per combination of tag values; the
folder runner names each ``STEM_TAG-VALUE_....png`` (zero-padded so that the files sort in the order of
the values) and, with ``--sheet``, lays them out in a grid, one row per combination of the slower tags.
Here rather than in the runtime: naming files and laying out sheets is the folder runner's business, and
the `Rerenderer` stays arrays in, arrays out. No torch.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ..archs.tdgan import TDGANConfig

_UNSAFE = re.compile(r"[^A-Za-z0-9.+-]+")

__all__ = ["contact_sheet", "name_widths", "output_name", "sheet_columns"]


def _safe(text: str) -> str:
    return _UNSAFE.sub("_", text).strip("._") or "_"


def name_widths(config: TDGANConfig) -> dict[str, int]:
    """Digits to zero-pad each whole-number tag's values to in file names (``azimuth``: 3, as 0..348), so
    that the names of a sweep sort in the order of its values (``azimuth-012`` before ``azimuth-105``)."""
    widths: dict[str, int] = {}
    for name, values in config.tags:
        if values and all(v.lstrip("-").isdigit() for v in values):
            widths[name] = max(len(v.lstrip("-")) for v in values)
    return widths


def output_name(
    stem: str, target: dict[str, str], suffix: str = ".png", widths: dict[str, int] | None = None
) -> str:
    """``chair`` + {azimuth: 35, light: left} -> ``chair_azimuth-35_light-left.png`` (safe characters);
    with ``widths`` (`name_widths`) whole numbers are zero-padded: ``chair_azimuth-035_light-left.png``."""

    def shown(name: str, value: str) -> str:
        width = (widths or {}).get(name)
        digits = value.lstrip("-")
        if width and digits.isdigit():
            return value[: len(value) - len(digits)] + digits.zfill(width)
        return value

    parts = [_safe(stem)] + [f"{_safe(name)}-{_safe(shown(name, value))}" for name, value in target.items()]
    return "_".join(parts) + suffix


def sheet_columns(sweep: Sequence[dict[str, str]]) -> int:
    """Columns for a contact sheet of a sweep: one per value of the fastest-varying tag (one row per
    combination of the others); a long single-tag sweep is wrapped into a near-square grid."""
    if not sweep:
        return 1
    names = list(sweep[0])
    for name in reversed(names):
        count = len({target[name] for target in sweep})
        if count > 1:
            return count if count <= 16 else math.ceil(math.sqrt(len(sweep)))
    return 1


def contact_sheet(
    images: Sequence[np.ndarray],
    columns: int,
    *,
    gap: int = 2,
    background: tuple[int, int, int] = (255, 255, 255),
) -> np.ndarray:
    """Same-size H x W x 3 uint8 images in a grid of `columns`, row by row, `gap` px apart."""
    if not images:
        raise ValueError("a contact sheet needs at least one image")
    h, w = images[0].shape[:2]
    if any(im.shape[:2] != (h, w) for im in images):
        raise ValueError("contact sheet images must all have the same size")
    columns = max(1, min(columns, len(images)))
    rows = math.ceil(len(images) / columns)
    sheet = np.empty((rows * h + (rows + 1) * gap, columns * w + (columns + 1) * gap, 3), np.uint8)
    sheet[:] = np.asarray(background, np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, columns)
        y, x = gap + r * (h + gap), gap + c * (w + gap)
        sheet[y : y + h, x : x + w] = im[:, :, :3]
    return sheet
