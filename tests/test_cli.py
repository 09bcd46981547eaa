"""The command line as users drive it: files written, exit codes, metadata kept, messages on stderr."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from ganedit.cli import main

EXIF_DATETIME = 0x9003  # DateTimeOriginal, in the Exif IFD
EXIF_IFD = 0x8769
GPS_IFD = 0x8825


def photo(path: Path, size: tuple[int, int] = (48, 40), seed: int = 0, **save: object) -> Path:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, **save)
    return path


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from tinymodels import make_checkpoint

    folder = tmp_path_factory.mktemp("ckpt")
    return {task: make_checkpoint(folder / f"{task}.safetensors", task) for task in ("derain", "inpaint")}


def run(*args: str, input: bytes | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


# --------------------------------------------------------------------------------------- folder runs


def test_folder_recursive_mirrors_tree_and_json_report(tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    src = tmp_path / "in"
    photo(src / "a.jpg")
    photo(src / "sub" / "b.png", seed=1)
    photo(src / "sub" / "deeper" / "c.JPG", seed=2)
    (src / "notes.txt").write_text("not an image")
    (src / ".hidden.jpg").write_bytes(b"")
    out = tmp_path / "out"
    code, stdout, stderr = run(
        "derain", str(src), "-r", "-o", str(out), "--weights", str(checkpoints["derain"]), "--json"
    )
    assert code == 0, stderr
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    index = [name for name in written if ".ganedit/" in name]  # what made each output, folder by folder
    assert [name for name in written if name not in index] == ["a.jpg", "sub/b.png", "sub/deeper/c.JPG"]
    assert sorted(name.rsplit(".ganedit/", 1)[0] for name in index) == ["", "sub/", "sub/deeper/"]
    report = json.loads(stdout)
    assert report["totals"] == {"inputs": 3, "ok": 3, "skipped": 0, "failed": 0, "skipped_stale": 0}
    assert report["sha256"] and report["device"] == "cpu" and report["flip_average"] is True
    assert {Path(f["output"]).name for f in report["files"]} == {"a.jpg", "b.png", "c.JPG"}
    assert all(f["status"] == "ok" and f["seconds"] >= 0 for f in report["files"])
    for name in ("a.jpg", "sub/b.png"):
        assert Image.open(out / name).size == (48, 40)


def test_no_flip_average_runs_the_model_once_per_image(tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    photo(tmp_path / "in" / "a.png")
    outputs = {}
    for flag in ("--flip-average", "--no-flip-average"):
        out = tmp_path / flag
        args = ["derain", str(tmp_path / "in"), "-o", str(out), "--weights", str(checkpoints["derain"])]
        code, stdout, stderr = run(*args, "--precision", "fp32", flag, "--json")
        assert code == 0, stderr
        assert json.loads(stdout)["flip_average"] is (flag == "--flip-average")
        outputs[flag] = np.asarray(Image.open(out / "a.png")).astype(int)
    assert np.abs(outputs["--flip-average"] - outputs["--no-flip-average"]).max() > 1


def test_a_checkpoint_can_turn_flip_averaging_off_by_default(tmp_path: Path) -> None:
    """A model trained to paint texture says so in its checkpoint (ganedit.flip_average = "false"): it runs
    once per image unless --flip-average asks otherwise; a rerun with the default is not 'stale'."""
    from ganedit.checkpoint import KEY_FLIP_AVERAGE, save_checkpoint
    from tinymodels import make_model

    weights = tmp_path / "texture.safetensors"
    save_checkpoint(weights, make_model("derain"), task="derain", extra={KEY_FLIP_AVERAGE: "false"})
    photo(tmp_path / "in" / "a.png")
    seen = {}
    for flags in ((), ("--flip-average",), ("--no-flip-average",)):
        out = tmp_path / ("out" + "".join(flags))
        args = ["derain", str(tmp_path / "in"), "-o", str(out), "--weights", str(weights), "--json"]
        code, stdout, stderr = run(*args, *flags)
        assert code == 0, stderr
        seen[flags] = json.loads(stdout)["flip_average"]
    assert seen == {(): False, ("--flip-average",): True, ("--no-flip-average",): False}
    code, stdout, stderr = run(
        "derain", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--weights", str(weights), "--json"
    )
    totals = json.loads(stdout)["totals"]
    assert code == 0 and totals["skipped"] == 1 and totals["skipped_stale"] == 0  # the default, again
    import ganedit

    assert ganedit.load(weights).flip_average is False  # the library follows the checkpoint too
    assert ganedit.load(weights, flip_average=True).flip_average is True


def test_without_recursive_only_top_level(tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    src = tmp_path / "in"
    photo(src / "a.png")
    photo(src / "sub" / "b.png")
    code, _, stderr = run(
        "derain", str(src), "-o", str(tmp_path / "out"), "--weights", str(checkpoints["derain"])
    )
    assert code == 0, stderr
    assert [p.name for p in (tmp_path / "out").rglob("*.png")] == ["a.png"]
    assert "-r" in stderr  # the note says how to include subfolders


def test_rerun_skips_existing_and_overwrite_replaces(tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    photo(src / "a.png")
    photo(src / "b.png", seed=3)
    weights = ("--weights", str(checkpoints["derain"]))
    assert run("derain", str(src), "-o", str(out), *weights)[0] == 0
    (out / "a.png").write_bytes(b"sentinel")  # a changed output must survive a plain re-run
    code, stdout, _ = run("derain", str(src), "-o", str(out), *weights, "--json")
    assert code == 0
    assert json.loads(stdout)["totals"]["skipped"] == 2
    assert (out / "a.png").read_bytes() == b"sentinel"
    code, stdout, _ = run("derain", str(src), "-o", str(out), *weights, "--json", "--overwrite")
    assert code == 0 and json.loads(stdout)["totals"]["ok"] == 2
    assert Image.open(out / "a.png").size == (48, 40)


def test_bad_files_fail_alone_with_exit_1(tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    photo(src / "a.png")
    (src / "b.jpg").write_bytes(b"")  # zero bytes
    good = (src / "c.jpg").write_bytes(photo(tmp_path / "tmp.jpg").read_bytes())
    assert good
    full = photo(tmp_path / "full.jpg", size=(64, 64)).read_bytes()
    (src / "d.jpg").write_bytes(full[: len(full) // 2])  # truncated
    (src / "e.png").write_bytes(b"this is text, not a PNG")
    code, stdout, stderr = run(
        "derain", str(src), "-o", str(out), "--weights", str(checkpoints["derain"]), "--json"
    )
    assert code == 1
    report = json.loads(stdout)
    status = {Path(f["input"]).name: f["status"] for f in report["files"]}
    assert status == {"a.png": "ok", "b.jpg": "failed", "c.jpg": "ok", "d.jpg": "failed", "e.png": "failed"}
    assert sorted(p.name for p in out.glob("[!.]*")) == ["a.png", "c.jpg"]
    for name in ("b.jpg", "d.jpg", "e.png"):
        assert name in stderr  # each failure is named on stderr
    assert "2 done" in stderr and "3 failed" in stderr


def test_metadata_orientation_alpha_and_16bit_survive(tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    exif = Image.Exif()
    exif[0x010F] = "Canon"  # Make
    exif[0x0112] = 6  # Orientation: rotate 90 CW to view
    exif.get_ifd(EXIF_IFD)[EXIF_DATETIME] = "2024:05:06 07:08:09"
    exif.get_ifd(GPS_IFD)[2] = (52.0, 30.0, 0.0)  # GPSLatitude
    icc = b"\x00" * 8 + b"fake-icc-profile-bytes" * 4
    photo(src / "cam.jpg", size=(64, 40), exif=exif.tobytes(), icc_profile=icc, quality=95)
    rgba = np.random.default_rng(1).integers(0, 256, (36, 28, 4), dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(src / "alpha.png")
    gray16 = (np.random.default_rng(2).random((30, 34)) * 65535).astype(np.uint16)
    Image.fromarray(gray16).save(src / "deep.png")
    code, _, stderr = run("derain", str(src), "-o", str(out), "--weights", str(checkpoints["derain"]))
    assert code == 0, stderr

    cam = Image.open(out / "cam.jpg")
    assert cam.size == (40, 64)  # rotated upright
    exif_out = cam.getexif()
    assert exif_out.get(0x0112, 1) == 1
    assert exif_out[0x010F] == "Canon"
    assert exif_out.get_ifd(EXIF_IFD)[EXIF_DATETIME] == "2024:05:06 07:08:09"
    assert exif_out.get_ifd(GPS_IFD)[2] == (52.0, 30.0, 0.0)
    assert cam.info.get("icc_profile") == icc

    alpha = np.asarray(Image.open(out / "alpha.png"))
    assert alpha.shape == (36, 28, 4)
    assert np.array_equal(alpha[..., 3], rgba[..., 3])

    deep = Image.open(out / "deep.png")
    assert deep.mode.startswith("I")  # still a 16-bit grayscale PNG
    assert np.asarray(deep).max() > 255


def test_inputs_are_never_modified(tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    src = tmp_path / "in"
    files = [photo(src / f"{i}.jpg", seed=i) for i in range(3)]
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in files}
    assert (
        run("derain", str(src), "-o", str(tmp_path / "out"), "--weights", str(checkpoints["derain"]))[0] == 0
    )
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in files} == before


def test_output_equal_to_input_is_refused(tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    src = photo(tmp_path / "a.png")
    before = src.read_bytes()
    code, _, stderr = run("derain", str(src), "-o", str(src), "--weights", str(checkpoints["derain"]))
    assert code == 2 and "overwrite the input" in stderr
    code, _, stderr = run(
        "derain", str(tmp_path), "-o", str(tmp_path), "--weights", str(checkpoints["derain"])
    )
    assert code == 2
    assert src.read_bytes() == before


def test_output_inside_input_folder_is_not_reprocessed(tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    src = tmp_path / "photos"
    photo(src / "a.png")
    out = src / "clean"
    weights = ("--weights", str(checkpoints["derain"]))
    assert run("derain", str(src), "-r", "-o", str(out), *weights)[0] == 0
    code, stdout, _ = run("derain", str(src), "-r", "-o", str(out), *weights, "--json")
    assert code == 0
    assert [f["input"] for f in json.loads(stdout)["files"]] == [str(src / "a.png")]
    assert not (out / "clean").exists()


def test_single_file_to_file_and_format_conversion(tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    src = photo(tmp_path / "a.jpg")
    weights = ("--weights", str(checkpoints["derain"]))
    assert run("derain", str(src), "-o", str(tmp_path / "x" / "b.png"), *weights)[0] == 0
    assert Image.open(tmp_path / "x" / "b.png").format == "PNG"
    assert (
        run("derain", str(src), "-o", str(tmp_path / "o"), "--format", "webp", "--suffix", "_dry", *weights)[
            0
        ]
        == 0
    )
    assert Image.open(tmp_path / "o" / "a_dry.webp").format == "WEBP"


def test_stdin_to_stdout(tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    data = photo(tmp_path / "a.png").read_bytes()
    args = ["derain", "-", "-o", "-", "--weights", str(checkpoints["derain"])]
    result = CliRunner().invoke(main, args, input=data)
    assert result.exit_code == 0, result.stderr
    image = Image.open(io.BytesIO(result.stdout_bytes))
    assert image.format == "PNG" and image.size == (48, 40)


def test_pipe_through_a_real_shell(tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    src = photo(tmp_path / "a.jpg")
    ganedit = f"{sys.executable} -m ganedit"
    cmd = f"cat {src} | {ganedit} derain - -o - --format png --weights {checkpoints['derain']}"
    done = subprocess.run(cmd, shell=True, capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr.decode()
    image = Image.open(io.BytesIO(done.stdout))
    assert image.format == "PNG" and image.size == (48, 40)


# --------------------------------------------------------------------------------------------- masks


def _mask(path: Path, size: tuple[int, int], box: tuple[int, int, int, int]) -> Path:
    m = np.zeros((size[1], size[0]), dtype=np.uint8)
    x0, y0, x1, y1 = box
    m[y0:y1, x0:x1] = 255
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(m).save(path)
    return path


def test_inpaint_masks_matched_by_stem_missing_one_fails_alone(
    tmp_path: Path, checkpoints: dict[str, Path]
) -> None:
    src, masks, out = tmp_path / "in", tmp_path / "masks", tmp_path / "out"
    for i, name in enumerate(("a", "b", "c")):
        photo(src / f"{name}.png", seed=i)
    _mask(masks / "a.png", (48, 40), (10, 10, 30, 30))
    _mask(masks / "b_mask.png", (24, 20), (5, 5, 15, 15))  # half size: resized with a warning
    weights = ("--weights", str(checkpoints["inpaint"]))
    code, stdout, _ = run("inpaint", str(src), "--mask", str(masks), "-o", str(out), *weights, "--json")
    assert code == 1
    status = {Path(f["input"]).name: f for f in json.loads(stdout)["files"]}
    assert status["a.png"]["status"] == "ok" and status["b.png"]["status"] == "ok"
    assert status["c.png"]["status"] == "failed" and "no mask" in status["c.png"]["error"]
    assert status["b.png"]["warnings"]  # the resize is reported
    a_in, a_out = np.asarray(Image.open(src / "a.png")), np.asarray(Image.open(out / "a.png"))
    outside = np.ones((40, 48), bool)
    outside[10:30, 10:30] = False
    assert np.array_equal(a_in[outside], a_out[outside])  # known pixels kept exactly
    assert not np.array_equal(a_in[~outside], a_out[~outside])


def test_inpaint_single_mask_for_all_and_mask_required(tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    src = tmp_path / "in"
    photo(src / "a.png")
    photo(src / "b.png", seed=1)
    mask = _mask(tmp_path / "m.png", (48, 40), (0, 0, 8, 8))
    weights = ("--weights", str(checkpoints["inpaint"]))
    assert run("inpaint", str(src), "--mask", str(mask), "-o", str(tmp_path / "out"), *weights)[0] == 0
    assert len(list((tmp_path / "out").glob("[!.]*"))) == 2
    code, _, stderr = run("inpaint", str(src), "-o", str(tmp_path / "o2"), *weights)
    assert code == 2 and "--mask" in stderr


# -------------------------------------------------------------------------------------------- shards


def test_shards_cover_every_input_exactly_once(tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    src = tmp_path / "in"
    names = {f"{i:02d}.png" for i in range(11)}
    for i, name in enumerate(sorted(names)):
        photo(src / name, size=(16, 16), seed=i)
    taken: list[str] = []
    for k in range(3):
        code, stdout, _ = run(
            "derain", str(src), "-o", str(tmp_path / "out"), "--shard", f"{k}/3", "--json",
            "--weights", str(checkpoints["derain"]),
        )  # fmt: skip
        assert code == 0
        taken += [Path(f["input"]).name for f in json.loads(stdout)["files"]]
    assert sorted(taken) == sorted(names)  # every input once, none twice
    assert {p.name for p in (tmp_path / "out").glob("[!.]*")} == names


def test_shard_defaults_to_torchrun_rank(
    tmp_path: Path, checkpoints: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "in"
    for i in range(4):
        photo(src / f"{i}.png", size=(16, 16), seed=i)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    code, stdout, _ = run(
        "derain", str(src), "-o", str(tmp_path / "out"), "--json", "--weights", str(checkpoints["derain"])
    )
    assert code == 0
    assert [Path(f["input"]).name for f in json.loads(stdout)["files"]] == ["1.png", "3.png"]


# ------------------------------------------------------------------------------------- usage errors


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["derain", "IN", "-o", "OUT", "--bogus"], "No such option"),
        (["derain", "IN", "-o", "OUT", "--model", "nope"], "nope"),
        (["derain", "IN", "-o", "OUT", "--precision", "fp8"], "fp8"),
        (["derain", "IN", "-o", "OUT", "--shard", "3/2"], "--shard"),
        (["derain", "IN", "-o", "-", "--json"], "--json"),
        (["derain", "IN", "-o", "OUT", "--device", "tpu"], "tpu"),
    ],
)
def test_usage_errors_exit_2(
    tmp_path: Path,
    args: list[str],
    needle: str,
    checkpoints: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    photo(tmp_path / "IN" / "a.png")
    monkeypatch.chdir(tmp_path)
    if "--model" not in args and "--json" not in args:
        args = [*args, "--weights", str(checkpoints["derain"])]
    code, _, stderr = run(*args)
    assert code == 2
    assert needle in stderr
    assert "Traceback" not in stderr


def test_unknown_model_lists_the_valid_ones(tmp_path: Path) -> None:
    photo(tmp_path / "a.png")
    registry = tmp_path / "reg.toml"
    registry.write_text(
        '[models."my-derain"]\ntask = "derain"\narch = "pan"\nfile = "x.safetensors"\nsha256 = "'
        + "0" * 64
        + '"\n'
    )
    code, _, stderr = run("derain", str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "--model", "nope",
                          "--registry", str(registry))  # fmt: skip
    assert code == 2
    assert "my-derain" in stderr


def test_no_weights_for_task_exits_3_and_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An install whose registry has no model for the task (every task ships one now, so the bundled
    registry is swapped for an empty one)."""
    import ganedit.registry

    photo(tmp_path / "a.png")
    empty = tmp_path / "empty.toml"
    empty.write_text("[models]\n")
    monkeypatch.setattr(ganedit.registry, "bundled_registry_path", lambda: empty)
    code, _, stderr = run("sketch2photo", str(tmp_path / "a.png"), "-o", str(tmp_path / "o"))
    assert code == 3
    assert "--weights" in stderr


