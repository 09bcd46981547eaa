"""Deprecated: the image I/O moved to the `ganedit.io` package; this module re-exports its old names.

Kept for one release so that outside code importing ``ganedit.images`` keeps working; ganedit itself
imports from ``ganedit.io`` and its modules. Import from ``ganedit.io`` instead.
"""

from __future__ import annotations

from .io.atomic import STALE_SECONDS, TEMP_NAME, sweep_temporary_files, write_atomic
from .io.decode import capture_warnings, file_limit, read_picture, too_large
from .io.discover import Discovery, Found, discover
from .io.encode import encode_picture, output_format
from .io.masks import read_mask
from .io.picture import IMAGE_SUFFIXES, JPEG_QUALITY, MAX_PIXELS, OUTPUT_FORMATS, SUFFIXES, Picture, rgb8
from .io.stream import write_stream

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
    "capture_warnings",
    "discover",
    "encode_picture",
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
