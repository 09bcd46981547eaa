#!/usr/bin/env python3
"""Fetch the photographs ganedit trains and evaluates PAN on, from Debian packages.

No dataset can be downloaded here, but real photographs ship inside Debian packages (wallpapers, sample
images of scientific libraries, games' pictures). This script downloads each package with
``apt-get download`` (no dependencies, nothing installed), unpacks it with ``dpkg-deb -x`` into a scratch
folder, copies the selected photos out and records every file in ``data/photos/MANIFEST.tsv``:

* ``data/photos/train_pool/<package>/...``: photos we may train on. Each file is assigned, by a seeded
  hash of its name, to ``train`` or ``holdout`` (about 15 % of each package), recorded in the manifest
  column ``split``; the holdout photos are for our own metrics and model cards and must not be trained on.
* ``data/photos/train/`` and ``data/photos/holdout/``: the two sides of that split as folders (hard links
  into train_pool/), for ``ganedit train pan --data data/photos/train --val data/photos/holdout``.
* ``data/photos/eval/<package>/...``: evaluation-only photos (scikit-image, SciPy, matplotlib, OpenCV,
  Tux Paint, Palapeli). Never train or tune on them.
* ``data/photos/licenses/<package>.copyright``: each package's Debian copyright file, for attribution.

The selection (which files are photos) is explicit, and every image must also be at least 256 px on its
short side; see docs/data.md. Re-running skips packages that are complete (``--force`` redoes them).
Standard library only, plus ``apt-get``, ``apt-cache`` and ``dpkg-deb``.

usage: python scripts/fetch_training_data.py [--with-optional] [--force] [--data-dir DIR]
                                             [--holdout-fraction F] [--split-seed S]
"""

from __future__ import annotations

import argparse
import bz2
import fnmatch
import hashlib
import io
import json
import math
import os
import pickle
import re
import struct
import sys
import tempfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from _debian import Apt, FetchError, extract  # scripts/_debian.py

from ganedit.io.atomic import atomic_write

REPO_ROOT = Path(__file__).resolve().parent.parent
MIN_SHORT_SIDE = 256
STATE_VERSION = 2
MANIFEST_COLUMNS = (
    "split",
    "package",
    "version",
    "source_path",
    "dest_path",
    "width",
    "height",
    "sha256",
    "license",
    "copyright",
    "note",
)


# ------------------------------------------------------------------------------------------ selection


@dataclass(frozen=True)
class Source:
    """Which files of one Debian package to take, and where they go.

    ``root`` is the folder inside the package the ``include`` globs (and ``exclude`` globs) are relative
    to; ``upstream`` is the path of that folder in the upstream source tree, which is what the ``Files:``
    patterns of the package's machine-readable copyright file refer to. For Qt resource bundles
    (``members`` set) ``include`` selects the ``.rcc`` files and ``members`` the files inside them.
    """

    package: str
    kind: str  # "train" (train_pool, split into train/holdout) or "eval"
    root: str
    include: tuple[str, ...]
    upstream: str = ""
    exclude: tuple[str, ...] = ()
    rename: Callable[[PurePosixPath], PurePosixPath] | None = None
    notes: dict[str, str] = field(default_factory=dict)
    members: tuple[str, ...] = ()
    optional: bool = False  # only with --with-optional


def _plasma_name(rel: PurePosixPath) -> PurePosixPath:
    # BytheWater/contents/images/2560x1600.jpg -> BytheWater.jpg
    return PurePosixPath(f"{rel.parts[0]}{rel.suffix}")


def _dat_to_png(rel: PurePosixPath) -> PurePosixPath:
    return rel.with_suffix(".png")


def _gcompris_name(rel: PurePosixPath) -> PurePosixPath:
    # gcompris/src/activities/erase/resource/alpaca.webp -> erase/alpaca.webp
    parts = [part for part in rel.parts[3:] if part != "resource"]
    return PurePosixPath(*parts)


