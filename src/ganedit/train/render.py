"""A small deterministic software renderer for textured OBJ models (the TDGAN chairs dataset).

Why our own: rendering the 3D chairs needs nothing beyond numpy and Pillow this way (no OpenGL, OSMesa,
pyrender or trimesh, whose pinned versions and platform back ends make a poor dependency story), the
output is byte-identical from run to run on a machine, and the models are small enough (a few thousand to
a few hundred thousand triangles) for a vectorised CPU rasteriser to render a 128 px view in a fraction of
a second.

The choices, in order of the pipeline:

* **Loading.** `load_obj` parses Wavefront OBJ (``v``, ``vt``, ``vn``, ``f`` with any polygon fan-
  triangulated, negative (relative) indices, ``usemtl``, ``mtllib``) and MTL (``newmtl``, ``Kd``,
  ``map_Kd`` with its options, ``d``/``Tr``) from a folder or from inside a zip archive (SweetHome3D's
  ``.sh3f`` furniture libraries and its ``.jar`` are zip files). A material name that no ``mtllib``
  defines is looked up in ``fallback_mtl`` (SweetHome3D ships a built-in library of named colours such
  as ``amber`` that its own models use without any ``mtllib``), then falls back to a neutral grey. A
  texture that cannot be read falls back to the material's ``Kd`` colour.
* **Normalising.** `normalize` applies the catalogue's ``modelRotation`` (a row-major 3x3 matrix applied
  as ``M @ v``, as SweetHome3D does), optionally stretches the model to the catalogue's width x height x
  depth (SweetHome3D displays every model at those dimensions), centres its bounding box at the origin
  and scales it so that the bounding box's circumscribed sphere has radius 1. SweetHome3D's axes are kept:
  Y up, the front of a piece of furniture facing +Z. Since the whole sphere stays in view, the object is
  never cut off, whatever the azimuth and elevation.
* **Camera.** A mild perspective camera (distance `CAMERA_DISTANCE` = 4 radii, field of view fitted so the
  unit sphere fills `FILL` of the frame) looks at the origin. Azimuth 0 looks at the model's front (the
  camera on the +Z axis); a positive azimuth moves the camera counter-clockwise seen from above, towards
  +X, so azimuth 90 shows the model's +X side. Elevation is the camera's angle above the horizontal plane
  (the camera looks down on the model).
* **Rasterising.** Triangles are binned by the width and height of their pixel bounding box (each
  rounded up to a power of two) and each bin is rasterised as one numpy array operation over
  (triangles x box pixels), in chunks of bounded memory. The nearest fragment per pixel wins (depth
  compared as 1/w, which is linear in screen space; exact ties go to the triangle met first, in a fixed
  order), so the result never depends on an unordered scatter. No back-face culling: many models mix
  windings.
* **Shading (deferred).** Rasterising keeps, per pixel, the triangle and its barycentric coordinates;
  shading then interpolates (perspective-correct) the texture coordinates and normals. Colour = albedo x
  (`AMBIENT` + `DIFFUSE` x max(0, n . l)), clipped to 1: Lambert diffuse plus ambient, one directional
  light. Albedo is the ``map_Kd`` texel (nearest, wrapped; the texture replaces ``Kd``, as most viewers
  show such models) or ``Kd``. Lighting is two-sided: every normal is turned towards the camera. Lights
  are fixed relative to the camera (see `LIGHTS`), so "left" means lit from the viewer's left at every
  azimuth, as in a photographic studio (and as in Multi-PIE). Since shading is separate, one rasterised
  view is shaded under every light for the cost of one (`render_views`).
* **Anti-aliasing.** Each image is rendered at `supersample` (3) times its size and box-reduced, so an
  image depends only on the model, the view, the light and its own size (not on which other sizes are
  rendered with it). Transparency (``d`` < 1, texture alpha) is ignored: everything is drawn opaque.
* **Floor shadow.** The plain `BACKGROUND` (240, 240, 240) is an infinite floor at the model's lowest
  point, and the model casts a hard shadow on it (the floor darkened to `SHADOW` of its brightness): each
  triangle is projected along the light onto the floor (a planar projected shadow, exact for a directional
  light on a plane) and the projection is rasterised from the camera. Why: with Lambert shading alone,
  front, left and right light differ by the brightness of a few surfaces of unknown albedo, which a
  classifier can hardly read (a stool's black legs and flat seat look alike under any light); the shadow's
  side says where the light is whatever the albedo (figures: docs/models/tdgan-chairs.md). The model's
  own surfaces are not shadowed (no self-shadowing), and the object always hides the floor behind it
  (nothing of the floor can be in front of a point above it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

# The model reading moved to .mesh; its names stay importable from here (chairs and tests use them).
from .mesh import DEFAULT_KD, Material, Mesh, MeshError, load_obj, normalize  # noqa: F401

__all__ = [
    "AMBIENT",
    "BACKGROUND",
    "CAMERA_DISTANCE",
    "DIFFUSE",
    "FILL",
    "LIGHTS",
    "SHADOW",
    "Material",
    "Mesh",
    "MeshError",
    "Rasterized",
    "floor_shadow",
    "load_obj",
    "normalize",
    "rasterize",
    "render",
    "render_views",
    "shade",
]

BACKGROUND: tuple[int, int, int] = (240, 240, 240)
AMBIENT = 0.2  # low, so that the side turned away from the light is clearly darker
DIFFUSE = 0.9
SHADOW = 0.55  # brightness of the floor in the model's shadow, as a fraction of the lit floor
CAMERA_DISTANCE = 4.0
FILL = 0.96
DEFAULT_SUPERSAMPLE = 3

# Directions *towards* the light in view space: x to the viewer's right, y up, z from the object towards
# the camera. Ordered; the order is the tag vocabulary's.
LIGHTS: dict[str, tuple[float, float, float]] = {
    "front": (0.0, 0.3, 1.0),  # from behind the camera, a little above: flat, even lighting
    "left": (-1.0, 0.8, 0.3),  # from the viewer's left, high enough that the shadow stays near the model
    "right": (1.0, 0.8, 0.3),  # from the viewer's right
    "top": (0.0, 1.0, 0.25),  # from above
}

_CHUNK = 1 << 20  # candidate pixels per rasterising step (bounds memory to some tens of MB)
_INSIDE_EPS = -1e-9  # barycentric tolerance: no cracks between triangles that share an edge


# ------------------------------------------------------------------------------------------- rasterising


@dataclass(frozen=True, eq=False)
class Rasterized:
    """One view's visibility: per pixel the nearest triangle (-1: background) and its weights.

    ``triangle`` (S, S) int32; ``weights`` (S, S, 3) float64 perspective-correct barycentric weights;
    ``normals`` (T, 3, 3) view-space vertex normals turned towards the camera.
    """

    size: int
    triangle: np.ndarray
    weights: np.ndarray
    normals: np.ndarray
    mesh: Mesh


def _camera(azimuth_deg: float, elevation_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Camera position and the world-to-view rotation (rows: right, up, towards the camera)."""
    az, el = math.radians(azimuth_deg), math.radians(elevation_deg)
    eye = CAMERA_DISTANCE * np.array([math.cos(el) * math.sin(az), math.sin(el), math.cos(el) * math.cos(az)])
    forward = -eye / np.linalg.norm(eye)
    right = np.cross(forward, np.array([0.0, 1.0, 0.0]))
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    return eye, np.stack([right, up, -forward])


