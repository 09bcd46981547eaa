"""`ganedit rerender`, Rerenderer, runtime.tags, batch.sweep: --tag parsing, sweeps, names, sheets, GIFs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import ganedit
from ganedit.archs.tdgan import TDGAN, TDGANConfig
from ganedit.batch.sweep import contact_sheet, output_name, sheet_columns
from ganedit.checkpoint import save_checkpoint
from ganedit.cli import main
from ganedit.errors import UsageError
from ganedit.runtime.rerenderer import REFINE_STEPS, Rerenderer, prepare, read_config
from ganedit.runtime.tags import parse_tag_options

CONFIG = TDGANConfig(
    tags=(("azimuth", ("0", "90", "180", "270")), ("light", ("front", "left"))),
    image_size=16,
    identity_dim=4,
    tag_dim=2,
    ngf=4,
    ndf=4,
)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tdgan.safetensors"
    save_checkpoint(path, TDGAN(CONFIG), task="rerender")
    return path


def _photo(path: Path, size: tuple[int, int] = (20, 12), mode: str = "RGB") -> Path:
    rng = np.random.default_rng(0)
    channels = len(mode)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8), mode).save(path)
    return path


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def _names(folder: Path) -> list[str]:
    """The outputs in a folder (not the provenance index, .ganedit/, which every run writes there)."""
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


# ------------------------------------------------------------------------------------------ library


def test_parse_sweep_in_vocabulary_order() -> None:
    sweep = parse_tag_options(["light=all", "azimuth=0,90"], CONFIG, snap=False)
    assert sweep == [
        {"azimuth": "0", "light": "front"},
        {"azimuth": "0", "light": "left"},
        {"azimuth": "90", "light": "front"},
        {"azimuth": "90", "light": "left"},
    ]
    assert parse_tag_options([], CONFIG, snap=False) == [{}]
    assert parse_tag_options(["azimuth=90.0"], CONFIG, snap=False) == [{"azimuth": "90"}]
    assert parse_tag_options(["azimuth=0", "azimuth=0,180"], CONFIG, snap=False) == [
        {"azimuth": "0"},
        {"azimuth": "180"},
    ]
    assert sheet_columns(parse_tag_options(["azimuth=all", "light=all"], CONFIG, snap=False)) == 2
    assert sheet_columns(parse_tag_options(["azimuth=all"], CONFIG, snap=False)) == 4


def test_parse_errors_name_the_choices() -> None:
    with pytest.raises(UsageError, match=r"unknown tag 'colour'.*azimuth \(0, 90, 180, 270\); light"):
        parse_tag_options(["colour=red"], CONFIG, snap=False)
    with pytest.raises(UsageError, match=r"azimuth.*--snap"):
        parse_tag_options(["pose=30"], CONFIG, snap=False)  # the alias, with a value the model lacks
    with pytest.raises(UsageError, match=r"valid values of light: front, left"):
        parse_tag_options(["light=back"], CONFIG, snap=True)
    with pytest.raises(UsageError, match=r"--snap"):
        parse_tag_options(["azimuth=100"], CONFIG, snap=False)
    with pytest.raises(UsageError, match=r"NAME=VALUE"):
        parse_tag_options(["azimuth"], CONFIG, snap=False)


def test_pose_is_accepted_for_the_azimuth() -> None:
    """`--tag pose=30`, as users ask for it, names the chairs models' azimuth (outputs use the real name)."""
    assert parse_tag_options(["pose=90"], CONFIG, snap=False) == [{"azimuth": "90"}]
    assert parse_tag_options(["pose=30", "light=left"], CONFIG, snap=True) == [
        {"azimuth": "0", "light": "left"}
    ]


def test_snap_rounds_to_nearest_and_wraps_azimuth() -> None:
    assert parse_tag_options(["azimuth=100"], CONFIG, snap=True) == [{"azimuth": "90"}]
    assert parse_tag_options(["azimuth=350"], CONFIG, snap=True) == [{"azimuth": "0"}]
    assert parse_tag_options(["azimuth=-80"], CONFIG, snap=True) == [{"azimuth": "270"}]


def test_output_name_is_safe() -> None:
    assert output_name("chair", {"azimuth": "35", "light": "left"}) == "chair_azimuth-35_light-left.png"
    widths = {"azimuth": 3}
    assert output_name("chair", {"azimuth": "35"}, widths=widths) == "chair_azimuth-035.png"
    assert output_name("my chair", {"light": "top/left"}, ".gif") == "my_chair_light-top_left.gif"


def test_prepare_composites_alpha_and_pads_with_background() -> None:
    rgba = np.zeros((4, 8, 4), np.uint8)  # fully transparent, wider than tall
    out = prepare(rgba, 16, (240, 240, 240))
    assert out.shape == (16, 16, 3) and out.dtype == np.uint8
    assert np.all(np.abs(out.astype(int) - 240) <= 1)
    gray16 = np.full((10, 10, 1), 65535, np.uint16)
    assert prepare(gray16, 16, (0, 0, 0)).min() >= 254


