"""The tagged chairs dataset for TDGAN: SweetHome3D's seats rendered at 31 azimuths x 2 elevations x 4 lights.

Which seats, from which catalogues: `ganedit.train.seats`.

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
function of its model and tags, writes are atomic (`ganedit.io.atomic`), and an image
that exists is not rendered again; an identity whose images all exist is not even loaded. Files that do
not change are not rewritten, so a second run writes nothing.
"""

from __future__ import annotations

import json
import os
import time
import zipfile
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from PIL import Image

from ganedit.data.tagset import INDEX_NAME, read_document
from ganedit.errors import UsageError
from ganedit.io.atomic import atomic_write
from ganedit.train import render as rd
from ganedit.train.seats import (  # re-exported: the chairs dataset's own names for them
    ALL_KINDS,
    DEFAULT_CATALOG,
    DEFAULT_KINDS,
    FURNITURE_DIR,
    JAR,
    OBJ_LOADER,
    SPLITS,
    SeatModel,
    default_materials,
    find_seats,
    read_properties,
    seat_kind,
    source_root,
)

__all__ = [
    "ALL_KINDS",
    "AZIMUTHS",
    "DEFAULT_CATALOG",
    "DEFAULT_KINDS",
    "ELEVATIONS",
    "FORMAT",
    "FURNITURE_DIR",
    "JAR",
    "OBJ_LOADER",
    "SPLITS",
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
MAX_TRIANGLES = 400_000

ProgressCallback = Callable[[int, int, str], None]


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
    """Write ``data`` to ``path`` atomically; False if it already held it (a resumed render skips it)."""
    try:
        if path.read_bytes() == data:
            return False
    except OSError:
        pass
    atomic_write(path, data)
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
    sizes = _check_settings(sizes, azimuths, elevations, lights, workers)
    splits = _selected_splits(split)
    root = source_root(Path(source_dir))
    out = Path(out_dir)
    _check_renderer(out, supersample)
    seats = _first_per_split(find_seats(root, kinds=kinds, splits=splits), limit)
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

    _run_jobs(jobs, workers, finished)
    good = [seat for seat in seats if results[seat.identity].error is None]
    _write_index(out, good, results, sizes, azimuth_values, elevations, lights, supersample, root)
    report.failed.sort()
    report.seconds = time.perf_counter() - started
    return report


def _check_settings(
    sizes: Sequence[int], azimuths: int, elevations: Sequence[float], lights: Sequence[str], workers: int
) -> tuple[int, ...]:
    """UsageError for settings that cannot render; the sizes, sorted and unique."""
    ordered = tuple(sorted({int(size) for size in sizes}))
    if not ordered or ordered[0] < 8:
        raise UsageError("sizes must be at least 8 pixels")
    if azimuths < 1 or not elevations or not lights:
        raise UsageError("need at least one azimuth, elevation and light")
    for light in lights:
        if light not in rd.LIGHTS:
            raise UsageError(f"unknown light {light!r}; choose from {', '.join(rd.LIGHTS)}")
    if workers < 1:
        raise UsageError("workers must be at least 1")
    return ordered


def _check_renderer(out: Path, supersample: int) -> None:
    """Resuming skips the images already there: never mix them with images of another renderer version."""
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


def _first_per_split(seats: list[SeatModel], limit: int | None) -> list[SeatModel]:
    """At most `limit` seats of each split, the first in order."""
    if limit is None:
        return seats
    per_split: dict[str, int] = {}
    kept = []
    for seat in seats:
        per_split[seat.split] = per_split.get(seat.split, 0) + 1
        if per_split[seat.split] <= limit:
            kept.append(seat)
    return kept


def _run_jobs(jobs: list[_Job], workers: int, finished: Callable[[_Result], None]) -> None:
    """Render every job, in this process or in `workers` processes; `finished` gets each result (in
    identity order among those that complete together)."""
    if workers == 1 or len(jobs) <= 1:
        for job in jobs:
            finished(_render_seat(job))
        return
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
        for identity, kept in previous.get("identities", {}).items():
            if identity not in mine:
                identities[identity] = kept
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
