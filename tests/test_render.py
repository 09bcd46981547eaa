"""The chairs renderer (`ganedit.train.render`) and dataset writer (`ganedit.train.chairs`).

Tiny models built in tmp_path; no network, no Debian packages, no GPU.
"""

from __future__ import annotations

import json
import os
import stat
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganedit.errors import UsageError
from ganedit.train import chairs
from ganedit.train import render as rd

BACKGROUND = np.array(rd.BACKGROUND, dtype=np.uint8)

# A unit cube as six quads (polygons), the last three written with negative (relative) indices.
CUBE_OBJ = """\
# cube
mtllib cube.mtl
v -1 -1 -1
v  1 -1 -1
v  1  1 -1
v -1  1 -1
v -1 -1  1
v  1 -1  1
v  1  1  1
v -1  1  1
vt 0 0
vt 1 0
vt 1 1
vt 0 1
usemtl textured
f 5/1 6/2 7/3 8/4
f 2/1 1/2 4/3 3/4
usemtl plain
f -8 -7 -3 -4
f -5 -1 -2 -6
usemtl missing_texture
f 1 5 8 4
f -7 -6 -2 -3
"""

CUBE_MTL = """\
newmtl textured
Kd 0.1 0.1 0.1
map_Kd -s 1 1 1 checker.png

newmtl plain
Kd 0.8 0.8 0.8

newmtl missing_texture
Kd 0 0 1
map_Kd no_such_file.png
"""

WHITE_BOX_OBJ = """\
mtllib white.mtl
usemtl white
v -1 -1 -1
v  1 -1 -1
v  1  1 -1
v -1  1 -1
v -1 -1  1
v  1 -1  1
v  1  1  1
v -1  1  1
f 5 6 7 8
f 2 1 4 3
f 1 5 8 4
f 6 2 3 7
f 4 8 7 3
f 1 2 6 5
"""


def _box(x0: float, x1: float, y0: float, y1: float, z0: float, z1: float, offset: int) -> str:
    corners = [(x, y, z) for z in (z0, z1) for y in (y0, y1) for x in (x0, x1)]
    lines = [f"v {x} {y} {z}" for x, y, z in corners]
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 2, 6, 4), (1, 5, 7, 3), (2, 3, 7, 6), (0, 4, 5, 1)]
    lines += ["f " + " ".join(str(offset + i + 1) for i in quad) for quad in quads]
    return "\n".join(lines) + "\n"


# Asymmetric left/right (a block on the +X side) but symmetric front/back (z -> -z).
L_SHAPE = _box(-1, 0.2, -1, 1, -0.5, 0.5, 0) + _box(0.2, 1, -1, -0.2, -0.5, 0.5, 8)
L_SHAPE_OBJ = "usemtl white\n" + L_SHAPE

WHITE_MTL = "newmtl white\nKd 1 1 1\n"


def _write_cube(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cube.obj").write_text(CUBE_OBJ)
    (folder / "cube.mtl").write_text(CUBE_MTL)
    checker = np.zeros((8, 8, 3), dtype=np.uint8)
    checker[::2, ::2] = (255, 0, 0)
    checker[1::2, 1::2] = (255, 0, 0)
    Image.fromarray(checker).save(folder / "checker.png")
    return folder / "cube.obj"


@pytest.fixture
def cube(tmp_path: Path) -> rd.Mesh:
    return rd.normalize(rd.load_obj(_write_cube(tmp_path / "cube")))


def _mesh(tmp_path: Path, obj: str, name: str) -> rd.Mesh:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "white.mtl").write_text(WHITE_MTL)
    (folder / "model.obj").write_text(obj if "mtllib" in obj else "mtllib white.mtl\n" + obj)
    return rd.normalize(rd.load_obj(folder / "model.obj"))


# ------------------------------------------------------------------------------------------- parsing


