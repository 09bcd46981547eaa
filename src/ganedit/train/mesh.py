"""Reading textured Wavefront OBJ models (with MTL materials, from a folder or a zip archive) into a
triangle soup, and normalising them for the renderer (`ganedit.train.render`; its docstring gives the
choices: **Loading** and **Normalising**).
"""

from __future__ import annotations

import io
import math
import os
import posixpath
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["DEFAULT_KD", "Material", "Mesh", "MeshError", "load_obj", "normalize"]

DEFAULT_KD: tuple[float, float, float] = (0.6, 0.6, 0.6)


class MeshError(ValueError):
    """A model cannot be read: missing file, malformed OBJ, or no triangles."""


# ------------------------------------------------------------------------------------------------ data


@dataclass(frozen=True, eq=False)
class Material:
    """One OBJ material: a diffuse colour and optionally a texture (HxWx3 uint8) that replaces it."""

    name: str
    diffuse: tuple[float, float, float] = DEFAULT_KD
    texture: np.ndarray | None = None
    opacity: float = 1.0


@dataclass(frozen=True, eq=False)
class Mesh:
    """A triangle soup: per-triangle corners, so attributes need no index indirection.

    ``positions`` (T, 3, 3) float64, ``normals`` (T, 3, 3) float64 unit vertex normals (face normals
    where the file has none), ``uvs`` (T, 3, 2) float64 (NaN where the file has none), ``material_ids``
    (T,) int32 indexing ``materials``.
    """

    positions: np.ndarray
    normals: np.ndarray
    uvs: np.ndarray
    material_ids: np.ndarray
    materials: tuple[Material, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def triangle_count(self) -> int:
        return int(self.positions.shape[0])

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        flat = self.positions.reshape(-1, 3)
        return flat.min(axis=0), flat.max(axis=0)


# --------------------------------------------------------------------------------------------- reading


class _Files:
    """Reads files relative to a folder or inside a zip archive (paths with ``/``)."""

    def __init__(self, root: Path, archive: zipfile.ZipFile | None) -> None:
        self.root = root
        self.archive = archive
        self._names: dict[str, str] | None = None

    def read(self, name: str) -> bytes:
        if self.archive is None:
            path = self.root / name
            try:
                return path.read_bytes()
            except OSError as error:
                raise MeshError(f"{path}: {error.strerror or error}") from error
        member = self._member(name)
        if member is None:
            raise MeshError(f"{name}: not in the archive")
        return self.archive.read(member)

    def _member(self, name: str) -> str | None:
        assert self.archive is not None
        if self._names is None:
            names: dict[str, str] = {}
            for info in self.archive.infolist():
                names.setdefault(info.filename, info.filename)
                names.setdefault(info.filename.lstrip("/"), info.filename)
                names.setdefault(info.filename.lower().lstrip("/"), info.filename)
            self._names = names
        key = posixpath.normpath(name).lstrip("/")
        return self._names.get(key) or self._names.get(key.lower())


def _resolve(base: str, reference: str) -> list[str]:
    """Candidate paths for a file referenced from a file in folder ``base`` (exact, then basename)."""
    reference = reference.strip().strip('"').replace("\\", "/")
    candidates = []
    if reference.startswith("/"):
        candidates.append(reference)
    else:
        candidates.append(posixpath.normpath(posixpath.join(base, reference)))
    basename = posixpath.join(base, posixpath.basename(reference))
    if basename not in candidates:
        candidates.append(basename)
    return candidates


def _floats(parts: Sequence[str], count: int, default: float = 0.0) -> list[float]:
    values = []
    for index in range(count):
        try:
            values.append(float(parts[index]))
        except (IndexError, ValueError):
            values.append(default)
    return values


def _lines(text: str) -> Iterable[str]:
    """Lines of an OBJ/MTL file with comments stripped and backslash continuations joined."""
    pending = ""
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].rstrip() if "#" in raw else raw.rstrip()
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = (pending + line).strip()
        pending = ""
        if line:
            yield line
    if pending.strip():
        yield pending.strip()


