"""The tagged chairs dataset for TDGAN: SweetHome3D's seats rendered at 31 azimuths x 2 elevations x 4 lights.

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

Layout written by `render_chairs` (``OUT``)::

    OUT/tags.json                                   the index (below)
    OUT/ATTRIBUTION.md                              every model, its author, catalogue and licence
    OUT/licenses/<catalogue>.txt                    each .sh3f's LICENSE.TXT (e.g. Scopia.txt)
    OUT/licenses/sweethome3d.copyright              the sweethome3d package's copyright file
    OUT/licenses/<identity>/<file>                  per-model licence files shipped with the model
    OUT/<size>/<split>/<identity>/az<AA>_el<EE>_<light>.png

``AA`` is the azimuth index 00..30 (azimuth = AA x 360/31 degrees, 0 = the model's front, increasing
counter-clockwise seen from above), ``EE`` the elevation in degrees (20 or 30), ``light`` one of
``front``, ``left``, ``right``, ``top`` (directions fixed relative to the camera; see
`ganedit.train.render.LIGHTS`). One image per (identity, azimuth, elevation, light, size): with the
defaults 31 x 2 x 4 = 248 images per identity and size.

``tags.json``::

    {"format": "ganedit-chairs/1",
     "sizes": [64, 128],
     "renderer": {...camera, lights, background, supersampling...},
     "vocabulary": {"azimuth": [0.0, 11.6129, ...], "elevation": [20.0, 30.0],
                    "light": ["front", "left", "right", "top"],
                    "pose": ["az00_el20", ..., "az30_el30"]},
     "identities": {"<identity>": {"split", "name", "kind", "category", "catalog", "catalog_id",
                                   "creator", "license", "source", "triangles", "notes"}},
     "images": [{"file": "train/<identity>/az00_el20_front.png", "identity", "split",
                 "azimuth": 0, "elevation": 0, "light": 0, "pose": 0,
                 "azimuth_deg": 0.0, "elevation_deg": 20.0, "light_name": "front"}, ...]}

An image's path for size ``S`` is ``OUT/S/<file>``. The integer tags index the vocabulary lists; ``pose``
is ``elevation * 31 + azimuth`` (62 poses). ``images`` is sorted by file; ``identities`` by name. The file
lists every identity rendered into ``OUT`` so far with the same sizes, renderer and vocabulary (a run for
one split keeps the other split's entries); keep those settings fixed for one ``OUT``.

Determinism and resuming: models are found and ordered the same way each time, every image is a pure
function of its model and tags, writes are atomic (a temporary file, then ``os.replace``), and an image
that exists is not rendered again; an identity whose images all exist is not even loaded. Files that do
not change are not rewritten, so a second run writes nothing.
"""

from __future__ import annotations

import json
import os
import re
import struct
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field, replace
from multiprocessing import get_context
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from PIL import Image

from ganedit.data.tagset import INDEX_NAME, read_document
from ganedit.errors import UsageError
from ganedit.train import render as rd

__all__ = [
    "ALL_KINDS",
    "AZIMUTHS",
    "DEFAULT_KINDS",
    "ELEVATIONS",
    "FORMAT",
    "RenderReport",
    "SeatModel",
    "default_materials",
    "find_seats",
    "read_properties",
    "render_chairs",
    "seat_kind",
]

FORMAT = "ganedit-chairs/1"
AZIMUTHS = 31
ELEVATIONS: tuple[float, ...] = (20.0, 30.0)
DEFAULT_KINDS: tuple[str, ...] = ("chair", "armchair", "stool")
ALL_KINDS: tuple[str, ...] = ("chair", "armchair", "stool", "sofa", "bench")
SPLITS: tuple[str, ...] = ("train", "eval")
MAX_TRIANGLES = 400_000

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

ProgressCallback = Callable[[int, int, str], None]


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _current_umask()  # read once at import: os.umask is process-wide


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


def _root(source_dir: Path) -> Path:
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
    root = _root(Path(source_dir))
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


# ---------------------------------------------------------------------------------------------- layout