def test_parses_polygons_negative_indices_and_materials(tmp_path: Path) -> None:
    mesh = rd.load_obj(_write_cube(tmp_path / "cube"))
    assert mesh.triangle_count == 12  # six quads, fan-triangulated
    names = [material.name for material in mesh.materials]
    assert names == ["textured", "plain", "missing_texture"]
    assert mesh.material_ids.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    # after 8 vertices, -8 is vertex 1 and -1 vertex 8: "f -8 -7 -3 -4" = "f 1 2 6 5" is the bottom...
    assert np.allclose(mesh.positions[4:6, :, 1], -1.0)
    assert np.allclose(mesh.positions[6:8, :, 1], 1.0)  # ..."f -5 -1 -2 -6" = "f 4 8 7 3" the top
    assert np.allclose(mesh.positions[8:10, :, 0], -1.0)
    assert np.allclose(mesh.positions[10:12, :, 0], 1.0)  # "f -7 -6 -2 -3" = "f 2 3 7 6": +X
    textured, plain, missing = mesh.materials
    assert textured.texture is not None and textured.texture.shape == (8, 8, 3)
    assert plain.texture is None and plain.diffuse == (0.8, 0.8, 0.8)
    assert missing.texture is None and missing.diffuse == (0.0, 0.0, 1.0)  # falls back to Kd
    assert any("no_such_file.png" in note for note in mesh.notes)
    assert np.isnan(mesh.uvs[4:]).all() and not np.isnan(mesh.uvs[:4]).any()
    # face normals where the file has none: unit length
    assert np.allclose(np.linalg.norm(mesh.normals, axis=-1), 1.0)


def test_pentagon_and_fallback_materials(tmp_path: Path) -> None:
    obj = tmp_path / "penta.obj"
    obj.write_text(
        "v 0 0 0\nv 1 0 0\nv 1.3 1 0\nv 0.5 1.6 0\nv -0.3 1 0\nvn 0 0 1\n"
        "usemtl amber\nf 1//1 2//1 3//1 4//1 5//1\nusemtl nowhere\nf -5 -4 -3\n"
    )
    mesh = rd.load_obj(obj, fallback_mtl="newmtl amber\nKd 0.5755 0.2678 0.0000\n")
    assert mesh.triangle_count == 4
    assert mesh.materials[0].diffuse == pytest.approx((0.5755, 0.2678, 0.0))
    assert mesh.materials[1].diffuse == rd.DEFAULT_KD
    assert np.allclose(mesh.normals[:3], [0, 0, 1])


def test_bad_models_raise_mesh_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.obj"
    empty.write_text("v 0 0 0\n")
    with pytest.raises(rd.MeshError, match="no faces"):
        rd.load_obj(empty)
    bad = tmp_path / "bad.obj"
    bad.write_text("v 0 0 0\nf 1 2 3\n")
    with pytest.raises(rd.MeshError, match="out of range"):
        rd.load_obj(bad)
    with pytest.raises(rd.MeshError):
        rd.load_obj(tmp_path / "absent.obj")
    with pytest.raises(rd.MeshError, match="limit"):
        rd.load_obj(_write_cube(tmp_path / "cube"), max_triangles=5)


def test_normalize_centres_and_scales_to_unit_sphere(tmp_path: Path) -> None:
    mesh = rd.load_obj(_write_cube(tmp_path / "cube"))
    shifted = rd.Mesh(mesh.positions * 3 + 5, mesh.normals, mesh.uvs, mesh.material_ids, mesh.materials)
    low, high = rd.normalize(shifted).bounds()
    assert np.allclose((low + high) / 2, 0) and np.linalg.norm(high - low) / 2 == pytest.approx(1.0)
    # stretched to width 2 x height 1 x depth 1, and a quarter turn about Y (x -> z)
    stretched = rd.normalize(mesh, dimensions=(2.0, 1.0, 1.0))
    low, high = stretched.bounds()
    assert (high - low)[0] == pytest.approx(2 * (high - low)[1])
    turned = rd.normalize(mesh, rotation=(0, 0, 1, 0, 1, 0, -1, 0, 0), dimensions=(2.0, 1.0, 1.0))
    low, high = turned.bounds()
    assert (high - low)[0] == pytest.approx(2 * (high - low)[2])