def _texture_name(parts: list[str]) -> str:
    """The file name of a ``map_Kd`` statement, skipping its options (``-s 1 1 1``, ``-clamp on``...)."""
    option_arity = {
        "-blendu": 1,
        "-blendv": 1,
        "-bm": 1,
        "-boost": 1,
        "-cc": 1,
        "-clamp": 1,
        "-imfchan": 1,
        "-mm": 2,
        "-o": 3,
        "-s": 3,
        "-t": 3,
        "-texres": 1,
        "-type": 1,
    }
    index = 0
    while index < len(parts) and parts[index].startswith("-") and parts[index] in option_arity:
        arity = option_arity[parts[index]]
        index += 1
        # -o/-s/-t take 1 to 3 numbers
        taken = 0
        while taken < arity and index < len(parts):
            if arity == 3 and taken > 0:
                try:
                    float(parts[index])
                except ValueError:
                    break
            index += 1
            taken += 1
    return " ".join(parts[index:])


@dataclass
class _MtlEntry:
    diffuse: tuple[float, float, float] = DEFAULT_KD
    texture: str = ""
    opacity: float = 1.0


def _parse_mtl(text: str, base: str, files: _Files, notes: list[str]) -> dict[str, Material]:
    entries: dict[str, _MtlEntry] = {}
    current: _MtlEntry | None = None
    for line in _lines(text):
        parts = line.split()
        key = parts[0]
        if key == "newmtl":
            current = entries[line[len("newmtl") :].strip()] = _MtlEntry()
        elif current is None:
            continue
        elif key == "Kd" and len(parts) >= 2:
            values = _floats(parts[1:], 3, default=float("nan"))
            if math.isnan(values[1]):  # "Kd r" means grey
                values = [values[0]] * 3
            red, green, blue = (min(1.0, max(0.0, v)) for v in values)
            current.diffuse = (red, green, blue)
        elif key == "map_Kd" and len(parts) >= 2:
            current.texture = _texture_name(parts[1:])
        elif key == "d" and len(parts) >= 2:
            current.opacity = _floats(parts[2:] if parts[1] == "-halo" else parts[1:], 1, 1.0)[0]
        elif key == "Tr" and len(parts) >= 2:
            current.opacity = 1.0 - _floats(parts[1:], 1, 0.0)[0]
    return {
        name: Material(
            name=name,
            diffuse=entry.diffuse,
            texture=_load_texture(files, base, entry.texture, notes) if entry.texture else None,
            opacity=entry.opacity,
        )
        for name, entry in entries.items()
    }


def _load_texture(files: _Files, base: str, reference: str, notes: list[str]) -> np.ndarray | None:
    for candidate in _resolve(base, reference):
        try:
            data = files.read(candidate)
        except MeshError:
            continue
        try:
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                rgb = image.convert("RGB")
        except (OSError, ValueError, Image.DecompressionBombError) as error:
            notes.append(f"texture {reference}: unreadable ({error}); using Kd")
            return None
        return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))
    notes.append(f"texture {reference}: not found; using Kd")
    return None


def _read_first(files: _Files, base: str, reference: str) -> tuple[str, bytes] | None:
    for candidate in _resolve(base, reference):
        try:
            return candidate, files.read(candidate)
        except MeshError:
            continue
    return None


def load_obj(
    path: str | os.PathLike[str],
    member: str | None = None,
    *,
    fallback_mtl: str | None = None,
    max_triangles: int | None = None,
) -> Mesh:
    """Read a Wavefront OBJ model with its MTL materials and textures.

    ``path`` is the OBJ file, or, with ``member``, a zip archive (``.zip``, ``.sh3f``, ``.jar``) and
    ``member`` the OBJ's path inside it; ``mtllib`` and ``map_Kd`` paths are resolved relative to the
    OBJ (then by base name). ``fallback_mtl`` is MTL text consulted for material names the model's own
    libraries lack. Raises `MeshError` if the model cannot be read, has no triangles, or has more than
    ``max_triangles``.
    """
    path = Path(path)
    if member is None:
        files = _Files(path.parent, None)
        return _load(files, path.name, fallback_mtl, max_triangles, label=str(path))
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as error:
        raise MeshError(f"{path}: not a readable zip archive ({error})") from error
    with archive:
        files = _Files(path, archive)
        return _load(files, member.lstrip("/"), fallback_mtl, max_triangles, label=f"{path}!{member}")


