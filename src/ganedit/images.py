"""Image files in and out: discovery, decoding, masks, encoding with metadata, atomic writes.

Photographers run ganedit over thousands of camera JPEGs and expect the outputs to be the *same photos*,
edited: upright, with their capture date, camera, GPS position and colour profile, at their bit depth,
and never a half-written file after Ctrl-C. This module is where all of that is decided. It is free of
torch (see below for the one exception) so that discovery and `--help` stay fast.

Reading (`read_picture`)
    * The whole file is read into memory first and decoded completely (``load()``), so a truncated file
      fails here, naming the file, instead of later in the middle of an edit.
    * EXIF orientation is applied to the pixels and the carried-over EXIF gets ``Orientation = 1``. The
      EXIF block is patched *in place* rather than rebuilt, so MakerNotes and their offsets survive; the
      link to the embedded thumbnail (IFD1) is cut because that thumbnail still shows the unedited,
      unrotated photo. (Pillow 13's ``Exif.tobytes`` does keep the Exif and GPS sub-IFDs; it is the
      fallback when the block cannot be patched.) ``Picture.exif`` always starts with ``b"Exif\\0\\0"``.
      A TIFF's EXIF is its own first IFD: only its descriptive tags (Make, Model, DateTime, Artist,
      Copyright...) and its Exif/GPS sub-IFDs are carried, rebuilt by Pillow. Pillow >= 11 rotates TIFFs
      itself while loading; that is detected, so every file is rotated exactly once.
    * Modes: ``1`` -> L; ``P``/``PA`` -> RGB, or RGBA when the palette has transparency; ``RGBX`` -> RGB;
      premultiplied ``RGBa``/``La`` -> straight alpha; ``YCbCr``/``HSV``/``LAB`` -> RGB. **CMYK** -> RGB
      through the embedded ICC profile to sRGB when there is one (and the sRGB profile is carried), else
      Pillow's naive conversion with no profile (a CMYK profile must never be attached to RGB pixels).
      32-bit integer ``I`` is kept as 16-bit gray when every value fits 0..65535, else refused; 32-bit
      float ``F`` is scaled to 16-bit gray when every value lies in 0..1, else refused (HDR data cannot be
      represented without inventing a tone mapping). Only the first frame of multi-frame files is read.
    * 16 bits per channel stays uint16. 16-bit gray PNG/TIFF decode through Pillow's ``I;16`` modes.
      Pillow silently truncates 16-bit RGB(A)/LA PNGs to 8 bits while unpacking its (correctly
      unfiltered) rows, so those are detected from the IHDR and unpacked twice, keeping the high and then
      the low byte of every sample; ``torchvision.io.decode_png`` is only a fallback for a Pillow without
      those raw modes (torch is imported inside that function only).
      16-bit RGB(A)/LA **TIFF** is supported for any compression libtiff can decode (none, LZW, deflate,
      zstd, PackBits...), strips or tiles, either byte order, predictor 1 or 2, contiguous planes:
      the file's first IFD is re-described to libtiff as a 16-bit gray image ``samples`` times wider
      (same strips/tiles, predictor switched off), and the channels and the horizontal predictor are
      restored with numpy. Planar (separate-plane) 16-bit files, signed/float samples and other bit
      depths with several channels are refused with a message suggesting 16-bit PNG; bit depth is never
      lost silently.
    * The decompression-bomb guard is ours (`MAX_PIXELS`, 300 megapixels: enough for stitched panoramas
      and 100+ MP medium format). Because Pillow's own guard (89 MP warning, 179 MP error) would fire
      first, reading raises ``PIL.Image.MAX_IMAGE_PIXELS`` to ``4 * max_pixels`` (never lowers it).

Writing (`encode_picture`)
    * JPEG: 8-bit, quality 95 by default, 4:4:4 chroma at quality >= 90 (4:2:0 below), baseline (not
      progressive). Alpha that is fully opaque is dropped silently; real transparency is an `ImageError`
      suggesting PNG. EXIF larger than a JPEG segment (64 KiB) is compacted (MakerNote and thumbnail
      dropped), or left out if still too large.
    * PNG: 8-bit through Pillow; 16-bit (any channel count) through a small writer of our own
      (IHDR/pHYs/iCCP/eXIf/IDAT/IEND, Paeth-filtered, zlib level 6) since Pillow cannot write 16-bit RGB.
    * WebP: 8-bit, lossy at ``quality``, lossless (with exact transparent pixels) at ``quality == 100``.
      At most 16383 pixels a side (a WebP limit): larger images are refused suggesting PNG or JPEG.
    * TIFF: our own writer for 8 and 16 bits, 1-4 channels: deflate + horizontal predictor, ~1 MiB strips,
      unassociated alpha. Metadata (EXIF with its Exif/GPS sub-IFDs, ICC, resolution) is laid out by
      Pillow's TIFF writer in a 1x1 carrier image whose IFD entries are reused, because Pillow's libtiff
      path cannot write EXIF sub-IFDs and its own path cannot compress or write 16-bit RGB.
    * BMP: supported by `encode_picture` (8-bit, no metadata, opaque only), but ``--format keep`` of a
      BMP source gives **PNG**: BMP cannot hold EXIF or ICC, Pillow drops its alpha when writing, and it is
      uncompressed. PNG loses nothing.
    * EXIF and ICC are written for JPEG, PNG, WebP and TIFF; DPI where the format has it.

`write_atomic` writes a hidden temporary file beside the target, fsyncs it and renames it over the
target, so a reader (or an interrupted run that resumes by skipping existing outputs) never sees a partial
file. Library code here never prints; failures are `ImageError("<file>: <reason>")`.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import select
import socket
import stat
import struct
import tempfile
import threading
import time
import warnings
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import IO, Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import ImageError, UsageError

__all__ = [
    "IMAGE_SUFFIXES",
    "JPEG_QUALITY",
    "MAX_PIXELS",
    "OUTPUT_FORMATS",
    "Discovery",
    "Found",
    "Picture",
    "capture_warnings",
    "discover",
    "encode_picture",
    "output_format",
    "read_mask",
    "read_picture",
    "rgb8",
    "sweep_temporary_files",
    "write_atomic",
]

IMAGE_SUFFIXES: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp"})
OUTPUT_FORMATS = ("keep", "png", "jpg", "webp", "tiff")
MAX_PIXELS = 300_000_000
JPEG_QUALITY = 95

#: container name -> the suffix written for it
SUFFIXES: dict[str, str] = {"jpeg": ".jpg", "png": ".png", "webp": ".webp", "tiff": ".tif", "bmp": ".bmp"}
_FORMAT_ALIASES = {
    "jpeg": "jpeg",
    "jpg": "jpeg",
    "png": "png",
    "webp": "webp",
    "tiff": "tiff",
    "tif": "tiff",
    "bmp": "bmp",
}
# Pillow's format names we read, and what we call them. Cameras write MPO (JPEG + preview images).
_PIL_FORMATS = {"JPEG": "jpeg", "MPO": "jpeg", "PNG": "png", "WEBP": "webp", "TIFF": "tiff", "BMP": "bmp"}
_PIL_OPENERS = ["JPEG", "PNG", "WEBP", "TIFF", "BMP"]  # the JPEG opener returns MPO files itself

_ORIENTATION = 0x0112
_EXIF_PREFIX = b"Exif\x00\x00"
_JPEG_EXIF_LIMIT = 65_000  # one APP1 segment holds 65533 bytes; keep a margin
_WEBP_MAX_SIDE = 16383
_PNG_BLOCK_BYTES = 4 << 20  # rows filtered and compressed at a time by the 16-bit PNG writer
_TIFF_STRIP_BYTES = 1 << 20  # uncompressed bytes per strip written by the TIFF writer


# --------------------------------------------------------------------------------------------------------
# Picture


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


# --------------------------------------------------------------------------------------------------------
# Reading


_PIL_WARNINGS = r"PIL(\.|$)"
_capture = threading.local()  # .sink: the list this thread's warnings go to, inside capture_warnings()
_capture_lock = threading.Lock()
_shown_by: Callable[..., Any] | None = None  # what showed warnings before _route_warning


def _route_warning(message: Any, category: Any, filename: str, lineno: int, *args: Any) -> None:
    sink = getattr(_capture, "sink", None)
    if sink is not None:
        text = " ".join(str(message).split())
        if text not in sink:
            sink.append(text)
        return
    shown_by = _shown_by if _shown_by is not None else warnings._showwarning_orig  # type: ignore[attr-defined]
    shown_by(message, category, filename, lineno, *args)


@contextlib.contextmanager
def capture_warnings() -> Iterator[list[str]]:
    """Collect the warnings this thread raises meanwhile (Pillow's, e.g. corrupt EXIF) into a list
    instead of letting them print raw to stderr; the caller reports them with the file they concern.

    Other threads' warnings are shown as before. Pillow's warnings are shown every time rather than once
    per code location (a "always" filter for the PIL modules), so that every file reports its own.
    """
    global _shown_by
    with _capture_lock:
        if warnings.showwarning is not _route_warning:
            _shown_by, warnings.showwarning = warnings.showwarning, _route_warning
        if not any(f[0] == "always" and f[3] is not None and f[3].pattern == _PIL_WARNINGS
                   for f in warnings.filters):  # fmt: skip
            warnings.filterwarnings("always", module=_PIL_WARNINGS)
    outer = getattr(_capture, "sink", None)
    sink: list[str] = []
    _capture.sink = sink
    try:
        yield sink
    finally:
        _capture.sink = outer


def read_picture(source: Path | bytes, *, name: str | None = None, max_pixels: int = MAX_PIXELS) -> Picture:
    """Decode a whole image file (or its bytes, e.g. stdin) into an upright `Picture`.

    ``name`` is used in error messages (default: the path, or ``"<bytes>"``). Every failure is an
    `ImageError` naming the file: missing or unreadable, empty, not an image, truncated or corrupt,
    larger than ``max_pixels``, or a mode/bit depth we cannot represent without losing data.
    """
    if isinstance(source, bytes | bytearray | memoryview):
        label = name or "<bytes>"
        data = bytes(source)
    else:
        label = name or str(source)
        try:
            data = _read_file(Path(source), label, max_pixels)
        except MemoryError as exc:
            raise ImageError(f"{label}: not enough memory to read this file") from exc
    if not data:
        raise ImageError(f"{label}: empty file (0 bytes)")
    try:
        return _decode(data, label, max_pixels)
    except ImageError:
        raise
    except MemoryError as exc:
        raise ImageError(f"{label}: not enough memory to decode this image") from exc
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{label}: too many pixels (decompression-bomb guard): {exc}") from exc
    except Exception as exc:  # a corrupt file must fail this file only, whatever the decoder raised
        raise ImageError(f"{label}: corrupt or truncated image data ({_describe(exc)})") from exc


def file_limit(max_pixels: int = MAX_PIXELS) -> int:
    """Bytes of the largest file read for images of at most ``max_pixels``: uncompressed 16-bit RGBA
    and 64 MiB of metadata. Anything larger is refused unread (it cannot be an image we decode)."""
    return max_pixels * 8 + (64 << 20)


def too_large(label: str, size: int, max_pixels: int = MAX_PIXELS) -> ImageError:
    """The error for a file (or stdin) of ``size`` bytes, over `file_limit`."""
    return ImageError(
        f"{label}: {size / 2**30:.1f} GiB is too large for an image ganedit reads (at most "
        f"{file_limit(max_pixels) / 2**30:.1f} GiB: {max_pixels:,} pixels uncompressed; "
        "decompression-bomb guard); not read"
    )


def _peek(path: Path, label: str, max_pixels: int) -> None:
    """Refuse a decompression bomb from its header, before the whole file is read into memory."""
    _raise_pillow_limit(max_pixels)
    try:
        with Image.open(path, formats=_PIL_OPENERS) as im:
            width, height = im.size
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{label}: too many pixels (decompression-bomb guard): {exc}") from exc
    except Exception:  # not an image Pillow opens, or a damaged header: decoding will say which
        return
    _bomb_check(label, width, height, max_pixels)


def _read_file(path: Path, label: str, max_pixels: int = MAX_PIXELS) -> bytes:
    try:
        info = path.stat()
        if stat.S_ISREG(info.st_mode):
            if info.st_size > file_limit(max_pixels):
                raise too_large(label, info.st_size, max_pixels)
            _peek(path, label, max_pixels)
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise ImageError(f"{label}: no such file") from exc
    except IsADirectoryError as exc:
        raise ImageError(f"{label}: is a folder, not an image file") from exc
    except PermissionError as exc:
        raise ImageError(f"{label}: permission denied") from exc
    except OSError as exc:
        raise ImageError(f"{label}: cannot read ({exc.strerror or exc})") from exc


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return text or type(exc).__name__


def _raise_pillow_limit(max_pixels: int) -> None:
    # Pillow warns above MAX_IMAGE_PIXELS and raises above twice that, before we can apply our own limit.
    # Raise (never lower) it so only our check decides; 4x leaves room for the 16-bit TIFF re-description.
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and limit < 4 * max_pixels:
        Image.MAX_IMAGE_PIXELS = 4 * max_pixels


def _bomb_check(label: str, width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise ImageError(
            f"{label}: {width}x{height} is {width * height:,} pixels, over the limit of {max_pixels:,} "
            "(decompression-bomb guard)"
        )


_SIGNATURES = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"II+\x00", "TIFF"),
    (b"MM\x00+", "TIFF"),
    (b"BM", "BMP"),
)


def _open(data: bytes, label: str) -> Image.Image:
    try:
        return Image.open(io.BytesIO(data), formats=_PIL_OPENERS)
    except UnidentifiedImageError:
        pass
    # A known signature that Pillow cannot open is a damaged file, not "not an image".
    for signature, kind in _SIGNATURES:
        if data.startswith(signature):
            raise ImageError(f"{label}: corrupt or truncated {kind} data (cannot read its header)")
    # Name the format when it is an image we do not handle: a better message than "not an image".
    if data[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftyphevc", b"ftypavif", b"ftypmsf1"):
        raise ImageError(f"{label}: HEIF/AVIF images are not supported; convert to JPEG, PNG or TIFF")
    try:
        other = Image.open(io.BytesIO(data))
        kind = other.format
    except Exception:
        kind = None
    if kind:
        raise ImageError(
            f"{label}: {kind} images are not supported (ganedit reads JPEG, PNG, WebP, TIFF, BMP)"
        )
    raise ImageError(f"{label}: not an image (not JPEG, PNG, WebP, TIFF or BMP data)")


def _decode(data: bytes, label: str, max_pixels: int) -> Picture:
    _raise_pillow_limit(max_pixels)
    if data[:4] in _TIFF_MAGICS:
        layout = _tiff_wide_layout(data, label)
        if layout is not None:  # Pillow would truncate this file to 8 bits, or cannot open it at all
            _bomb_check(label, layout.width, layout.height, max_pixels)
            pixels, meta = _decode_tiff16(data, layout, label)
            return _finish(
                pixels,
                "tiff",
                exif=_tiff_exif(meta),
                icc=meta.info.get("icc_profile"),
                dpi=_dpi(meta),
                orientation=layout.orientation,
            )

    im = _open(data, label)
    fmt = _PIL_FORMATS[str(im.format)]
    _bomb_check(label, im.width, im.height, max_pixels)
    if fmt == "png":
        png = _png_metadata(data)
        if png.bit_depth == 16 and png.color_type in (2, 4, 6):  # Pillow would truncate these to 8 bits
            pixels = _decode_png16(data, label, png.color_type)
            return _finish(pixels, fmt, exif=png.exif, icc=png.icc, dpi=png.dpi, orientation=None)
    tiff_orientation = _int_or(im.tag_v2.get(_ORIENTATION), 1) if fmt == "tiff" else 1
    try:
        im.load()
    except OSError as exc:
        raise ImageError(f"{label}: corrupt or truncated {fmt.upper()} data ({_describe(exc)})") from exc
    pixels, icc = _to_array(im, label)
    if fmt == "tiff":
        exif = _tiff_exif(im)
        # Pillow >= 11 applies a TIFF's orientation itself while loading and then deletes the tag.
        orientation: int | None = 1 if _ORIENTATION not in im.tag_v2 else tiff_orientation
    else:
        exif = _raw_exif(im)
        orientation = None
    return _finish(pixels, fmt, exif=exif, icc=icc, dpi=_dpi(im), orientation=orientation)


def _finish(
    pixels: np.ndarray,
    fmt: str,
    *,
    exif: bytes | None,
    icc: bytes | None,
    dpi: tuple[float, float] | None,
    orientation: int | None,
) -> Picture:
    """Apply orientation (from ``orientation``, else from the EXIF) and reset it in the carried EXIF."""
    exif_orientation, exif = _reset_orientation(exif) if exif else (1, None)
    if orientation is None:
        orientation = exif_orientation
    pixels = _apply_orientation(pixels, orientation)
    if dpi is not None and orientation in (5, 6, 7, 8):
        dpi = (dpi[1], dpi[0])
    if not pixels.flags.writeable or not pixels.flags.c_contiguous:
        pixels = np.array(pixels, order="C")
    return Picture(pixels=pixels, format=fmt, exif=exif, icc_profile=icc or None, dpi=dpi)


def _int_or(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _dpi(im: Image.Image) -> tuple[float, float] | None:
    dpi = im.info.get("dpi")
    try:
        x, y = (round(float(v), 2) for v in dpi)  # PNG stores pixels per metre: 299.9994 -> 300.0
    except (TypeError, ValueError):
        return None
    return (x, y) if x > 0 and y > 0 else None


def _apply_orientation(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """The EXIF orientation transforms, as `PIL.ImageOps.exif_transpose` does them, on H x W x C."""
    if orientation == 2:
        return pixels[:, ::-1]
    if orientation == 3:
        return pixels[::-1, ::-1]
    if orientation == 4:
        return pixels[::-1]
    if orientation == 5:
        return pixels.transpose(1, 0, 2)
    if orientation == 6:
        return np.rot90(pixels, k=-1)
    if orientation == 7:
        return pixels.transpose(1, 0, 2)[::-1, ::-1]
    if orientation == 8:
        return np.rot90(pixels, k=1)
    return pixels


def _to_array(im: Image.Image, label: str) -> tuple[np.ndarray, bytes | None]:
    """Pillow image in any mode -> (H x W x C uint8/uint16, ICC profile that applies to those pixels)."""
    icc = im.info.get("icc_profile") or None
    mode = im.mode
    if mode in ("L", "LA", "RGB", "RGBA"):
        pass
    elif mode == "1":
        im = im.convert("L")
    elif mode in ("P", "PA"):
        palette_mode = getattr(im.palette, "mode", "RGB")
        transparent = mode == "PA" or "transparency" in im.info or palette_mode == "RGBA"
        im = im.convert("RGBA" if transparent else "RGB")
    elif mode in ("RGBX", "YCbCr"):
        im = im.convert("RGB")
    elif mode == "RGBa":
        im = im.convert("RGBA")
    elif mode == "La":
        im = im.convert("LA")
    elif mode in ("HSV", "LAB"):
        im, icc = im.convert("RGB"), None
    elif mode == "CMYK":
        im, icc = _cmyk_to_rgb(im, icc)
    elif mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        return np.asarray(im).astype(np.uint16)[:, :, None], icc
    elif mode == "I":
        values = np.asarray(im)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise ImageError(f"{label}: 32-bit integer image with values outside 0..65535 is not supported")
        return values.astype(np.uint16)[:, :, None], icc
    elif mode == "F":
        values = np.asarray(im)
        if values.size and not (np.isfinite(values).all() and values.min() >= 0 and values.max() <= 1):
            raise ImageError(
                f"{label}: 32-bit float image with values outside 0..1 is not supported "
                "(save it as 16-bit TIFF or PNG first)"
            )
        return np.rint(values * 65535.0).astype(np.uint16)[:, :, None], icc
    else:
        raise ImageError(f"{label}: unsupported image mode {mode!r}")
    pixels = np.array(im)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    return pixels, icc


def _cmyk_to_rgb(im: Image.Image, icc: bytes | None) -> tuple[Image.Image, bytes | None]:
    """CMYK through its own profile to sRGB when possible; else naive, with no profile attached."""
    if icc:
        try:
            from PIL import ImageCms

            srgb = ImageCms.createProfile("sRGB")
            converted = ImageCms.profileToProfile(
                im, ImageCms.ImageCmsProfile(io.BytesIO(icc)), srgb, outputMode="RGB"
            )
            if converted is not None:
                return converted, ImageCms.ImageCmsProfile(srgb).tobytes()
        except Exception:
            pass  # a broken profile or no littlecms: fall back to the plain formula below
    return im.convert("RGB"), None


# ---- EXIF --------------------------------------------------------------------------------------------


def _raw_exif(im: Image.Image) -> bytes | None:
    raw = im.info.get("exif")
    if isinstance(raw, bytes | bytearray) and raw:
        return _with_prefix(bytes(raw))
    try:  # e.g. PNG "Raw profile type exif" text chunks, which only Pillow's getexif() understands
        exif = im.getexif()
        return exif.tobytes() if len(exif) else None
    except Exception:
        return None


def _with_prefix(raw: bytes) -> bytes:
    return raw if raw.startswith(_EXIF_PREFIX) else _EXIF_PREFIX + raw


# IFD0 tags of a TIFF file that describe the photo (the rest describe the file's layout).
_TIFF_DESCRIPTIVE_TAGS = (0x010E, 0x010F, 0x0110, 0x0112, 0x0131, 0x0132, 0x013B, 0x013C, 0x8298)


def _tiff_exif(im: Image.Image) -> bytes | None:
    """A TIFF's EXIF is its own IFD0: keep the descriptive tags and the Exif/GPS sub-IFDs only."""
    try:
        src = im.getexif()
        out = Image.Exif()
        for tag in _TIFF_DESCRIPTIVE_TAGS:
            if tag in src:
                out[tag] = src[tag]
        for pointer in (0x8769, 0x8825):  # Exif IFD, GPS IFD
            if pointer in src:
                sub = src.get_ifd(pointer)
                if sub:
                    out.get_ifd(pointer).update(sub)
        if not len(out) and not out.get_ifd(0x8769) and not out.get_ifd(0x8825):
            return None
        return out.tobytes()
    except Exception:
        return None


def _reset_orientation(exif: bytes) -> tuple[int, bytes | None]:
    """Return (orientation, EXIF with Orientation = 1 and no thumbnail link), patching bytes in place.

    Patching keeps every other byte (MakerNotes use absolute offsets and break when moved). When the
    block cannot be parsed, Pillow rebuilds it; when Pillow cannot either, the EXIF is dropped.
    """
    body = bytearray(exif[len(_EXIF_PREFIX) :] if exif.startswith(_EXIF_PREFIX) else exif)
    try:
        orientation = _patch_ifd0(body)
        return orientation, _EXIF_PREFIX + bytes(body)
    except (struct.error, ValueError, IndexError):
        pass
    try:
        rebuilt = Image.Exif()
        rebuilt.load(bytes(exif))
        orientation = _int_or(rebuilt.get(_ORIENTATION), 1)
        if _ORIENTATION in rebuilt:
            rebuilt[_ORIENTATION] = 1
        return orientation, rebuilt.tobytes()
    except Exception:
        return 1, None


def _patch_ifd0(body: bytearray) -> int:
    if body[:4] not in (b"II*\x00", b"MM\x00*"):
        raise ValueError("not a TIFF header")
    end = "<" if body[:2] == b"II" else ">"
    (ifd,) = struct.unpack_from(end + "I", body, 4)
    (count,) = struct.unpack_from(end + "H", body, ifd)
    if ifd + 2 + 12 * count + 4 > len(body):
        raise ValueError("IFD0 runs past the end")
    orientation = 1
    for i in range(count):
        entry = ifd + 2 + 12 * i
        tag, typ, n = struct.unpack_from(end + "HHI", body, entry)
        if tag == _ORIENTATION:
            if n != 1 or typ not in (3, 4):  # not the standard SHORT: let Pillow deal with it
                raise ValueError("unusual Orientation entry")
            code = "H" if typ == 3 else "I"
            (value,) = struct.unpack_from(end + code, body, entry + 8)
            orientation = value if 1 <= value <= 8 else 1
            struct.pack_into(end + code, body, entry + 8, 1)
    struct.pack_into(end + "I", body, ifd + 2 + 12 * count, 0)  # unlink IFD1 (the stale thumbnail)
    return orientation


# ---- PNG ------------------------------------------------------------------------------------------------


@dataclass
class _PngMeta:
    width: int = 0
    height: int = 0
    bit_depth: int = 8
    color_type: int = 0
    icc: bytes | None = None
    exif: bytes | None = None
    dpi: tuple[float, float] | None = None


def _png_metadata(data: bytes) -> _PngMeta:
    """Walk the PNG chunks for IHDR, iCCP, eXIf and pHYs (eXIf may follow the image data)."""
    meta = _PngMeta()
    pos = 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR" and len(body) >= 13:
            meta.width, meta.height, meta.bit_depth, meta.color_type = struct.unpack_from(">IIBB", body)
        elif kind == b"iCCP" and b"\x00" in body[:80]:
            start = body.index(b"\x00") + 2
            try:
                meta.icc = zlib.decompressobj().decompress(body[start:], 64 << 20) or None
            except zlib.error:
                meta.icc = None
        elif kind == b"eXIf" and body:
            meta.exif = _with_prefix(body)
        elif kind == b"pHYs" and len(body) >= 9:
            x, y, unit = struct.unpack_from(">IIB", body)
            if unit == 1 and x and y:
                meta.dpi = (round(x * 0.0254, 2), round(y * 0.0254, 2))
        elif kind == b"IEND":
            break
        pos += 12 + length
    return meta


# Pillow unfilters 16-bit PNG rows correctly and only truncates while unpacking them. Unpacking the same
# rows once as big-endian (keeps the high byte) and once as little-endian (keeps the other, low byte)
# recovers every bit. 16-bit gray+alpha has 4 bytes per pixel like 8-bit RGBA, so "RGBA" returns its
# bytes as they are. Colour type -> (Pillow mode expected, raw modes to decode with).
_PNG16_RAWMODES = {
    2: ("RGB", ("RGB;16B", "RGB;16L")),
    6: ("RGBA", ("RGBA;16B", "RGBA;16L")),
    4: ("RGBA", ("RGBA",)),
}


def _decode_png16(data: bytes, label: str, color_type: int) -> np.ndarray:
    """16-bit RGB/RGBA/LA PNG -> H x W x C uint16 (Pillow alone would truncate these to 8 bits)."""
    mode, rawmodes = _PNG16_RAWMODES[color_type]
    planes = []
    for rawmode in rawmodes:
        im = Image.open(io.BytesIO(data), formats=["PNG"])
        if im.mode != mode:
            return _decode_png16_torchvision(data, label)
        im.tile = [im.tile[0]._replace(args=rawmode)]
        try:
            im.load()
        except ValueError:  # this Pillow has no such raw mode
            return _decode_png16_torchvision(data, label)
        except OSError as exc:
            raise ImageError(f"{label}: corrupt or truncated PNG data ({_describe(exc)})") from exc
        planes.append(np.asarray(im))
    if len(planes) == 1:  # gray+alpha: the bytes of big-endian L, A
        return np.ascontiguousarray(planes[0]).view(">u2").astype(np.uint16)
    high, low = planes
    pixels = high.astype(np.uint16) << 8
    pixels |= low
    return pixels


def _decode_png16_torchvision(data: bytes, label: str) -> np.ndarray:
    """Fallback for Pillow versions without the raw modes above (torchvision deprecates its decoder)."""
    try:
        import torch
        from torchvision.io import ImageReadMode, decode_png
    except ImportError as exc:  # pragma: no cover - torchvision is a dependency
        raise ImageError(f"{label}: reading 16-bit colour PNG needs torchvision with this Pillow") from exc
    try:
        tensor = decode_png(
            torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.UNCHANGED
        )
    except RuntimeError as exc:  # libpng's message carries a C++ source path: not for users
        raise ImageError(f"{label}: corrupt or truncated 16-bit PNG data") from exc
    return np.ascontiguousarray(tensor.permute(1, 2, 0).numpy().astype(np.uint16, copy=False))


# ---- TIFF ------------------------------------------------------------------------------------------------

# TIFF field types -> (struct code, size)
_TIFF_TYPES = {1: ("B", 1), 3: ("H", 2), 4: ("I", 4), 16: ("Q", 8), 13: ("I", 4), 18: ("Q", 8)}


@dataclass
class _Tiff:
    endian: str  # "<" or ">"
    big: bool  # BigTIFF
    entries: dict[int, tuple[int, int, bytes]] = field(default_factory=dict)  # tag -> (type, count, field)

    @property
    def field_size(self) -> int:
        return 8 if self.big else 4

    def ints(self, data: bytes, tag: int, default: tuple[int, ...] = ()) -> tuple[int, ...]:
        if tag not in self.entries:
            return default
        typ, count, raw = self.entries[tag]
        code, size = _TIFF_TYPES[typ]
        if size * count <= self.field_size:
            payload = raw
        else:
            (offset,) = struct.unpack(self.endian + ("Q" if self.big else "I"), raw)
            payload = data[offset : offset + size * count]
        return struct.unpack_from(f"{self.endian}{count}{code}", payload)


def _parse_tiff(data: bytes | bytearray) -> tuple[_Tiff, int]:
    """Parse the first IFD of a classic or Big TIFF -> (fields, offset of the first-IFD pointer)."""
    end = {b"II": "<", b"MM": ">"}[bytes(data[:2])]
    (magic,) = struct.unpack_from(end + "H", data, 2)
    if magic == 42:
        tiff, pointer = _Tiff(end, False), 4
        (ifd,) = struct.unpack_from(end + "I", data, 4)
        (count,) = struct.unpack_from(end + "H", data, ifd)
        first, size, fmt = ifd + 2, 12, "HHI4s"
    elif magic == 43:
        tiff, pointer = _Tiff(end, True), 8
        (ifd,) = struct.unpack_from(end + "Q", data, 8)
        (count,) = struct.unpack_from(end + "Q", data, ifd)
        first, size, fmt = ifd + 8, 20, "HHQ8s"
    else:
        raise ValueError("not a TIFF file")
    for i in range(count):
        tag, typ, n, raw = struct.unpack_from(end + fmt, data, first + size * i)
        tiff.entries[tag] = (typ, n, raw)
    return tiff, pointer


def _append_ifd(
    buf: bytearray, tiff: _Tiff, entries: dict[int, tuple[int, int, bytes]], pointer: int
) -> None:
    """Append an IFD to ``buf`` and point the header at it. Values are packed bytes: inline when they
    fit in the value field, else stored after the IFD; ``(type, count, field)`` tuples whose bytes are
    exactly a value field (copied from another IFD) are kept verbatim."""
    end, big = tiff.endian, tiff.big
    if len(buf) % 2:
        buf += b"\x00"
    count_fmt, off_fmt, head = ("Q", "Q", 8) if big else ("H", "I", 2)
    entry_size = 20 if big else 12
    ifd_at = len(buf)
    extra_at = ifd_at + head + entry_size * len(entries) + (8 if big else 4)
    table = bytearray(struct.pack(end + count_fmt, len(entries)))
    extra = bytearray()
    for tag in sorted(entries):
        typ, n, payload = entries[tag]
        if len(payload) <= tiff.field_size:
            value = payload.ljust(tiff.field_size, b"\x00")
        else:
            value = struct.pack(end + off_fmt, extra_at + len(extra))
            extra += payload + (b"\x00" if len(payload) % 2 else b"")
        table += struct.pack(end + ("HHQ" if big else "HHI"), tag, typ, n) + value
    table += b"\x00" * (8 if big else 4)
    buf += table + extra
    if not big and len(buf) >= 1 << 32:
        raise ValueError("over 4 GiB: too large for a classic TIFF")
    struct.pack_into(end + off_fmt, buf, pointer, ifd_at)


def _pack(tiff: _Tiff, typ: int, values: Sequence[int]) -> tuple[int, int, bytes]:
    code, _ = _TIFF_TYPES[typ]
    return typ, len(values), struct.pack(f"{tiff.endian}{len(values)}{code}", *values)


_TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


@dataclass
class _WideTiff:
    tiff: _Tiff
    pointer: int
    width: int
    height: int
    samples: int
    photometric: int
    predictor: int
    tile_width: int
    extra: int
    orientation: int


def _tiff_wide_layout(data: bytes, label: str) -> _WideTiff | None:
    """The layout of a TIFF with more than 8 bits and several samples per pixel (which Pillow truncates
    to 8 bits, or cannot open), or None for any other TIFF (Pillow reads those, or says why not)."""
    try:
        tiff, pointer = _parse_tiff(data)
        bits = tiff.ints(data, 258, (1,))
        samples = tiff.ints(data, 277, (1,))[0]
        if samples == 1 or max(bits) <= 8:
            return None
        width, height = tiff.ints(data, 256)[0], tiff.ints(data, 257)[0]
        photometric = tiff.ints(data, 262, (-1,))[0]
        planar = tiff.ints(data, 284, (1,))[0]
        sample_format = tiff.ints(data, 339, (1,))
        predictor = tiff.ints(data, 317, (1,))[0]
        tile_width = tiff.ints(data, 322, (0,))[0]
        extra = tiff.ints(data, 338, (0,))[0]
        orientation = tiff.ints(data, _ORIENTATION, (1,))[0]
    except (KeyError, IndexError, ValueError, struct.error):
        return None
    depth = "/".join(str(b) for b in sorted(set(bits)))
    if set(bits) != {16} or photometric not in (1, 2) or planar != 1:
        kind = {1: "gray", 2: "RGB", 5: "CMYK", 6: "YCbCr", 8: "CIELab"}.get(photometric, f"{samples}-sample")
        if planar != 1 and set(bits) == {16} and photometric in (1, 2):
            raise ImageError(
                f"{label}: 16-bit {kind} TIFF with separate colour planes is not supported; save it as "
                "16-bit PNG, or as TIFF with interleaved (contiguous) channels"
            )
        raise ImageError(
            f"{label}: {depth}-bit {kind} TIFF is not supported; save it as 16-bit PNG or RGB TIFF"
        )
    if set(sample_format) != {1}:
        raise ImageError(
            f"{label}: 16-bit signed or floating-point TIFF is not supported; save it as 16-bit PNG"
        )
    if predictor not in (1, 2):
        raise ImageError(
            f"{label}: TIFF predictor {predictor} is not supported for 16-bit colour; save it as 16-bit PNG"
        )
    return _WideTiff(
        tiff, pointer, width, height, samples, photometric, predictor, tile_width, extra, orientation
    )


# Tags describing the samples, which the gray re-description must not carry over (and Orientation,
# which we apply ourselves: Pillow >= 11 would transpose the wide gray image).
_TIFF_SAMPLE_TAGS = frozenset(
    {256, 257, 258, 262, 274, 277, 280, 281, 284, 301, 317, 322, 338, 339, 340, 341}
)


def _decode_tiff16(data: bytes, layout: _WideTiff, label: str) -> tuple[np.ndarray, Image.Image]:
    """16-bit TIFF with several samples per pixel -> (H x W x C uint16, a Pillow image for metadata).

    The first IFD is re-described as a 16-bit gray image ``samples`` times wider, with the same strips
    or tiles, the same compression and every descriptive tag, and predictor off; libtiff (through Pillow)
    decodes it, and numpy restores the channels and undoes the horizontal predictor.
    """
    tiff, width, height, samples = layout.tiff, layout.width, layout.height, layout.samples
    entries = {tag: value for tag, value in tiff.entries.items() if tag not in _TIFF_SAMPLE_TAGS}
    entries[256] = _pack(tiff, 4, [width * samples])
    entries[257] = _pack(tiff, 4, [height])
    entries[258] = _pack(tiff, 3, [16])
    entries[262] = _pack(tiff, 3, [1])
    entries[277] = _pack(tiff, 3, [1])
    entries[284] = _pack(tiff, 3, [1])
    if layout.tile_width:
        entries[322] = _pack(tiff, 4, [layout.tile_width * samples])
    buf = bytearray(data)
    _append_ifd(buf, tiff, entries, layout.pointer)
    gray = Image.open(io.BytesIO(buf), formats=["TIFF"])
    if not gray.mode.startswith("I;16") or gray.size != (width * samples, height):
        raise ImageError(f"{label}: cannot decode this 16-bit TIFF layout; save it as 16-bit PNG")
    try:
        gray.load()
    except OSError as exc:
        raise ImageError(f"{label}: corrupt or truncated TIFF data ({_describe(exc)})") from exc
    pixels = np.asarray(gray).astype(np.uint16).reshape(height, width, samples)
    if layout.predictor == 2:  # undo horizontal differencing, restarted at every strip row / tile row
        step = layout.tile_width or width
        for x0 in range(0, width, step):
            np.cumsum(pixels[:, x0 : x0 + step], axis=1, dtype=np.uint16, out=pixels[:, x0 : x0 + step])
    color = 3 if layout.photometric == 2 else 1
    if samples == color:
        return pixels, gray
    if layout.extra == 0:  # unspecified extra samples (spot colours...): not alpha
        return np.ascontiguousarray(pixels[:, :, :color]), gray
    pixels = np.ascontiguousarray(pixels[:, :, : color + 1])
    if layout.extra == 1:  # associated (premultiplied) alpha -> straight
        alpha = pixels[:, :, color:].astype(np.float32)
        gain = np.divide(np.float32(65535.0), alpha, out=np.zeros_like(alpha), where=alpha > 0)
        pixels[:, :, :color] = np.clip(np.rint(pixels[:, :, :color] * gain), 0, 65535).astype(np.uint16)
    return pixels, gray


# --------------------------------------------------------------------------------------------------------
# Masks


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
        value *= 0.299
        value += pixels[:, :, 1] * np.float32(0.587)
        value += pixels[:, :, 2] * np.float32(0.114)
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


# --------------------------------------------------------------------------------------------------------
# Writing


def output_format(source_format: str, requested: str) -> tuple[str, str]:
    """Resolve ``--format`` -> (container, suffix). ``keep`` keeps the source's container, except BMP,
    which becomes PNG (lossless, and unlike BMP it holds alpha, EXIF and ICC)."""
    choice = requested.lower()
    if choice == "keep":
        fmt = _FORMAT_ALIASES.get(source_format.lower())
        if fmt is None:
            raise UsageError(f"unknown source format {source_format!r}")
        if fmt == "bmp":
            fmt = "png"
    else:
        fmt = _FORMAT_ALIASES.get(choice)
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
    container = _FORMAT_ALIASES.get(fmt.lower())
    if container is None:
        raise UsageError(f"unknown output format {fmt!r}; choose from {', '.join(sorted(SUFFIXES))}")
    if not 1 <= quality <= 100:
        raise UsageError(f"quality must be between 1 and 100, got {quality}")
    prefix = f"{name}: " if name else ""
    pixels = np.ascontiguousarray(picture.pixels)
    try:
        if container == "png":
            if pixels.dtype == np.uint16:
                return _encode_png16(pixels, picture.exif, picture.icc_profile, picture.dpi)
            return _save_pil(pixels, "PNG", picture, compress_level=6)
        if container == "tiff":
            return _encode_tiff(pixels, picture.exif, picture.icc_profile, picture.dpi)
        pixels = _to_8bit(pixels)
        if container == "jpeg":
            pixels = _drop_opaque_alpha(pixels, "JPEG", prefix)
            exif = picture.exif
            if exif and len(exif) > _JPEG_EXIF_LIMIT:
                exif = _compact_exif(exif)
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
        raise ImageError(f"{prefix}cannot encode as {container.upper()}: {_describe(exc)}") from exc


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


def _compact_exif(exif: bytes) -> bytes | None:
    """Rebuild an EXIF block too large for a JPEG segment without its MakerNote (and thumbnail)."""
    try:
        rebuilt = Image.Exif()
        rebuilt.load(exif)
        rebuilt.get_ifd(0x8769).pop(0x927C, None)
        data = rebuilt.tobytes()
    except Exception:
        return None
    return data if len(data) <= _JPEG_EXIF_LIMIT else None


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _paeth_filter(rows: np.ndarray, previous: np.ndarray, bpp: int) -> np.ndarray:
    """PNG filter type 4 for a block of rows (uint8, n x stride), vectorised: encoding only needs the
    unfiltered neighbours, so unlike decoding it has no sequential dependency."""
    x = rows.astype(np.int16)
    up = np.empty_like(x)
    up[0] = previous
    up[1:] = x[:-1]
    left = np.zeros_like(x)
    left[:, bpp:] = x[:, :-bpp]
    up_left = np.zeros_like(x)
    up_left[:, bpp:] = up[:, :-bpp]
    pa = np.abs(up - up_left)
    pb = np.abs(left - up_left)
    pc = np.abs(left + up - 2 * up_left)
    predictor = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, up_left))
    filtered = np.empty((x.shape[0], x.shape[1] + 1), dtype=np.uint8)
    filtered[:, 0] = 4
    filtered[:, 1:] = (x - predictor).astype(np.uint8)
    return filtered