# ------------------------------------------------------------------------------------------ rendering


def test_render_is_deterministic_and_shaped(cube: rd.Mesh) -> None:
    first = rd.render(cube, 30, 20, "left", 48)
    second = rd.render(cube, 30, 20, "left", 48)
    assert first.shape == (48, 48, 3) and first.dtype == np.uint8
    assert first.tobytes() == second.tobytes()
    views = rd.render_views(cube, 30, 20, ["front", "left"], [24, 48])
    assert views[(1, 48)].tobytes() == first.tobytes()
    assert views[(1, 24)].tobytes() == rd.render(cube, 30, 20, "left", 24).tobytes()


def test_background_where_there_is_no_object(cube: rd.Mesh) -> None:
    image = rd.render(cube, 0, 20, "front", 64)
    for corner in (image[0, 0], image[0, -1], image[-1, 0], image[-1, -1]):
        assert (corner == BACKGROUND).all()
    assert (image[32, 32] != BACKGROUND).any()  # the object is in the middle
    raster = rd.rasterize(cube, 0, 20, 64)
    assert raster.triangle[0, 0] == -1 and raster.triangle[32, 32] >= 0


def test_texture_and_kd_colours_show(cube: rd.Mesh) -> None:
    # front face (+Z) is textured red/black; at azimuth 0 it faces the camera
    front = rd.render(cube, 0, 0, "front", 64, supersample=1)
    centre = front[20:44, 20:44].reshape(-1, 3)
    assert (centre[:, 0] > 150).any() and (centre[:, 0] < 30).any()  # both checker colours
    assert (centre[:, 1] < 30).all()
    # the -X face has the missing texture: its Kd is blue
    side = rd.render(cube, -90, 0, "front", 64, supersample=1)
    pixel = side[32, 32].astype(int)
    assert pixel[2] > 150 and pixel[0] < 30 and pixel[1] < 30


def test_light_from_the_left_brightens_the_left_side(tmp_path: Path) -> None:
    box = _mesh(tmp_path, WHITE_BOX_OBJ, "white")
    # at azimuth 45 the viewer sees two side faces: +Z on the left of the image, +X on the right
    for light, brighter in (("left", "left"), ("right", "right")):
        image = rd.render(box, 45, 0, light, 64).astype(float).mean(axis=2)
        raster = rd.rasterize(box, 45, 0, 64)
        covered = raster.triangle >= 0
        left = image[:, :32][covered[:, :32]].mean()
        right = image[:, 32:][covered[:, 32:]].mean()
        assert (left > right + 20) if brighter == "left" else (right > left + 20), (light, left, right)


def test_the_shadow_falls_on_the_floor_away_from_the_light(tmp_path: Path) -> None:
    box = _mesh(tmp_path, WHITE_BOX_OBJ, "white")
    raster = rd.rasterize(box, 0, 20, 96)
    floor = raster.triangle < 0
    for light, side in (("left", "right"), ("right", "left")):
        image = rd.render(box, 0, 20, light, 96, supersample=1).astype(int)
        shadowed = floor & (image < np.asarray(BACKGROUND) - 40).all(axis=2)
        on_left, on_right = shadowed[:, :48].sum(), shadowed[:, 48:].sum()
        assert (on_right > 10 * max(on_left, 1)) if side == "right" else (on_left > 10 * max(on_right, 1))
    # from above the shadow is the footprint, hidden under the box but for a rim; from below, none
    top = rd.floor_shadow(box, 0, 20, "top", 96)
    assert 0 < (top & floor).sum() < (rd.floor_shadow(box, 0, 20, "left", 96) & floor).sum()
    assert not rd.floor_shadow(box, 0, 20, (0.0, -1.0, 0.0), 96).any()