def _azimuths(count: int) -> list[float]:
    return [round(index * 360.0 / count, 4) for index in range(count)]


def _file(seat: SeatModel, azimuth: int, elevation: float, light: str) -> str:
    return f"{seat.split}/{seat.identity}/az{azimuth:02d}_el{round(elevation):02d}_{light}.png"


def _image_entries(
    seat: SeatModel, azimuths: list[float], elevations: Sequence[float], lights: Sequence[str]
) -> list[dict[str, Any]]:
    entries = []
    for e, elevation in enumerate(elevations):
        for a, azimuth in enumerate(azimuths):
            for li, light in enumerate(lights):
                entries.append(
                    {
                        "file": _file(seat, a, elevation, light),
                        "identity": seat.identity,
                        "split": seat.split,
                        "azimuth": a,
                        "elevation": e,
                        "light": li,
                        "pose": e * len(azimuths) + a,
                        "azimuth_deg": azimuth,
                        "elevation_deg": float(elevation),
                        "light_name": light,
                    }
                )
    return entries


def _write_atomic(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` via a temporary file and ``os.replace``; False if it already held it."""
    try:
        if path.read_bytes() == data:
            return False
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            if hasattr(os, "fchmod"):  # mkstemp makes 0600; give the usual permissions
                os.fchmod(stream.fileno(), 0o666 & ~_UMASK)
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return True


def _png(pixels: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="RGB").save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------- rendering


@dataclass(frozen=True)
class _Job:
    seat: SeatModel
    root: str
    out_dir: str
    sizes: tuple[int, ...]
    azimuths: tuple[float, ...]
    elevations: tuple[float, ...]
    lights: tuple[str, ...]
    supersample: int
    fallback_mtl: str
    max_triangles: int


@dataclass
class _Result:
    identity: str
    written: int = 0
    skipped: int = 0
    triangles: int = 0
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0


def _render_seat(job: _Job) -> _Result:
    """Render every missing image of one seat (runs in a worker process, or inline)."""
    seat = job.seat
    result = _Result(identity=seat.identity)
    started = time.perf_counter()
    out = Path(job.out_dir)
    missing: dict[tuple[int, int], list[tuple[int, int]]] = {}  # (elevation, azimuth) -> [(light, size)]
    for e, elevation in enumerate(job.elevations):
        for a in range(len(job.azimuths)):
            for li, light in enumerate(job.lights):
                for size in job.sizes:
                    if (out / str(size) / _file(seat, a, elevation, light)).is_file():
                        result.skipped += 1
                    else:
                        missing.setdefault((e, a), []).append((li, size))
    if not missing:
        result.seconds = time.perf_counter() - started
        return result
    try:
        mesh = rd.load_obj(
            Path(job.root) / seat.archive,
            seat.model,
            fallback_mtl=job.fallback_mtl or None,
            max_triangles=job.max_triangles,
        )
        result.triangles = mesh.triangle_count
        result.notes = list(mesh.notes)
        mesh = rd.normalize(mesh, rotation=seat.rotation, dimensions=_dimensions(seat))
    except (rd.MeshError, OSError, ValueError) as error:
        result.error = str(error)
        result.seconds = time.perf_counter() - started
        return result
    for (e, a), wanted in sorted(missing.items()):
        elevation = job.elevations[e]
        sizes = sorted({size for _, size in wanted})
        views = rd.render_views(
            mesh, job.azimuths[a], elevation, job.lights, sizes, supersample=job.supersample
        )
        for li, size in wanted:
            path = out / str(size) / _file(seat, a, elevation, job.lights[li])
            _write_atomic(path, _png(views[(li, size)]))
            result.written += 1
    result.seconds = time.perf_counter() - started
    return result


def _dimensions(seat: SeatModel) -> tuple[float, float, float] | None:
    return seat.dimensions if all(value > 0 for value in seat.dimensions) else None


@dataclass
class RenderReport:
    """What `render_chairs` did."""

    out_dir: Path
    identities: int = 0  # selected seats
    images: int = 0  # images expected (identities x poses x lights x sizes)
    written: int = 0
    skipped: int = 0  # already there
    failed: list[tuple[str, str]] = field(default_factory=list)  # (identity, reason)
    counts: dict[str, int] = field(default_factory=dict)  # seats per split
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed


def _selected_splits(split: str | Sequence[str]) -> tuple[str, ...]:
    names = (split,) if isinstance(split, str) else tuple(split)
    if names == ("all",):
        return SPLITS
    bad = [name for name in names if name not in SPLITS]
    if bad or not names:
        raise UsageError(f"unknown split {', '.join(bad) or '(none)'}; choose from train, eval, all")
    return tuple(name for name in SPLITS if name in names)


def render_chairs(
    source_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    sizes: Sequence[int] = (64, 128),
    split: str | Sequence[str] = "all",
    limit: int | None = None,
    workers: int = 1,
    on_progress: ProgressCallback | None = None,
    kinds: Sequence[str] = DEFAULT_KINDS,
    azimuths: int = AZIMUTHS,
    elevations: Sequence[float] = ELEVATIONS,
    lights: Sequence[str] = tuple(rd.LIGHTS),
    supersample: int = rd.DEFAULT_SUPERSAMPLE,
    max_triangles: int = MAX_TRIANGLES,
) -> RenderReport:
    """Render the seats found in ``source_dir`` (see `find_seats`) into ``out_dir``; resumable.

    ``split``: ``"train"``, ``"eval"`` or ``"all"`` (or a list). ``limit``: at most this many seats per
    split (the first in identity order), for trials. ``workers`` > 1 renders that many seats at once in
    separate processes (the output does not depend on it). ``on_progress(done, total, identity)`` is
    called after each seat with the number of images done (written or already there) and expected. A
    seat that fails to load is reported in ``RenderReport.failed`` and left out of ``tags.json``; the
    others proceed. Layout and tags format: see the module docstring.
    """
    started = time.perf_counter()
    sizes = tuple(sorted({int(size) for size in sizes}))
    if not sizes or sizes[0] < 8:
        raise UsageError("sizes must be at least 8 pixels")
    if azimuths < 1 or not elevations or not lights:
        raise UsageError("need at least one azimuth, elevation and light")
    for light in lights:
        if light not in rd.LIGHTS:
            raise UsageError(f"unknown light {light!r}; choose from {', '.join(rd.LIGHTS)}")
    if workers < 1:
        raise UsageError("workers must be at least 1")
    splits = _selected_splits(split)
    root = _root(Path(source_dir))
    out = Path(out_dir)
    # Resuming skips the images already there: never mix them with images of another renderer version.
    previous = _read_index(out / INDEX_NAME)
    renderer = _renderer_settings(supersample)
    if previous is not None and previous.get("renderer") != renderer:
        changed = sorted(
            k
            for k in renderer.keys() | previous.get("renderer", {}).keys()
            if renderer.get(k) != previous.get("renderer", {}).get(k)
        )
        raise UsageError(
            f"{out} holds renders made with other renderer settings (differing: {', '.join(changed)}); "
            "render into a new folder so that old and new images do not mix"
        )
    seats = find_seats(root, kinds=kinds, splits=splits)
    if limit is not None:
        per_split: dict[str, int] = {}
        kept = []
        for seat in seats:
            per_split[seat.split] = per_split.get(seat.split, 0) + 1
            if per_split[seat.split] <= limit:
                kept.append(seat)
        seats = kept
    azimuth_values = _azimuths(azimuths)
    fallback = default_materials(root / JAR)
    jobs = [
        _Job(
            seat=seat,
            root=str(root),
            out_dir=str(out),
            sizes=sizes,
            azimuths=tuple(azimuth_values),
            elevations=tuple(float(e) for e in elevations),
            lights=tuple(lights),
            supersample=supersample,
            fallback_mtl=fallback,
            max_triangles=max_triangles,
        )
        for seat in seats
    ]
    per_seat = azimuths * len(elevations) * len(lights) * len(sizes)
    report = RenderReport(out_dir=out, identities=len(seats), images=per_seat * len(seats))
    for seat in seats:
        report.counts[seat.split] = report.counts.get(seat.split, 0) + 1
    out.mkdir(parents=True, exist_ok=True)

    results: dict[str, _Result] = {}
    done = 0

    def finished(result: _Result) -> None:
        nonlocal done
        results[result.identity] = result
        report.written += result.written
        report.skipped += result.skipped
        if result.error is not None:
            report.failed.append((result.identity, result.error))
        done += per_seat
        if on_progress is not None:
            on_progress(done, report.images, result.identity)

    if workers == 1 or len(jobs) <= 1:
        for job in jobs:
            finished(_render_seat(job))
    else:
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
            pending: set[Future[_Result]] = set()
            queue = list(jobs)
            try:
                while queue or pending:
                    while queue and len(pending) < workers * 2:
                        pending.add(pool.submit(_render_seat, queue.pop(0)))
                    complete, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in sorted(complete, key=lambda f: f.result().identity):
                        finished(future.result())
            except BaseException:
                for future in pending:
                    future.cancel()
                raise

    good = [seat for seat in seats if results[seat.identity].error is None]
    _write_index(out, good, results, sizes, azimuth_values, elevations, lights, supersample, root)
    report.failed.sort()
    report.seconds = time.perf_counter() - started
    return report


# ------------------------------------------------------------------------------------------------ index


def _renderer_settings(supersample: int) -> dict[str, Any]:
    return {
        "name": "ganedit.train.render",
        "camera": "perspective, looking at the origin",
        "camera_distance": rd.CAMERA_DISTANCE,
        "fill": rd.FILL,
        "normalisation": "modelRotation, stretched to the catalogue's width x height x depth, bounding box "
        "centred, half diagonal scaled to 1; Y up, front towards +Z",
        "azimuth": "0 = front; counter-clockwise seen from above (90 shows the model's +X side)",
        "elevation": "degrees above the horizontal",
        "lights": {name: list(vector) for name, vector in rd.LIGHTS.items()},
        "light_space": "view space: x to the viewer's right, y up, z towards the camera",
        "shading": f"albedo x ({rd.AMBIENT} + {rd.DIFFUSE} x max(0, n.l)), two-sided",
        "background": list(rd.BACKGROUND),
        "shadow": f"cast on the floor (the plane under the model), floor darkened to {rd.SHADOW}; "
        "no self-shadowing",
        "supersample": f"each size rendered at {supersample} x its size, box-reduced",
    }


def _write_index(
    out: Path,
    seats: list[SeatModel],
    results: dict[str, _Result],
    sizes: tuple[int, ...],
    azimuths: list[float],
    elevations: Sequence[float],
    lights: Sequence[str],
    supersample: int,
    root: Path,
) -> None:
    vocabulary = {
        "azimuth": azimuths,
        "elevation": [float(e) for e in elevations],
        "light": list(lights),
        "pose": [f"az{a:02d}_el{round(e):02d}" for e in elevations for a in range(len(azimuths))],
    }
    renderer = _renderer_settings(supersample)
    identities: dict[str, dict[str, Any]] = {}
    images: list[dict[str, Any]] = []
    index_path = out / INDEX_NAME
    previous = _read_index(index_path)
    if (
        previous is not None
        and previous.get("vocabulary") == vocabulary
        and previous.get("sizes") == list(sizes)
        and previous.get("renderer") == renderer
    ):
        # keep what earlier runs rendered (another split, a larger limit) unless this run redid it
        mine = {seat.identity for seat in seats}
        for identity, info in previous.get("identities", {}).items():
            if identity not in mine:
                identities[identity] = info
        images += [entry for entry in previous.get("images", []) if entry.get("identity") not in mine]
    for seat in seats:
        result = results[seat.identity]
        info: dict[str, Any] = {
            "split": seat.split,
            "name": seat.name,
            "kind": seat.kind,
            "category": seat.category,
            "catalog": seat.catalog,
            "catalog_id": seat.catalog_id,
            "creator": seat.creator,
            "license": seat.license,
            "source": f"{seat.archive}!/{seat.model}",
        }
        earlier = (previous or {}).get("identities", {}).get(seat.identity, {})
        if result.triangles:  # loaded by this run
            info["triangles"] = result.triangles
            if result.notes:
                info["notes"] = result.notes
        else:  # every image was already there: keep what the run that rendered them learnt
            for key in ("triangles", "notes"):
                if key in earlier:
                    info[key] = earlier[key]
        identities[seat.identity] = info
        images += _image_entries(seat, azimuths, elevations, lights)
    document = {
        "format": FORMAT,
        "sizes": list(sizes),
        "renderer": renderer,
        "vocabulary": vocabulary,
        "identities": dict(sorted(identities.items())),
        "images": sorted(images, key=lambda entry: entry["file"]),
    }
    _write_atomic(index_path, _index_json(document).encode("utf-8"))
    _write_licenses(out, root, identities)


def _index_json(document: dict[str, Any]) -> str:
    """Indented JSON, except one line per image (the list is long)."""
    head = {key: value for key, value in document.items() if key != "images"}
    text = json.dumps(head, indent=1, ensure_ascii=False)
    lines = ",\n".join("  " + json.dumps(entry, ensure_ascii=False) for entry in document["images"])
    return text[:-2] + ',\n "images": [\n' + lines + "\n ]\n}\n"


def _read_index(path: Path) -> dict[str, Any] | None:
    return read_document(path, FORMAT)


def _write_licenses(out: Path, root: Path, identities: dict[str, dict[str, Any]]) -> None:
    """``ATTRIBUTION.md``, each catalogue's LICENSE.TXT and the licence files shipped beside each model."""
    lines = [
        "# Attribution",
        "",
        "Images rendered by ganedit (`ganedit.train.render`) from the 3D models listed below, taken from",
        "the Debian packages sweethome3d-furniture (split `train`) and sweethome3d (split `eval`).",
        "Each catalogue's licence is in `licenses/<catalogue>.txt`; licence files shipped with a model",
        "are in `licenses/<identity>/`.",
        "",
        "| identity | split | name | author | catalogue | licence |",
        "|---|---|---|---|---|---|",
    ]
    archives: dict[str, str] = {}
    for identity, info in sorted(identities.items()):
        lines.append(
            f"| {identity} | {info.get('split', '')} | {info.get('name', '')} | {info.get('creator', '')} | "
            f"{info.get('catalog', '')} | {info.get('license', '')} |"
        )
        source = str(info.get("source", ""))
        archive, _, model = source.partition("!/")
        if archive:
            archives.setdefault(archive, "")
        _copy_model_licenses(out / "licenses" / identity, root / archive, model)
    _write_atomic(out / "ATTRIBUTION.md", ("\n".join(lines) + "\n").encode("utf-8"))
    for archive in sorted(archives):
        path = root / archive
        if path.suffix != ".sh3f":
            continue
        try:
            with zipfile.ZipFile(path) as zipped:
                text = zipped.read("LICENSE.TXT")
        except (OSError, KeyError, zipfile.BadZipFile):
            continue
        _write_atomic(out / "licenses" / f"{path.stem}.txt", text)
    copyright_file = root / "usr/share/doc/sweethome3d/copyright"
    if (
        any(str(info.get("source", "")).startswith(JAR) for info in identities.values())
        and copyright_file.is_file()
    ):
        _write_atomic(out / "licenses" / "sweethome3d.copyright", copyright_file.read_bytes())


def _copy_model_licenses(target: Path, archive: Path, model: str) -> None:
    folder = PurePosixPath(model).parent
    if archive.suffix != ".sh3f" or str(folder) in ("", "."):
        return
    try:
        with zipfile.ZipFile(archive) as zipped:
            for info in zipped.infolist():
                member = PurePosixPath(info.filename)
                if member.parent == folder and "license" in member.name.lower() and not info.is_dir():
                    _write_atomic(target / member.name, zipped.read(info))
    except (OSError, zipfile.BadZipFile):
        return
