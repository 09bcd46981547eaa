"""Image files in and out: finding them, decoding, masks, encoding with metadata, atomic writes.

Photographers run ganedit over thousands of camera JPEGs and expect the outputs to be the *same photos*,
edited: upright, with their capture date, camera, GPS position and colour profile, at their bit depth,
and never a half-written file after Ctrl-C. This package is where all of that is decided, one module a
concern (each module's docstring has the details):

    picture   `Picture` (pixels + metadata) and the formats and limits shared below
    discover  which input files are images, with a note for everything skipped
    decode    `read_picture`: whole files, upright, 16-bit kept, every failure naming the file
    exif      EXIF patched in place (orientation reset, stale thumbnail unlinked), compacted for JPEG
    png/tiff  16-bit colour codecs of our own, where Pillow truncates to 8 bits or cannot write
    masks     `read_mask`: inpainting masks checked and fitted to their image
    encode    `encode_picture`: JPEG/PNG/WebP/TIFF/BMP with EXIF, ICC and DPI carried; `encode_png`,
              `encode_gif`: rendered images (no metadata)
    atomic    the one atomic file writer, used by everything ganedit writes
    stream    every byte of an image to stdout, or an error

Free of torch (one fallback decoder imports it inside a function), so that discovery and ``--help``
stay fast. Library code here never prints; failures are ``ImageError("<file>: <reason>")``.
"""

from __future__ import annotations

from .atomic import (
    STALE_SECONDS,
    TEMP_NAME,
    atomic_write,
    atomic_write_named,
    sweep_temporary_files,
    write_atomic,
)
from .decode import capture_warnings, file_limit, read_picture, too_large
from .discover import Discovery, Found, discover
from .encode import encode_gif, encode_picture, encode_png, output_format
from .masks import read_mask
from .picture import IMAGE_SUFFIXES, JPEG_QUALITY, MAX_PIXELS, OUTPUT_FORMATS, SUFFIXES, Picture, rgb8
from .stream import write_stream

__all__ = [
    "IMAGE_SUFFIXES",
    "JPEG_QUALITY",
    "MAX_PIXELS",
    "OUTPUT_FORMATS",
    "STALE_SECONDS",
    "SUFFIXES",
    "TEMP_NAME",
    "Discovery",
    "Found",
    "Picture",
    "atomic_write",
    "atomic_write_named",
    "capture_warnings",
    "discover",
    "encode_gif",
    "encode_picture",
    "encode_png",
    "file_limit",
    "output_format",
    "read_mask",
    "read_picture",
    "rgb8",
    "sweep_temporary_files",
    "too_large",
    "write_atomic",
    "write_stream",
]
