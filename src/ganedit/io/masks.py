"""Inpainting masks: read, checked to be masks, matched to their image's size.

White = fill, black = keep. A mask is an image file like any other (`read_picture`: EXIF orientation
applied), so this module only decides what counts as a mask and how it is fitted to its image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ImageError
from .decode import read_picture
from .picture import REC601_LUMA

_MASK_COLOUR_SPREAD = 0.1  # of full scale: channels closer than this are "equal" (JPEG and tool noise)
_MASK_COLOUR_PIXELS = 0.005  # a gray mask may have this fraction of colour pixels (anti-aliased edges)
_MASK_BINARY_PIXELS = 0.98  # ... and a black-and-white one this fraction of pixels near black or white


def _same_aspect(small: tuple[int, int], big: tuple[int, int]) -> bool:
    """Could ``small`` be ``big`` scaled with each side rounded (within one pixel)? I.e. is there one
    scale factor s with |small_w - s * big_w| <= 1 and |small_h - s * big_h| <= 1."""
    (sw, sh), (bw, bh) = small, big
    return (sw - 1) * bh <= (sh + 1) * bw and (sh - 1) * bw <= (sw + 1) * bh


def read_mask(source: Path, size: tuple[int, int]) -> tuple[np.ndarray, str | None]:
    """Read an inpainting mask for an upright image of ``size`` = (width, height).

    Returns an H x W bool array, True where the image is to be filled (white), thresholded at 50 % of
    full scale. The mask's own EXIF orientation is applied first; a mask with alpha is taken as
    composited over black, so transparent pixels are kept and opaque white ones filled.

    A mask must look like one, or the file fails (`ImageError` saying why): gray, or colour whose
    channels are equal within 10 % of full scale (a few colour pixels allowed), or black and white
    (>= 98 % of its pixels near black or white); a colour photo is refused. It must have the image's
    size, or its aspect ratio within a pixel of rounding: then it is resized (nearest neighbour) and the
    second value says so; another aspect ratio is refused rather than stretched.
    """
    picture = read_picture(source)
    width, height = size
    mw, mh = picture.width, picture.height
    if (mw, mh) != (width, height):
        small, big = ((mw, mh), (width, height)) if mw * mh <= width * height else ((width, height), (mw, mh))
        if not _same_aspect(small, big):
            raise ImageError(
                f"{source}: {mw}x{mh}, but the image is {width}x{height}: another aspect ratio "
                f"({mw / mh:.3g} vs {width / height:.3g}), so it cannot be scaled to fit; give a mask of "
                "the image's size (is it the mask of another image, or rotated?)"
            )
    pixels = picture.pixels
    full = 65535.0 if picture.bit_depth == 16 else 255.0
    alpha = pixels[:, :, -1] * np.float32(1.0 / full) if picture.has_alpha else None
    value = pixels[:, :, 0].astype(np.float32)
    if picture.channels >= 3:
        colour = pixels[:, :, :3]
        spread = (colour.max(axis=2) - colour.min(axis=2)).astype(np.float32)
        red, green, blue = REC601_LUMA
        value *= red
        value += pixels[:, :, 1] * np.float32(green)
        value += pixels[:, :, 2] * np.float32(blue)
    if alpha is not None:
        value *= alpha
    if picture.channels >= 3:
        if alpha is not None:
            spread *= alpha  # a transparent pixel's colour does not count
        coloured = float(np.count_nonzero(spread > _MASK_COLOUR_SPREAD * full)) / spread.size
        if coloured > _MASK_COLOUR_PIXELS:
            extreme = (value <= 0.1 * full) | (value >= 0.9 * full)
            if float(np.count_nonzero(extreme)) / value.size < _MASK_BINARY_PIXELS:
                raise ImageError(
                    f"{source}: a colour image ({coloured:.0%} of its pixels are coloured), not a mask; "
                    "a mask is gray or black and white (white = fill, black = keep)"
                )
    mask = value > full / 2
    if (mw, mh) == (width, height):
        return mask, None
    rows = np.minimum(((np.arange(height) + 0.5) * mh / height).astype(np.intp), mh - 1)
    cols = np.minimum(((np.arange(width) + 0.5) * mw / width).astype(np.intp), mw - 1)
    warning = (
        f"{source}: mask is {mw}x{mh} but the image is {width}x{height} (the same aspect ratio); "
        "resized it (nearest neighbour)"
    )
    return mask[rows[:, None], cols[None, :]], warning