def test_azimuth_180_mirrors_azimuth_0_and_azimuths_differ(tmp_path: Path) -> None:
    shape = _mesh(tmp_path, L_SHAPE_OBJ, "lshape")
    front = rd.render(shape, 0, 20, "top", 64).astype(int)
    back = rd.render(shape, 180, 20, "top", 64).astype(int)
    assert np.abs(front - back).mean() > 2  # the shape is not left/right symmetric...
    assert np.abs(front - back[:, ::-1]).mean() < 0.5  # ...but front/back symmetric: a mirror image
    views = [rd.render(shape, az, 20, "top", 32).tobytes() for az in (0, 360 / 31, 90, 200)]
    assert len(set(views)) == len(views)


def test_bad_arguments(cube: rd.Mesh) -> None:
    with pytest.raises(ValueError, match="unknown light"):
        rd.render(cube, 0, 20, "sideways", 16)
    with pytest.raises(ValueError):
        rd.render(cube, 0, 90, "top", 16)
    assert rd.render(cube, 0, 20, (1.0, 0.0, 0.0), 16).shape == (16, 16, 3)


def test_reads_a_model_from_a_zip(tmp_path: Path, cube: rd.Mesh) -> None:
    folder = tmp_path / "cube"  # written by the fixture
    archive = tmp_path / "library.sh3f"
    with zipfile.ZipFile(archive, "w") as zipped:
        for name in ("cube.obj", "cube.mtl", "checker.png"):
            zipped.write(folder / name, f"lib/cube/{name}")
    mesh = rd.normalize(rd.load_obj(archive, "/lib/cube/cube.obj"))
    assert mesh.triangle_count == cube.triangle_count
    assert mesh.materials[0].texture is not None
    assert rd.render(mesh, 10, 30, "top", 32).tobytes() == rd.render(cube, 10, 30, "top", 32).tobytes()
    with pytest.raises(rd.MeshError, match="not in the archive"):
        rd.load_obj(archive, "lib/cube/other.obj")


# ------------------------------------------------------------------------------------------- dataset


def test_read_properties_and_seat_kinds() -> None:
    text = (
        "# comment\n! other comment\nid#1=Lib#chair\nname#1 = Caf\\u00e9 chair\n"
        "tags#1=Seat, \\\n    Outdoor\nkey\\ with\\ space:value\n"
    )
    props = chairs.read_properties(text)
    assert props["name#1"] == "Café chair"
    assert props["tags#1"] == "Seat, Outdoor"
    assert props["key with space"] == "value"
    assert chairs.seat_kind("Armchair") == "armchair"
    assert chairs.seat_kind("Bar stool") == "stool"
    assert chairs.seat_kind("Chair with cushion") == "chair"
    assert chairs.seat_kind("Class seat", ["Chair", "School"]) == "chair"
    assert chairs.seat_kind("Corner sofa") == "sofa"
    assert chairs.seat_kind("Wheelchair", ["Disabled"]) is None
    assert chairs.seat_kind("Seat Leon", ["Car"], "Vehicles") is None
    assert chairs.seat_kind("Round table", ["Dining"]) is None


def _class_file(mtl: str) -> bytes:
    encoded = mtl.encode()
    return (
        b"\xca\xfe\xba\xbe\x00\x00\x00\x34junk\x01" + struct.pack(">H", len(encoded)) + encoded + b"\x01tail"
    )


PLUGIN = """\
id=Test#Models
name=Test catalogue
license=Creative Commons Attribution 3.0

id#1=Test#cubeChair
name#1=Chair
tags#1=Seat
category#1=Living room
model#1=/test/cubeChair/cube.obj
width#1=40
depth#1=40
height#1=90
creator#1=Someone
modelRotation#1=0 0 1 0 1 0 -1 0 0

id#2=Test#table
name#2=Table
tags#2=Dining
category#2=Living room
model#2=/test/table/cube.obj
width#2=100
depth#2=100
height#2=70
creator#2=Someone else

id#3=Test#sofa
name#3=Sofa
tags#3=Couch
category#3=Living room
model#3=/test/cubeChair/cube.obj
width#3=200
depth#3=90
height#3=80
creator#3=A third
"""

DEFAULT = """\
id=SweetHome3D#DefaultModels
license=GNU GPL / CC-BY 3.0

id#5=eTeks#stool
name#5=Stool
tags#5=Default, Chair, Seat
category#5=Living room
model#5=/com/eteks/sweethome3d/io/resources/stool.obj
width#5=40
depth#5=40
height#5=50
creator#5=eTeks
"""