PLASMA_PHOTOS = (
    "BytheWater",
    "ColdRipple",
    "ColorfulCups",
    "DarkestHour",
    "EveningGlow",
    "FallenLeaf",
    "Grey",
    "Kite",
    "OneStandsOut",
    "Path",
    "summer_1am",
)

# scikit-image: natural photographs only. Left out: cell, ihc (microscopy), retina (fundus),
# hubble_deep_field (astronomy), clock_motion (deliberately motion-blurred), motorcycle_right (the
# stereo twin of motorcycle_left), and the synthetic or text images (color, phantom, horse, logo, text...).
SKIMAGE_NOTES = {
    "astronaut.png": "NASA; public domain (skimage.data.astronaut docstring)",
    "brick.png": "CC0Textures Bricks25; CC0 (skimage.data.brick docstring)",
    "camera.png": "Lav Varshney; CC0 (skimage.data.camera docstring)",
    "chelsea.png": "Stefan van der Walt; CC0 (skimage.data.chelsea docstring)",
    "coffee.png": "Rachel Michetti; CC0 (skimage.data.coffee docstring)",
    "coins.png": "Brooklyn Museum; no known copyright restrictions (skimage.data.coins docstring)",
    "grass.png": "CC0Textures; CC0 (skimage.data.grass docstring)",
    "gravel.png": "CC0Textures Gravel04; CC0 (skimage.data.gravel docstring)",
    "moon.png": "no per-image statement in skimage.data.moon",
    "motorcycle_left.png": "Middlebury 2014 stereo benchmark (skimage.data.stereo_motorcycle docstring)",
    "rocket.jpg": "SpaceX; public domain (skimage.data.rocket docstring)",
}

# OpenCV samples: photographs only, one of each near-duplicate pair (aloeL/aloeR, basketball1/2,
# graf1/graf3, leuvenA/B, left/right, rubberwhale1/2). Left out: renders (Blender_Suzanne*, blox),
# paintings and drawings (starry_night, fuzzy/input), tampered or deliberately blurred images
# (ela_modified, licenseplate_motion, text_defocus, text_motion), documents (sudoku, imageText*),
# calibration chessboards (left01..right14), masks, logos, diagrams and the word crops of text/.
OPENCV_PHOTOS = (
    "alphamat/input_images/plant.jpg",
    "data/aero1.jpg",
    "data/aero3.jpg",
    "data/aloeL.jpg",
    "data/apple.jpg",
    "data/baboon.jpg",
    "data/basketball1.png",
    "data/board.jpg",
    "data/box_in_scene.png",
    "data/building.jpg",
    "data/butterfly.jpg",
    "data/chicky_512.png",
    "data/ela_original.jpg",
    "data/fruits.jpg",
    "data/graf1.png",
    "data/home.jpg",
    "data/left.jpg",
    "data/leuvenA.jpg",
    "data/messi5.jpg",
    "data/orange.jpg",
    "data/rubberwhale1.png",
    "data/smarties.png",
    "data/squirrel_cls.jpg",
    "data/stuff.jpg",
    "dnn_superres/butterfly.png",
    "reg/home.png",
    "text/scenetext01.jpg",
    "text/scenetext02.jpg",
    "text/scenetext03.jpg",
    "text/scenetext04.jpg",
    "text/scenetext05.jpg",
    "text/scenetext06.jpg",
)

