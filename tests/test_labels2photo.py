"""labels2photo: CMP label map in, facade photo out (the PAN paper's facades task).

What users rely on: the command edits label maps like every PAN command, refuses a photo given by mistake
(that file fails alone, named) and warns about a map in other colours; ``ganedit train pan`` learns from
pix2pix's side-by-side ``photo | label map`` files, with D judging the photo alone (PAN) or the pair
(``conditional``, pix2pix); ``ganedit eval`` reads the same files and reports colour statistics.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from safetensors import safe_open

from ganedit.checkpoint import load_checkpoint
from ganedit.cli import main as cli_main
from ganedit.errors import ImageError
from ganedit.eval.metrics import colour_histogram_distance, mean_chroma
from ganedit.palette import CMP_PALETTE, check_label_map, palette_coverage
from ganedit.train import state as st
from ganedit.train.pan import load_config, train
from tinymodels import make_checkpoint


@pytest.fixture(autouse=True)
def restore_threads() -> Iterator[None]:
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def label_map(seed: int, height: int = 64, width: int = 64) -> np.ndarray:
    """A facade-like label map: a background colour with rectangles ("windows", "doors") of other classes."""
    rng = np.random.default_rng(seed)
    palette = np.array(CMP_PALETTE, np.uint8)
    out = np.empty((height, width, 3), np.uint8)
    out[:] = palette[1]
    for _ in range(6):
        top, left = rng.integers(0, height - 8), rng.integers(0, width - 8)
        h, w = rng.integers(4, 16), rng.integers(4, 16)
        out[top : top + h, left : left + w] = palette[rng.integers(0, len(palette))]
    return out


def photo(seed: int, height: int = 64, width: int = 64) -> np.ndarray:
    """Smooth, muted, photo-like colours (nowhere near the saturated label palette)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([110 + 40 * np.sin(xx / 9), 100 + 30 * np.cos(yy / 7), 90 + 0.3 * (xx + yy)], axis=-1)
    return np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def facades(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pix2pix's facades format: every file is photo | label map."""
    root = tmp_path_factory.mktemp("facades")
    for i in range(5):
        pair = np.concatenate([photo(i), label_map(i)], axis=1)
        Image.fromarray(pair).save(root / f"{i}.png")
    return root


# --------------------------------------------------------------------------------------- palette check


def test_palette_coverage_tells_label_maps_from_photos() -> None:
    assert palette_coverage(label_map(0)) == 1.0
    assert palette_coverage(photo(0)) < 0.01
    assert palette_coverage(np.zeros((8, 8), np.uint8)) == 0.0  # gray: no label colour is gray
    half = label_map(1)
    half[:, 20:] = photo(1)[:, 20:]
    assert 0.05 < palette_coverage(half) < 0.4
    assert check_label_map(label_map(2)) == []
    assert len(check_label_map(half)) == 1
    with pytest.raises(ImageError, match="not a CMP facade label map"):
        check_label_map(photo(2))


# ------------------------------------------------------------------------------------------- command


def test_command_edits_label_maps_fails_a_photo_alone_and_warns_about_odd_colours(tmp_path: Path) -> None:
    weights = make_checkpoint(tmp_path / "tiny.safetensors", "labels2photo", seed=3)
    inputs = tmp_path / "in"
    inputs.mkdir()
    Image.fromarray(label_map(0, 48, 40)).save(inputs / "a_labels.png")
    Image.fromarray(photo(0)).save(inputs / "b_photo.png")
    odd = label_map(1)
    odd[:, 20:] = photo(1)[:, 20:]
    Image.fromarray(odd).save(inputs / "c_odd.png")

    result = CliRunner().invoke(
        cli_main,
        ["labels2photo", str(inputs), "-o", str(tmp_path / "out"), "--weights", str(weights), "--json"],
    )
    assert result.exit_code == 1, result.output  # one file failed, the others were written
    report = json.loads(result.stdout)
    by_name = {Path(f["input"]).name: f for f in report["files"]}
    assert by_name["a_labels.png"]["status"] == "ok" and by_name["a_labels.png"]["warnings"] == []
    assert by_name["b_photo.png"]["status"] == "failed"
    assert "b_photo.png" in by_name["b_photo.png"]["error"]
    assert "not a CMP facade label map" in by_name["b_photo.png"]["error"]
    assert by_name["c_odd.png"]["status"] == "ok"
    assert any("CMP facade label colours" in w for w in by_name["c_odd.png"]["warnings"])
    assert sorted(p.name for p in (tmp_path / "out").glob("[!.]*")) == ["a_labels.png", "c_odd.png"]
    with Image.open(tmp_path / "out" / "a_labels.png") as out:
        assert out.size == (40, 48) and out.mode == "RGB"
    assert not (tmp_path / "out" / "b_photo.png").exists()


# ------------------------------------------------------------------------------------------ training


def _config(data: Path, out: Path, **values: Any) -> Any:
    settings: dict[str, Any] = {
        "crop": 32,
        "batch_size": 2,
        "ndf": 4,
        "log_every": 1,
        "sample_every": 2,
        "save_every": 2,
        "workers": 0,
        "threads": 1,
        "precision": "fp32",
        "device": "cpu",
        "val_samples": 2,
        "val_fraction": 0.2,
        **values,
    }
    overrides = [f"{k}={json.dumps(v)}" for k, v in settings.items()]
    overrides.append("generator={ngf = 4, depth = 3}")
    return load_config("labels2photo", None, overrides, data=str(data), out=str(out))


@pytest.mark.parametrize("conditional", [False, True])
def test_training_on_side_by_side_pairs_gives_a_labels2photo_checkpoint(
    facades: Path, tmp_path: Path, conditional: bool
) -> None:
    config = _config(facades, tmp_path / "run", steps=2, conditional=conditional)
    assert config.layout == "side-by-side" and config.direction == "BtoA"  # the task's defaults
    model_path = train(config)
    model, info = load_checkpoint(model_path, task="labels2photo")
    assert info.task == "labels2photo" and model.config.in_channels == 3
    # D judged the photo (3 channels) or the (label map, photo) pair (6): its first conv's weights say so
    state = st.latest_state(tmp_path / "run" / "state")
    assert st.read_state_meta(state)["discriminator_config"]["in_channels"] == (6 if conditional else 3)
    with safe_open(state, "pt") as f:
        first = [k for k in f.keys() if "first.0.weight" in k and "D" in k]  # noqa: SIM118 (not iterable)
        assert len(first) == 1, f.keys()
        assert f.get_slice(first[0]).get_shape()[1] == (6 if conditional else 3)


def test_training_is_deterministic(facades: Path, tmp_path: Path) -> None:
    paths = [train(_config(facades, tmp_path / f"run{i}", steps=2, conditional=True)) for i in range(2)]
    first, second = (load_checkpoint(p, task="labels2photo")[0].state_dict() for p in paths)
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)