def test_rerenderer_renders_and_infers(checkpoint: Path) -> None:
    assert read_config(checkpoint) == CONFIG
    rr = Rerenderer.open(checkpoint, device="cpu")
    pixels = np.asarray(Image.open(_photo(checkpoint.parent / "in.png")))
    inferred = rr.infer_tags(pixels)
    assert set(inferred) == {"azimuth", "light"}
    assert inferred["azimuth"] in CONFIG.values("azimuth")
    targets = [{"azimuth": "0"}, {"azimuth": "90", "light": "left"}]
    images = rr.render(pixels, targets)
    assert [im.shape for im in images] == [(16, 16, 3)] * 2
    assert all(im.dtype == np.uint8 for im in images)
    full = dict(inferred, azimuth="0")
    assert np.array_equal(rr.render(pixels, [full])[0], images[0])  # missing tags keep the inferred value
    with pytest.raises(UsageError, match="valid values"):
        rr.render(pixels, [{"azimuth": "45"}])


def test_identity_refinement_redraws_the_input_closer_and_leaves_the_weights_alone(checkpoint: Path) -> None:
    torch.manual_seed(0)
    model = TDGAN(CONFIG).eval()
    for layer in model.generator.modules():  # a generator whose drawing depends visibly on the identity
        if isinstance(layer, (torch.nn.Linear, torch.nn.ConvTranspose2d)):
            torch.nn.init.normal_(layer.weight, 0.0, 0.2)
    own = {"azimuth": "90", "light": "front"}
    with torch.no_grad():  # an object the generator can draw, at known tags
        codes = model.tag_mapper(model.one_hot(torch.tensor([[1, 0]])))
        drawn = model.generator(torch.randn(1, CONFIG.identity_dim) * 3, codes)
    pixels = drawn.clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)[0].permute(1, 2, 0).numpy()
    weights = {k: v.clone() for k, v in model.state_dict().items()}

    plain = Rerenderer(model, name="plain", refine_steps=0)
    refined = Rerenderer(model, name="refined", refine_steps=30, refine_lr=0.1)
    error_plain = np.abs(plain.render(pixels, [own], inferred=own)[0] - pixels.astype(np.float64)).mean()
    first = refined.render(pixels, [own], inferred=own)[0]
    error_refined = np.abs(first - pixels.astype(np.float64)).mean()
    assert error_refined < error_plain / 2, (error_refined, error_plain)  # grey levels
    assert np.array_equal(refined.render(pixels, [own], inferred=own)[0], first)  # starts afresh from R
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())

    # 0 steps is the paper's feed-forward re-rendering: G(R's identity code, g(target tags))
    photo = np.asarray(Image.open(_photo(checkpoint.parent / "refine.png")))
    seen = prepare(photo, CONFIG.image_size, CONFIG.background)
    rr = ganedit.load(checkpoint, device="cpu", refine_steps=0)
    assert isinstance(rr, Rerenderer)
    own = rr.infer_tags(photo)
    x = torch.from_numpy(seen).permute(2, 0, 1).float().div(127.5).sub(1)[None]
    rows = torch.tensor([[CONFIG.values(n).index(own[n]) for n in CONFIG.tag_names]])
    with torch.no_grad():
        y = rr.model.rerender(x, rows).clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
    assert np.array_equal(rr.render(photo, [own])[0], y[0].permute(1, 2, 0).numpy())
    for bad in ({"refine_steps": -1}, {"refine_steps": 2.5}, {"refine_lr": 0.0}, {"refine_lr": float("inf")}):
        with pytest.raises(UsageError, match="refine_"):
            ganedit.load(checkpoint, device="cpu", **bad)  # type: ignore[arg-type]


def test_refinement_works_inside_a_callers_inference_mode(checkpoint: Path) -> None:
    photo = np.asarray(Image.open(_photo(checkpoint.parent / "inference.png")))
    rr = Rerenderer.open(checkpoint, device="cpu", refine_steps=3)
    targets = [{"azimuth": "180", "light": "left"}]
    expected = rr.render(photo, targets)
    with torch.inference_mode():
        assert np.array_equal(rr.render(photo, targets)[0], expected[0])
    with torch.no_grad():
        assert np.array_equal(rr.render(photo, targets)[0], expected[0])
    assert all(p.requires_grad for p in rr.model.parameters())  # the caller's model is left as it was