SOURCES: tuple[Source, ...] = (
    # ---- training pool (docs/data.md, /work/shared/data.md)
    Source(
        "lomiri-wallpapers-16.04",
        "train",
        "usr/share/backgrounds",
        ("*.jpg",),
        upstream="16.04/",
        exclude=("umang_*",),  # abstract artwork, not a photograph
    ),
    Source("lomiri-wallpapers-20.04", "train", "usr/share/backgrounds", ("Kleiber_*",), upstream="20.04/"),
    Source(
        "plasma-workspace-wallpapers",
        "train",
        "usr/share/wallpapers",
        tuple(f"{name}/contents/images/2560x1600.jpg" for name in PLASMA_PHOTOS),
        rename=_plasma_name,
    ),
    Source("mate-backgrounds", "train", "usr/share/backgrounds/mate", ("nature/*.jpg",)),
    # ---- evaluation only
    Source(
        "python3-skimage",
        "eval",
        "usr/lib/python3/dist-packages/skimage/data",
        tuple(SKIMAGE_NOTES),
        upstream="skimage/data/",
        notes=SKIMAGE_NOTES,
    ),
    Source(
        "python3-scipy",
        "eval",
        "usr/lib/python3/dist-packages/scipy/misc",
        ("face.dat", "ascent.dat"),  # scipy.misc.face / scipy.misc.ascent, converted to PNG
        upstream="scipy/misc/",
        rename=_dat_to_png,
        notes={
            "face.dat": "raccoon-procyon-lotor.jpg from public-domain-image.com (scipy.misc.face docstring)"
        },
    ),
    Source(
        "python-matplotlib-data",
        "eval",
        "usr/share/matplotlib/mpl-data/sample_data",
        ("grace_hopper.jpg",),
        upstream="lib/matplotlib/mpl-data/sample_data/",
    ),
    Source("opencv-doc", "eval", "usr/share/doc/opencv-doc/examples", OPENCV_PHOTOS, upstream="samples/"),
    Source(
        "tuxpaint-data",
        "eval",
        "usr/share/tuxpaint",
        ("templates/*.jpg", "starters/skyline-sf-dusk-back.jpeg"),  # the rest of starters/ are drawings
    ),
    # The collection's puzzles; backgrounds/ are synthetic textures. Per-image licences are in the
    # .desktop file next to each picture.
    Source("palapeli-data", "eval", "usr/share/palapeli/collection", ("*.jpg",)),
    # ---- optional training photos (--with-optional): GCompris' photographs of animals, monuments,
    # musicians and the sea, WebP files inside Qt resource bundles. Its other pictures are drawings,
    # paintings (details, paintings, babyshapes), renders (solar_system) or too small.
    Source(
        "gcompris-qt-data",
        "train",
        "usr/share/gcompris-qt/rcc",
        (
            "clickgame.rcc",
            "erase.rcc",
            "explore_farm_animals.rcc",
            "explore_monuments.rcc",
            "explore_world_animals.rcc",
            "explore_world_music.rcc",
        ),
        members=(
            "gcompris/src/activities/clickgame/resource/sea*.webp",
            "gcompris/src/activities/erase/resource/*.webp",
            "gcompris/src/activities/explore_farm_animals/resource/animals/*.webp",
            "gcompris/src/activities/explore_monuments/resource/*/*.webp",
            "gcompris/src/activities/explore_world_animals/resource/animals/*.webp",
            "gcompris/src/activities/explore_world_music/resource/music/*.webp",
        ),
        upstream="",  # member paths minus the leading "gcompris/" are upstream paths
        rename=_gcompris_name,
        optional=True,
    ),
)


def fingerprint(source: Source) -> str:
    """A digest of a source's selection rules, so that changing them redoes the package."""
    rename = source.rename.__name__ if source.rename else ""
    rules = (
        source.kind,
        source.root,
        source.include,
        source.exclude,
        source.members,
        source.upstream,
        rename,
    )
    text = repr(rules)
    return hashlib.sha256(f"{STATE_VERSION}:{MIN_SHORT_SIDE}:{text}".encode()).hexdigest()[:16]


# -------------------------------------------------------------------------------------- image headers


