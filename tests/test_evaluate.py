"""`ganedit eval`: the protocol (deterministic degradations, baselines, masked metrics) and the command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from ganedit.checkpoint import save_checkpoint
from ganedit.cli import main as cli_main
from ganedit.eval.metrics import psnr, ssim
from ganedit.eval.pan import evaluate, harmonic_fill, load_pairs
from tinymodels import make_checkpoint, make_editor, make_model


def _photo(seed: int, height: int = 96, width: int = 128) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([128 + 90 * np.sin(xx / 9 + seed), 128 + 90 * np.cos(yy / 7), (xx + yy) / 1.0], axis=-1)
    base[20:50, 30:70] = rng.integers(0, 255, 3)
    return np.clip(base + rng.normal(0, 4, base.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("eval-photos")
    for i in range(3):
        Image.fromarray(_photo(i)).save(root / f"p{i}.png")
    return root


def test_harmonic_fill_keeps_known_pixels_and_reproduces_a_linear_ramp() -> None:
    yy, xx = np.mgrid[0:64, 0:80]
    ramp = np.stack([xx * 3, yy * 3, (xx + yy) * 1.5], axis=-1).astype(np.uint8)  # harmonic
    hole = np.zeros((64, 80), bool)
    hole[10:50, 20:60] = True
    holed = np.where(hole[:, :, None], 0, ramp).astype(np.uint8)
    filled = harmonic_fill(holed, hole)
    assert np.array_equal(filled[~hole], ramp[~hole])
    assert np.abs(filled.astype(int) - ramp.astype(int))[hole].max() <= 2


@pytest.mark.parametrize("task", ["derain", "inpaint", "sketch2photo"])
def test_synthesised_pairs_are_deterministic_per_seed(task: str, photos: Path) -> None:
    a, protocol = load_pairs(task, photos, seed=3, size=64, limit=None)
    b, _ = load_pairs(task, photos, seed=3, size=64, limit=None)
    c, _ = load_pairs(task, photos, seed=4, size=64, limit=2)
    assert [p.name for p in a] == ["p0.png", "p1.png", "p2.png"] and len(c) == 2
    assert all(p.input.shape == p.target.shape == (64, 64, 3) for p in a)  # short side 64, centre crop
    assert all(np.array_equal(x.input, y.input) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[0].input, c[0].input)
    assert "seed 3" in protocol
    assert all(not np.array_equal(p.input, p.target) for p in a)  # degraded
    if task == "inpaint":
        assert all(p.mask is not None and 0.04 < p.mask.mean() < 0.51 for p in a)


def test_figures_are_the_metrics_of_the_outputs_and_baselines(photos: Path) -> None:
    editor = make_editor("derain", seed=2)
    result = evaluate(editor, photos, seed=1, size=64)
    pairs, _ = load_pairs("derain", photos, seed=1, size=64, limit=None)
    assert result.images == 3
    for score, pair in zip(result.per_image, pairs, strict=True):
        out = editor.edit(pair.input).astype(float) / 255
        y, x = pair.target.astype(float) / 255, pair.input.astype(float) / 255
        assert score.psnr == pytest.approx(psnr(out, y))
        assert score.ssim == pytest.approx(ssim(out, y))
        assert score.baseline_psnr == pytest.approx(psnr(x, y))  # derain baseline: the rainy input
    m = result.metrics
    assert m["psnr_gain"] == pytest.approx(m["psnr"] - m["baseline_psnr"])
    assert m["psnr"] == pytest.approx(np.mean([s.psnr for s in result.per_image]))


def test_inpaint_is_measured_inside_the_hole(photos: Path) -> None:
    editor = make_editor("inpaint", seed=2)
    result = evaluate(editor, photos, seed=0, size=64, limit=1)
    (pair,), _ = load_pairs("inpaint", photos, seed=0, size=64, limit=1)
    assert pair.mask is not None
    out = editor.edit(pair.input, pair.mask).astype(float) / 255
    y = pair.target.astype(float) / 255
    assert result.per_image[0].psnr == pytest.approx(psnr(out, y, mask=pair.mask))
    fill = harmonic_fill(pair.input, pair.mask).astype(float) / 255
    assert result.per_image[0].baseline_psnr == pytest.approx(psnr(fill, y, mask=pair.mask))


def test_eval_command_json_on_a_tiny_model_and_a_paired_folder(tmp_path: Path) -> None:
    weights = make_checkpoint(tmp_path / "tiny.safetensors", "sketch2photo", seed=1)
    data = tmp_path / "pairs"
    (data / "input").mkdir(parents=True)
    (data / "target").mkdir()
    for i in range(2):
        Image.fromarray(_photo(i, 48, 48)).save(data / "target" / f"x{i}.png")
        Image.fromarray(255 - _photo(i, 48, 48)).save(data / "input" / f"x{i}.jpg")
    result = CliRunner().invoke(cli_main, ["eval", "--weights", str(weights), "--data", str(data), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["task"] == "sketch2photo" and report["images"] == 2
    assert [r["name"] for r in report["per_image"]] == ["x0", "x1"]
    assert set(report["metrics"]) >= {"psnr", "ssim", "baseline_psnr", "baseline_ssim", "ssim_gain"}
    assert "paired folder" in report["protocol"]
    assert report["flip_average"] is True and report["precision"] in ("fp32", "bf16")

    args = ["eval", "--weights", str(weights), "--data", str(data), "--json", "--precision", "fp32"]
    plain = json.loads(CliRunner().invoke(cli_main, [*args, "--no-flip-average"]).stdout)
    averaged = json.loads(CliRunner().invoke(cli_main, args).stdout)
    assert plain["flip_average"] is False and plain["precision"] == "fp32"
    assert plain["metrics"]["psnr"] != averaged["metrics"]["psnr"]  # the setting reaches the model

    (data / "target" / "x2.png").write_bytes((data / "target" / "x0.png").read_bytes())
    result = CliRunner().invoke(cli_main, ["eval", "--weights", str(weights), "--data", str(data)])
    assert result.exit_code == 2
    assert "x2" in result.output


def test_eval_needs_a_model(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli_main, ["eval", "--data", str(tmp_path)])
    assert result.exit_code == 2
    assert "MODEL" in result.output


def test_tiny_images_are_a_usage_error_naming_the_file(tmp_path: Path) -> None:
    weights = make_checkpoint(tmp_path / "tiny.safetensors", "derain", seed=1)
    data = tmp_path / "tiny"
    data.mkdir()
    Image.fromarray(_photo(0, 8, 40)).save(data / "thin.png")
    result = CliRunner().invoke(cli_main, ["eval", "--weights", str(weights), "--data", str(data)])
    assert result.exit_code == 2
    assert "thin.png" in result.output and "SSIM window" in result.output


def test_limit_counts_only_pairs_that_are_measured(tmp_path: Path) -> None:
    weights = make_checkpoint(tmp_path / "tiny.safetensors", "inpaint", seed=1)
    data = tmp_path / "pairs"
    (data / "mask").mkdir(parents=True)
    (data / "target").mkdir()
    for name, hole in (("a", False), ("b", True)):
        Image.fromarray(_photo(1, 48, 48)).save(data / "target" / f"{name}.png")
        mask = np.zeros((48, 48), np.uint8)
        if hole:
            mask[10:30, 10:30] = 255
        Image.fromarray(mask).save(data / "mask" / f"{name}.png")
    args = ["eval", "--weights", str(weights), "--data", str(data), "--limit", "1", "--json"]
    result = CliRunner().invoke(cli_main, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [r["name"] for r in report["per_image"]] == ["b"]
    assert "empty mask skipped" in report["protocol"]


def test_identical_images_give_strict_json(tmp_path: Path) -> None:
    weights = make_checkpoint(tmp_path / "tiny.safetensors", "derain", seed=1)
    data = tmp_path / "same"
    (data / "input").mkdir(parents=True)
    (data / "target").mkdir()
    Image.fromarray(_photo(2, 48, 48)).save(data / "input" / "x.png")
    Image.fromarray(_photo(2, 48, 48)).save(data / "target" / "x.png")
    args = ["eval", "--weights", str(weights), "--data", str(data), "--json"]
    result = CliRunner().invoke(cli_main, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert report["per_image"][0]["baseline_psnr"] is None  # the input is the target: infinite PSNR


def test_a_tdgan_checkpoint_on_a_photo_folder_is_a_usage_error(tmp_path: Path) -> None:
    from ganedit.archs.tdgan import TDGAN, TDGANConfig
    from ganedit.checkpoint import save_checkpoint

    config = TDGANConfig(
        tags=(("pose", ("0", "90")),), image_size=16, identity_dim=4, tag_dim=2, ngf=4, ndf=4
    )
    save_checkpoint(tmp_path / "td.safetensors", TDGAN(config), task="rerender")
    args = ["eval", "--weights", str(tmp_path / "td.safetensors"), "--data", str(tmp_path)]
    result = CliRunner().invoke(cli_main, args)
    assert result.exit_code == 2
    assert "rerender" in result.output and "Traceback" not in result.output


def test_derain_sets_rain_clean_layout_with_y_channel_figures(tmp_path: Path) -> None:
    """The public derain sets come as rain/ + clean/; papers report PSNR/SSIM on BT.601's Y channel."""
    from ganedit.eval.metrics import bt601_luma

    for i in range(2):
        for kind in ("rain", "clean"):
            (tmp_path / kind).mkdir(exist_ok=True)
        clean = _photo(i, 48, 64)
        streaks = 60 * (np.arange(64) % 7 == 0)[None, :, None]
        rainy = np.clip(clean.astype(int) + streaks, 0, 255).astype(np.uint8)
        Image.fromarray(clean).save(tmp_path / "clean" / f"{i:03d}.png")
        Image.fromarray(rainy).save(tmp_path / "rain" / f"{i:03d}.png")
    editor = make_editor("derain", seed=2, precision="fp32", flip_average=False)
    result = evaluate(editor, tmp_path, size=64)
    assert "rain/ + clean/" in result.protocol and result.images == 2
    for score, i in zip(result.per_image, range(2), strict=True):
        clean = _photo(i, 48, 64) / 255.0
        rainy = np.asarray(Image.open(tmp_path / "rain" / f"{i:03d}.png")) / 255.0
        assert score.baseline_psnr_y == pytest.approx(psnr(bt601_luma(rainy), bt601_luma(clean)), abs=1e-9)
        assert score.baseline_ssim_y == pytest.approx(ssim(bt601_luma(rainy), bt601_luma(clean)), abs=1e-9)
        assert score.psnr_y is not None and score.ssim_y is not None
    figures = result.to_dict()["metrics"]
    assert {"psnr_y", "ssim_y", "baseline_psnr_y", "psnr_y_gain", "worst_psnr"} <= set(figures)