def test_checkpoint_of_another_task_is_refused(tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    photo(tmp_path / "a.png")
    code, _, stderr = run(
        "derain", str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "--weights", str(checkpoints["inpaint"])
    )
    assert code == 2
    assert "inpaint" in stderr and "derain" in stderr


def test_help_lists_commands_and_examples() -> None:
    code, stdout, _ = run("--help")
    assert code == 0
    for command in ("derain", "inpaint", "sketch2photo", "models", "weights"):
        assert command in stdout
    code, stdout, _ = run("inpaint", "--help")
    assert code == 0 and "Examples:" in stdout and "--mask" in stdout


def test_cli_import_and_help_do_not_import_torch() -> None:
    code = (
        "import sys, ganedit.cli\n"
        "from click.testing import CliRunner\n"
        "r = CliRunner().invoke(ganedit.cli.main, ['--help'])\n"
        "r2 = CliRunner().invoke(ganedit.cli.main, ['derain', '--help'])\n"
        "assert r.exit_code == 0 and r2.exit_code == 0\n"
        "heavy = [m for m in ('torch', 'huggingface_hub', 'numpy', 'safetensors') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == ""


def test_models_list_json_with_user_registry(tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    import hashlib

    registry = tmp_path / "reg.toml"
    sha = hashlib.sha256(checkpoints["derain"].read_bytes()).hexdigest()
    entry = f'task = "derain"\narch = "pan"\nfile = "{checkpoints["derain"]}"\nsha256 = "{sha}"\n'
    registry.write_text(f'[models."local-derain"]\n{entry}')
    code, stdout, _ = run("models", "list", "--json", "--registry", str(registry))
    assert code == 0
    rows = {r["name"]: r for r in json.loads(stdout)}
    assert rows["local-derain"]["bundled"] is True and rows["local-derain"]["sha256"] == sha
    # and the registered name works for editing
    photo(tmp_path / "a.png")
    args = ["--model", "local-derain", "--registry", str(registry)]
    code, _, stderr = run("derain", str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), *args)
    assert code == 0, stderr


def test_jpeg_with_transparency_fails_naming_the_file(tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[..., 3] = 128  # real transparency
    Image.fromarray(rgba, "RGBA").save(tmp_path / "logo.png")
    code, _, stderr = run("derain", str(tmp_path / "logo.png"), "-o", str(tmp_path / "logo.jpg"),
                          "--weights", str(checkpoints["derain"]))  # fmt: skip
    assert code == 1
    assert "logo.png" in stderr and "transparency" in stderr
    assert not (tmp_path / "logo.jpg").exists()


def test_named_file_written_next_to_itself_with_suffix(tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    src = photo(tmp_path / "photos" / "a.png")
    code, _, stderr = run("derain", str(src), "-o", str(tmp_path / "photos"), "--suffix", "_x",
                          "--weights", str(checkpoints["derain"]))  # fmt: skip
    assert code == 0, stderr
    assert (tmp_path / "photos" / "a_x.png").is_file()


def test_trailing_slash_means_a_folder(tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    src = photo(tmp_path / "a.png")
    code, _, stderr = run(
        "derain", str(src), "-o", str(tmp_path / "v1.png") + "/", "--weights", str(checkpoints["derain"])
    )
    assert code == 0, stderr
    assert (tmp_path / "v1.png" / "a.png").is_file()


def test_no_images_in_a_folder_is_nothing_to_do_but_named_non_images_are_an_error(
    tmp_path: Path, checkpoints: dict[str, Path]
) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    weights = ("--weights", str(checkpoints["derain"]))
    code, _, stderr = run("derain", str(tmp_path / "empty"), "-o", str(tmp_path / "o"), *weights)
    assert code == 0, stderr  # a cron job over a folder that has nothing new
    assert "nothing to do: no images found" in stderr and "notes.txt" in stderr
    named = tmp_path / "empty" / "notes.txt"
    code, _, stderr = run("derain", str(named), "-o", str(tmp_path / "o"), *weights)
    assert code == 2
    assert "no images found" in stderr and "notes.txt" in stderr


def test_misspelt_model_is_an_error_even_when_all_outputs_exist(
    tmp_path: Path, checkpoints: dict[str, Path]
) -> None:
    src = photo(tmp_path / "in" / "a.png")
    assert run("derain", str(src), "-o", str(tmp_path / "o"), "--weights", str(checkpoints["derain"]))[0] == 0
    code, _, stderr = run("derain", str(src), "-o", str(tmp_path / "o"), "--model", "pan-deriain")
    assert code == 2 and "pan-deriain" in stderr
