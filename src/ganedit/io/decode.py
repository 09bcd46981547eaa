"""Reading image files (`read_picture`): whole, upright, at their bit depth, or an error naming the file.

* The whole file is read into memory first and decoded completely (``load()``), so a truncated file
  fails here, naming the file, instead of later in the middle of an edit.
* EXIF orientation is applied to the pixels and the carried-over EXIF gets ``Orientation = 1`` (see
  `ganedit.io.exif`). Pillow >= 11 rotates TIFFs itself while loading; that is detected, so every file
  is rotated exactly once.
* Modes: ``1`` -> L; ``P``/``PA`` -> RGB, or RGBA when the palette has transparency; ``RGBX`` -> RGB;
  premultiplied ``RGBa``/``La`` -> straight alpha; ``YCbCr``/``HSV``/``LAB`` -> RGB. **CMYK** -> RGB
  through the embedded ICC profile to sRGB when there is one (and the sRGB profile is carried), else
  Pillow's naive conversion with no profile (a CMYK profile must never be attached to RGB pixels).
  32-bit integer ``I`` is kept as 16-bit gray when every value fits 0..65535, else refused; 32-bit
  float ``F`` is scaled to 16-bit gray when every value lies in 0..1, else refused (HDR data cannot be
  represented without inventing a tone mapping). Only the first frame of multi-frame files is read.
* 16 bits per channel stays uint16: 16-bit gray PNG/TIFF decode through Pillow's ``I;16`` modes, 16-bit
  colour through `ganedit.io.png` and `ganedit.io.tiff`, which Pillow would truncate to 8 bits.
* The decompression-bomb guard is ours (`MAX_PIXELS`, 300 megapixels: enough for stitched panoramas
  and 100+ MP medium format). Because Pillow's own guard (89 MP warning, 179 MP error) would fire
  first, reading raises ``PIL.Image.MAX_IMAGE_PIXELS`` to ``4 * max_pixels`` (never lowers it).

Library code here never prints: Pillow's warnings are collected by `capture_warnings` for the caller to
report with the file they concern; failures are ``ImageError("<file>: <reason>")``.
"""

from __future__ import annotations

import contextlib
import io
import stat
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO, cast

import numpy as np
from PIL import Image, TiffImagePlugin, UnidentifiedImageError

from ..errors import ImageError
from .exif import ORIENTATION, int_or, raw_exif, reset_orientation, tiff_exif
from .picture import MAX_PIXELS, Picture, describe_error
from .png import decode_png16, png_metadata
from .tiff import TIFF_MAGICS, decode_tiff16, tiff_wide_layout

# Pillow's format names we read, and what we call them. Cameras write MPO (JPEG + preview images).
_PIL_FORMATS = {"JPEG": "jpeg", "MPO": "jpeg", "PNG": "png", "WEBP": "webp", "TIFF": "tiff", "BMP": "bmp"}
_PIL_OPENERS = ["JPEG", "PNG", "WEBP", "TIFF", "BMP"]  # the JPEG opener returns MPO files itself


_PIL_WARNINGS = r"PIL(\.|$)"
_capture = threading.local()  # .sink: the list this thread's warnings go to, inside capture_warnings()
_capture_lock = threading.Lock()
_shown_by: Callable[..., Any] | None = None  # what showed warnings before _route_warning


def _route_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    sink = getattr(_capture, "sink", None)
    if sink is not None:
        text = " ".join(str(message).split())
        if text not in sink:
            sink.append(text)
        return
    shown_by = _shown_by if _shown_by is not None else warnings._showwarning_orig  # type: ignore[attr-defined]
    shown_by(message, category, filename, lineno, file, line)


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
        raise ImageError(f"{label}: corrupt or truncated image data ({describe_error(exc)})") from exc


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
        found: str | None = Image.open(io.BytesIO(data)).format
    except Exception:
        found = None
    if found:
        raise ImageError(
            f"{label}: {found} images are not supported (ganedit reads JPEG, PNG, WebP, TIFF, BMP)"
        )
    raise ImageError(f"{label}: not an image (not JPEG, PNG, WebP, TIFF or BMP data)")


def _decode(data: bytes, label: str, max_pixels: int) -> Picture:
    _raise_pillow_limit(max_pixels)
    if data[:4] in TIFF_MAGICS:
        layout = tiff_wide_layout(data, label)
        if layout is not None:  # Pillow would truncate this file to 8 bits, or cannot open it at all
            _bomb_check(label, layout.width, layout.height, max_pixels)
            pixels, meta = decode_tiff16(data, layout, label)
            return _finish(
                pixels,
                "tiff",
                exif=tiff_exif(meta),
                icc=meta.info.get("icc_profile"),
                dpi=_dpi(meta),
                orientation=layout.orientation,
            )

    im = _open(data, label)
    fmt = _PIL_FORMATS[str(im.format)]
    _bomb_check(label, im.width, im.height, max_pixels)
    if fmt == "png":
        png = png_metadata(data)
        if png.bit_depth == 16 and png.color_type in (2, 4, 6):  # Pillow would truncate these to 8 bits
            pixels = decode_png16(data, label, png.color_type)
            return _finish(pixels, fmt, exif=png.exif, icc=png.icc, dpi=png.dpi, orientation=None)
    # TIFF tags live on Pillow's TIFF image class (`tag_v2`), which is what a "tiff" format opens as
    tiff_tags = cast("TiffImagePlugin.TiffImageFile", im).tag_v2 if fmt == "tiff" else {}
    tiff_orientation = int_or(tiff_tags.get(ORIENTATION), 1) if fmt == "tiff" else 1
    try:
        im.load()
    except OSError as exc:
        raise ImageError(f"{label}: corrupt or truncated {fmt.upper()} data ({describe_error(exc)})") from exc
    pixels, icc = _to_array(im, label)
    if fmt == "tiff":
        exif = tiff_exif(im)
        # Pillow >= 11 applies a TIFF's orientation itself while loading and then deletes the tag.
        orientation: int | None = 1 if ORIENTATION not in tiff_tags else tiff_orientation
    else:
        exif = raw_exif(im)
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
    exif_orientation, exif = reset_orientation(exif) if exif else (1, None)
    if orientation is None:
        orientation = exif_orientation
    pixels = _apply_orientation(pixels, orientation)
    if dpi is not None and orientation in (5, 6, 7, 8):
        dpi = (dpi[1], dpi[0])
    if not pixels.flags.writeable or not pixels.flags.c_contiguous:
        pixels = np.array(pixels, order="C")
    return Picture(pixels=pixels, format=fmt, exif=exif, icc_profile=icc or None, dpi=dpi)


def _dpi(im: Image.Image) -> tuple[float, float] | None:
    dpi = im.info.get("dpi")
    if dpi is None:
        return None
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