def test_identity_measures_how_much_rain_free_photos_change(photos: Path, tmp_path: Path) -> None:
    weights = make_checkpoint(tmp_path / "tiny.safetensors", "derain", seed=4)
    args = ["eval", "--weights", str(weights), "--data", str(photos), "--identity", "--json", "--size", "64"]
    result = CliRunner().invoke(cli_main, [*args, "--precision", "fp32", "--no-flip-average"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["identity"] is True and report["images"] == 3
    assert "baseline_psnr" not in report["metrics"] and "psnr_gain" not in report["metrics"]
    # the figures are output vs the photo itself: recompute them from the tool's own output
    editor = make_editor("derain", seed=4, precision="fp32", flip_average=False)
    pairs, _ = load_pairs("derain", photos, seed=0, size=64, limit=None)
    worst = np.inf
    for pair, entry in zip(pairs, report["per_image"], strict=True):
        clean = pair.target
        out = editor.edit(clean)
        value = psnr(out / 255.0, clean / 255.0)
        worst = min(worst, value)
        assert entry["psnr"] == pytest.approx(value, abs=1e-3)
        shift = np.abs(out.reshape(-1, 3).mean(0) - clean.reshape(-1, 3).mean(0)).max()
        assert entry["channel_shift"] == pytest.approx(shift, abs=1e-3)
    assert report["metrics"]["worst_psnr"] == pytest.approx(worst, abs=1e-3)
    assert report["metrics"]["unchanged_fraction"] == 0.0  # this model changes every photo
    mean = np.mean([entry["psnr"] for entry in report["per_image"]])
    assert report["metrics"]["changed_psnr"] == pytest.approx(mean, abs=1e-3)

    other = make_checkpoint(tmp_path / "sketch.safetensors", "sketch2photo", seed=4)
    refused = CliRunner().invoke(
        cli_main, ["eval", "--weights", str(other), "--data", str(photos), "--identity"]
    )
    assert refused.exit_code == 2 and "--identity" in refused.output


def test_identity_counts_photos_given_back_unchanged(photos: Path, tmp_path: Path) -> None:
    """A model whose residual gate is shut gives every photo back bit for bit: each PSNR is infinite (null
    in the JSON), and the report says so in numbers instead of an infinite mean."""
    model = make_model("derain", seed=4, residual_gate=True)
    gate = model.net.gate
    assert gate is not None
    with torch.no_grad():
        gate.mlp[-1].weight.zero_()
        gate.mlp[-1].bias.fill_(-40.0)
    weights = tmp_path / "gated.safetensors"
    save_checkpoint(weights, model, task="derain")
    args = ["eval", "--weights", str(weights), "--data", str(photos), "--identity", "--json", "--size", "64"]
    result = CliRunner().invoke(cli_main, [*args, "--precision", "fp32"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)["metrics"]
    assert figures["unchanged_fraction"] == 1.0
    assert figures["psnr"] is None and figures["changed_psnr"] is None and figures["max_channel_shift"] == 0.0


def test_inpaint_texture_ratio_and_telea(photos: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The texture ratio tells a fill with the photo's detail (1) from a blur (the harmonic fill, < 1)."""
    from ganedit.eval.metrics import gradient_energy

    editor = make_editor("inpaint", seed=1, precision="fp32", flip_average=False)
    pairs, _ = load_pairs("inpaint", photos, seed=0, size=64, limit=None)
    truth = {pair.input.tobytes(): pair.target for pair in pairs}
    monkeypatch.setattr(editor, "edit", lambda pixels, mask=None: truth[pixels.tobytes()])  # an oracle fill
    result = evaluate(editor, photos, size=64)
    for score, pair in zip(result.per_image, pairs, strict=True):
        assert score.texture_ratio == pytest.approx(1.0)
        assert score.baseline_texture_ratio is not None and score.baseline_texture_ratio < 0.9  # smoother
        expected = gradient_energy(harmonic_fill(pair.input, pair.mask) / 255.0, pair.mask) / gradient_energy(
            pair.target / 255.0, pair.mask
        )
        assert score.baseline_texture_ratio == pytest.approx(expected)
    metrics = result.metrics
    assert metrics["texture_ratio"] == pytest.approx(1.0)
    pytest.importorskip("cv2")  # OpenCV's Telea: the eval extra, also in the test extra
    assert {"telea_psnr", "telea_ssim", "telea_texture_ratio"} <= set(metrics)
    assert metrics["telea_psnr"] < metrics["psnr"]  # the oracle beats any real fill


def test_gradient_energy() -> None:
    from ganedit.eval.metrics import gradient_energy

    flat = np.full((8, 8, 3), 0.4)
    assert gradient_energy(flat) == 0.0
    stripes = np.zeros((8, 8))
    stripes[:, ::2] = 1.0  # |dY/dx| = 1 everywhere but the last column, dY/dy = 0
    assert gradient_energy(stripes) == pytest.approx(7 / 8)
    mask = np.zeros((8, 8), bool)
    mask[:, 7] = True
    assert gradient_energy(stripes, mask) == 0.0


def test_derain_eval_with_streak_rain(photos: Path) -> None:
    classic, protocol = load_pairs("derain", photos, seed=0, size=64, limit=None)
    streaks, streak_protocol = load_pairs("derain", photos, seed=0, size=64, limit=None, rain="streaks")
    again, _ = load_pairs("derain", photos, seed=0, size=64, limit=None, rain="streaks")
    assert "sample_rain_params" in protocol and "sample_streak_rain_params" in streak_protocol
    assert all(np.array_equal(a.target, b.target) for a, b in zip(classic, streaks, strict=True))
    assert not np.array_equal(classic[0].input, streaks[0].input)
    assert all(np.array_equal(a.input, b.input) for a, b in zip(streaks, again, strict=True))
    args = ["eval", "--task", "derain", "--data", str(photos), "--rain", "hail"]
    assert CliRunner().invoke(cli_main, args).exit_code == 2


def test_eval_cli_offers_every_rain_synthesiser() -> None:
    """`ganedit eval --rain` lists its choices without importing torch; they must be synth's, all of them."""
    from ganedit.cli.evaluate import eval_command
    from ganedit.data import synth

    option = next(p for p in eval_command.params if p.name == "rain")
    assert list(option.type.choices) == list(synth.RAIN_SAMPLERS)  # type: ignore[attr-defined]