@dataclass
class _Obj:
    """What an OBJ file says, before materials are looked up: per triangle corner the vertex, texture
    coordinate and normal indices (-1: none), per triangle its material (-1: none)."""

    vertices: list[list[float]] = field(default_factory=list)
    texcoords: list[list[float]] = field(default_factory=list)
    normals: list[list[float]] = field(default_factory=list)
    corner_v: list[int] = field(default_factory=list)
    corner_t: list[int] = field(default_factory=list)
    corner_n: list[int] = field(default_factory=list)
    tri_material: list[int] = field(default_factory=list)
    material_names: list[str] = field(default_factory=list)
    libraries: list[str] = field(default_factory=list)


def _resolve_index(token: str, count: int, label: str) -> int:
    """An OBJ index (1-based, or negative: relative to the end) as a 0-based one; -1 for none."""
    if not token:
        return -1
    index = int(token)
    if index < 0:
        index += count
    else:
        index -= 1
    if not 0 <= index < count:
        raise MeshError(f"{label}: index {token} out of range (1..{count})")
    return index


def _add_face(obj: _Obj, rest: str, material: int, label: str) -> None:
    """An ``f`` line: the polygon fan-triangulated."""
    corners = []
    for token in rest.split():
        fields = token.split("/")
        v = _resolve_index(fields[0], len(obj.vertices), label)
        t = _resolve_index(fields[1], len(obj.texcoords), label) if len(fields) > 1 else -1
        n = _resolve_index(fields[2], len(obj.normals), label) if len(fields) > 2 else -1
        corners.append((v, t, n))
    for k in range(1, len(corners) - 1):
        for corner in (corners[0], corners[k], corners[k + 1]):
            obj.corner_v.append(corner[0])
            obj.corner_t.append(corner[1])
            obj.corner_n.append(corner[2])
        obj.tri_material.append(material)


def _parse_obj(text: str, label: str) -> _Obj:
    obj = _Obj()
    material_index: dict[str, int] = {}
    current = -1
    try:
        for line in _lines(text):
            key, _, rest = line.partition(" ")
            if key == "v":
                obj.vertices.append(_floats(rest.split(), 3))
            elif key == "vt":
                obj.texcoords.append(_floats(rest.split(), 2))
            elif key == "vn":
                obj.normals.append(_floats(rest.split(), 3))
            elif key == "f":
                _add_face(obj, rest, current, label)
            elif key == "usemtl":
                material = rest.strip()
                if material not in material_index:
                    material_index[material] = len(obj.material_names)
                    obj.material_names.append(material)
                current = material_index[material]
            elif key == "mtllib":
                obj.libraries.append(rest.strip())
    except ValueError as error:
        raise MeshError(f"{label}: malformed OBJ ({error})") from error
    return obj


def _materials(
    files: _Files, base: str, obj: _Obj, fallback_mtl: str | None, notes: list[str]
) -> list[Material]:
    """The materials `obj` names, in its order: from the model's libraries first, then the fallback
    library, then grey."""
    defined: dict[str, Material] = {}
    for library in obj.libraries:
        # "mtllib a.mtl b.mtl" names several libraries, but some exporters write names with spaces
        whole = _read_first(files, base, library)
        found_all = [whole] if whole else [_read_first(files, base, part) for part in library.split()]
        for found in found_all:
            if found is None:
                notes.append(f"material library {library}: not found")
                continue
            resolved, data = found
            mtl_text = data.decode("utf-8", errors="replace")
            parsed = _parse_mtl(mtl_text, posixpath.dirname(resolved), files, notes)
            for key, value in parsed.items():
                defined.setdefault(key, value)
    fallback: dict[str, Material] = {}
    if fallback_mtl:
        fallback = _parse_mtl(fallback_mtl, "", files, notes)
    materials: list[Material] = []
    for material in obj.material_names:
        if material in defined:
            materials.append(defined[material])
        elif material in fallback:
            materials.append(fallback[material])
        else:
            notes.append(f"material {material}: not defined; using grey")
            materials.append(Material(name=material))
    return materials