def _encode_png16(
    pixels: np.ndarray, exif: bytes | None, icc: bytes | None, dpi: tuple[float, float] | None
) -> bytes:
    """A 16-bit PNG of any channel count (Pillow cannot write 16-bit RGB/RGBA/LA)."""
    height, width, channels = pixels.shape
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    parts = [
        b"\x89PNG\r\n\x1a\n",
        _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, color_type, 0, 0, 0)),
    ]
    if dpi:
        per_metre = [round(v / 0.0254) for v in dpi]
        parts.append(_png_chunk(b"pHYs", struct.pack(">IIB", per_metre[0], per_metre[1], 1)))
    if icc:
        parts.append(_png_chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(icc)))
    if exif:
        parts.append(
            _png_chunk(b"eXIf", exif[len(_EXIF_PREFIX) :] if exif.startswith(_EXIF_PREFIX) else exif)
        )
    stride = width * channels * 2
    big_endian = pixels.astype(">u2", copy=False).reshape(height, stride // 2).view(np.uint8)
    compressor = zlib.compressobj(6)
    compressed: list[bytes] = []
    previous = np.zeros(stride, dtype=np.int16)
    block = max(1, _PNG_BLOCK_BYTES // max(stride, 1))
    for y0 in range(0, height, block):
        rows = big_endian[y0 : y0 + block]
        compressed.append(compressor.compress(_paeth_filter(rows, previous, channels * 2).tobytes()))
        previous = rows[-1].astype(np.int16)
    compressed.append(compressor.flush())
    data = b"".join(compressed)
    chunk = 1 << 20
    parts.extend(_png_chunk(b"IDAT", data[i : i + chunk]) for i in range(0, max(len(data), 1), chunk))
    parts.append(_png_chunk(b"IEND", b""))
    return b"".join(parts)


# IFD0 tags our TIFF writer sets itself (or that describe a layout we do not write).
_TIFF_LAYOUT_TAGS = frozenset(
    {254, 255, 256, 257, 258, 259, 262, 263, 266, 273, 277, 278, 279, 280, 281, 284, 317, 320, 322, 323}
    | {324, 325, 330, 338, 339, 340, 341, 347, 513, 514, 529, 530, 531, 532}
)


def _encode_tiff(
    pixels: np.ndarray, exif: bytes | None, icc: bytes | None, dpi: tuple[float, float] | None
) -> bytes:
    """Deflate-compressed TIFF with horizontal predictor, 8 or 16 bits, 1-4 channels (see module doc)."""
    options: dict[str, Any] = {}
    if exif:
        options["exif"] = exif
    if icc:
        options["icc_profile"] = icc
    if dpi:
        options["dpi"] = dpi
    carrier = io.BytesIO()
    try:  # Pillow lays out the EXIF sub-IFDs, ICC and resolution in a 1 x 1 carrier image
        Image.new("L", (1, 1)).save(carrier, "TIFF", **options)
    except Exception:  # EXIF that Pillow cannot re-serialise: keep the rest rather than fail the file
        options.pop("exif", None)
        carrier = io.BytesIO()
        Image.new("L", (1, 1)).save(carrier, "TIFF", **options)
    buf = bytearray(carrier.getvalue())
    tiff, pointer = _parse_tiff(buf)
    entries = {tag: value for tag, value in tiff.entries.items() if tag not in _TIFF_LAYOUT_TAGS}

    height, width, channels = pixels.shape
    sample = np.dtype(tiff.endian + ("u2" if pixels.dtype == np.uint16 else "u1"))
    row_bytes = width * channels * sample.itemsize
    rows_per_strip = max(1, min(height, _TIFF_STRIP_BYTES // max(row_bytes, 1)))
    offsets: list[int] = []
    counts: list[int] = []
    for y0 in range(0, height, rows_per_strip):
        rows = pixels[y0 : y0 + rows_per_strip]
        diff = rows.copy()
        diff[:, 1:] -= rows[:, :-1]  # horizontal predictor; unsigned arithmetic wraps as TIFF expects
        data = zlib.compress(diff.astype(sample, copy=False).tobytes(), 6)
        if len(buf) % 2:
            buf += b"\x00"
        offsets.append(len(buf))
        counts.append(len(data))
        buf += data
        if len(buf) >= 1 << 32:
            raise ValueError("over 4 GiB: too large for a classic TIFF")
    bits = 8 * sample.itemsize
    entries[256] = _pack(tiff, 4, [width])
    entries[257] = _pack(tiff, 4, [height])
    entries[258] = _pack(tiff, 3, [bits] * channels)
    entries[259] = _pack(tiff, 3, [8])  # Adobe deflate
    entries[262] = _pack(tiff, 3, [2 if channels >= 3 else 1])
    entries[273] = _pack(tiff, 4, offsets)
    entries[277] = _pack(tiff, 3, [channels])
    entries[278] = _pack(tiff, 4, [rows_per_strip])
    entries[279] = _pack(tiff, 4, counts)
    entries[284] = _pack(tiff, 3, [1])
    entries[317] = _pack(tiff, 3, [2])
    if channels in (2, 4):
        entries[338] = _pack(tiff, 3, [2])  # unassociated alpha
    entries[339] = _pack(tiff, 3, [1] * channels)
    _append_ifd(buf, tiff, entries, pointer)
    return bytes(buf)


# --------------------------------------------------------------------------------------------------------
# Atomic writes


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _current_umask()  # read once at import: os.umask is process-wide and racy to query later
_HOST = re.sub(r"[^A-Za-z0-9-]", "", socket.gethostname().split(".")[0])[:32] or "host"
# The atomic writer's temporary files, and only they: .NAME.ganedit-PID-HOST.XXXXXXXX.tmp (mkstemp's 8
# random characters). The writer's PID and host tell a sweep whether the writer may still be at work.
TEMP_NAME = re.compile(
    r"^\.(?P<name>.+)\.ganedit-(?P<pid>[0-9]{1,10})-(?P<host>[A-Za-z0-9-]{1,32})\.[a-z0-9_]{8}\.tmp$"
)
STALE_SECONDS = 600.0  # a temporary file untouched this long is abandoned, whoever wrote it


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that ``path`` is either untouched or complete.

    A hidden temporary file (``.NAME.ganedit-PID-HOST.XXXXXXXX.tmp``, see `TEMP_NAME`) in the same
    folder is written, fsynced and renamed over ``path``; it is removed on any exception,
    KeyboardInterrupt included (a ``kill -9`` leaves it: `sweep_temporary_files` removes it later). Parent
    folders are created. The file gets the permissions a plain ``open()`` would give (or keeps an
    existing file's). OS errors become `ImageError` naming ``path``.
    """
    path = Path(path)
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except OSError:
            mode = 0o666 & ~_UMASK
        prefix = f".{path.name[:160]}.ganedit-{os.getpid()}-{_HOST}."  # within a 255-byte name
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
            if hasattr(os, "fchmod"):
                os.fchmod(handle.fileno(), mode)
        Path(tmp).replace(path)
        tmp = None
    except OSError as exc:
        raise ImageError(f"{path}: cannot write ({exc.strerror or exc})") from exc
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                Path(tmp).unlink()
    _fsync_dir(path.parent)


def _writer_alive(pid: int, host: str) -> bool:
    """Whether the writer of a temporary file may still be at work (when unsure: yes)."""
    if host != _HOST or os.name == "nt":  # another machine's PIDs mean nothing here; no kill(pid, 0) there
        return True
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. another user's process: it exists
        return True
    return True


def sweep_temporary_files(folders: Sequence[Path], *, max_age: float = STALE_SECONDS) -> list[Path]:
    """Remove the atomic writer's abandoned temporary files from ``folders`` (not their subfolders).

    Only names of `TEMP_NAME`'s exact pattern are considered, and only those whose writer is dead (same
    host, no such PID) or that nobody has touched for ``max_age`` seconds: a run killed with ``kill -9``
    leaves one, the next run into the same folder removes it. Returns the removed paths; never raises.
    """
    removed: list[Path] = []
    now = time.time()
    for folder in folders:
        try:
            with os.scandir(folder) as listing:
                entries = [e for e in listing if TEMP_NAME.match(e.name)]
        except OSError:
            continue
        for entry in entries:
            match = TEMP_NAME.match(entry.name)
            assert match is not None
            try:
                info = entry.stat(follow_symlinks=False)
                if not stat.S_ISREG(info.st_mode):
                    continue
                if now - info.st_mtime < max_age and _writer_alive(int(match["pid"]), match["host"]):
                    continue
                Path(entry.path).unlink()
            except OSError:
                continue
            removed.append(Path(entry.path))
    return removed


def write_stream(stream: IO[bytes], data: bytes, name: str = "<stdout>") -> None:
    """Write every byte of ``data`` to ``stream`` (stdout), or raise `ImageError` naming ``name``.

    One ``write`` may take only part of the data: an unbuffered stdout (``python -u``,
    ``PYTHONUNBUFFERED=1``) is a raw file, and a non-blocking pipe takes what fits in its buffer (64 KiB),
    or nothing. So the bytes go out in a loop until all are written, waiting while the pipe is full. A
    reader that went away (``| head -c 100``) is a per-file error, not a silent success.
    """
    view = memoryview(data).cast("B")
    try:
        try:
            fd: int | None = stream.fileno()
        except (AttributeError, OSError, ValueError):  # no file descriptor: a BytesIO, a test's stream
            fd = None
        if fd is not None:
            _until_written(stream.flush, fd)  # whatever the stream holds goes out first
            while view:
                try:
                    view = view[os.write(fd, view) :]
                except BlockingIOError:
                    _wait_writable(fd)
            return
        while view:
            try:
                written = stream.write(view)
            except BlockingIOError as exc:
                written = exc.characters_written
                _wait_writable(None)
            if written is None:  # a non-blocking raw stream that is full
                _wait_writable(None)
                continue
            view = view[written:]
        _until_written(stream.flush, None)
    except BrokenPipeError:
        raise ImageError(f"{name}: the reader closed the pipe before the whole image was written") from None
    except (OSError, ValueError) as exc:  # ValueError: a closed stream
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ImageError(f"{name}: cannot write ({detail})") from exc


def _until_written(flush: Callable[[], object], fd: int | None) -> None:
    while True:
        try:
            flush()
            return
        except BlockingIOError:
            _wait_writable(fd)


def _wait_writable(fd: int | None) -> None:
    """Wait until a full pipe can take more (polling where select() does not take pipes: Windows)."""
    if fd is not None:
        try:
            select.select([], [fd], [], 1.0)
            return
        except (OSError, ValueError):
            pass
    time.sleep(0.005)


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable on POSIX; best effort (not possible on Windows).
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --------------------------------------------------------------------------------------------------------
# Discovery


@dataclass(frozen=True)
class Found:
    """An input image: ``path`` to read, ``rel`` its place under the input folder (mirrored on output)."""

    path: Path
    rel: PurePath


@dataclass
class Discovery:
    files: list[Found]
    notes: list[str]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _is_hidden(entry: os.DirEntry[str]) -> bool:
    if entry.name.startswith("."):
        return True
    if os.name != "nt":
        return False
    attributes = getattr(entry.stat(follow_symlinks=False), "st_file_attributes", 0)
    return bool(attributes & getattr(stat, "FILE_ATTRIBUTE_HIDDEN", 0))


_HEIF_SUFFIXES = frozenset({".heic", ".heif", ".hif", ".avif"})


def _odd_kind(entry: os.DirEntry[str], error: OSError | None) -> str:
    """What a folder entry that is neither a folder nor a regular file is, for a note."""
    if error is not None:
        if error.errno == errno.ELOOP:
            return "a symlink loop"
        return f"cannot read ({error.strerror or error})"
    try:
        info = entry.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a symlink loop"
        return "a broken link" if entry.is_symlink() else f"cannot read ({exc.strerror or exc})"
    for test, kind in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device"),
                       (stat.S_ISBLK, "a device")):  # fmt: skip
        if test(info.st_mode):
            return f"not a regular file ({kind})"
    return "not a regular file"


def discover(inputs: Sequence[Path], *, recursive: bool) -> Discovery:
    """Find the images among ``inputs`` (files and folders).

    Folders are searched for files with an image suffix (any case); with ``recursive`` their subfolders
    too (symlinked folders are not followed, to avoid loops). Hidden files and folders (dot names) and
    files without an image suffix are skipped with a note (HEIC/AVIF ones say they are not supported), and
    so are broken links, symlink loops, FIFOs and the like. A file reached twice (given twice, or given
    and also inside a given folder) is listed once, at its first occurrence. Files are sorted by their
    relative path. A missing input raises `UsageError`.
    """
    found: list[Found] = []
    seen: set[tuple[int, int] | str] = set()
    hidden_files = hidden_dirs = unsearched = symlinked = duplicates = 0
    not_images: list[PurePath] = []
    unsupported: list[PurePath] = []  # HEIC/AVIF: images, but not ones we read
    odd: list[tuple[PurePath, str]] = []  # broken links, link loops, FIFOs...: never silently skipped
    unreadable: list[str] = []

    def add(path: Path, rel: PurePath) -> None:
        nonlocal duplicates
        if path.suffix.lower() in _HEIF_SUFFIXES:
            unsupported.append(rel)
            return
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            not_images.append(rel)
            return
        try:
            info = path.stat()
            key: tuple[int, int] | str = (info.st_dev, info.st_ino) if info.st_ino else os.path.realpath(path)
        except OSError:
            key = os.path.realpath(path)
        if key in seen:
            duplicates += 1
            return
        seen.add(key)
        found.append(Found(path=path, rel=rel))

    def walk(folder: Path, rel: PurePath) -> None:
        nonlocal hidden_files, hidden_dirs, unsearched, symlinked
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError as exc:
            if not rel.parts:
                raise UsageError(f"{folder}: cannot read folder ({exc.strerror or exc})") from exc
            unreadable.append(str(folder))
            return
        for entry in entries:
            try:
                is_dir = entry.is_dir()
                hidden = _is_hidden(entry)
            except OSError as exc:
                if not entry.name.startswith("."):
                    odd.append((rel / entry.name, _odd_kind(entry, exc)))
                continue
            if hidden:
                if is_dir:
                    if recursive:  # without -r no subfolder is searched anyway
                        hidden_dirs += 1
                else:
                    hidden_files += 1
            elif is_dir:
                if not recursive:
                    unsearched += 1
                elif entry.is_symlink():
                    symlinked += 1
                else:
                    walk(Path(entry.path), rel / entry.name)
            elif entry.is_file():
                add(Path(entry.path), rel / entry.name)
            else:
                odd.append((rel / entry.name, _odd_kind(entry, None)))

    for given in inputs:
        path = Path(given)
        if path.is_dir():
            walk(path, PurePath())
        elif path.is_file():
            add(path, PurePath(path.name))
        elif os.path.lexists(path):
            raise UsageError(f"{path}: not a file or folder (or a broken link)")
        else:
            raise UsageError(f"{path}: no such file or folder")

    notes: list[str] = []
    if hidden_files:
        notes.append(f"skipped {_plural(hidden_files, 'hidden file')}")
    if hidden_dirs:
        notes.append(f"skipped {_plural(hidden_dirs, 'hidden folder')}")
    heif = "HEIC/AVIF not supported (convert to JPEG, PNG or TIFF)"
    if len(unsupported) <= 5:
        notes.extend(f"skipped {rel.as_posix()}: {heif}" for rel in unsupported)
    else:
        notes.append(f"skipped {len(unsupported)} HEIC/AVIF files: {heif}")
    if len(odd) <= 5:
        notes.extend(f"skipped {rel.as_posix()}: {kind}" for rel, kind in odd)
    else:
        kinds = Counter(kind for _, kind in odd)
        summary = ", ".join(f"{count} x {kind}" for kind, count in kinds.most_common())
        notes.append(f"skipped {len(odd)} entries that are not image files ({summary})")
    if len(not_images) <= 5:
        notes.extend(f"skipped {rel.as_posix()}: not an image" for rel in not_images)
    else:
        kinds = Counter(rel.suffix.lower() or "no suffix" for rel in not_images)
        summary = ", ".join(f"{count} {kind}" for kind, count in kinds.most_common(5))
        notes.append(f"skipped {len(not_images)} files that are not images ({summary})")
    if unsearched:
        notes.append(f"{_plural(unsearched, 'subfolder')} not searched (use -r)")
    if symlinked:
        notes.append(f"skipped {_plural(symlinked, 'symlinked folder')} (not followed)")
    notes.extend(f"skipped {folder}: cannot read folder" for folder in unreadable)
    if duplicates:
        notes.append(f"{_plural(duplicates, 'file')} given more than once, used once")
    found.sort(key=lambda f: (f.rel.as_posix(), str(f.path)))
    return Discovery(files=found, notes=notes)
