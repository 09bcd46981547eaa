"""Small, deterministic test images written to disk: camera-like JPEGs, 16-bit PNG/TIFF, broken files.

Shared by the image tests and the CLI tests. Everything here is independent of `ganedit.images` (the
16-bit PNG and TIFF writers are deliberately separate, minimal implementations) so that a bug there
cannot hide itself by being on both sides of a round trip.

Typical use::

    from imagefactory import write_jpeg, exif_bytes, QUADRANT_COLOURS
    path = write_jpeg(tmp_path / "IMG_0001.jpg", size=(64, 48), orientation=6)
"""

from __future__ import annotations

import functools
import io
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageCms

#: Solid colours of the four quadrants drawn by `quadrants` (top-left, top-right, bottom-left, bottom-right).
QUADRANT_COLOURS = {
    "top_left": (255, 0, 0),
    "top_right": (0, 255, 0),
    "bottom_left": (0, 0, 255),
    "bottom_right": (255, 255, 255),
}

CAMERA = {
    "make": "Canon",
    "model": "EOS R5",
    "date": "2024:05:06 07:08:09",
    "latitude": (52.0, 22.0, 30.5),
    "longitude": (4.0, 53.0, 12.25),
}


@functools.cache
def icc_profile() -> bytes:
    """A real (littlecms-built) sRGB ICC profile."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def exif_bytes(
    *,
    orientation: int | None = None,
    make: str = CAMERA["make"],
    model: str = CAMERA["model"],
    date: str = CAMERA["date"],
    gps: bool = True,
    maker_note: bytes | None = None,
) -> bytes:
    """A camera-like EXIF block (``b"Exif\\0\\0"`` + TIFF): Make/Model/DateTime in IFD0, DateTimeOriginal
    (and an optional MakerNote) in the Exif sub-IFD, latitude/longitude in the GPS sub-IFD."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = make
    exif[ExifTags.Base.Model] = model
    exif[ExifTags.Base.DateTime] = date
    if orientation is not None:
        exif[ExifTags.Base.Orientation] = orientation
    sub = exif.get_ifd(ExifTags.IFD.Exif)
    sub[ExifTags.Base.DateTimeOriginal] = date
    if maker_note is not None:
        sub[ExifTags.Base.MakerNote] = maker_note
    if gps:
        gps_ifd = exif.get_ifd(ExifTags.IFD.GPSInfo)
        gps_ifd[ExifTags.GPS.GPSLatitudeRef] = "N"
        gps_ifd[ExifTags.GPS.GPSLatitude] = CAMERA["latitude"]
        gps_ifd[ExifTags.GPS.GPSLongitudeRef] = "E"
        gps_ifd[ExifTags.GPS.GPSLongitude] = CAMERA["longitude"]
    return exif.tobytes()


def read_exif(path_or_bytes: Path | bytes) -> dict[str, object]:
    """The fields the tests check, read back with Pillow from any format (None when absent)."""
    source = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes
    with Image.open(source) as im:
        exif = im.getexif()
        sub = exif.get_ifd(ExifTags.IFD.Exif)
        gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
        return {
            "make": exif.get(ExifTags.Base.Make),
            "model": exif.get(ExifTags.Base.Model),
            "orientation": exif.get(ExifTags.Base.Orientation),
            "date_original": sub.get(ExifTags.Base.DateTimeOriginal),
            "maker_note": sub.get(ExifTags.Base.MakerNote),
            "latitude": tuple(float(v) for v in gps[ExifTags.GPS.GPSLatitude])
            if ExifTags.GPS.GPSLatitude in gps
            else None,
            "icc_profile": im.info.get("icc_profile"),
        }


# ---- pixels -------------------------------------------------------------------------------------------


def quadrants(width: int, height: int, channels: int = 3, dtype: type = np.uint8) -> np.ndarray:
    """Four solid quadrants (`QUADRANT_COLOURS`), easy to recognise after rotation even through JPEG.
    Gray: quadrants of 0/85/170/255. An alpha channel (2 or 4 channels) is a horizontal ramp."""
    scale = 257 if dtype == np.uint16 else 1
    out = np.zeros((height, width, channels), dtype=dtype)
    h2, w2 = height // 2, width // 2
    boxes = {
        "top_left": (slice(0, h2), slice(0, w2)),
        "top_right": (slice(0, h2), slice(w2, None)),
        "bottom_left": (slice(h2, None), slice(0, w2)),
        "bottom_right": (slice(h2, None), slice(w2, None)),
    }
    grays = {"top_left": 0, "top_right": 85, "bottom_left": 170, "bottom_right": 255}
    colour_channels = 3 if channels >= 3 else 1
    for corner, (rows, cols) in boxes.items():
        value = QUADRANT_COLOURS[corner] if colour_channels == 3 else (grays[corner],)
        out[rows, cols, :colour_channels] = np.array(value, dtype=np.int64) * scale
    if channels in (2, 4):
        ramp = np.linspace(0, 255 * scale, width).round().astype(dtype)
        out[:, :, -1] = ramp[None, :]
    return out