def test_contact_sheet_layout() -> None:
    tiles = [np.full((4, 4, 3), i * 40, np.uint8) for i in range(5)]
    sheet = contact_sheet(tiles, 2, gap=1, background=(7, 7, 7))
    assert sheet.shape == (3 * 4 + 4, 2 * 4 + 3, 3)
    assert sheet[1, 1, 0] == 0 and sheet[1, 6, 0] == 40 and sheet[11, 1, 0] == 160 and sheet[11, 6, 0] == 7


# ------------------------------------------------------------------------------------------ CLI


def test_sweep_writes_one_file_per_combination(checkpoint: Path, tmp_path: Path) -> None:
    src = _photo(tmp_path / "chair.png")
    out = tmp_path / "out"
    code, stdout, stderr = invoke(
        "rerender", str(src), "--weights", str(checkpoint), "--device", "cpu",
        "--tag", "azimuth=0,90", "--tag", "light=all", "-o", str(out), "--json",
    )  # fmt: skip
    assert code == 0, stderr
    assert _names(out) == [
        "chair_azimuth-000_light-front.png",
        "chair_azimuth-000_light-left.png",
        "chair_azimuth-090_light-front.png",
        "chair_azimuth-090_light-left.png",
    ]
    for p in out.glob("*.png"):
        with Image.open(p) as im:
            assert im.size == (16, 16) and im.mode == "RGB"
    report = json.loads(stdout)
    assert report["task"] == "rerender"
    assert report["totals"] == {"inputs": 1, "ok": 1, "skipped": 0, "failed": 0, "skipped_stale": 0}
    entry = report["files"][0]
    assert entry["written"] == entry["outputs"] == [str(out / name) for name in _names(out)]
    assert entry["output"] == entry["outputs"][0]
    assert set(entry["details"]["inferred"]) == {"azimuth", "light"}


def test_refine_steps_option_is_reported_and_its_default_documented(checkpoint: Path, tmp_path: Path) -> None:
    src = _photo(tmp_path / "chair.png")
    outputs = {}
    for steps in (None, "0"):
        out = tmp_path / f"out-{steps}"
        extra = [] if steps is None else ["--refine-steps", steps]
        code, stdout, stderr = invoke(
            "rerender", str(src), "--weights", str(checkpoint), "--device", "cpu",
            "--tag", "azimuth=90", "-o", str(out), "--json", *extra,
        )  # fmt: skip
        assert code == 0, stderr
        assert json.loads(stdout)["options"]["refine_steps"] == (REFINE_STEPS if steps is None else 0)
        outputs[steps] = np.asarray(Image.open(next(out.glob("*.png"))))
    assert not np.array_equal(outputs[None], outputs["0"])
    assert f"[default: {REFINE_STEPS}]" in " ".join(invoke("rerender", "--help")[1].split())
    assert invoke("rerender", str(src), "--weights", str(checkpoint), "--tag", "azimuth=90",
                  "-o", str(tmp_path / "x"), "--refine-steps", "-1")[0] == 2  # fmt: skip


