"""Face re-lighting (issue 19): the Yale B tagged set, light tags and snapping, a 2-step training run on a
few faces, re-rendering a non-square face crop, and ``ganedit eval`` routing a light model to the
re-lighting protocol.

No real faces: a fake "Extended Yale B" folder of 4 people x 9 lights, 28 x 32 grey crops whose
brightness follows the light's direction (a person is a fixed random texture). Tiny networks, one thread.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from ganedit.cli import main
from ganedit.runtime.rerenderer import prepare, read_config
from ganedit.runtime.tags import parse_tag_options

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "yaleb_tagset.py"
PEOPLE = ["yaleB01", "yaleB02", "yaleB03", "yaleB05"]
AZIMUTHS = [-35, 0, 35]
ELEVATIONS = [-20, 0, 20]


@pytest.fixture(autouse=True)
def restore_threads() -> Iterator[None]:
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _face(person: int, azimuth: int, elevation: int) -> np.ndarray:
    texture = np.random.default_rng(person).uniform(0.5, 1.0, (32, 28))
    y, x = np.mgrid[0:32, 0:28]
    light = (
        0.6
        + 0.4 * np.sin(np.radians(azimuth)) * (x - 14) / 14
        - 0.4 * np.sin(np.radians(elevation)) * (y - 16) / 16
    )
    return np.clip(texture * light * 255, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def yaleb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("yaleb")
    for k, person in enumerate(PEOPLE):
        folder = root / person
        folder.mkdir()
        for az in AZIMUTHS:
            for el in ELEVATIONS:
                name = f"{person}_P00A{az:+04d}E{el:+03d}.png"
                Image.fromarray(_face(k, az, el), "L").save(folder / name)
        Image.fromarray(_face(k, 0, 0), "L").save(folder / f"{person}_P00_Ambient.png")
    return root


@pytest.fixture(scope="module")
def tagset(yaleb: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("faces") / "set"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(yaleb), str(out), "--sizes", "16", "--eval-subjects", "1"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="module")
def trained(tagset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("run") / "faces"
    config = run.parent / "faces.toml"
    config.write_text(
        f'data = "{tagset}"\nout = "{run}"\nsize = 16\ntags = ["light_azimuth", "light_elevation"]\n'
        "steps = 2\nbatch_size = 4\nidentity_dim = 8\ntag_dim = 4\nngf = 4\nndf = 4\nthreads = 1\n"
        "save_every = 0\nsample_every = 0\nsample_identities = 1\nsample_targets = 2\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(main, ["train", "tdgan", "--config", str(config), "--quiet"])
    assert result.exit_code == 0, result.output
    return run / "model.safetensors"


def test_the_tagset_splits_by_person_mirrors_training_faces_and_reads_the_light(tagset: Path) -> None:
    index = json.loads((tagset / "tags.json").read_text(encoding="utf-8"))
    assert index["vocabulary"] == {"light_azimuth": AZIMUTHS, "light_elevation": ELEVATIONS}
    assert index["renderer"]["fit"] == "crop"
    images = index["images"]
    # ambient frames have no light direction: left out
    assert not any("Ambient" in e["file"] for e in images)
    eval_people = {e["identity"] for e in images if e["split"] == "eval"}
    train_people = {e["identity"] for e in images if e["split"] == "train"}
    assert eval_people == {"yaleB05"}  # the last person by name is held out, never mirrored
    assert train_people == {"yaleB01", "yaleB01m", "yaleB02", "yaleB02m", "yaleB03", "yaleB03m"}
    assert len(images) == (3 * 2 + 1) * len(AZIMUTHS) * len(ELEVATIONS)
    # a mirrored face is lit from the other side: its azimuth index points at the negated angle
    original = next(e for e in images if e["identity"] == "yaleB01" and e["file"].endswith("A+035E+00.png"))
    mirror = next(e for e in images if e["identity"] == "yaleB01m" and e["file"].endswith("A-035E+00.png"))
    a = np.asarray(Image.open(tagset / "16" / original["file"]))
    b = np.asarray(Image.open(tagset / "16" / mirror["file"]))
    assert np.array_equal(a[:, ::-1], b)
    assert AZIMUTHS[original["light_azimuth"]] == 35 and AZIMUTHS[mirror["light_azimuth"]] == -35
    assert a.shape == (16, 16, 3) and np.array_equal(a[..., 0], a[..., 2])  # grey, stored as RGB


def test_a_two_step_run_makes_a_face_model_with_light_tags_that_snap(trained: Path) -> None:
    config = read_config(trained)
    assert config.tag_names == ("light_azimuth", "light_elevation")
    assert config.fit == "crop" and config.image_size == 16
    assert parse_tag_options(["light_azimuth=30"], config, snap=True) == [{"light_azimuth": "35"}]
    # not circular: -170 is nearest to -35, not to 35 or wrapped around
    assert parse_tag_options(["light_azimuth=-170"], config, snap=True) == [{"light_azimuth": "-35"}]
    sweep = parse_tag_options(["light_azimuth=all", "light_elevation=+20"], config, snap=False)
    assert sweep == [{"light_azimuth": str(a), "light_elevation": "20"} for a in AZIMUTHS]


def test_rerender_relights_a_face_crop_and_refuses_an_unknown_light(trained: Path, tmp_path: Path) -> None:
    face = tmp_path / "face.png"
    Image.fromarray(_face(7, 35, 0), "L").save(face)
    out = tmp_path / "out"
    runner = CliRunner()
    ok = runner.invoke(
        main,
        ["rerender", str(face), "--weights", str(trained), "--tag", "light_azimuth=all", "-o", str(out)],
    )
    assert ok.exit_code == 0, ok.output
    written = sorted(out.glob("*.png"))
    assert len(written) == len(AZIMUTHS) and all("light_azimuth" in p.name for p in written)
    # a re-lighting model keeps the input's detail by default: the 28 x 32 crop's centred square, full size
    assert all(Image.open(p).size == (28, 28) for p in written)
    small = tmp_path / "small"
    args = ["rerender", str(face), "--weights", str(trained), "--tag", "light_azimuth=0"]
    plain = runner.invoke(main, [*args, "--no-keep-detail", "-o", str(small)])
    assert plain.exit_code == 0, plain.output
    assert [Image.open(p).size for p in small.glob("*.png")] == [(16, 16)]  # the model's own image
    bad = runner.invoke(
        main, ["rerender", str(face), "--weights", str(trained), "--tag", "light_azimuth=30", "-o", str(out)]
    )
    assert bad.exit_code == 2 and "--snap" in bad.output


def test_a_face_crop_is_cut_to_its_centred_square_not_padded() -> None:
    tall = np.zeros((40, 20), np.uint8)
    tall[10:30] = 200  # the centred 20 x 20 square is all face
    cropped = prepare(tall, 20, (0, 0, 0), fit="crop")
    padded = prepare(tall, 20, (0, 0, 0), fit="pad")
    assert cropped.min() == 200  # nothing of the border above and below
    assert padded[:, 0].max() == 0  # the pad adds black columns at the sides


def test_eval_routes_a_light_model_to_the_relighting_protocol(trained: Path, tagset: Path) -> None:
    result = CliRunner().invoke(main, ["eval", "--weights", str(trained), "--data", str(tagset), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["evaluation"] == "relighting" and report["identities"] == 1
    overall = report["overall"]
    for key in ("relit", "unchanged", "matched"):
        assert 0 < overall[f"{key}_psnr"] < 100 and -1 <= overall[f"{key}_ssim"] <= 1
    assert set(report["light_accuracy"]) == {"relit", "true_photos"}
    assert 0 <= report["identity_accuracy"]["relit"] <= 1
    assert (tagset / "judge-light-16.safetensors").is_file()  # judges cached for the next eval


def test_keep_detail_relights_at_the_input_resolution_in_colour(trained: Path, tmp_path: Path) -> None:
    face = tmp_path / "face.png"
    grey = _face(7, 35, 0)
    colour = np.stack([grey, (grey * 0.8).astype(np.uint8), (grey * 0.6).astype(np.uint8)], axis=2)
    Image.fromarray(colour).save(face)
    out = tmp_path / "out"
    args = ["rerender", str(face), "--weights", str(trained), "--tag", "light_azimuth=-35", "--keep-detail"]
    result = CliRunner().invoke(main, [*args, "-o", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["options"]["keep_detail"] is True
    (written,) = out.glob("*.png")
    pixels = np.asarray(Image.open(written))
    assert pixels.shape == (28, 28, 3)  # the centred square of the 28 x 32 input, not the model's 16 px
    r, g, b = (pixels[..., c].astype(float).mean() for c in range(3))
    assert r > g > b  # the input's colour is kept (the model itself draws grey)


def test_keep_detail_refuses_a_target_that_moves_pixels(tmp_path: Path) -> None:
    from ganedit.archs.tdgan import TDGAN, TDGANConfig
    from ganedit.errors import UsageError
    from ganedit.runtime.rerenderer import Rerenderer

    torch.manual_seed(0)
    config = TDGANConfig(
        tags=(("azimuth", ("0", "90")), ("light", ("front", "left"))), image_size=16, ngf=4, ndf=4
    )
    renderer = Rerenderer(TDGAN(config), name="toy", refine_steps=0, keep_detail=True)
    photo = np.full((24, 24, 3), 120, np.uint8)
    own = {"azimuth": "0", "light": "front"}
    (relit,) = renderer.render(photo, [{"light": "left"}], inferred=own)
    assert relit.shape == (24, 24, 3)
    with pytest.raises(UsageError, match="re-lights only"):
        renderer.render(photo, [{"azimuth": "90"}], inferred=own)


def test_the_shipped_face_model_relights_offline_at_the_input_resolution() -> None:
    import ganedit

    renderer = ganedit.load("tdgan-faces", device="cpu")
    assert renderer.config.tag_names == ("light_azimuth", "light_elevation")
    assert renderer.config.fit == "crop" and renderer.keep_detail
    face = np.stack([_face(3, 0, 0)] * 3, axis=2)  # 28 x 32
    left, right = renderer.render(face, [{"light_azimuth": "-70"}, {"light_azimuth": "70"}])
    assert left.shape == right.shape == (28, 28, 3)
    # the light moves: the two sides of the face swap brightness
    l_half, r_half = left[:, :14].mean() - left[:, 14:].mean(), right[:, :14].mean() - right[:, 14:].mean()
    assert l_half * r_half < 0
