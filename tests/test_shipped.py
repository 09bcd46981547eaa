"""The checkpoints shipped inside the package: registered, intact, loadable, and the README demo works.

These run the real (small) shipped models on the CPU: a few seconds in all.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from ganedit.checkpoint import load_checkpoint
from ganedit.cli import main as cli_main
from ganedit.hub import bundled_path
from ganedit.registry import bundled_registry_path, parse_registry

ROOT = Path(__file__).resolve().parents[1]
SPECS = parse_registry(bundled_registry_path().read_text(), origin=None)


def test_derain_has_a_shipped_default() -> None:
    assert any(s.task == "derain" and s.default for s in SPECS.values())


@pytest.mark.parametrize("name", sorted(SPECS))
def test_shipped_file_matches_its_registry_entry(name: str) -> None:
    spec = SPECS[name]
    path = bundled_path(spec)
    assert path is not None, f"{name}: {spec.file} is not inside the package"
    data = path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == spec.sha256
    assert len(data) <= 20_000_000
    if spec.size is not None:
        assert len(data) == spec.size
    _model, info = load_checkpoint(path, task=spec.task)
    assert info.arch == spec.arch


def test_readme_demo_derains_the_samples_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "out"
    result = CliRunner().invoke(cli_main, ["derain", str(ROOT / "samples" / "rain"), "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    inputs = sorted(p.name for p in (ROOT / "samples" / "rain").iterdir())
    assert sorted(p.name for p in out.glob("[!.]*")) == inputs  # .ganedit: the index of what made them
    for name in inputs:
        with Image.open(ROOT / "samples" / "rain" / name) as a, Image.open(out / name) as b:
            assert a.size == b.size
            # the model changed the picture (it is not the identity)
            assert np.abs(np.asarray(a, float) - np.asarray(b, float)).mean() > 1.0


def _shipped_default(task: str) -> str | None:
    return next((name for name, s in SPECS.items() if s.task == task and s.default), None)


@pytest.mark.parametrize("task", ["inpaint", "sketch2photo", "labels2photo", "rerender"])
def test_every_task_has_a_shipped_default(task: str) -> None:
    assert _shipped_default(task) is not None, f"no shipped default model for {task}"


def test_shipped_inpaint_fills_only_the_hole_of_the_sample(tmp_path: Path) -> None:
    sample = ROOT / "samples" / "inpaint"
    out = tmp_path / "out"
    args = ["inpaint", str(sample / "chelsea.png"), "--mask", str(sample / "masks"), "-o", str(out), "-q"]
    result = CliRunner().invoke(cli_main, args, env={"HF_HUB_OFFLINE": "1"})
    assert result.exit_code == 0, result.output
    with (
        Image.open(sample / "chelsea.png") as a,
        Image.open(out / "chelsea.png") as b,
        Image.open(sample / "masks" / "chelsea.png") as m,
    ):
        before, after = np.asarray(a.convert("RGB"), float), np.asarray(b.convert("RGB"), float)
        hole = np.asarray(m.convert("L")) > 127
    assert after.shape == before.shape
    assert np.abs(after - before)[~hole].max() <= 1.0  # known pixels kept
    assert after[hole].std() > 5.0  # the hole is filled with something, not one flat colour


def test_shipped_sketch2photo_and_rerender_run_on_the_samples(tmp_path: Path) -> None:
    env = {"HF_HUB_OFFLINE": "1"}
    sketch = CliRunner().invoke(
        cli_main,
        ["sketch2photo", str(ROOT / "samples" / "sketch"), "-o", str(tmp_path / "photo"), "-q"],
        env=env,
    )
    assert sketch.exit_code == 0, sketch.output
    with Image.open(tmp_path / "photo" / "coffee_sketch.png") as photo:
        assert photo.mode == "RGB" and np.asarray(photo, float).std() > 5.0

    chair = ROOT / "samples" / "chair"
    args = [
        "rerender",
        str(chair),
        "--tag",
        "azimuth=0,174",
        "--tag",
        "light=left",
        "-o",
        str(tmp_path / "turn"),
        "-q",
    ]
    turned = CliRunner().invoke(cli_main, args, env=env)
    assert turned.exit_code == 0, turned.output
    stem = next(chair.iterdir()).stem
    names = sorted(p.name for p in (tmp_path / "turn").glob("*.png"))  # not .ganedit/ (provenance)
    assert names == [f"{stem}_azimuth-000_light-left.png", f"{stem}_azimuth-174_light-left.png"]
    with Image.open(tmp_path / "turn" / names[0]) as front, Image.open(tmp_path / "turn" / names[1]) as back:
        assert np.abs(np.asarray(front, float) - np.asarray(back, float)).mean() > 1.0  # the pose changed it


@pytest.mark.parametrize("model", ["pan-facades", "pan-facades-perceptual"])
def test_shipped_facades_models_turn_the_drawn_label_map_into_a_facade(tmp_path: Path, model: str) -> None:
    """The drawn sample: no label colour survives, and the windows come out darker than the wall."""
    from ganedit.palette import palette_coverage

    drawn = ROOT / "samples" / "labels" / "drawn_facade.png"
    args = ["labels2photo", str(drawn), "-o", str(tmp_path / "f.png"), "--model", model, "-q"]
    result = CliRunner().invoke(cli_main, args, env={"HF_HUB_OFFLINE": "1"})
    assert result.exit_code == 0, result.output
    labels = np.asarray(Image.open(drawn).convert("RGB")).astype(int)
    with Image.open(tmp_path / "f.png") as facade:
        out = np.asarray(facade.convert("RGB")).astype(float)
    assert palette_coverage(out.astype(np.uint8)) < 0.01
    window = np.abs(labels - [0, 128, 255]).sum(-1) < 10
    wall = np.abs(labels - [0, 48, 255]).sum(-1) < 10
    assert out[window].mean() < out[wall].mean() - 10


def test_shipped_rerender_casts_the_shadow_away_from_the_requested_light(tmp_path: Path) -> None:
    chair = ROOT / "samples" / "chair"
    args = ["rerender", str(chair), "--tag", "light=left,right", "-o", str(tmp_path), "-q"]
    result = CliRunner().invoke(cli_main, args, env={"HF_HUB_OFFLINE": "1"})
    assert result.exit_code == 0, result.output
    stem = next(chair.iterdir()).stem
    halves = {}
    for light in ("left", "right"):
        with Image.open(tmp_path / f"{stem}_light-{light}.png") as im:
            grey = np.asarray(im.convert("L"), float)
        half = grey.shape[1] // 2
        halves[light] = (grey[:, :half].mean(), grey[:, half:].mean())  # (left half, right half)
    # lit from the left, the shadow darkens the right half, and the other way round
    assert halves["left"][1] < halves["right"][1] - 5.0, halves
    assert halves["right"][0] < halves["left"][0] - 5.0, halves