def _source_tree(root: Path, stool_obj: str = "usemtl amber\n" + L_SHAPE) -> Path:
    cube = _write_cube(root / "model").parent
    furniture = root / "src" / chairs.FURNITURE_DIR
    furniture.mkdir(parents=True)
    with zipfile.ZipFile(furniture / "Test.sh3f", "w") as zipped:
        zipped.writestr("PluginFurnitureCatalog.properties", PLUGIN)
        zipped.writestr("LICENSE.TXT", "Test licence text\n")
        for name in ("cube.obj", "cube.mtl", "checker.png"):
            zipped.write(cube / name, f"test/cubeChair/{name}")
            zipped.write(cube / name, f"test/table/{name}")
        zipped.writestr("test/cubeChair/LICENSE.txt", "model licence\n")
    with zipfile.ZipFile(root / "src" / chairs.JAR, "w") as zipped:
        zipped.writestr(chairs.DEFAULT_CATALOG, DEFAULT)
        zipped.writestr(chairs.OBJ_LOADER, _class_file("newmtl amber\nKd 0.5755 0.2678 0.0000\n"))
        zipped.writestr("com/eteks/sweethome3d/io/resources/stool.obj", stool_obj)
    return root / "src"


SMALL = {"sizes": (8, 16), "azimuths": 3, "elevations": (20.0, 30.0), "lights": ("front", "left")}


def test_find_seats_splits_and_kinds(tmp_path: Path) -> None:
    source = _source_tree(tmp_path)
    seats = chairs.find_seats(source)
    assert [(s.split, s.identity, s.kind) for s in seats] == [
        ("train", "test--cubechair", "chair"),
        ("eval", "eteks--stool", "stool"),
    ]
    assert seats[0].rotation == (0, 0, 1, 0, 1, 0, -1, 0, 0) and seats[0].dimensions == (40, 90, 40)
    with_sofas = chairs.find_seats(source, kinds=chairs.ALL_KINDS, splits=("train",))
    assert [s.identity for s in with_sofas] == ["test--cubechair", "test--sofa"]
    assert "amber" in chairs.default_materials(source / chairs.JAR)
    with pytest.raises(UsageError):
        chairs.find_seats(tmp_path / "nowhere")


