"""TDGAN re-rendering evaluation: the tag classifier, evaluate_rerender and ``ganedit eval`` on a rerender
checkpoint, on a toy tagged image set (32 px shapes: x follows azimuth, y elevation, brightness light)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from ganedit.archs.tdgan import TDGAN, TDGANConfig
from ganedit.checkpoint import save_checkpoint
from ganedit.cli import main
from ganedit.eval.metrics import psnr
from ganedit.eval.tdgan import (
    PSNR_CAP,
    TagClassifier,
    classifier_accuracy,
    evaluate_rerender,
    load_classifier,
    save_classifier,
    train_classifier,
)
from ganedit.runtime.rerenderer import Rerenderer

SIZE = 32
AZIMUTHS = [0.0, 45.0, 90.0, 135.0, 180.0, 225.0, 270.0, 315.0]
ELEVATIONS = [20.0, 30.0]
LIGHTS = ["front", "left"]
IDENTITIES = {  # name: (split, colour, half-size of the shape)
    "a": ("train", (210, 170, 150), 3),
    "b": ("train", (150, 210, 170), 4),
    "c": ("eval", (180, 170, 210), 3),
}


def _render(colour: tuple[int, int, int], half: int, az: int, el: int, light: int) -> np.ndarray:
    im = np.full((SIZE, SIZE, 3), 240, np.uint8)
    cx = 5 + 3 * az
    cy = 9 if el == 0 else 22
    scale = 1.0 if light == 0 else 0.4
    im[cy - half : cy + half, cx - half : cx + half] = (np.asarray(colour) * scale).astype(np.uint8)
    return im


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("toy")
    images = []
    for identity, (split, colour, half) in IDENTITIES.items():
        folder = root / str(SIZE) / split / identity
        folder.mkdir(parents=True)
        for az in range(len(AZIMUTHS)):
            for el in range(len(ELEVATIONS)):
                for li, light in enumerate(LIGHTS):
                    name = f"az{az:02d}_el{int(ELEVATIONS[el])}_{light}.png"
                    Image.fromarray(_render(colour, half, az, el, li)).save(folder / name)
                    images.append(
                        {
                            "file": f"{split}/{identity}/{name}",
                            "identity": identity,
                            "split": split,
                            "azimuth": az,
                            "elevation": el,
                            "light": li,
                        }
                    )
    index = {
        "vocabulary": {"azimuth": AZIMUTHS, "elevation": ELEVATIONS, "light": LIGHTS},
        "sizes": [SIZE],
        "images": images,
    }
    (root / "tags.json").write_text(json.dumps(index), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    cfg = TDGANConfig(
        tags=(
            ("azimuth", tuple(str(round(a)) for a in AZIMUTHS)),
            ("elevation", ("20", "30")),
            ("light", tuple(LIGHTS)),
        ),
        image_size=SIZE,
        identity_dim=4,
        tag_dim=2,
        ngf=4,
        ndf=4,
    )
    path = tmp_path_factory.mktemp("ckpt") / "td.safetensors"
    save_checkpoint(path, TDGAN(cfg), task="rerender")
    return path


@pytest.fixture(scope="module")
def classifier(dataset: Path) -> TagClassifier:
    return train_classifier(dataset, SIZE, steps=150, seed=0)


def test_classifier_learns_toy_tags(classifier: TagClassifier, dataset: Path, tmp_path: Path) -> None:
    accuracy = classifier_accuracy(classifier, dataset, SIZE, split="eval")
    assert accuracy["images"] == 32
    assert accuracy["azimuth_within_1"] > 0.8
    assert accuracy["light"] > 0.8
    assert accuracy["elevation"] > 0.8
    path = tmp_path / "judge.safetensors"
    save_classifier(path, classifier)
    again = load_classifier(path)
    assert again.vocabulary == classifier.vocabulary and again.size == SIZE
    x = classifier.to_tensor([_render((180, 170, 210), 3, 2, 0, 1)])
    with torch.no_grad():
        for a, b in zip(classifier(x), again(x), strict=True):
            torch.testing.assert_close(a, b)


def _finite(value: object) -> None:
    if isinstance(value, dict):
        for v in value.values():
            _finite(v)
    elif isinstance(value, list):
        for v in value:
            _finite(v)
    elif isinstance(value, float):
        assert math.isfinite(value)


def test_evaluate_rerender(checkpoint: Path, dataset: Path, classifier: TagClassifier) -> None:
    rr = Rerenderer.open(checkpoint, device="cpu")
    result = evaluate_rerender(rr, dataset, classifier=classifier, size=SIZE, details=True)
    for key in ("overall", "per_offset", "light", "tag_accuracy", "classifier", "protocol", "baseline"):
        assert key in result
    assert result["identities"] == 1 and result["sources"] == 4
    assert result["renders"] == 4 * (len(AZIMUTHS) + len(LIGHTS))
    assert sorted(r["offset"] for r in result["per_offset"]) == [-3, -2, -1, 0, 1, 2, 3, 4]
    assert {"psnr", "ssim", "baseline_psnr", "baseline_ssim", "count"} <= set(result["overall"])
    assert set(result["tag_accuracy"]) == {"azimuth_within_1", "azimuth_exact", "light"}
    assert result["classifier"]["on_true_renders"]["azimuth_within_1"] > 0.8
    _finite(result)
    json.dumps(result, allow_nan=False)

    case = next(c for c in result["cases"] if c["sweep"] == "azimuth" and c["offset"] == 2)
    source = np.asarray(Image.open(dataset / str(SIZE) / case["source"]).convert("RGB"), np.float32) / 255
    target = np.asarray(Image.open(dataset / str(SIZE) / case["target"]).convert("RGB"), np.float32) / 255
    assert case["baseline_psnr"] == pytest.approx(min(psnr(source, target), PSNR_CAP))
    zero = [c for c in result["cases"] if c["sweep"] == "azimuth" and c["offset"] == 0]
    assert all(c["baseline_psnr"] == PSNR_CAP for c in zero)

    again = evaluate_rerender(rr, dataset, classifier=classifier, size=SIZE)
    assert again["overall"] == result["overall"] and "cases" not in again


def test_cli_eval_rerender(checkpoint: Path, dataset: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ganedit.evaluate_tdgan as et

    real = et.train_classifier
    monkeypatch.setattr(et, "train_classifier", lambda *a, **k: real(*a, **{**k, "steps": 60}))
    runner = CliRunner()
    args = ["eval", "--weights", str(checkpoint), "--data", str(dataset), "--json"]
    result = runner.invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["task"] == "rerender" and payload["identities"] == 1
    assert {"overall", "per_offset", "light", "tag_accuracy", "classifier"} <= set(payload)
    assert "training a tag classifier" in result.stderr
    assert (dataset / f"classifier-{SIZE}-{et.CLASSIFIER_STEPS}steps.safetensors").is_file()

    text = runner.invoke(main, args[:-1], catch_exceptions=False)
    assert text.exit_code == 0, text.stderr
    assert "using the tag classifier" in text.stderr
    assert "baseline" in text.stdout and "classifier's own accuracy" in text.stdout
    assert "identity refinement: 5 steps" in text.stdout

    # --refine-steps reaches the re-renders and the report says which setting was measured
    plain = runner.invoke(main, [*args, "--refine-steps", "0"], catch_exceptions=False)
    assert plain.exit_code == 0, plain.stderr
    plain_payload = json.loads(plain.stdout)
    assert payload["refine"]["steps"] == 5 and plain_payload["refine"]["steps"] == 0
    assert plain_payload["overall"] != payload["overall"]
