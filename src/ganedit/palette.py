"""The CMP Facade Database's label colours, and how well an image matches them (``labels2photo``).

pix2pix packs the CMP facades (Tyleček and Šára, GCPR 2013) as JPEG pairs ``photo | label map``; the label
map paints each of the 12 classes (background, facade, window, door, cornice, sill, balcony, blind,
decoration, molding, pillar, shop) in a colour of the jet colour map. The colours below are the modes of
the training label maps' colour histogram (JPEG moves pixels a few levels off them, and blurs class edges).

A label map drawn by a user in these colours is what `pan-facades` understands; a photo, a sketch or a
map in other colours gives meaningless output. `palette_coverage` says what fraction of the pixels are
near a label colour; the thresholds sit between what the CMP label maps score (at least 0.50: JPEG ringing
at class edges is the rest) and what their photos score (at most 0.0034).
"""

from __future__ import annotations

import numpy as np

from .errors import ImageError

__all__ = [
    "CMP_PALETTE",
    "MATCH_DISTANCE",
    "NOTHING_MATCHES",
    "WARN_BELOW",
    "check_label_map",
    "palette_coverage",
]

CMP_PALETTE: tuple[tuple[int, int, int], ...] = (
    (0, 0, 170),
    (0, 0, 222),
    (0, 48, 255),
    (0, 128, 255),
    (0, 207, 255),
    (34, 254, 225),
    (112, 253, 145),
    (192, 254, 64),
    (255, 245, 0),
    (255, 159, 0),
    (255, 80, 0),
    (255, 0, 0),
    (174, 0, 0),
)
MATCH_DISTANCE = 48.0  # RGB distance (0-255 scale) within which a pixel counts as a label colour
WARN_BELOW = 0.4  # coverage under this: probably not a label map (the CMP maps' lowest is 0.50)
NOTHING_MATCHES = 0.05  # coverage under this: certainly not one (photos score below 0.004)


def palette_coverage(pixels: np.ndarray, *, sample: int = 65536) -> float:
    """Fraction of the pixels (H x W x 3 uint8, or 16-bit) within `MATCH_DISTANCE` of a CMP label colour.

    Big images are measured on an evenly strided subset of about `sample` pixels (exact enough for a
    check, and a 24 MP map costs milliseconds)."""
    rgb = np.asarray(pixels)
    if rgb.ndim != 3 or rgb.shape[2] < 3:
        return 0.0  # gray (or gray + alpha): no label colour is gray
    if rgb.dtype == np.uint16:
        rgb = rgb >> 8
    flat = rgb[:, :, :3].reshape(-1, 3)
    step = max(1, flat.shape[0] // sample)
    flat = flat[::step].astype(np.float32)
    palette = np.asarray(CMP_PALETTE, dtype=np.float32)
    nearest = np.full(flat.shape[0], np.inf, dtype=np.float32)
    for colour in palette:  # one colour at a time: no N x 13 x 3 temporary
        nearest = np.minimum(nearest, ((flat - colour) ** 2).sum(axis=1))
    return float((nearest <= MATCH_DISTANCE**2).mean())


def check_label_map(pixels: np.ndarray) -> list[str]:
    """Warnings about an input of ``labels2photo``; raises ImageError when nothing in it is a label colour."""
    coverage = palette_coverage(pixels)
    if coverage < NOTHING_MATCHES:
        raise ImageError(
            f"not a CMP facade label map: {coverage:.1%} of its pixels are label colours (labels2photo turns "
            "label maps painted in the CMP palette into photos; see `ganedit models show pan-facades`)"
        )
    if coverage < WARN_BELOW:
        return [
            f"only {coverage:.0%} of its pixels are CMP facade label colours; the output may be meaningless"
        ]
    return []