def image_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG, JPEG or WebP header, without decoding the image (standard library only)."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return webp_size(data)
    if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    if data.startswith(b"\xff\xd8"):
        pos = 2
        while pos + 4 <= len(data):
            if data[pos] != 0xFF:
                raise ValueError("corrupt JPEG marker sequence")
            marker = data[pos + 1]
            if marker == 0xFF:  # fill byte
                pos += 1
                continue
            if marker in (0x01, *range(0xD0, 0xD9)):  # markers without a length
                pos += 2
                continue
            (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # SOFn
                height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
                return width, height
            pos += 2 + length
        raise ValueError("JPEG without a frame header")
    raise ValueError("neither PNG, JPEG nor WebP")


def webp_size(data: bytes) -> tuple[int, int]:
    """(width, height) of a WebP file from its first chunk (lossy VP8, lossless VP8L or extended VP8X)."""
    chunk = data[12:16]
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and data[20] == 0x2F:
        (bits,) = struct.unpack("<I", data[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    raise ValueError(f"unknown WebP chunk {chunk!r}")


def rcc_entries(data: bytes) -> Iterator[tuple[str, bytes | None]]:
    """(path, content) of every file in a Qt binary resource bundle (``.rcc``, format versions 1-3).

    The layout (``qres`` header; a tree of 14- or 22-byte nodes; UTF-16 names; size-prefixed payloads,
    zlib-compressed when flag 1 is set) is that of Qt's rcc tool. zstd-compressed payloads (flag 4) cannot
    be read with the standard library and come back as None; photos are stored uncompressed anyway.
    """
    if data[:4] != b"qres":
        raise ValueError("not a Qt resource bundle")
    version, tree, payload, names = struct.unpack(">IIII", data[4:20])
    node_size = 14 if version == 1 else 22

    def name_at(offset: int) -> str:
        (length,) = struct.unpack(">H", data[names + offset : names + offset + 2])
        return data[names + offset + 6 : names + offset + 6 + 2 * length].decode("utf-16-be")

    stack = [(0, "")]
    while stack:
        index, prefix = stack.pop()
        base = tree + index * node_size
        name_offset, flags = struct.unpack(">IH", data[base : base + 6])
        path = f"{prefix}/{name_at(name_offset)}".lstrip("/") if index else ""
        if flags & 2:  # directory
            count, first = struct.unpack(">II", data[base + 6 : base + 14])
            stack.extend((child, path) for child in range(first + count - 1, first - 1, -1))
            continue
        (offset,) = struct.unpack(">I", data[base + 10 : base + 14])
        (size,) = struct.unpack(">I", data[payload + offset : payload + offset + 4])
        blob: bytes | None = data[payload + offset + 4 : payload + offset + 4 + size]
        if flags & 1:
            blob = zlib.decompress(blob[4:])  # type: ignore[index]
        elif flags & 4:
            blob = None
        yield path, blob


def png_bytes(width: int, height: int, channels: int, pixels: bytes) -> bytes:
    """Encode 8-bit grey (1) or RGB (3) pixels, row-major, as a PNG (standard library only)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (
            struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
        )

    stride = width * channels
    rows = b"".join(b"\x00" + pixels[y * stride : (y + 1) * stride] for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, {1: 0, 3: 2}[channels], 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


class _NoGlobals(pickle.Unpickler):
    """Unpickle plain containers only: ascent.dat is a pickled list of lists of ints."""

    def find_class(self, module: str, name: str) -> object:
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data file")


def scipy_dat_to_png(path: Path) -> bytes:
    """Decode SciPy's ``face.dat`` (bz2 raw 768 x 1024 x 3) or ``ascent.dat`` (pickled 512 x 512) to PNG."""
    if path.name == "face.dat":
        raw = bz2.decompress(path.read_bytes())
        if len(raw) != 768 * 1024 * 3:
            raise FetchError(f"{path.name}: expected 768 x 1024 x 3 bytes, got {len(raw)}")
        return png_bytes(1024, 768, 3, raw)
    if path.name == "ascent.dat":
        rows = _NoGlobals(io.BytesIO(path.read_bytes())).load()
        height, width = len(rows), len(rows[0])
        return png_bytes(width, height, 1, bytes(value for row in rows for value in row))
    raise FetchError(f"{path.name}: no converter for this SciPy data file")


# -------------------------------------------------------------------------------- copyright (DEP-5)


@dataclass(frozen=True)
class CopyrightStanza:
    patterns: tuple[str, ...]
    license: str
    holder: str
    origin: str = ""


FIELD = re.compile(r"^([A-Za-z][A-Za-z0-9-]*):(.*)$")


def parse_copyright(text: str) -> list[CopyrightStanza]:
    """The ``Files:`` stanzas of a machine-readable debian/copyright file, in order.

    Also reads GCompris' resource READMEs, which use the same fields but do not indent the file names
    that continue a ``Files:`` field: any line that does not start a new ``Field:`` continues the last.
    """
    stanzas = []
    for paragraph in re.split(r"\n[ \t]*\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in paragraph.splitlines():
            match = FIELD.match(line)
            if match:
                key = match.group(1).lower()
                fields[key] = match.group(2).strip()
            elif key:
                fields[key] += "\n" + line.strip()
        if "files" in fields:
            license_name = fields.get("license", "").split("\n")[0].strip()
            holder = fields.get("copyright", "").split("\n")[0].strip()
            origin = fields.get("source", "").split("\n")[0].strip()
            stanzas.append(CopyrightStanza(tuple(fields["files"].split()), license_name, holder, origin))
    return stanzas


def last_match(stanzas: list[CopyrightStanza], path: str) -> CopyrightStanza | None:
    """The last stanza with a ``Files:`` pattern matching ``path`` (DEP-5: ``*`` also matches ``/``)."""
    found = None
    for stanza in stanzas:
        if any(fnmatch.fnmatchcase(path, pattern) for pattern in stanza.patterns):
            found = stanza
    return found


def license_for(stanzas: list[CopyrightStanza], upstream_path: str, package: str) -> tuple[str, str]:
    """(license, copyright holder) of the last stanza matching the path (DEP-5: the last match wins).

    Patterns are tried on the file's path in the upstream source tree, then, if none matches, on its name
    alone (in case a package moved files on install in a way `Source.upstream` does not describe).
    """
    name = PurePosixPath(upstream_path).name
    found = last_match(stanzas, upstream_path)
    if found is None:
        for stanza in stanzas:
            if any("*" not in p and PurePosixPath(p).name == name for p in stanza.patterns):
                found = stanza
    if found is None:
        return "unknown", ""
    license_name = found.license or f"unnamed (see licenses/{package}.copyright)"
    return license_name, found.holder


# ---------------------------------------------------------------------------------------- packages


@dataclass
class Row:
    split: str
    package: str
    version: str
    source_path: str
    dest_path: str
    width: int
    height: int
    sha256: str
    license: str
    copyright: str
    note: str
    size: int  # bytes, for the completeness check; not in the manifest
    group: str  # photos of one group go to the same side of the split; not in the manifest


@dataclass
class Item:
    """One selected picture, before the size check and the copy."""

    rel: PurePosixPath  # path relative to the source's root (files) or inside the bundle (rcc)
    data: bytes
    source_path: str  # where it is in the package, for the manifest
    license: str = ""  # a per-file licence found next to the file, preferred to debian/copyright's
    holder: str = ""
    note: str = ""
    group: str = ""  # the file name unless several files come from one original photo


def items(source: Source, tree: Path) -> Iterator[Item]:
    """Every picture the source selects, with its bytes (SciPy's .dat arrays converted to PNG)."""
    for path, rel in selected(source, tree):
        if source.members:
            yield from rcc_items(source, path, f"{source.root}/{rel}")
            continue
        data = scipy_dat_to_png(path) if path.suffix == ".dat" else path.read_bytes()
        note = (
            desktop_note(path) if path.with_suffix(".desktop").is_file() else source.notes.get(str(rel), "")
        )
        yield Item(rel, data, f"{source.root}/{rel}", note=note)


# File names the resource READMEs misspell (GCompris 3.1).
README_TYPOS = {"aulaPalatina.webp": "audaPalatina.webp"}


def rcc_items(source: Source, bundle: Path, bundle_path: str) -> Iterator[Item]:
    """The selected members of one Qt resource bundle, with the licence from their folder's README.

    The READMEs inside the bundle give the author, licence and Wikimedia source of each picture (the
    Debian copyright file predates the current pictures); the source URL also groups crops of one
    original photo, so that they cannot end up on both sides of the train/holdout split.
    """
    try:
        entries = dict(rcc_entries(bundle.read_bytes()))
    except (ValueError, struct.error, zlib.error) as error:
        raise FetchError(
            f"{source.package}: cannot read the resource bundle {bundle_path}: {error}"
        ) from error
    readmes = {
        PurePosixPath(path).parent: parse_copyright(blob.decode("utf-8", errors="replace"))
        for path, blob in entries.items()
        if PurePosixPath(path).name == "README" and blob is not None
    }
    for path in sorted(entries):
        blob = entries[path]
        if blob is None or not any(fnmatch.fnmatchcase(path, pattern) for pattern in source.members):
            continue
        rel = PurePosixPath(path)
        item = Item(rel, blob, f"{bundle_path}:/{path}")
        listed = rel.with_name(README_TYPOS.get(rel.name, rel.name))
        for folder in rel.parents:  # the nearest README that names the file
            stanza = last_match(readmes.get(folder, []), listed.relative_to(folder).as_posix())
            if stanza:
                item.license, item.holder = stanza.license, stanza.holder
                item.note = (
                    f"source: {stanza.origin} (resource README)" if stanza.origin else "(resource README)"
                )
                item.group = stanza.origin
                break
        yield item


def selected(source: Source, tree: Path) -> Iterator[tuple[Path, PurePosixPath]]:
    """(file, path relative to the source's root) for every file the selection takes, sorted."""
    root = tree / source.root
    if not root.is_dir():
        raise FetchError(f"{source.package}: the package has no {source.root}/ (has its layout changed?)")
    seen = set()
    for pattern in source.include:
        matches = sorted(p for p in root.glob(pattern) if p.is_file())
        if not matches:
            raise FetchError(f"{source.package}: nothing matches {source.root}/{pattern}")
        for path in matches:
            rel = PurePosixPath(path.relative_to(root).as_posix())
            if rel in seen or any(fnmatch.fnmatchcase(rel.name, x) for x in source.exclude):
                continue
            seen.add(rel)
            yield path, rel


def desktop_note(picture: Path) -> str:
    """Author, licence and origin of a Palapeli puzzle picture, from the .desktop file beside it."""
    desktop = picture.with_suffix(".desktop")
    if not desktop.is_file():
        return ""
    values = {}
    for line in desktop.read_text(encoding="utf-8", errors="replace").splitlines():
        key, _, value = line.partition("=")
        if key.startswith("X-KDE-PluginInfo-") and value.strip():
            values[key.removeprefix("X-KDE-PluginInfo-")] = value.strip()
    parts = [f"{k.lower()}: {values[k]}" for k in ("License", "Author", "Website") if k in values]
    return "; ".join(parts) + " (.desktop)" if parts else ""


def process(source: Source, version: str, deb: Path, photos: Path, scratch_parent: Path) -> list[Row]:
    """Unpack one package and copy its selected photos; returns one row per photo kept."""
    split_dir = "train_pool" if source.kind == "train" else "eval"
    rows = []
    with tempfile.TemporaryDirectory(dir=scratch_parent, prefix=".unpack-") as scratch:
        tree = Path(scratch)
        extract(deb, tree)
        copyright_file = tree / "usr/share/doc" / source.package / "copyright"
        stanzas: list[CopyrightStanza] = []
        if copyright_file.is_file():
            text = copyright_file.read_text(encoding="utf-8", errors="replace")
            stanzas = parse_copyright(text)
            atomic_write(photos / "licenses" / f"{source.package}.copyright", text.encode())
        for item in items(source, tree):
            try:
                width, height = image_size(item.data)
            except (ValueError, struct.error) as error:
                raise FetchError(f"{source.package}: {item.source_path}: {error}") from error
            if min(width, height) < MIN_SHORT_SIDE:
                print(f"  skip {item.rel}: {width} x {height} is under {MIN_SHORT_SIDE} px on the short side")
                continue
            dest_rel = source.rename(item.rel) if source.rename else item.rel
            dest = photos / split_dir / source.package / dest_rel
            digest = hashlib.sha256(item.data).hexdigest()
            if not (dest.is_file() and hashlib.sha256(dest.read_bytes()).hexdigest() == digest):
                atomic_write(dest, item.data)
            upstream_path = source.upstream + str(item.rel).removeprefix("gcompris/")
            license_name, holder = license_for(stanzas, upstream_path, source.package)
            rows.append(
                Row(
                    split=source.kind,  # train rows are assigned train/holdout later
                    package=source.package,
                    version=version,
                    source_path=item.source_path,
                    dest_path=dest.relative_to(photos).as_posix(),
                    width=width,
                    height=height,
                    sha256=digest,
                    license=item.license or license_name,
                    copyright=item.holder or holder,
                    note=item.note,
                    size=len(item.data),
                    group=item.group or dest.name,
                )
            )
    return rows


def load_state(path: Path, source: Source, photos: Path) -> list[Row] | None:
    """The rows recorded by an earlier complete run, if the rules are unchanged and every file is there."""
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if state.get("fingerprint") != fingerprint(source):
        return None
    try:
        rows = [Row(**row) for row in state.get("rows", [])]
    except TypeError:  # written by another version of this script
        return None
    for row in rows:
        dest = photos / row.dest_path
        if not dest.is_file() or dest.stat().st_size != row.size:
            return None
    return rows


def save_state(path: Path, source: Source, rows: list[Row]) -> None:
    state = {"fingerprint": fingerprint(source), "rows": [vars(row) for row in rows]}
    atomic_write(path, json.dumps(state, indent=1).encode())


# ------------------------------------------------------------------------------------- split, output


def assign_holdout(rows: list[Row], fraction: float, seed: str) -> None:
    """Mark about ``fraction`` of each training package's photos ``holdout``, the rest ``train``.

    Groups of photos (one photo each, except crops of one original, see `rcc_items`) are ranked by the
    SHA-256 of ``seed/package/group`` and taken in that order until round(fraction * n) photos are held
    out. The choice is deterministic, does not depend on the order of the files or on other packages
    (adding a package leaves the others' splits alone) and spreads the holdout over every package with
    enough photos.
    """
    by_package: dict[str, list[Row]] = {}
    for row in rows:
        if row.split in ("train", "holdout"):
            by_package.setdefault(row.package, []).append(row)
    for package, members in by_package.items():
        groups: dict[str, list[Row]] = {}
        for row in members:
            groups.setdefault(row.group, []).append(row)
        ranked = sorted(groups, key=lambda g: hashlib.sha256(f"{seed}/{package}/{g}".encode()).hexdigest())
        target, held = math.floor(fraction * len(members) + 0.5), 0
        for group in ranked:
            side = "holdout" if held < target else "train"
            held += len(groups[group]) if side == "holdout" else 0
            for row in groups[group]:
                row.split = side


def write_manifest(path: Path, rows: list[Row]) -> None:
    order = {"train": 0, "holdout": 1, "eval": 2}
    lines = ["\t".join(MANIFEST_COLUMNS)]
    for row in sorted(rows, key=lambda r: (order[r.split], r.package, r.dest_path)):
        values = [str(getattr(row, column)) for column in MANIFEST_COLUMNS]
        lines.append("\t".join(v.replace("\t", " ").replace("\n", " ") for v in values))
    atomic_write(path, ("\n".join(lines) + "\n").encode())


def materialise_splits(photos: Path, rows: list[Row]) -> dict[str, int]:
    """Mirror the manifest's split as folders: ``photos/train/<package>/...`` and ``photos/holdout/...``.

    ``ganedit train pan --data data/photos/train`` then trains on exactly the training split (and
    ``--val data/photos/holdout`` validates on the held-out one). Files are hard links to the copies in
    ``train_pool/`` (no extra disk space), or copies where the filesystem cannot link. Idempotent: a file
    already linked (same inode) or identical is left alone, and files that are no longer in that split
    (after ``--holdout-fraction`` or ``--split-seed`` changed) are removed, so neither folder ever holds a
    photo of the other split. Returns the number of files per split.
    """
    counts = {}
    for split in ("train", "holdout"):
        root = photos / split
        wanted: dict[Path, Path] = {}
        for row in rows:
            if row.split != split:
                continue
            source = photos / row.dest_path
            rel = PurePosixPath(row.dest_path).relative_to("train_pool")
            wanted[root / rel] = source
        for dest, source in sorted(wanted.items()):
            if dest.exists():
                same = dest.stat().st_ino == source.stat().st_ino or (
                    dest.stat().st_size == source.stat().st_size and dest.read_bytes() == source.read_bytes()
                )
                if same:
                    continue
                dest.unlink()
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(source, dest)
            except OSError:  # another filesystem, or links not supported: copy (atomically)
                atomic_write(dest, source.read_bytes())
        if root.is_dir():
            for path in sorted(root.rglob("*"), reverse=True):  # children before their folders
                if path.is_file() and path not in wanted:
                    path.unlink()
                elif path.is_dir() and not any(path.iterdir()):
                    path.rmdir()
        counts[split] = len(wanted)
    return counts


def summary(rows: list[Row]) -> str:
    lines = [f"{'split':8} {'package':28} {'files':>5} {'megapixels':>10}"]
    for split in ("train", "holdout", "eval"):
        members = [r for r in rows if r.split == split]
        for package in sorted({r.package for r in members}):
            these = [r for r in members if r.package == package]
            mp = sum(r.width * r.height for r in these) / 1e6
            lines.append(f"{split:8} {package:28} {len(these):5d} {mp:10.1f}")
        mp = sum(r.width * r.height for r in members) / 1e6
        lines.append(f"{split:8} {'= all':28} {len(members):5d} {mp:10.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=REPO_ROOT / "data", help="default: <repo>/data")
    parser.add_argument("--holdout-fraction", type=float, default=0.15, help="per training package")
    parser.add_argument("--split-seed", default="ganedit-photos-v1", help="changing it changes the holdout")
    parser.add_argument("--force", action="store_true", help="unpack and copy again even if complete")
    parser.add_argument(
        "--with-optional",
        action="store_true",
        help="also fetch the optional packages (gcompris-qt-data: about 120 more training photos, 44 MB)",
    )
    args = parser.parse_args(argv)
    if not 0.0 <= args.holdout_fraction < 1.0:
        parser.error("--holdout-fraction must be in [0, 1)")

    data_dir: Path = args.data_dir.resolve()
    photos, debs, state_dir = data_dir / "photos", data_dir / "debs", data_dir / "photos" / ".state"
    apt = Apt()
    rows: list[Row] = []
    failures = []
    for source in SOURCES:
        state_path = state_dir / f"{source.package}.json"
        done = None if args.force else load_state(state_path, source, photos)
        if done is not None:  # optional packages fetched by an earlier run stay in the manifest
            print(f"{source.package}: complete, {len(done)} photos (skipped)")
            rows += done
            continue
        if source.optional and not args.with_optional:
            print(f"{source.package}: optional, not fetched (use --with-optional)")
            continue
        try:
            version = apt.candidate(source.package)
            print(f"{source.package} {version}", flush=True)
            deb = apt.download(source.package, version, debs)
            new_rows = process(source, version, deb, photos, data_dir)
        except FetchError as error:
            print(f"error: {error}", file=sys.stderr)
            failures.append(source.package)
            continue
        save_state(state_path, source, new_rows)
        print(f"  {len(new_rows)} photos")
        rows += new_rows

    assign_holdout(rows, args.holdout_fraction, args.split_seed)
    write_manifest(photos / "MANIFEST.tsv", rows)
    print(f"\nwrote {photos / 'MANIFEST.tsv'}")
    counts = materialise_splits(photos, rows)
    print(
        f"linked {counts['train']} photos into {photos / 'train'} and {counts['holdout']} into "
        f"{photos / 'holdout'} (use --data {photos / 'train'} --val {photos / 'holdout'})\n"
    )
    print(summary(rows))
    if failures:
        print(f"\nfailed: {', '.join(failures)} (see the errors above; re-run to retry)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
