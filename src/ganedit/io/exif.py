"""EXIF carried from the input to the output: read, patched in place, compacted for JPEG.

The EXIF block is patched *in place* rather than rebuilt, so MakerNotes and their absolute offsets
survive: only ``Orientation`` is set to 1 (the pixels are rotated upright on reading) and the link to
the embedded thumbnail (IFD1) is cut, because that thumbnail still shows the unedited, unrotated photo.
Pillow's ``Exif.tobytes`` (which keeps the Exif and GPS sub-IFDs) is the fallback when the block cannot
be patched. A TIFF's EXIF is its own first IFD: only its descriptive tags and its Exif/GPS sub-IFDs are
carried. Every block returned here starts with ``b"Exif\\0\\0"``.
"""

from __future__ import annotations

import struct
from typing import Any

from PIL import Image

ORIENTATION = 0x0112
EXIF_PREFIX = b"Exif\x00\x00"
JPEG_EXIF_LIMIT = 65_000  # one APP1 segment holds 65533 bytes; keep a margin


def int_or(value: Any, default: int) -> int:
    """``int(value)``, or ``default`` when a damaged tag holds something else."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def raw_exif(im: Image.Image) -> bytes | None:
    raw = im.info.get("exif")
    if isinstance(raw, bytes | bytearray) and raw:
        return with_exif_prefix(bytes(raw))
    try:  # e.g. PNG "Raw profile type exif" text chunks, which only Pillow's getexif() understands
        exif = im.getexif()
        return exif.tobytes() if len(exif) else None
    except Exception:
        return None


def with_exif_prefix(raw: bytes) -> bytes:
    return raw if raw.startswith(EXIF_PREFIX) else EXIF_PREFIX + raw


# IFD0 tags of a TIFF file that describe the photo (the rest describe the file's layout).
_TIFF_DESCRIPTIVE_TAGS = (0x010E, 0x010F, 0x0110, 0x0112, 0x0131, 0x0132, 0x013B, 0x013C, 0x8298)


def tiff_exif(im: Image.Image) -> bytes | None:
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


def reset_orientation(exif: bytes) -> tuple[int, bytes | None]:
    """Return (orientation, EXIF with Orientation = 1 and no thumbnail link), patching bytes in place.

    Patching keeps every other byte (MakerNotes use absolute offsets and break when moved). When the
    block cannot be parsed, Pillow rebuilds it; when Pillow cannot either, the EXIF is dropped.
    """
    body = bytearray(exif[len(EXIF_PREFIX) :] if exif.startswith(EXIF_PREFIX) else exif)
    try:
        orientation = _patch_ifd0(body)
        return orientation, EXIF_PREFIX + bytes(body)
    except (struct.error, ValueError, IndexError):
        pass
    try:
        rebuilt = Image.Exif()
        rebuilt.load(bytes(exif))
        orientation = int_or(rebuilt.get(ORIENTATION), 1)
        if ORIENTATION in rebuilt:
            rebuilt[ORIENTATION] = 1
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
        if tag == ORIENTATION:
            if n != 1 or typ not in (3, 4):  # not the standard SHORT: let Pillow deal with it
                raise ValueError("unusual Orientation entry")
            code = "H" if typ == 3 else "I"
            (value,) = struct.unpack_from(end + code, body, entry + 8)
            orientation = value if 1 <= value <= 8 else 1
            struct.pack_into(end + code, body, entry + 8, 1)
    struct.pack_into(end + "I", body, ifd + 2 + 12 * count, 0)  # unlink IFD1 (the stale thumbnail)
    return orientation


def compact_exif(exif: bytes) -> bytes | None:
    """Rebuild an EXIF block too large for a JPEG segment without its MakerNote (and thumbnail)."""
    try:
        rebuilt = Image.Exif()
        rebuilt.load(exif)
        rebuilt.get_ifd(0x8769).pop(0x927C, None)
        data = rebuilt.tobytes()
    except Exception:
        return None
    return data if len(data) <= JPEG_EXIF_LIMIT else None
