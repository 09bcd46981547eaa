"""TIFF beyond what Pillow does: 16-bit colour read and written losslessly, with the photo's metadata.

Reading: 16-bit RGB(A)/LA TIFF is supported for any compression libtiff can decode (none, LZW, deflate,
zstd, PackBits...), strips or tiles, either byte order, predictor 1 or 2, contiguous planes: the file's
first IFD is re-described to libtiff as a 16-bit gray image ``samples`` times wider (same strips/tiles,
predictor switched off), and the channels and the horizontal predictor are restored with numpy. Planar
(separate-plane) 16-bit files, signed/float samples and other bit depths with several channels are
refused with a message suggesting 16-bit PNG; bit depth is never lost silently.

Writing (`encode_tiff`): 8 and 16 bits, 1-4 channels, deflate + horizontal predictor, ~1 MiB strips,
unassociated alpha. Metadata (EXIF with its Exif/GPS sub-IFDs, ICC, resolution) is laid out by Pillow's
TIFF writer in a 1x1 carrier image whose IFD entries are reused, because Pillow's libtiff path cannot
write EXIF sub-IFDs and its own path cannot compress or write 16-bit RGB.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from ..errors import ImageError
from .exif import ORIENTATION
from .picture import describe_error

_TIFF_STRIP_BYTES = 1 << 20  # uncompressed bytes per strip written by the TIFF writer

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


def parse_tiff(data: bytes | bytearray) -> tuple[_Tiff, int]:
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


TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


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


def tiff_wide_layout(data: bytes, label: str) -> _WideTiff | None:
    """The layout of a TIFF with more than 8 bits and several samples per pixel (which Pillow truncates
    to 8 bits, or cannot open), or None for any other TIFF (Pillow reads those, or says why not)."""
    try:
        tiff, pointer = parse_tiff(data)
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
        orientation = tiff.ints(data, ORIENTATION, (1,))[0]
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


def decode_tiff16(data: bytes, layout: _WideTiff, label: str) -> tuple[np.ndarray, Image.Image]:
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
        raise ImageError(f"{label}: corrupt or truncated TIFF data ({describe_error(exc)})") from exc
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


_TIFF_LAYOUT_TAGS = frozenset(
    {254, 255, 256, 257, 258, 259, 262, 263, 266, 273, 277, 278, 279, 280, 281, 284, 317, 320, 322, 323}
    | {324, 325, 330, 338, 339, 340, 341, 347, 513, 514, 529, 530, 531, 532}
)


def encode_tiff(
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
    tiff, pointer = parse_tiff(buf)
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