def test_all_values_and_rerun_skips(checkpoint: Path, tmp_path: Path) -> None:
    src = _photo(tmp_path / "chair.png", mode="RGBA")
    out = tmp_path / "out"
    args = ["rerender", str(src), "--weights", str(checkpoint), "--device", "cpu", "--tag", "azimuth=all"]
    code, _, stderr = invoke(*args, "-o", str(out))
    assert code == 0, stderr
    assert _names(out) == [f"chair_azimuth-{a}.png" for a in ("000", "090", "180", "270")]
    stamp = {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")}
    (out / "chair_azimuth-090.png").unlink()
    code, stdout, stderr = invoke(*args, "-o", str(out), "--json")
    assert code == 0, stderr
    entry = json.loads(stdout)["files"][0]
    assert entry["status"] == "ok" and len(entry["outputs"]) == 4  # a job partly done: only the missing one
    assert entry["written"] == [str(out / "chair_azimuth-090.png")]
    assert all(
        p.stat().st_mtime_ns == stamp[p.name] for p in out.glob("*.png") if p.name != "chair_azimuth-090.png"
    )
    code, stdout, _ = invoke(*args, "-o", str(out), "--json")
    report = json.loads(stdout)
    assert (report["totals"]["ok"], report["totals"]["skipped"], report["totals"]["failed"]) == (0, 1, 0)
    assert report["files"][0]["written"] == []
    code, stdout, _ = invoke(*args, "-o", str(out), "--json", "--overwrite")
    report = json.loads(stdout)
    assert report["totals"]["ok"] == 1 and len(report["files"][0]["written"]) == 4


def test_unknown_tag_and_value_are_usage_errors(checkpoint: Path, tmp_path: Path) -> None:
    src = _photo(tmp_path / "chair.png")
    base = ["rerender", str(src), "--weights", str(checkpoint), "-o", str(tmp_path / "out")]
    code, _, stderr = invoke(*base, "--tag", "colour=red")
    assert code == 2
    assert (
        "unknown tag 'colour'" in stderr
        and "azimuth (0, 90, 180, 270)" in stderr
        and "light (front, left)" in stderr
    )
    code, _, stderr = invoke(*base, "--tag", "azimuth=100")
    assert code == 2 and "valid values of azimuth: 0, 90, 180, 270" in stderr
    code, _, stderr = invoke(*base)
    assert code == 2 and "--tag" in stderr and "azimuth" in stderr
    assert not (tmp_path / "out").exists()


def test_usage_error_comes_before_reading_images(checkpoint: Path, tmp_path: Path) -> None:
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png")
    code, _, stderr = invoke(
        "rerender", str(bad), "--weights", str(checkpoint), "--tag", "light=back", "-o", str(tmp_path / "o")
    )
    assert code == 2 and "broken.png" not in stderr


def test_snap_option(checkpoint: Path, tmp_path: Path) -> None:
    src = _photo(tmp_path / "chair.png")
    out = tmp_path / "out"
    code, _, stderr = invoke(
        "rerender", str(src), "--weights", str(checkpoint), "--device", "cpu",
        "--tag", "azimuth=100", "--snap", "-o", str(out),
    )  # fmt: skip
    assert code == 0, stderr
    assert _names(out) == ["chair_azimuth-090.png"]


def test_sheet_and_gif(checkpoint: Path, tmp_path: Path) -> None:
    src = _photo(tmp_path / "chair.jpg")
    out = tmp_path / "out"
    code, _, stderr = invoke(
        "rerender", str(src), "--weights", str(checkpoint), "--device", "cpu",
        "--tag", "azimuth=all", "--tag", "light=all", "--sheet", "--gif", "-o", str(out), "-q",
    )  # fmt: skip
    assert code == 0, stderr
    assert len(list(out.glob("chair_azimuth-*_light-*.png"))) == 8
    with Image.open(out / "chair_sheet.png") as sheet:
        assert sheet.size == (2 * 16 + 3 * 2, 4 * 16 + 5 * 2)  # 2 columns (light) x 4 rows (azimuth)
    with Image.open(out / "chair.gif") as gif:
        assert gif.format == "GIF" and gif.n_frames >= 2 and gif.size == (16, 16)


def test_corrupt_input_fails_alone(checkpoint: Path, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    _photo(folder / "good.png")
    (folder / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    out = tmp_path / "out"
    code, stdout, stderr = invoke(
        "rerender", str(folder), "--weights", str(checkpoint), "--device", "cpu",
        "--tag", "light=all", "-o", str(out), "--json",
    )  # fmt: skip
    assert code == 1
    assert "bad.png" in stderr
    assert _names(out) == ["good_light-front.png", "good_light-left.png"]
    statuses = {Path(e["input"]).name: e["status"] for e in json.loads(stdout)["files"]}
    assert statuses == {"bad.png": "failed", "good.png": "ok"}


def test_recursive_mirrors_tree(checkpoint: Path, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    _photo(folder / "a.png")
    _photo(folder / "sub" / "b.png")
    out = tmp_path / "out"
    code, _, stderr = invoke(
        "rerender", str(folder), "-r", "--weights", str(checkpoint), "--device", "cpu",
        "--tag", "light=left", "-o", str(out),
    )  # fmt: skip
    assert code == 0, stderr
    assert (out / "a_light-left.png").is_file() and (out / "sub" / "b_light-left.png").is_file()


def test_models_show_lists_tags(checkpoint: Path, tmp_path: Path) -> None:
    registry = tmp_path / "weights.toml"
    local = tmp_path / checkpoint.name
    local.write_bytes(checkpoint.read_bytes())
    registry.write_text(
        '[models."tiny-tdgan"]\n'
        'task = "rerender"\narch = "tdgan"\n'
        f'file = "{local.name}"\nsha256 = "{hashlib.sha256(local.read_bytes()).hexdigest()}"\n'
    )
    code, stdout, stderr = invoke("models", "show", "tiny-tdgan", "--registry", str(registry))
    assert code == 0, stderr
    assert "azimuth: 0, 90, 180, 270" in stdout and "light: front, left" in stdout
    code, stdout, _ = invoke("models", "show", "tiny-tdgan", "--registry", str(registry), "--json")
    assert json.loads(stdout)["tags"] == {"azimuth": ["0", "90", "180", "270"], "light": ["front", "left"]}
    src = _photo(tmp_path / "chair.png")
    code, _, stderr = invoke(
        "rerender", str(src), "--registry", str(registry), "--model", "tiny-tdgan", "--device", "cpu",
        "--tag", "azimuth=180", "-o", str(tmp_path / "out"),
    )  # fmt: skip
    assert code == 0, stderr
    assert _names(tmp_path / "out") == ["chair_azimuth-180.png"]
