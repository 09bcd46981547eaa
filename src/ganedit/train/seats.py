"""The seats of SweetHome3D's furniture catalogues: which catalogue entries are seats, where their models
are, and the built-in materials the default catalogue's models use (for `ganedit.train.chairs`).

Sources (Debian packages unpacked with ``dpkg -x`` into one folder, ``SOURCE``; see
``scripts/fetch_chairs.py``):

* **train**: the seats of ``sweethome3d-furniture``: the furniture libraries
  ``usr/share/sweethome3d/furniture/*.sh3f`` (zip files), each listing its models in
  ``PluginFurnitureCatalog.properties`` (CC0 or CC-BY 3.0).
* **eval**: the seats of SweetHome3D's own default catalogue, ``DefaultFurnitureCatalog.properties`` and
  the models under ``com/eteks/sweethome3d/io/resources/`` inside ``usr/share/sweethome3d/sweethome3d.jar``
  (package ``sweethome3d``; CC-BY 3.0 or GPL, by eTeks). Reserved for evaluation: never train on them.
  Its models use SweetHome3D's built-in named materials (``amber``, ``flltgrey``...) without any
  ``mtllib``; their colours are read from the MTL text embedded in the jar's ``OBJLoader.class``.

Which entries are seats (`seat_kind`), from the English ``name``, then ``tags``, of a catalogue entry:

1. never: category ``Vehicles``, ``Characters`` or ``Doors and windows``, and names or ids containing
   ``wheelchair``, ``workbench``, ``abdominal`` (a fitness bench) or ``opened`` (an unfolded sofa bed);
2. the kind is the first of these that the name contains as a word: ``armchair``; ``stool``, ``puff``,
   ``pouf`` or ``ottoman`` -> ``stool``; ``chair`` -> ``chair``; ``sofa``, ``couch`` or ``settee`` ->
   ``sofa``; ``bench`` -> ``bench``; ``lounge`` -> ``chair``;
3. otherwise the same words among the tags (so "Class seat", tagged ``Chair``, is a chair).

`DEFAULT_KINDS` (chair, armchair, stool) make the dataset, as in the 3D chairs of Aubry et al.; pass
``kinds=ALL_KINDS`` to add sofas and benches.
"""

from __future__ import annotations

import os
import re
import struct
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from ganedit.errors import UsageError

__all__ = [
    "ALL_KINDS",
    "DEFAULT_KINDS",
    "JAR",
    "SPLITS",
    "SeatModel",
    "default_materials",
    "find_seats",
    "read_properties",
    "seat_kind",
    "source_root",
]

SPLITS: tuple[str, ...] = ("train", "eval")
ALL_KINDS: tuple[str, ...] = ("chair", "armchair", "stool", "sofa", "bench")
DEFAULT_KINDS: tuple[str, ...] = ("chair", "armchair", "stool")
FURNITURE_DIR = "usr/share/sweethome3d/furniture"
JAR = "usr/share/sweethome3d/sweethome3d.jar"
DEFAULT_CATALOG = "com/eteks/sweethome3d/io/DefaultFurnitureCatalog.properties"
PLUGIN_CATALOG = "PluginFurnitureCatalog.properties"
OBJ_LOADER = "com/eteks/sweethome3d/j3d/OBJLoader.class"

_EXCLUDED_CATEGORIES = frozenset({"vehicles", "characters", "doors and windows"})
_EXCLUDED_WORDS = ("wheelchair", "workbench", "abdominal", "opened")
_KIND_WORDS: tuple[tuple[str, str], ...] = (
    (r"armchairs?", "armchair"),
    (r"stools?|puff|pouf|ottoman", "stool"),
    (r"chairs?", "chair"),
    (r"sofas?|couch(es)?|settee", "sofa"),
    (r"bench(es)?", "bench"),
    (r"lounge", "chair"),
)


# ------------------------------------------------------------------------------------------ catalogues


def read_properties(text: str) -> dict[str, str]:
    """Parse Java ``.properties`` text (comments, ``key=value``/``key:value``/``key value``,
    backslash continuations, ``\\uXXXX`` and the usual escapes)."""
    result: dict[str, str] = {}
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.lstrip()
        if not pending and (not line or line[0] in "#!"):
            continue
        trailing = len(line) - len(line.rstrip("\\"))
        if trailing % 2 == 1:
            pending += line[:-1]
            continue
        logical.append(pending + line)
        pending = ""
    if pending:
        logical.append(pending)
    for line in logical:
        key_chars: list[str] = []
        index = 0
        while index < len(line):
            char = line[index]
            if char == "\\" and index + 1 < len(line):
                key_chars.append(line[index : index + 2])
                index += 2
                continue
            if char in "=: \t\f":
                break
            key_chars.append(char)
            index += 1
        rest = line[index:].lstrip(" \t\f")
        if rest[:1] in ("=", ":"):
            rest = rest[1:].lstrip(" \t\f")
        result[_unescape("".join(key_chars))] = _unescape(rest)
    return result


