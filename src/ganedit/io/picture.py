"""The decoded image (`Picture`) and the names shared by the readers and writers.

Pixels are H x W x C numpy arrays (C = 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA; alpha always last),
uint8 or uint16, already upright. The constants here are the file formats ganedit reads and writes, and
the limits every codec agrees on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IMAGE_SUFFIXES: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp"})
OUTPUT_FORMATS = ("keep", "png", "jpg", "webp", "tiff")
MAX_PIXELS = 300_000_000
JPEG_QUALITY = 95
#: Rec. 601 luma weights of R, G, B: a picture's grey, as Pillow's ``convert("L")`` computes it. The one
#: copy: grey outputs, masks read from colour files, sketches, black-and-white training pairs, metrics.
REC601_LUMA: tuple[float, float, float] = (0.299, 0.587, 0.114)

#: container name -> the suffix written for it
SUFFIXES: dict[str, str] = {"jpeg": ".jpg", "png": ".png", "webp": ".webp", "tiff": ".tif", "bmp": ".bmp"}
#: every spelling of a format we accept -> its container name
FORMAT_ALIASES = {
    "jpeg": "jpeg",
    "jpg": "jpeg",
    "png": "png",
    "webp": "webp",
    "tiff": "tiff",
    "tif": "tiff",
    "bmp": "bmp",
}


@dataclass(eq=False)
class Picture:
    """Decoded pixels plus the metadata to carry into the output.

    ``pixels`` is H x W x C (C = 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA; alpha is always last), uint8 or
    uint16, already upright. A 2-D array is accepted and given a channel axis.
    """

    pixels: np.ndarray
    format: str
    exif: bytes | None = None
    icc_profile: bytes | None = None
    dpi: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.pixels.ndim == 2:
            self.pixels = self.pixels[:, :, None]
        if self.pixels.ndim != 3 or self.pixels.shape[2] not in (1, 2, 3, 4):
            raise ValueError(f"pixels must be H x W x C with C in 1..4, got shape {self.pixels.shape}")
        if self.pixels.dtype not in (np.uint8, np.uint16):
            raise TypeError(f"pixels must be uint8 or uint16, got {self.pixels.dtype}")

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def channels(self) -> int:
        return int(self.pixels.shape[2])

    @property
    def has_alpha(self) -> bool:
        return self.channels in (2, 4)

    @property
    def bit_depth(self) -> int:
        return 16 if self.pixels.dtype == np.uint16 else 8


def rgb8(pixels: np.ndarray) -> np.ndarray:
    """H x W x {1,2,3,4} uint8|uint16 -> H x W x 3 uint8 (alpha dropped, grey repeated): what the
    training and evaluation code compares, whatever the file held."""
    if pixels.dtype == np.uint16:
        pixels = (pixels >> 8).astype(np.uint8)
    if pixels.shape[2] in (2, 4):
        pixels = pixels[:, :, :-1]
    if pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    return np.ascontiguousarray(pixels)


def describe_error(exc: BaseException) -> str:
    """An exception's message for a one-line error (its type name when the message is empty)."""
    text = str(exc).strip()
    return text or type(exc).__name__