def test_render_chairs_layout_tags_and_resume(tmp_path: Path) -> None:
    source = _source_tree(tmp_path)
    out = tmp_path / "out"
    progress: list[tuple[int, int, str]] = []
    report = chairs.render_chairs(source, out, on_progress=lambda *a: progress.append(a), **SMALL)
    per_identity = 3 * 2 * 2 * 2  # azimuths x elevations x lights x sizes
    assert report.ok and report.counts == {"train": 1, "eval": 1}
    assert report.written == report.images == 2 * per_identity and report.skipped == 0
    assert progress[-1][:2] == (2 * per_identity, 2 * per_identity)

    image = out / "16" / "train" / "test--cubechair" / "az01_el30_left.png"
    assert Image.open(image).size == (16, 16)
    assert (out / "8" / "eval" / "eteks--stool" / "az00_el20_front.png").is_file()
    assert len(list(out.rglob("*.png"))) == 2 * per_identity
    assert not list(out.rglob("*.tmp"))
    umask = os.umask(0o022)  # a test may read it by setting it; library code must not (it races)
    os.umask(umask)
    assert stat.S_IMODE(image.stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0600

    tags = json.loads((out / "tags.json").read_text())
    assert tags["format"] == chairs.FORMAT and tags["sizes"] == [8, 16]
    assert tags["vocabulary"]["light"] == ["front", "left"]
    assert tags["vocabulary"]["elevation"] == [20.0, 30.0]
    assert tags["vocabulary"]["azimuth"] == [0.0, 120.0, 240.0]
    assert (
        tags["vocabulary"]["pose"][:2] == ["az00_el20", "az01_el20"] and len(tags["vocabulary"]["pose"]) == 6
    )
    assert len(tags["images"]) == 2 * 3 * 2 * 2  # one entry per image, standing for every size
    entry = next(e for e in tags["images"] if e["file"] == "train/test--cubechair/az01_el30_left.png")
    assert entry == {
        "file": "train/test--cubechair/az01_el30_left.png",
        "identity": "test--cubechair",
        "split": "train",
        "azimuth": 1,
        "elevation": 1,
        "light": 1,
        "pose": 4,
        "azimuth_deg": 120.0,
        "elevation_deg": 30.0,
        "light_name": "left",
    }
    for size in tags["sizes"]:
        assert all((out / str(size) / e["file"]).is_file() for e in tags["images"])
    chair = tags["identities"]["test--cubechair"]
    assert chair["creator"] == "Someone" and chair["license"] == "Creative Commons Attribution 3.0"
    assert chair["split"] == "train" and chair["triangles"] == 12
    assert tags["identities"]["eteks--stool"]["split"] == "eval"
    assert (out / "licenses" / "Test.txt").read_text() == "Test licence text\n"
    assert (out / "licenses" / "test--cubechair" / "LICENSE.txt").is_file()
    assert "Someone" in (out / "ATTRIBUTION.md").read_text()

    # resume: nothing new is written, not even the index
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    again = chairs.render_chairs(source, out, **SMALL)
    assert again.written == 0 and again.skipped == report.images
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == stamps
    assert json.loads((out / "tags.json").read_text()) == tags

    # a missing image is rendered again, identically
    data = image.read_bytes()
    image.unlink()
    third = chairs.render_chairs(source, out, **SMALL)
    assert third.written == 1 and image.read_bytes() == data


def test_render_chairs_refuses_a_folder_rendered_with_other_settings(tmp_path: Path) -> None:
    source = _source_tree(tmp_path)
    out = tmp_path / "out"
    chairs.render_chairs(source, out, split="eval", **SMALL)
    index = out / "tags.json"
    tags = json.loads(index.read_text())
    tags["renderer"]["shading"] = "albedo x (0.35 + 0.75 x max(0, n.l)), two-sided"  # an older renderer
    index.write_text(json.dumps(tags))
    with pytest.raises(UsageError, match="differing: shading"):
        chairs.render_chairs(source, out, split="train", **SMALL)
    assert not (out / "8" / "train").exists()


def test_render_chairs_one_split_keeps_the_other_in_the_index(tmp_path: Path) -> None:
    source = _source_tree(tmp_path)
    out = tmp_path / "out"
    chairs.render_chairs(source, out, split="eval", **SMALL)
    assert not (out / "8" / "train").exists()
    chairs.render_chairs(source, out, split="train", **SMALL)
    tags = json.loads((out / "tags.json").read_text())
    assert sorted(tags["identities"]) == ["eteks--stool", "test--cubechair"]
    assert {e["split"] for e in tags["images"]} == {"train", "eval"}
    with pytest.raises(UsageError, match="unknown split"):
        chairs.render_chairs(source, out, split="test", **SMALL)


def test_render_chairs_reports_a_broken_model_and_goes_on(tmp_path: Path) -> None:
    source = _source_tree(tmp_path, stool_obj="v 0 0 0\n")  # no faces
    out = tmp_path / "out"
    report = chairs.render_chairs(source, out, **SMALL)
    assert [identity for identity, _ in report.failed] == ["eteks--stool"]
    assert not report.ok
    tags = json.loads((out / "tags.json").read_text())
    assert list(tags["identities"]) == ["test--cubechair"]


@pytest.mark.slow
def test_workers_give_the_same_images(tmp_path: Path) -> None:
    source = _source_tree(tmp_path)
    chairs.render_chairs(source, tmp_path / "one", **SMALL)
    chairs.render_chairs(source, tmp_path / "two", workers=2, **SMALL)
    for path in (tmp_path / "one").rglob("*.png"):
        assert path.read_bytes() == (tmp_path / "two" / path.relative_to(tmp_path / "one")).read_bytes()