def _unescape(text: str) -> str:
    if "\\" not in text:
        return text
    out: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char != "\\" or index + 1 >= len(text):
            out.append(char)
            index += 1
            continue
        code = text[index + 1]
        if code == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", text[index + 2 : index + 6]):
            out.append(chr(int(text[index + 2 : index + 6], 16)))
            index += 6
            continue
        out.append({"t": "\t", "n": "\n", "r": "\r", "f": "\f"}.get(code, code))
        index += 2
    return "".join(out)


def seat_kind(name: str, tags: Iterable[str] = (), category: str = "", catalog_id: str = "") -> str | None:
    """The kind of seat a catalogue entry is (``chair``, ``armchair``, ``stool``, ``sofa``, ``bench``), or
    None if it is not a seat. The rule is in the module docstring."""
    if category.strip().lower() in _EXCLUDED_CATEGORIES:
        return None
    lowered = f"{name} {catalog_id}".lower()
    if any(word in lowered for word in _EXCLUDED_WORDS):
        return None
    for text in (name, " ".join(tags)):
        for pattern, kind in _KIND_WORDS:
            if re.search(rf"\b({pattern})\b", text, re.IGNORECASE):
                return kind
    return None


@dataclass(frozen=True)
class SeatModel:
    """One seat of a catalogue: where its model is, how SweetHome3D shows it, and who made it."""

    identity: str  # unique, filesystem-safe: "<catalogue>--<model>", lower case
    split: str  # "train" or "eval"
    kind: str
    name: str
    category: str
    tags: tuple[str, ...]
    catalog: str  # the archive's file name, e.g. "Scopia.sh3f" or "sweethome3d.jar"
    catalog_id: str  # SweetHome3D's id, e.g. "Scopia#chair"
    archive: str  # path of the .sh3f / .jar, relative to the source folder
    model: str  # the OBJ's path inside the archive
    rotation: tuple[float, ...] | None  # modelRotation, 9 numbers row-major, or None
    dimensions: tuple[float, float, float]  # width (X), height (Y), depth (Z) in cm
    creator: str
    license: str


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def _entries(properties: dict[str, str]) -> Iterable[tuple[int, dict[str, str]]]:
    numbers = sorted({int(key.split("#", 1)[1]) for key in properties if re.fullmatch(r"id#\d+", key)})
    for number in numbers:
        suffix = f"#{number}"
        yield (
            number,
            {key[: -len(suffix)]: value for key, value in properties.items() if key.endswith(suffix)},
        )


def _seats_of(
    properties: dict[str, str],
    *,
    split: str,
    catalog: str,
    archive: str,
    license_default: str,
    kinds: Sequence[str],
) -> list[SeatModel]:
    seats = []
    for _, entry in _entries(properties):
        catalog_id = entry.get("id", "")
        tags = tuple(tag.strip() for tag in entry.get("tags", "").split(",") if tag.strip())
        kind = seat_kind(entry.get("name", ""), tags, entry.get("category", ""), catalog_id)
        model = entry.get("model", "")
        if kind is None or kind not in kinds or not model.lower().endswith(".obj"):
            continue
        rotation = None
        if entry.get("modelRotation"):
            values = tuple(float(v) for v in entry["modelRotation"].split())
            if len(values) == 9:
                rotation = values
        library, _, local = catalog_id.partition("#")
        seats.append(
            SeatModel(
                identity=f"{_slug(library)}--{_slug(local or catalog_id)}",
                split=split,
                kind=kind,
                name=entry.get("name", ""),
                category=entry.get("category", ""),
                tags=tags,
                catalog=catalog,
                catalog_id=catalog_id,
                archive=archive,
                model=model.lstrip("/"),
                rotation=rotation,
                dimensions=(
                    _number(entry.get("width")),
                    _number(entry.get("height")),
                    _number(entry.get("depth")),
                ),
                creator=entry.get("creator", ""),
                license=entry.get("license", license_default),
            )
        )
    return seats


def _number(text: str | None) -> float:
    try:
        return float(text) if text else 0.0
    except ValueError:
        return 0.0