def noise(width: int, height: int, channels: int = 3, dtype: type = np.uint8, seed: int = 0) -> np.ndarray:
    """Seeded random pixels over the full range of ``dtype`` (distinguishes every value: for exactness)."""
    top = 65536 if dtype == np.uint16 else 256
    return np.random.default_rng(seed).integers(0, top, (height, width, channels)).astype(dtype)


def _pil(pixels: np.ndarray) -> Image.Image:
    return Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels)


# ---- files ---------------------------------------------------------------------------------------------


def write_jpeg(
    path: Path,
    pixels: np.ndarray | None = None,
    *,
    size: tuple[int, int] = (64, 48),
    orientation: int | None = None,
    exif: bytes | bool = True,
    icc: bytes | bool = True,
    quality: int = 95,
    dpi: tuple[int, int] | None = (300, 300),
) -> Path:
    """A camera-like JPEG: `quadrants` of ``size`` (width, height) unless ``pixels`` is given, EXIF from
    `exif_bytes` (``exif=False`` for none, or raw bytes), an sRGB ICC profile, 300 dpi, 4:4:4."""
    if pixels is None:
        pixels = quadrants(*size)
    options: dict[str, object] = {"quality": quality, "subsampling": 0}
    if exif is True:
        options["exif"] = exif_bytes(orientation=orientation)
    elif exif:
        options["exif"] = exif
    if icc is True:
        options["icc_profile"] = icc_profile()
    elif icc:
        options["icc_profile"] = icc
    if dpi:
        options["dpi"] = dpi
    path.parent.mkdir(parents=True, exist_ok=True)
    _pil(pixels).save(path, "JPEG", **options)
    return path


def write_image(path: Path, pixels: np.ndarray, fmt: str | None = None, **options: object) -> Path:
    """Any 8-bit (or Pillow-supported 16-bit gray) image through Pillow; ``fmt`` defaults from the suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _pil(pixels).save(path, fmt, **options)
    return path


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def png16_bytes(
    pixels: np.ndarray, *, exif: bytes | None = None, icc: bytes | None = None, interlace: bool = False
) -> bytes:
    """A 16-bit PNG of 1-4 channels (filter type 0, optionally Adam7-interlaced), which Pillow cannot
    write for colour images."""
    height, width, channels = pixels.shape
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    passes = [pixels[y0::dy, x0::dx] for x0, y0, dx, dy in _ADAM7] if interlace else [pixels]
    raw = b"".join(b"\x00" + row.astype(">u2").tobytes() for sub in passes if sub.size for row in sub)
    header = struct.pack(">IIBBBBB", width, height, 16, color_type, 0, 0, int(interlace))
    chunks = [_png_chunk(b"IHDR", header)]
    if icc:
        chunks.append(_png_chunk(b"iCCP", b"icc\x00\x00" + zlib.compress(icc)))
    chunks.append(_png_chunk(b"IDAT", zlib.compress(raw)))
    if exif:  # after the image data, as some tools write it
        chunks.append(_png_chunk(b"eXIf", exif.removeprefix(b"Exif\x00\x00")))
    chunks.append(_png_chunk(b"IEND", b""))
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks)


def write_png(path: Path, pixels: np.ndarray, *, exif: bytes | None = None, icc: bytes | None = None) -> Path:
    """A PNG at the bit depth of ``pixels`` (16-bit through `png16_bytes`), with optional EXIF and ICC."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if pixels.dtype == np.uint16:
        path.write_bytes(png16_bytes(pixels, exif=exif, icc=icc))
        return path
    options: dict[str, object] = {}
    if exif:
        options["exif"] = exif
    if icc:
        options["icc_profile"] = icc
    _pil(pixels).save(path, "PNG", **options)
    return path