def _corner_attributes(obj: _Obj, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-corner texture coordinates (NaN where none) and unit normals (the face's where none)."""
    count = positions.shape[0]
    t_index = np.asarray(obj.corner_t, dtype=np.int64)
    uvs = np.full((count * 3, 2), np.nan)
    if obj.texcoords:
        vt = np.asarray(obj.texcoords, dtype=np.float64).reshape(-1, 2)
        has = t_index >= 0
        uvs[has] = vt[t_index[has]]
    uvs = uvs.reshape(count, 3, 2)

    face = _face_normals(positions)
    vertex_normals = np.repeat(face[:, None, :], 3, axis=1)
    n_index = np.asarray(obj.corner_n, dtype=np.int64).reshape(count, 3)
    if obj.normals:
        vn = np.asarray(obj.normals, dtype=np.float64).reshape(-1, 3)
        has = n_index >= 0
        given = vn[np.where(has, n_index, 0)]
        length = np.linalg.norm(given, axis=-1, keepdims=True)
        usable = has & (length[..., 0] > 1e-12)
        vertex_normals = np.where(usable[..., None], given / np.maximum(length, 1e-12), vertex_normals)
    return uvs, vertex_normals


def _load(files: _Files, name: str, fallback_mtl: str | None, max_triangles: int | None, label: str) -> Mesh:
    try:
        text = files.read(name).decode("utf-8", errors="replace")
    except MeshError as error:
        raise MeshError(f"{label}: {error}") from error
    notes: list[str] = []
    obj = _parse_obj(text, label)
    count = len(obj.tri_material)
    if count == 0:
        raise MeshError(f"{label}: no faces")
    if max_triangles is not None and count > max_triangles:
        raise MeshError(f"{label}: {count} triangles, more than the limit of {max_triangles}")

    materials = _materials(files, posixpath.dirname(name), obj, fallback_mtl, notes)
    ids = np.asarray(obj.tri_material, dtype=np.int32)
    if (ids < 0).any():
        ids = np.where(ids < 0, len(materials), ids).astype(np.int32)
        materials.append(Material(name="(none)"))

    v = np.asarray(obj.vertices, dtype=np.float64).reshape(-1, 3)
    positions = v[np.asarray(obj.corner_v, dtype=np.int64)].reshape(count, 3, 3)
    uvs, vertex_normals = _corner_attributes(obj, positions)
    return Mesh(
        positions=positions,
        normals=vertex_normals,
        uvs=uvs,
        material_ids=ids,
        materials=tuple(materials),
        notes=tuple(notes),
    )


def _face_normals(positions: np.ndarray) -> np.ndarray:
    cross = np.cross(positions[:, 1] - positions[:, 0], positions[:, 2] - positions[:, 0])
    length = np.linalg.norm(cross, axis=-1, keepdims=True)
    return np.where(length > 0, cross / np.maximum(length, 1e-300), np.array([0.0, 1.0, 0.0]))


# ------------------------------------------------------------------------------------------ normalising


def normalize(
    mesh: Mesh,
    *,
    rotation: Sequence[float] | None = None,
    dimensions: tuple[float, float, float] | None = None,
) -> Mesh:
    """The mesh rotated, stretched, centred on its bounding box and scaled to a unit bounding sphere.

    ``rotation``: nine numbers, a row-major 3x3 matrix applied as ``M @ v`` (SweetHome3D's
    ``modelRotation``). ``dimensions``: (width along X, height along Y, depth along Z) the model is
    stretched to before scaling (SweetHome3D's catalogue sizes; only their proportions matter). Then the
    bounding box is centred at the origin and the whole scaled so that the box's half diagonal is 1.
    """
    positions = mesh.positions
    normals = mesh.normals
    if rotation is not None:
        matrix = np.asarray(rotation, dtype=np.float64).reshape(3, 3)
        positions = positions @ matrix.T
        normals = normals @ np.linalg.inv(matrix)  # inverse transpose, applied to row vectors
    low = positions.reshape(-1, 3).min(axis=0)
    high = positions.reshape(-1, 3).max(axis=0)
    extent = high - low
    if dimensions is not None:
        wanted = np.asarray(dimensions, dtype=np.float64)
        stretch = np.where((extent > 1e-12) & (wanted > 0), wanted / np.maximum(extent, 1e-12), 1.0)
        stretch = stretch / stretch.max()
        positions = positions * stretch
        normals = normals / stretch  # normals transform by the inverse transpose
        low, high = low * stretch, high * stretch
        extent = high - low
    centre = (low + high) / 2
    radius = float(np.linalg.norm(extent)) / 2
    if radius <= 0:
        raise MeshError("the model has no extent")
    positions = (positions - centre) / radius
    length = np.linalg.norm(normals, axis=-1, keepdims=True)
    normals = normals / np.maximum(length, 1e-12)
    return Mesh(
        positions=positions,
        normals=normals,
        uvs=mesh.uvs,
        material_ids=mesh.material_ids,
        materials=mesh.materials,
        notes=mesh.notes,
    )