def _pow2_ceil(values: np.ndarray) -> np.ndarray:
    values = np.maximum(values, 1)
    result = np.ones_like(values)
    while (result < values).any():
        result = np.where(result < values, result * 2, result)
    return result


def _facing_normals(mesh: Mesh, view: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """View-space vertex normals, each turned towards the camera (two-sided lighting)."""
    normals = mesh.normals @ rotation.T
    face = np.cross(view[:, 1] - view[:, 0], view[:, 2] - view[:, 0])
    to_eye = -view.mean(axis=1)
    facing = np.where((np.einsum("ij,ij->i", face, to_eye) < 0)[:, None], -face, face)
    flip = np.einsum("tkj,tj->tk", normals, facing) < 0
    return np.where(flip[..., None], -normals, normals)


@dataclass
class _Raster:
    """The screen-space triangles being scan-converted, and the buffers they are drawn into."""

    size: int
    inv_w: np.ndarray  # (T, 3) 1/w per corner
    box: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # x0, x1, y0, y1 per triangle (clipped)
    # b0 = (ax * px + ay * py + ac) for edge v1->v2, b1 likewise (bx, by, bc) for v2->v0
    edges: tuple[tuple[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]
    triangle: np.ndarray = field(init=False)
    zbuffer: np.ndarray = field(init=False)
    bary: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        pixels = self.size * self.size
        self.triangle = np.full(pixels, -1, dtype=np.int32)
        self.zbuffer = np.zeros(pixels, dtype=np.float64)
        self.bary = np.zeros((pixels, 2), dtype=np.float64)

    def draw(self, tris: np.ndarray, bin_w: int, bin_h: int) -> None:
        """Rasterise triangles `tris`, whose boxes fit in bin_w x bin_h, as one array operation."""
        x0, x1, y0, y1 = self.box
        (ax, ay, ac), (bx, by, bc) = self.edges
        px = x0[tris, None] + np.arange(bin_w)[None, :]  # (n, bin_w)
        py = y0[tris, None] + np.arange(bin_h)[None, :]  # (n, bin_h)
        cx, cy = px + 0.5, py + 0.5
        # barycentrics are affine: a column term plus a row term, broadcast to (n, bin_h, bin_w)
        b0 = (ax[tris, None] * cx)[:, None, :] + (ay[tris, None] * cy + ac[tris, None])[:, :, None]
        b1 = (bx[tris, None] * cx)[:, None, :] + (by[tris, None] * cy + bc[tris, None])[:, :, None]
        inside = (px <= x1[tris, None])[:, None, :] & (py <= y1[tris, None])[:, :, None]
        inside &= (b0 >= _INSIDE_EPS) & (b1 >= _INSIDE_EPS) & (b0 + b1 <= 1.0 - _INSIDE_EPS)
        t_local, iy, ix = np.nonzero(inside)
        if t_local.size == 0:
            return
        tri = tris[t_local]
        w0, w1 = b0[t_local, iy, ix], b1[t_local, iy, ix]
        w2 = 1.0 - w0 - w1
        inv_w = self.inv_w
        z = w0 * inv_w[tri, 0] + w1 * inv_w[tri, 1] + w2 * inv_w[tri, 2]
        pixel = py[t_local, iy] * self.size + px[t_local, ix]
        order = np.lexsort((-z, pixel))  # per pixel, nearest first; stable, so ties keep file order
        pixel_sorted = pixel[order]
        first = np.ones(order.size, dtype=bool)
        first[1:] = pixel_sorted[1:] != pixel_sorted[:-1]
        winners = order[first]
        where = pixel[winners]
        better = z[winners] > self.zbuffer[where]
        winners, where = winners[better], where[better]
        self.zbuffer[where] = z[winners]
        self.triangle[where] = tri[winners].astype(np.int32)
        self.bary[where, 0] = w0[winners]
        self.bary[where, 1] = w1[winners]


def _scan_convert(
    sx: np.ndarray, sy: np.ndarray, inv_w: np.ndarray, in_front: np.ndarray, size: int
) -> _Raster:
    """The nearest triangle per pixel and its screen-space barycentrics (see the module docstring)."""
    area = (sx[:, 1] - sx[:, 0]) * (sy[:, 2] - sy[:, 0]) - (sx[:, 2] - sx[:, 0]) * (sy[:, 1] - sy[:, 0])
    x0 = np.ceil(sx.min(axis=1) - 0.5).astype(np.int64)
    x1 = np.floor(sx.max(axis=1) - 0.5).astype(np.int64)
    y0 = np.ceil(sy.min(axis=1) - 0.5).astype(np.int64)
    y1 = np.floor(sy.max(axis=1) - 0.5).astype(np.int64)
    x0, y0 = np.maximum(x0, 0), np.maximum(y0, 0)
    x1, y1 = np.minimum(x1, size - 1), np.minimum(y1, size - 1)
    usable = (np.abs(area) > 1e-12) & (x1 >= x0) & (y1 >= y0) & in_front

    with np.errstate(divide="ignore", invalid="ignore"):
        inv_area = np.where(usable, 1.0 / np.where(usable, area, 1.0), 0.0)
    coefficients = []
    for a, b in ((1, 2), (2, 0)):
        cx = -(sy[:, b] - sy[:, a]) * inv_area
        cy = (sx[:, b] - sx[:, a]) * inv_area
        cc = ((sy[:, b] - sy[:, a]) * sx[:, a] - (sx[:, b] - sx[:, a]) * sy[:, a]) * inv_area
        coefficients.append((cx, cy, cc))
    raster = _Raster(size, inv_w, (x0, x1, y0, y1), (coefficients[0], coefficients[1]))

    # bin by the bounding box's width and height, each rounded up to a power of two
    width_bin = _pow2_ceil(x1 - x0 + 1)
    height_bin = _pow2_ceil(y1 - y0 + 1)
    keys = np.where(usable, width_bin * (4 * size + 1) + height_bin, -1)
    for key in np.unique(keys[usable]):
        in_bin = np.flatnonzero(keys == key)
        bin_w, bin_h = int(key // (4 * size + 1)), int(key % (4 * size + 1))
        per_chunk = max(1, _CHUNK // (bin_w * bin_h))
        for start in range(0, len(in_bin), per_chunk):
            raster.draw(in_bin[start : start + per_chunk], bin_w, bin_h)
    return raster


def rasterize(mesh: Mesh, azimuth_deg: float, elevation_deg: float, size: int) -> Rasterized:
    """Visibility of a normalised mesh (`normalize`) seen from the given angles, at ``size`` x ``size``."""
    if size < 1:
        raise ValueError("size must be positive")
    if abs(elevation_deg) >= 90:
        raise ValueError("elevation must be in (-90, 90) degrees")
    eye, rotation = _camera(azimuth_deg, elevation_deg)
    view = (mesh.positions - eye) @ rotation.T  # (T, 3, 3): x right, y up, z towards the camera
    depth = -view[..., 2]  # distance along the viewing axis
    focal = (size / 2) * FILL * math.sqrt(CAMERA_DISTANCE**2 - 1)
    near = 1e-3
    safe = np.maximum(depth, near)
    sx = size / 2 + focal * view[..., 0] / safe
    sy = size / 2 - focal * view[..., 1] / safe
    inv_w = 1.0 / safe
    raster = _scan_convert(sx, sy, inv_w, (depth > near).all(axis=1), size)

    # perspective-correct weights
    triangle, bary = raster.triangle, raster.bary
    weights = np.zeros((size * size, 3), dtype=np.float64)
    covered = np.flatnonzero(triangle >= 0)
    if covered.size:
        tri = triangle[covered]
        screen = np.stack([bary[covered, 0], bary[covered, 1], 1.0 - bary[covered, 0] - bary[covered, 1]], 1)
        corrected = screen * inv_w[tri]
        weights[covered] = corrected / corrected.sum(axis=1, keepdims=True)
    return Rasterized(
        size=size,
        triangle=triangle.reshape(size, size),
        weights=weights.reshape(size, size, 3),
        normals=_facing_normals(mesh, view, rotation),
        mesh=mesh,
    )


# ----------------------------------------------------------------------------------------------- shading


def _light_direction(light: str | Sequence[float]) -> np.ndarray:
    if isinstance(light, str):
        if light not in LIGHTS:
            raise ValueError(f"unknown light {light!r}; choose from {', '.join(LIGHTS)}")
        vector = np.asarray(LIGHTS[light], dtype=np.float64)
    else:
        vector = np.asarray(light, dtype=np.float64).reshape(3)
    length = float(np.linalg.norm(vector))
    if length == 0:
        raise ValueError("the light direction must not be zero")
    return vector / length


def _albedo(raster: Rasterized, covered: np.ndarray) -> np.ndarray:
    mesh = raster.mesh
    tri = raster.triangle.reshape(-1)[covered]
    weights = raster.weights.reshape(-1, 3)[covered]
    material_ids = mesh.material_ids[tri]
    albedo = np.empty((covered.size, 3), dtype=np.float64)
    for material_id in np.unique(material_ids):
        material = mesh.materials[int(material_id)]
        rows = np.flatnonzero(material_ids == material_id)
        albedo[rows] = material.diffuse
        if material.texture is None:
            continue
        uv_corners = mesh.uvs[tri[rows]]  # (n, 3, 2)
        uv = np.einsum("nk,nkc->nc", weights[rows], uv_corners)
        valid = np.isfinite(uv).all(axis=1)
        if not valid.any():
            continue
        texture = material.texture
        height, width = texture.shape[:2]
        u = uv[valid, 0] - np.floor(uv[valid, 0])
        v = uv[valid, 1] - np.floor(uv[valid, 1])
        x = np.minimum((u * width).astype(np.int64), width - 1)
        y = np.minimum(((1.0 - v) * height).astype(np.int64), height - 1)
        albedo[rows[valid]] = texture[y, x].astype(np.float64) / 255.0
    return albedo


def floor_shadow(
    mesh: Mesh, azimuth_deg: float, elevation_deg: float, light: str | Sequence[float], size: int
) -> np.ndarray:
    """Where the floor under a normalised mesh is in its shadow, seen from the given angles: (S, S) bool.

    The floor is the plane y = (the mesh's lowest point). Every triangle is projected along the light
    direction onto it and the projected triangles are rasterised with the camera's projection; a light
    from the horizon or below casts no shadow on the floor. Object pixels are not excluded here: the
    object hides the floor behind it, `shade` draws it over the shadow.
    """
    _, rotation = _camera(azimuth_deg, elevation_deg)
    towards_light = rotation.T @ _light_direction(light)  # view space -> world space
    if towards_light[1] < 0.05:
        return np.zeros((size, size), dtype=bool)
    floor = float(mesh.positions[..., 1].min())
    height = mesh.positions[..., 1:2] - floor  # (T, 3, 1)
    projected = mesh.positions - height * (towards_light / towards_light[1])
    projected[..., 1] = floor
    return rasterize(replace(mesh, positions=projected), azimuth_deg, elevation_deg, size).triangle >= 0


def shade(raster: Rasterized, light: str | Sequence[float], shadow: np.ndarray | None = None) -> np.ndarray:
    """The rasterised view lit by ``light`` (a name in `LIGHTS` or a view-space direction), as
    an (S, S, 3) float64 image in [0, 1] on the `BACKGROUND`, darkened to `SHADOW` where ``shadow``
    ((S, S) bool, `floor_shadow`) is set."""
    direction = _light_direction(light)
    size = raster.size
    image = np.empty((size * size, 3), dtype=np.float64)
    image[:] = np.asarray(BACKGROUND, dtype=np.float64) / 255.0
    if shadow is not None:
        image[shadow.reshape(-1)] *= SHADOW
    covered = np.flatnonzero(raster.triangle.reshape(-1) >= 0)
    if covered.size == 0:
        return image.reshape(size, size, 3)
    tri = raster.triangle.reshape(-1)[covered]
    weights = raster.weights.reshape(-1, 3)[covered]
    normal = np.einsum("nk,nkc->nc", weights, raster.normals[tri])
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-12)
    lambert = np.maximum(normal @ direction, 0.0)
    intensity = np.minimum(AMBIENT + DIFFUSE * lambert, 1.0)
    image[covered] = _albedo(raster, covered) * intensity[:, None]
    return image.reshape(size, size, 3)


def _reduce(image: np.ndarray, factor: int) -> np.ndarray:
    """Box-filter by ``factor`` (a sum of strided slices: much faster than a reshaped mean) to uint8."""
    if factor > 1:
        total = np.zeros_like(image[::factor, ::factor])
        for dy in range(factor):
            for dx in range(factor):
                total += image[dy::factor, dx::factor]
        image = total / (factor * factor)
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


def render_views(
    mesh: Mesh,
    azimuth_deg: float,
    elevation_deg: float,
    lights: Sequence[str | Sequence[float]],
    sizes: Sequence[int],
    *,
    supersample: int = DEFAULT_SUPERSAMPLE,
) -> dict[tuple[int, int], np.ndarray]:
    """One view under several lights at several sizes: ``{(light index, size): HxWx3 uint8}``.

    Each size is rasterised once (at ``size * supersample``) and shaded once per light; the result for
    one (light, size) is exactly ``render(mesh, azimuth_deg, elevation_deg, light, size)``.
    """
    if supersample < 1:
        raise ValueError("supersample must be at least 1")
    results: dict[tuple[int, int], np.ndarray] = {}
    for size in dict.fromkeys(sizes):
        resolution = size * supersample
        raster = rasterize(mesh, azimuth_deg, elevation_deg, resolution)
        for index, light in enumerate(lights):
            shadow = floor_shadow(mesh, azimuth_deg, elevation_deg, light, resolution)
            results[(index, size)] = _reduce(shade(raster, light, shadow), supersample)
    return results


def render(
    mesh: Mesh,
    azimuth_deg: float,
    elevation_deg: float,
    light: str | Sequence[float],
    size: int,
    *,
    supersample: int = DEFAULT_SUPERSAMPLE,
) -> np.ndarray:
    """A normalised mesh (`normalize`) rendered at ``size`` x ``size``: HxWx3 uint8, deterministic."""
    return render_views(mesh, azimuth_deg, elevation_deg, [light], [size], supersample=supersample)[(0, size)]
