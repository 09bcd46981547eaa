"""Writing images (`encode_picture`): the container, quality and the metadata carried from the input.

* JPEG: 8-bit, quality 95 by default, 4:4:4 chroma at quality >= 90 (4:2:0 below), baseline (not
  progressive). Alpha that is fully opaque is dropped silently; real transparency is an `ImageError`
  suggesting PNG. EXIF larger than a JPEG segment (64 KiB) is compacted (MakerNote and thumbnail
  dropped), or left out if still too large.
* PNG: 8-bit through Pillow; 16-bit (any channel count) through `ganedit.io.png.encode_png16`.
* WebP: 8-bit, lossy at ``quality``, lossless (with exact transparent pixels) at ``quality == 100``.
  At most 16383 pixels a side (a WebP limit): larger images are refused suggesting PNG or JPEG.
* TIFF: `ganedit.io.tiff.encode_tiff`, 8 and 16 bits, 1-4 channels.
* BMP: supported by `encode_picture` (8-bit, no metadata, opaque only), but ``--format keep`` of a BMP
  source gives **PNG**: BMP cannot hold EXIF or ICC, Pillow drops its alpha when writing, and it is
  uncompressed. PNG loses nothing.
* EXIF and ICC are written for JPEG, PNG, WebP and TIFF; DPI where the format has it.
* Rendered images that come from no file (rerender's renders, contact sheets, turntables) have no
  metadata to carry: `encode_png` and `encode_gif` (an endlessly looping animation) write 8-bit RGB.

Encoding returns bytes; writing them to a file is `ganedit.io.atomic.write_atomic`'s job.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from ..errors import ImageError, UsageError
from .exif import JPEG_EXIF_LIMIT, compact_exif
from .picture import FORMAT_ALIASES, JPEG_QUALITY, OUTPUT_FORMATS, SUFFIXES, Picture, describe_error
from .png import encode_png16
from .tiff import encode_tiff

_WEBP_MAX_SIDE = 16383


def output_format(source_format: str, requested: str) -> tuple[str, str]:
    """Resolve ``--format`` -> (container, suffix). ``keep`` keeps the source's container, except BMP,
    which becomes PNG (lossless, and unlike BMP it holds alpha, EXIF and ICC)."""
    choice = requested.lower()
    if choice == "keep":
        fmt = FORMAT_ALIASES.get(source_format.lower())
        if fmt is None:
            raise UsageError(f"unknown source format {source_format!r}")
        if fmt == "bmp":
            fmt = "png"
    else:
        fmt = FORMAT_ALIASES.get(choice)
        if fmt is None or fmt == "bmp":
            raise UsageError(f"unknown output format {requested!r}; choose from {', '.join(OUTPUT_FORMATS)}")
    return fmt, SUFFIXES[fmt]


def encode_picture(
    picture: Picture, fmt: str, *, quality: int = JPEG_QUALITY, name: str | None = None
) -> bytes:
    """Encode ``picture`` as ``fmt`` (jpeg/jpg, png, webp, tiff/tif, bmp), carrying EXIF, ICC and DPI.

    ``quality`` (1-100) applies to JPEG and WebP (WebP is lossless at 100). ``name`` prefixes error
    messages. 16-bit stays 16-bit in PNG and TIFF; JPEG, WebP and BMP get 8 bits (rounded).
    Transparency that JPEG or BMP cannot hold is an `ImageError` suggesting PNG.
    """
    container = FORMAT_ALIASES.get(fmt.lower())
    if container is None:
        raise UsageError(f"unknown output format {fmt!r}; choose from {', '.join(sorted(SUFFIXES))}")
    if not 1 <= quality <= 100:
        raise UsageError(f"quality must be between 1 and 100, got {quality}")
    prefix = f"{name}: " if name else ""
    pixels = np.ascontiguousarray(picture.pixels)
    try:
        if container == "png":
            if pixels.dtype == np.uint16:
                return encode_png16(pixels, picture.exif, picture.icc_profile, picture.dpi)
            return _save_pil(pixels, "PNG", picture, compress_level=6)
        if container == "tiff":
            return encode_tiff(pixels, picture.exif, picture.icc_profile, picture.dpi)
        pixels = _to_8bit(pixels)
        if container == "jpeg":
            pixels = _drop_opaque_alpha(pixels, "JPEG", prefix)
            exif = picture.exif
            if exif and len(exif) > JPEG_EXIF_LIMIT:
                exif = compact_exif(exif)
            return _save_pil(
                pixels,
                "JPEG",
                picture,
                exif=exif,
                quality=quality,
                subsampling=0 if quality >= 90 else 2,
                progressive=False,
            )
        if container == "webp":
            if max(picture.width, picture.height) > _WEBP_MAX_SIDE:
                raise ImageError(
                    f"{prefix}{picture.width}x{picture.height} is too large for WebP (at most "
                    f"{_WEBP_MAX_SIDE} pixels a side); use --format png or jpg"
                )
            if quality == 100:
                return _save_pil(pixels, "WEBP", picture, lossless=True, quality=100, exact=True)
            return _save_pil(pixels, "WEBP", picture, quality=quality)
        pixels = _drop_opaque_alpha(pixels, "BMP", prefix)
        return _save_pil(pixels, "BMP", picture, exif=None, icc=None)
    except ImageError:
        raise
    except (OSError, ValueError) as exc:
        raise ImageError(f"{prefix}cannot encode as {container.upper()}: {describe_error(exc)}") from exc


_SAVE_DEFAULT: Any = object()


def _save_pil(
    pixels: np.ndarray,
    pil_format: str,
    picture: Picture,
    *,
    exif: bytes | None = _SAVE_DEFAULT,
    icc: bytes | None = _SAVE_DEFAULT,
    **options: Any,
) -> bytes:
    image = Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels)
    exif = picture.exif if exif is _SAVE_DEFAULT else exif
    icc = picture.icc_profile if icc is _SAVE_DEFAULT else icc
    if exif:
        options["exif"] = exif
    if icc:
        options["icc_profile"] = icc
    if picture.dpi and pil_format != "WEBP":
        options["dpi"] = picture.dpi
    out = io.BytesIO()
    image.save(out, pil_format, **options)
    return out.getvalue()


def encode_png(pixels: np.ndarray) -> bytes:
    """An H x W x 3 uint8 image as a PNG without metadata."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def encode_gif(frames: Sequence[np.ndarray], duration_ms: int = 120) -> bytes:
    """An endlessly looping GIF of H x W x 3 uint8 frames (e.g. an azimuth sweep: a turntable)."""
    if not frames:
        raise ValueError("a GIF needs at least one frame")
    images = [Image.fromarray(f[:, :, :3]) for f in frames]
    buffer = io.BytesIO()
    images[0].save(
        buffer,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=duration_ms,
        loop=0,
        disposal=2,
    )
    return buffer.getvalue()


def _to_8bit(pixels: np.ndarray) -> np.ndarray:
    if pixels.dtype == np.uint8:
        return pixels
    return ((pixels.astype(np.uint32) + 128) // 257).astype(np.uint8)  # round(v * 255 / 65535)


def _drop_opaque_alpha(pixels: np.ndarray, container: str, prefix: str) -> np.ndarray:
    if pixels.shape[2] not in (2, 4):
        return pixels
    if not (pixels[:, :, -1] == np.iinfo(pixels.dtype).max).all():
        raise ImageError(f"{prefix}{container} cannot store transparency; use --format png (or webp, tiff)")
    return np.ascontiguousarray(pixels[:, :, :-1])