# ------------------------------------------------------------------------------------------ evaluation


def test_eval_reads_side_by_side_pairs_and_reports_colour(facades: Path, tmp_path: Path) -> None:
    weights = make_checkpoint(tmp_path / "tiny.safetensors", "labels2photo", seed=5)
    result = CliRunner().invoke(
        cli_main, ["eval", "--weights", str(weights), "--data", str(facades), "--json", "--precision", "fp32"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["task"] == "labels2photo" and report["images"] == 5
    assert "side-by-side" in report["protocol"]
    metrics = report["metrics"]
    for key in ("chroma", "target_chroma", "baseline_chroma", "histogram_distance", "chroma_ratio"):
        assert key in metrics
    # the truth is the left half: its chroma is that of the photo() colours, not the label palette's
    truths = [mean_chroma(photo(i) / 255.0) for i in range(5)]
    assert metrics["target_chroma"] == pytest.approx(np.mean(truths), abs=1e-3)


def test_colour_metrics() -> None:
    gray = np.full((8, 8, 3), 0.5)
    red = np.zeros((8, 8, 3))
    red[..., 0] = 1.0
    assert mean_chroma(gray) == pytest.approx(0.0, abs=1e-3)
    assert mean_chroma(red) == pytest.approx(104.55, abs=0.05)  # CIELAB (D65) of sRGB red: a* 80.11, b* 67.22
    rng = np.random.default_rng(0)
    image = rng.random((16, 16, 3))
    assert colour_histogram_distance(image, image) == 0.0
    assert colour_histogram_distance(gray, red) == 1.0
    assert 0.0 < colour_histogram_distance(image, image[::-1] * 0.9) < 1.0


def test_the_two_facades_configs_differ_only_in_the_objective() -> None:
    """The PAN-vs-pix2pix comparison in the pan-facades card holds only if nothing but the loss differs."""
    configs = Path(__file__).resolve().parent.parent / "configs"
    pan, pix = (
        load_config("labels2photo", configs / name, [], data="d", out="o")
        for name in ("pan-facades.toml", "pix2pix-facades.toml")
    )
    objective = {"lambdas", "margin", "pixel_l1", "conditional", "real_label"}
    differ = {f for f in pan.__dataclass_fields__ if getattr(pan, f) != getattr(pix, f)}
    assert differ == objective
    assert (
        pan.lambdas == (5.0, 1.5, 1.5, 1.0)
        and pan.margin == 3.0
        and pan.pixel_l1 == 0
        and not pan.conditional
    )
    assert not any(pix.lambdas) and pix.pixel_l1 == 100.0 and pix.conditional
    with_l1 = load_config("labels2photo", configs / "pan-l1-facades.toml", [], data="d", out="o")
    assert {f for f in pan.__dataclass_fields__ if getattr(pan, f) != getattr(with_l1, f)} == {"pixel_l1"}
    assert with_l1.pixel_l1 == 100.0
