"""PNG beyond what Pillow does: the metadata chunks, and 16-bit colour read and written losslessly.

Pillow silently truncates 16-bit RGB(A)/LA PNGs to 8 bits while unpacking its (correctly unfiltered)
rows, so those are unpacked twice, keeping the high and then the low byte of every sample;
``torchvision.io.decode_png`` is only a fallback for a Pillow without those raw modes (torch is imported
inside that function only). Pillow cannot write 16-bit RGB either: `encode_png16` is a small writer of
our own (IHDR/pHYs/iCCP/eXIf/IDAT/IEND, Paeth-filtered, zlib level 6).
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..errors import ImageError
from .exif import EXIF_PREFIX, with_exif_prefix
from .picture import describe_error

_PNG_BLOCK_BYTES = 4 << 20  # rows filtered and compressed at a time by the 16-bit PNG writer


@dataclass
class _PngMeta:
    width: int = 0
    height: int = 0
    bit_depth: int = 8
    color_type: int = 0
    icc: bytes | None = None
    exif: bytes | None = None
    dpi: tuple[float, float] | None = None


def png_metadata(data: bytes) -> _PngMeta:
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
            meta.exif = with_exif_prefix(body)
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


def decode_png16(data: bytes, label: str, color_type: int) -> np.ndarray:
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
            raise ImageError(f"{label}: corrupt or truncated PNG data ({describe_error(exc)})") from exc
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


def encode_png16(
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
        parts.append(_png_chunk(b"eXIf", exif[len(EXIF_PREFIX) :] if exif.startswith(EXIF_PREFIX) else exif))
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