def tiff16_bytes(
    pixels: np.ndarray,
    *,
    compression: str = "none",
    predictor: int = 1,
    tile: int | None = None,
    byteorder: str = "<",
    extra_sample: int = 2,
    rows_per_strip: int | None = None,
    planar: int = 1,
    orientation: int | None = None,
    icc: bytes | None = None,
) -> bytes:
    """A 16-bit TIFF with 1-4 contiguous channels, which Pillow cannot write for colour images.

    ``compression``: "none", "deflate" (optionally ``predictor=2``) or "lzw" (strips made by libtiff
    through Pillow). ``tile``: tile size (a multiple of 16, uncompressed or deflate). ``extra_sample``:
    the ExtraSamples value for an alpha channel (2 = straight, 1 = premultiplied, 0 = unspecified).
    ``planar=2`` only labels the file as separate planes (for the refusal test). ``orientation`` and
    ``icc`` add those tags.
    """
    height, width, channels = pixels.shape
    sample = np.dtype(byteorder + "u2")
    strips: list[bytes] = []
    code = {"none": 1, "deflate": 8, "lzw": 5}[compression]
    if compression == "lzw":
        if byteorder != "<" or tile or predictor != 1:
            raise ValueError("lzw: little-endian strips without predictor only")
        wide = Image.fromarray(np.ascontiguousarray(pixels.reshape(height, width * channels)))
        buf = io.BytesIO()
        wide.save(buf, "TIFF", compression="tiff_lzw")
        data = buf.getvalue()
        with Image.open(io.BytesIO(data)) as im:
            offsets, counts = im.tag_v2[273], im.tag_v2[279]
            rows_per_strip = int(im.tag_v2.get(278, height))
        strips = [data[o : o + n] for o, n in zip(offsets, counts, strict=True)]
    else:
        values = pixels.astype(np.int64)
        if predictor == 2:
            values = values.copy()
            if tile:
                for x0 in range(0, width, tile):
                    block = pixels[:, x0 : x0 + tile].astype(np.int64)
                    values[:, x0 + 1 : x0 + tile] = block[:, 1:] - block[:, :-1]
            else:
                values[:, 1:] = pixels[:, 1:].astype(np.int64) - pixels[:, :-1]
        values = (values % 65536).astype(sample)
        if tile:
            padded = np.zeros((-(-height // tile) * tile, -(-width // tile) * tile, channels), dtype=sample)
            padded[:height, :width] = values
            blocks = [
                padded[y : y + tile, x : x + tile].tobytes()
                for y in range(0, height, tile)
                for x in range(0, width, tile)
            ]
        else:
            rows_per_strip = rows_per_strip or max(1, height // 3)
            blocks = [values[y : y + rows_per_strip].tobytes() for y in range(0, height, rows_per_strip)]
        strips = [zlib.compress(b) if compression == "deflate" else b for b in blocks]

    end = byteorder
    out = bytearray(b"II*\x00" if end == "<" else b"MM\x00*") + b"\x00\x00\x00\x00"
    offsets_out = []
    for blob in strips:
        offsets_out.append(len(out))
        out += blob + (b"\x00" if len(blob) % 2 else b"")
    entries: list[tuple[int, int, list[int] | bytes]] = [
        (256, 4, [width]),
        (257, 4, [height]),
        (258, 3, [16] * channels),
        (259, 3, [code]),
        (262, 3, [2 if channels >= 3 else 1]),
        (277, 3, [channels]),
        (284, 3, [planar]),
    ]
    if tile:
        entries += [
            (322, 3, [tile]),
            (323, 3, [tile]),
            (324, 4, offsets_out),
            (325, 4, [len(s) for s in strips]),
        ]
    else:
        entries += [
            (273, 4, offsets_out),
            (278, 4, [rows_per_strip or height]),
            (279, 4, [len(s) for s in strips]),
        ]
    if predictor != 1:
        entries.append((317, 3, [predictor]))
    if orientation is not None:
        entries.append((274, 3, [orientation]))
    if icc is not None:
        entries.append((34675, 7, icc))
    if channels in (2, 4):
        entries.append((338, 3, [extra_sample]))
    entries.sort()
    arrays = bytearray()
    ifd_at = len(out)
    arrays_at = ifd_at + 2 + 12 * len(entries) + 4
    table = bytearray(struct.pack(end + "H", len(entries)))
    for tag, typ, values_ in entries:
        if isinstance(values_, bytes):  # UNDEFINED: raw bytes
            payload = values_
        else:
            payload = struct.pack(f"{end}{len(values_)}{ {3: 'H', 4: 'I'}[typ] }", *values_)
        if len(payload) <= 4:
            field = payload.ljust(4, b"\x00")
        else:
            field = struct.pack(end + "I", arrays_at + len(arrays))
            arrays += payload + (b"\x00" if len(payload) % 2 else b"")
        table += struct.pack(end + "HHI", tag, typ, len(values_)) + field
    out += table + b"\x00\x00\x00\x00" + arrays
    struct.pack_into(end + "I", out, 4, ifd_at)
    return bytes(out)


def write_tiff16(path: Path, pixels: np.ndarray, **options: object) -> Path:
    """`tiff16_bytes` written to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tiff16_bytes(pixels, **options))  # type: ignore[arg-type]
    return path


# ---- broken files -------------------------------------------------------------------------------------


def write_empty(path: Path) -> Path:
    """A zero-byte file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def write_not_an_image(path: Path, text: str = "these are my notes, not a photo\n") -> Path:
    """A text file (with whatever image suffix ``path`` has)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def write_truncated(
    path: Path, fmt: str = "JPEG", *, keep: float = 0.5, size: tuple[int, int] = (96, 64)
) -> Path:
    """A valid noisy image of ``fmt`` cut to ``keep`` of its bytes (the header survives, the data not)."""
    buf = io.BytesIO()
    _pil(noise(*size)).save(buf, fmt)
    data = buf.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def write_files(root: Path, names: Sequence[str]) -> list[Path]:
    """Tiny valid images (by suffix) or text files for other suffixes, at ``root / name`` each."""
    paths = []
    for name in names:
        path = root / name
        suffix = path.suffix.lower()
        if suffix in {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp"}:
            write_image(path, quadrants(8, 6), {".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF"}.get(suffix))
        else:
            write_not_an_image(path)
        paths.append(path)
    return paths
