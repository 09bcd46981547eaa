"""`--strength` / ``strength=``: derain's result blended with the input, as denoisers offer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from ganedit.cli import main as cli_main
from ganedit.errors import UsageError
from tinymodels import make_checkpoint, make_editor


def _photo(dtype: type = np.uint8) -> np.ndarray:
    rng = np.random.default_rng(0)
    peak = np.iinfo(dtype).max
    return (rng.random((40, 56, 3)) * peak).astype(dtype)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_strength_blends_result_and_input(dtype: type) -> None:
    photo = _photo(dtype)
    full = make_editor("derain", seed=1, precision="fp32", flip_average=False).edit(photo)
    assert not np.array_equal(full, photo)  # the tiny model does change the photo
    same = make_editor("derain", seed=1, precision="fp32", flip_average=False, strength=1.0).edit(photo)
    assert np.array_equal(same, full)
    none = make_editor("derain", seed=1, precision="fp32", flip_average=False, strength=0.0).edit(photo)
    assert np.array_equal(none, photo)  # bit-exact: strength 0 is "leave it alone"
    half = make_editor("derain", seed=1, precision="fp32", flip_average=False, strength=0.5).edit(photo)
    expected = (full.astype(np.float64) + photo.astype(np.float64)) / 2
    assert np.abs(half.astype(np.float64) - expected).max() <= 1.0  # one level of rounding


def test_strength_keeps_gray_and_alpha() -> None:
    gray = _photo()[:, :, :1]
    alpha = np.full((40, 56, 1), 77, np.uint8)
    out = make_editor("derain", seed=1, precision="fp32", flip_average=False, strength=0.0).edit(
        np.concatenate([gray, alpha], axis=2)
    )
    assert out.shape == (40, 56, 2)
    assert np.array_equal(out[:, :, :1], gray) and np.array_equal(out[:, :, 1:], alpha)


@pytest.mark.parametrize("value", [-0.1, 1.5, float("nan")])
def test_strength_out_of_range_is_a_usage_error(value: float) -> None:
    with pytest.raises(UsageError, match="strength"):
        make_editor("derain", strength=value)


def test_strength_is_derain_only() -> None:
    with pytest.raises(UsageError, match="derain"):
        make_editor("sketch2photo", strength=0.5)
    assert make_editor("sketch2photo", strength=1.0).strength == 1.0


def test_cli_strength_zero_writes_the_input_and_the_report_says_so(tmp_path: Path) -> None:
    weights = make_checkpoint(tmp_path / "tiny.safetensors", "derain", seed=2)
    photo = _photo()
    Image.fromarray(photo).save(tmp_path / "in.png")
    args = ["derain", str(tmp_path / "in.png"), "--weights", str(weights), "--json"]
    result = CliRunner().invoke(cli_main, [*args, "-o", str(tmp_path / "none.png"), "--strength", "0"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["strength"] == 0.0
    with Image.open(tmp_path / "none.png") as out:
        assert np.array_equal(np.asarray(out), photo)
    full = CliRunner().invoke(cli_main, [*args, "-o", str(tmp_path / "full.png")])
    assert json.loads(full.stdout)["strength"] == 1.0
    with Image.open(tmp_path / "full.png") as out:
        assert not np.array_equal(np.asarray(out), photo)

    bad = CliRunner().invoke(cli_main, [*args, "-o", str(tmp_path / "x.png"), "--strength", "1.5"])
    assert bad.exit_code == 2 and "--strength" in bad.output
    other = make_checkpoint(tmp_path / "sketch.safetensors", "sketch2photo", seed=2)
    sketch = [
        "sketch2photo",
        str(tmp_path / "in.png"),
        "--weights",
        str(other),
        "-o",
        str(tmp_path / "s.png"),
    ]
    refused = CliRunner().invoke(cli_main, [*sketch, "--strength", "0.5"])
    assert refused.exit_code == 2 and "--strength" in refused.output  # no such option for sketch2photo


def test_report_merge_refuses_shards_made_with_other_strengths(tmp_path: Path) -> None:
    weights = make_checkpoint(tmp_path / "tiny.safetensors", "derain", seed=2)
    for i in range(2):
        Image.fromarray(_photo()).save(tmp_path / f"in{i}.png")
    reports = []
    for k, strength in enumerate(("1", "0.5")):
        args = ["derain", str(tmp_path), "-o", str(tmp_path / "out"), "--weights", str(weights)]
        result = CliRunner().invoke(cli_main, [*args, "--shard", f"{k}/2", "--strength", strength, "--json"])
        assert result.exit_code == 0, result.output
        (tmp_path / f"shard{k}.json").write_text(result.stdout)
        reports.append(str(tmp_path / f"shard{k}.json"))
    merged = CliRunner().invoke(cli_main, ["report", "merge", *reports])
    assert merged.exit_code == 2 and "strength" in merged.output