def source_root(source_dir: Path) -> Path:
    """The folder holding ``usr/share/sweethome3d`` (the ``dpkg -x`` target), given it or a parent."""
    for candidate in (source_dir, source_dir / "chairs-src"):
        if (candidate / FURNITURE_DIR).is_dir() or (candidate / JAR).is_file():
            return candidate
    raise UsageError(
        f"{source_dir}: no {FURNITURE_DIR}/ or {JAR} in it; unpack the sweethome3d-furniture and "
        "sweethome3d packages there first (python scripts/fetch_chairs.py)"
    )


_LICENSES = {
    "BlendSwap-CC-0.sh3f": "CC0-1.0",
    "BlendSwap-CC-BY.sh3f": "CC-BY-3.0",
    "KatorLegaz.sh3f": "CC-BY-3.0-US",
    "Reallusion.sh3f": "CC-BY-3.0-US",
    "Scopia.sh3f": "CC-BY-3.0",
    "sweethome3d.jar": "CC-BY-3.0 OR GPL-2.0-or-later",
}


def _catalog_license(catalog: str, properties: dict[str, str]) -> str:
    if catalog in _LICENSES:
        return _LICENSES[catalog]
    return properties.get("license", "") or "see the catalogue's LICENSE.TXT"


def find_seats(
    source_dir: str | os.PathLike[str],
    *,
    kinds: Sequence[str] = DEFAULT_KINDS,
    splits: Sequence[str] = SPLITS,
) -> list[SeatModel]:
    """The seats of the unpacked packages in ``source_dir``, sorted by split then identity.

    ``train`` = the ``.sh3f`` libraries of ``sweethome3d-furniture``, ``eval`` = the default catalogue in
    ``sweethome3d.jar``. Raises `UsageError` if neither is there, or if a requested split's source is
    missing.
    """
    unknown = [kind for kind in kinds if kind not in ALL_KINDS]
    if unknown:
        raise UsageError(f"unknown seat kind(s) {', '.join(unknown)}; choose from {', '.join(ALL_KINDS)}")
    root = source_root(Path(source_dir))
    seats: list[SeatModel] = []
    if "train" in splits:
        libraries = sorted((root / FURNITURE_DIR).glob("*.sh3f"))
        if not libraries:
            raise UsageError(f"{root / FURNITURE_DIR}: no .sh3f furniture libraries (sweethome3d-furniture)")
        for library in libraries:
            try:
                with zipfile.ZipFile(library) as archive:
                    text = archive.read(PLUGIN_CATALOG).decode("latin-1")
            except (OSError, KeyError, zipfile.BadZipFile) as error:
                raise UsageError(f"{library}: cannot read its {PLUGIN_CATALOG} ({error})") from error
            properties = read_properties(text)
            seats += _seats_of(
                properties,
                split="train",
                catalog=library.name,
                archive=library.relative_to(root).as_posix(),
                license_default=_catalog_license(library.name, properties),
                kinds=kinds,
            )
    if "eval" in splits:
        jar = root / JAR
        try:
            with zipfile.ZipFile(jar) as archive:
                text = archive.read(DEFAULT_CATALOG).decode("latin-1")
        except (OSError, KeyError, zipfile.BadZipFile) as error:
            raise UsageError(
                f"{jar}: cannot read its {DEFAULT_CATALOG} ({error}); unpack the sweethome3d package"
            ) from error
        properties = read_properties(text)
        seats += _seats_of(
            properties,
            split="eval",
            catalog=jar.name,
            archive=jar.relative_to(root).as_posix(),
            license_default=_catalog_license(jar.name, properties),
            kinds=kinds,
        )
    seen: dict[str, int] = {}
    unique = []
    for seat in sorted(seats, key=lambda s: (SPLITS.index(s.split), s.identity, s.catalog_id)):
        count = seen.get(seat.identity, 0)
        seen[seat.identity] = count + 1
        unique.append(replace(seat, identity=f"{seat.identity}-{count + 1}") if count else seat)
    return unique


def default_materials(jar: str | os.PathLike[str]) -> str:
    """SweetHome3D's built-in material library (MTL text), embedded as a string constant in the jar's
    ``OBJLoader.class``; its default models name these materials without any ``mtllib``. Empty if absent.
    """
    try:
        with zipfile.ZipFile(jar) as archive:
            data = archive.read(OBJ_LOADER)
    except (OSError, KeyError, zipfile.BadZipFile):
        return ""
    start = data.find(b"newmtl ")
    if start < 3 or data[start - 3] != 1:  # CONSTANT_Utf8 tag, then a big-endian u2 length
        return ""
    (length,) = struct.unpack(">H", data[start - 2 : start])
    return data[start : start + length].decode("utf-8", errors="replace")
