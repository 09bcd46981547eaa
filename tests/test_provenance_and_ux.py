"""Issue 15, items 8, 11, 17-20: outputs are skipped only when they were made from the same input with
the same settings; a file's pixels never depend on the other files of a run; big photos go one at a
time with honest progress; the Python API keeps orientation and metadata; --dry-run, globs, --compare
and the other conveniences a new user reaches for."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image, ImageOps

import ganedit
from ganedit.cli import main
from ganedit.errors import ImageError, UsageError

REPO = Path(__file__).resolve().parents[1]


def photo(path: Path, size: tuple[int, int] = (48, 40), seed: int = 0, **save: object) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path, **save)
    return path


def mask_file(path: Path, box: tuple[int, int, int, int], size: tuple[int, int] = (48, 40)) -> Path:
    m = np.zeros((size[1], size[0]), dtype=np.uint8)
    x0, y0, x1, y1 = box
    m[y0:y1, x0:x1] = 255
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(m).save(path)
    return path


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from tinymodels import make_checkpoint

    folder = tmp_path_factory.mktemp("ckpt")
    return {
        "derain": make_checkpoint(folder / "derain.safetensors", "derain"),
        "derain2": make_checkpoint(folder / "derain2.safetensors", "derain", seed=5),
        "inpaint": make_checkpoint(folder / "inpaint.safetensors", "inpaint"),
    }


def run(*args: str, input: bytes | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def report_of(*args: str, input: bytes | None = None) -> tuple[int, dict, str]:  # type: ignore[type-arg]
    code, stdout, stderr = run(*args, "--json", input=input)
    return code, json.loads(stdout) if stdout.strip() else {}, stderr


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_file())


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im).copy()


# ------------------------------------------------------------ 8. skip only what the same settings made


def test_an_output_made_from_another_input_is_not_taken_for_done(
    tmp_path: Path, checkpoints: dict[str, Path]
) -> None:
    a, b = photo(tmp_path / "a.png", seed=1), photo(tmp_path / "b.png", seed=2)
    out = tmp_path / "out.png"
    weights = ("--weights", str(checkpoints["derain"]))
    assert run("derain", str(b), "-o", str(out), *weights)[0] == 0
    made_from_b = out.read_bytes()

    code, report, stderr = report_of("derain", str(a), "-o", str(out), *weights)
    assert code == 0, stderr
    assert report["totals"]["skipped"] == 1 and report["totals"]["skipped_stale"] == 1
    entry = report["files"][0]
    assert entry["status"] == "skipped" and entry["stale"] is True
    assert "another input" in entry["warnings"][0] and "--overwrite" in entry["warnings"][0]
    assert "1 made with other settings" in stderr and "--overwrite" in stderr
    assert out.read_bytes() == made_from_b  # nothing written over without --overwrite

    code, report, stderr = report_of("derain", str(a), "-o", str(out), *weights, "--overwrite")
    assert code == 0 and report["totals"]["ok"] == 1, stderr
    code, report, _ = report_of("derain", str(a), "-o", str(out), *weights)  # now up to date
    assert report["totals"]["skipped"] == 1 and report["totals"]["skipped_stale"] == 0
    assert report["files"][0]["stale"] is False


@pytest.mark.parametrize(
    "change",
    [
        {"--no-flip-average": None},
        {"--weights": "derain2"},
        {"--precision": "bf16"},
        {"--quality": "80"},
        {"--strength": "0.5"},
        {"--compare": None},
    ],
    ids=lambda c: next(iter(c)),
)
def test_a_folder_rerun_with_other_settings_reports_every_output_as_stale(
    tmp_path: Path, checkpoints: dict[str, Path], change: dict[str, str | None]
) -> None:
    src = tmp_path / "in"
    for i in range(3):
        photo(src / f"{i}.jpg", seed=i)
    out = tmp_path / "out"
    settings: dict[str, str | None] = {
        "--weights": "derain", "--precision": "fp32", "--format": "jpg", "--quality": "90"
    }  # fmt: skip

    def args(options: dict[str, str | None]) -> list[str]:
        flat = ["derain", str(src), "-o", str(out)]
        for key, value in options.items():
            flat += (
                [key] if value is None else [key, str(checkpoints[value]) if key == "--weights" else value]
            )
        return flat

    assert run(*args(settings))[0] == 0
    before = {p: p.read_bytes() for p in out.glob("*.jpg")}
    code, report, stderr = report_of(*args(settings))  # the same settings: done, nothing stale
    assert code == 0 and report["totals"]["skipped"] == 3 and report["totals"]["skipped_stale"] == 0, stderr
    assert "made with other settings" not in stderr

    code, report, stderr = report_of(*args({**settings, **change}))
    assert code == 0, stderr
    assert report["totals"]["skipped"] == 3 and report["totals"]["skipped_stale"] == 3
    assert all(f["stale"] and "other settings" in f["warnings"][0] for f in report["files"])
    assert "3 made with other settings" in stderr and "--overwrite" in stderr
    assert {p: p.read_bytes() for p in out.glob("*.jpg")} == before


def test_an_inpainting_with_another_mask_is_stale(tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    src = photo(tmp_path / "x.png")
    m1 = mask_file(tmp_path / "m1.png", (5, 5, 20, 20))
    m2 = mask_file(tmp_path / "m2.png", (20, 10, 40, 30))
    out = tmp_path / "out"
    weights = ("--weights", str(checkpoints["inpaint"]))
    assert run("inpaint", str(src), "--mask", str(m1), "-o", str(out), *weights)[0] == 0
    code, report, _ = report_of("inpaint", str(src), "--mask", str(m1), "-o", str(out), *weights)
    assert report["totals"]["skipped_stale"] == 0
    code, report, _ = report_of("inpaint", str(src), "--mask", str(m2), "-o", str(out), *weights)
    assert code == 0 and report["totals"]["skipped_stale"] == 1
    assert "mask" in report["files"][0]["warnings"][0]


def test_resume_and_outputs_without_a_record_are_still_skipped(
    tmp_path: Path, checkpoints: dict[str, Path]
) -> None:
    src = tmp_path / "in"
    for i in range(4):
        photo(src / f"{i}.png", seed=i)
    out = tmp_path / "out"
    weights = ("--weights", str(checkpoints["derain"]))
    assert run("derain", str(src), "-o", str(out), *weights, "--shard", "0/2")[0] == 0
    assert run("derain", str(src), "-o", str(out), *weights, "--shard", "1/2")[0] == 0
    (out / "3.png").unlink()  # as if the run had been interrupted before this one
    code, report, stderr = report_of("derain", str(src), "-o", str(out), *weights)
    assert code == 0, stderr
    assert report["totals"] == {**report["totals"], "ok": 1, "skipped": 3, "skipped_stale": 0}
    assert [f["output"] for f in report["files"] if f["status"] == "ok"] == [str(out / "3.png")]

    # An output edited by hand since, or made by an older ganedit (no record): skipped, never stale.
    Image.fromarray(np.zeros((40, 48, 3), np.uint8)).save(out / "0.png")
    code, report, _ = report_of("derain", str(src), "-o", str(out), "--no-flip-average", *weights)
    stale = {Path(f["output"]).name for f in report["files"] if f["stale"]}
    assert stale == {"1.png", "2.png", "3.png"}
    for record in (out / ".ganedit").iterdir():
        record.unlink()
    code, report, _ = report_of("derain", str(src), "-o", str(out), "--no-flip-average", *weights)
    assert code == 0 and report["totals"]["skipped"] == 4 and report["totals"]["skipped_stale"] == 0


def test_stdin_input_is_checked_against_the_record_too(tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    a = photo(tmp_path / "a.png", seed=1).read_bytes()
    b = photo(tmp_path / "b.png", seed=2).read_bytes()
    out = tmp_path / "out.png"
    weights = ("--weights", str(checkpoints["derain"]))
    assert run("derain", "-", "-o", str(out), *weights, input=b)[0] == 0
    code, report, _ = report_of("derain", "-", "-o", str(out), *weights, input=b)
    assert report["totals"]["skipped_stale"] == 0
    code, report, _ = report_of("derain", "-", "-o", str(out), *weights, input=a)
    assert code == 0 and report["totals"]["skipped_stale"] == 1


def test_report_merge_adds_up_the_stale_skips(tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    src = tmp_path / "in"
    for i in range(4):
        photo(src / f"{i}.png", seed=i)
    out = tmp_path / "out"
    weights = ("--weights", str(checkpoints["derain"]))
    assert run("derain", str(src), "-o", str(out), *weights)[0] == 0
    files = []
    for k in range(2):
        code, stdout, _ = run("derain", str(src), "-o", str(out), *weights, "--no-flip-average",
                              "--shard", f"{k}/2", "--json")  # fmt: skip
        files.append(tmp_path / f"r{k}.json")
        files[-1].write_text(stdout)
    code, stdout, stderr = run("report", "merge", *map(str, files), "--json")
    assert code == 0, stderr
    assert json.loads(stdout)["totals"]["skipped_stale"] == 4


# ------------------------------------------------------------ 11. a file's pixels ignore its neighbours


def test_a_file_gives_the_same_pixels_alone_and_batched_with_others_under_bf16(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Batched forwards with 2 threads give other roundings than single ones in bf16 (oneDNN splits the
    # work by batch size): 3 of 4 files differed here. A resumed run batches files differently.
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        src = tmp_path / "in"
        for i in range(4):
            photo(src / f"{i}.png", size=(160, 120), seed=i)
        common = ("--model", "pan-derain", "--device", "cpu", "--precision", "bf16", "--batch-size", "4")
        assert run("derain", str(src), "-o", str(tmp_path / "together"), *common)[0] == 0
        for i in range(4):
            alone = tmp_path / "alone" / f"{i}.png"
            assert run("derain", str(src / f"{i}.png"), "-o", str(alone), *common)[0] == 0
            assert np.array_equal(pixels(alone), pixels(tmp_path / "together" / f"{i}.png")), i
    finally:
        torch.set_num_threads(threads)


# ------------------------------------------------------------ 17. big photos one at a time


def test_json_seconds_are_each_files_own(tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    src = tmp_path / "in"
    photo(src / "a_big.png", size=(640, 512))
    photo(src / "b_small.png", size=(24, 16))
    code, report, stderr = report_of(
        "derain", str(src), "-o", str(tmp_path / "out"), "--weights", str(checkpoints["derain"]),
        "--tile", "64", "--batch-size", "1",
    )  # fmt: skip
    assert code == 0, stderr
    seconds = {Path(f["input"]).name: f["seconds"] for f in report["files"]}
    # b was decoded while a was in the model: waiting behind a is not b's time
    assert seconds["b_small.png"] < seconds["a_big.png"] / 3, seconds
    assert sum(seconds.values()) <= report["seconds"] * 1.5 + 0.05


def test_tiled_photos_go_one_at_a_time_with_progress_per_tile(tmp_path: Path) -> None:
    from tinymodels import make_editor

    src = tmp_path / "in"
    for i in range(3):
        photo(src / f"{i}.png", size=(256, 192), seed=i)
    photo(src / "done.png", seed=9)
    (tmp_path / "out").mkdir()
    photo(tmp_path / "out" / "done.png", seed=9)  # skipped: not part of the work to do
    editor = make_editor("derain", tile=64, overlap=16, batch_size=2)
    progress: list[float] = []
    written_at: dict[str, float] = {}

    def on_entry(entry: object) -> None:
        written_at[Path(entry.input).name] = progress[-1] if progress else 0.0  # type: ignore[attr-defined]

    report = ganedit.edit_folder([src], tmp_path / "out", editor=editor, on_progress=progress.append,
                                 on_entry=on_entry)  # fmt: skip
    assert report.count("ok") == 3 and report.count("skipped") == 1
    assert progress == sorted(progress) and progress[-1] == 3.0
    # several steps inside each photo (its tiles, two at a time), not one jump per photo or per batch
    for i in range(3):
        inside = [p for p in progress if i < p < i + 1]
        assert len(inside) >= 4, progress
    # the first photo is written while the others are still in the model
    assert written_at["0.png"] < 3.0


# ------------------------------------------------------------ 18. the Python API


def _sideways_jpeg(path: Path) -> Path:
    rng = np.random.default_rng(3)
    im = Image.fromarray(rng.integers(0, 256, (40, 64, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    exif[0x010F] = "Canon"
    exif[0x0132] = "2024:05:01 10:00:00"
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    im.save(path, exif=exif, icc_profile=icc, quality=95)
    return path


def test_the_pil_api_applies_the_exif_orientation(tmp_path: Path) -> None:
    from tinymodels import make_editor

    path = _sideways_jpeg(tmp_path / "rotated.jpg")
    editor = make_editor("derain")
    with Image.open(path) as im:
        out = editor(im)
        upright = np.asarray(ImageOps.exif_transpose(im))
    assert out.size == (40, 64)  # upright: 40 wide, 64 high
    assert np.array_equal(np.asarray(out), editor.edit(upright))


def test_edit_file_keeps_metadata_and_writes_atomically(tmp_path: Path) -> None:
    from tinymodels import make_editor

    src = _sideways_jpeg(tmp_path / "rotated.jpg")
    dst = tmp_path / "out" / "clean.jpg"
    editor = make_editor("derain")
    entry = ganedit.edit_file(src, dst, editor=editor)
    assert entry.status == "ok" and Path(entry.output) == dst  # type: ignore[arg-type]
    with Image.open(dst) as im:
        assert im.size == (40, 64)
        exif = im.getexif()
        assert exif[0x010F] == "Canon" and exif[0x0132] == "2024:05:01 10:00:00"
        assert exif.get(0x0112, 1) == 1
        assert im.info.get("icc_profile")
    assert sorted(p.name for p in dst.parent.iterdir()) == [".ganedit", "clean.jpg"]  # no temp file left

    again = ganedit.edit_file(src, dst, editor=editor)  # done already, with these settings
    assert again.status == "skipped"
    other = photo(tmp_path / "other.jpg")
    with pytest.raises(UsageError, match="overwrite"):
        ganedit.edit_file(other, dst, editor=editor)
    assert ganedit.edit_file(other, dst, editor=editor, overwrite=True).status == "ok"
    with pytest.raises(UsageError, match="input"):
        ganedit.edit_file(src, src, editor=editor, overwrite=True)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(src.read_bytes()[:300])
    with pytest.raises(ImageError, match=r"broken\.jpg"):
        ganedit.edit_file(broken, tmp_path / "b.png", editor=editor)
    assert not (tmp_path / "b.png").exists()


# ------------------------------------------------------------ 19. conveniences


def test_dry_run_prints_the_plan_and_loads_no_model(tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    src = tmp_path / "in"
    for name in ("a", "b", "c"):
        photo(src / f"{name}.png")
    out = tmp_path / "out"
    weights = ("--weights", str(checkpoints["derain"]))
    assert run("derain", str(src / "a.png"), "-o", str(out / "a.png"), *weights)[0] == 0
    assert run("derain", str(src / "b.png"), "-o", str(out / "b.png"), *weights, "--no-flip-average")[0] == 0
    before = sorted(p.name for p in out.iterdir())

    # a checkpoint that cannot be loaded: a real run stops with exit 2, a dry run never loads it
    fake = tmp_path / "fake.safetensors"
    fake.write_bytes(checkpoints["derain"].read_bytes()[:100])
    assert run("derain", str(src), "-o", str(out), "--weights", str(fake), "--overwrite")[0] == 2
    code, stdout, stderr = run("derain", str(src), "-o", str(out), *weights, "--dry-run")
    assert code == 0, stderr
    lines = stdout.splitlines()
    assert any(line.startswith("skip") and "a.png" in line for line in lines), stdout
    assert any(line.startswith("stale") and "b.png" in line and "--overwrite" in line for line in lines)
    assert any(line.startswith("write") and "c.png" in line for line in lines)
    assert sorted(p.name for p in out.iterdir()) == before  # nothing written, no temp file, no record

    code, stdout, stderr = run("derain", str(src), "-o", str(out), "--weights", str(fake), "--dry-run",
                               "--json", "--overwrite")  # fmt: skip
    assert code == 0, stderr
    plan = json.loads(stdout)
    assert plan["dry_run"] is True
    assert {Path(f["input"]).name: f["action"] for f in plan["files"]} == {
        "a.png": "write",
        "b.png": "write",
        "c.png": "write",
    }
    assert plan["totals"]["write"] == 3
    # a refusal is still a refusal (exit 2), named as in a real run
    code, _, stderr = run("derain", str(src), "-o", str(src), *weights, "--dry-run")
    assert code == 2 and "input folder itself" in stderr


def test_inpaint_dry_run_names_the_file_that_would_fail(tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    src = tmp_path / "in"
    photo(src / "x.png")
    photo(src / "y.png")
    masks = tmp_path / "masks"
    mask_file(masks / "x.png", (1, 1, 9, 9))
    code, stdout, _ = run("inpaint", str(src), "--mask", str(masks), "-o", str(tmp_path / "o"),
                          "--weights", str(checkpoints["inpaint"]), "--dry-run", "--json")  # fmt: skip
    assert code == 0
    actions = {Path(f["input"]).name: (f["action"], f["reason"]) for f in json.loads(stdout)["files"]}
    assert actions["x.png"] == ("write", None)
    assert actions["y.png"][0] == "fail" and "no mask" in actions["y.png"][1]


def test_quoted_glob_patterns_are_expanded(tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    src = tmp_path / "photos"
    photo(src / "a.jpg")
    photo(src / "b.jpg", seed=1)
    photo(src / "c.png", seed=2)
    photo(src / "trip" / "d.jpg", seed=3)
    literal = photo(src / "[x].png", seed=4)  # a name that looks like a pattern is taken as it is
    weights = ("--weights", str(checkpoints["derain"]))
    code, _, stderr = run("derain", f"{src}/*.jpg", "-o", str(tmp_path / "o1"), *weights)
    assert code == 0, stderr
    assert files_in(tmp_path / "o1") == ["a.jpg", "b.jpg"]
    code, _, stderr = run("derain", f"{src}/**/*.jpg", "-o", str(tmp_path / "o2"), *weights)
    assert code == 0, stderr
    assert files_in(tmp_path / "o2") == ["a.jpg", "b.jpg", "d.jpg"]
    code, _, stderr = run("derain", str(literal), "-o", str(tmp_path / "o3.png"), *weights)
    assert code == 0 and (tmp_path / "o3.png").is_file(), stderr
    code, _, stderr = run("derain", f"{src}/*.webp", "-o", str(tmp_path / "o4"), *weights)
    assert code == 2 and "*.webp" in stderr and "matches no file" in stderr


@pytest.mark.parametrize(("fmt", "suffix"), [("jpeg", ".jpg"), ("JPG", ".jpg"), ("tif", ".tif")])
def test_format_aliases(tmp_path: Path, checkpoints: dict[str, Path], fmt: str, suffix: str) -> None:
    src = photo(tmp_path / "in" / "a.png")
    code, _, stderr = run("derain", str(src.parent), "-o", str(tmp_path / "o"), "--format", fmt,
                          "--weights", str(checkpoints["derain"]))  # fmt: skip
    assert code == 0, stderr
    assert files_in(tmp_path / "o") == [f"a{suffix}"]
    code, _, stderr = run("derain", str(src), "-o", str(tmp_path / f"x{suffix}"), "--format", fmt,
                          "--weights", str(checkpoints["derain"]))  # fmt: skip
    assert code == 0, stderr


def test_compare_writes_input_and_output_side_by_side(tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    src = photo(tmp_path / "a.png")
    weights = ("--weights", str(checkpoints["derain"]))
    assert run("derain", str(src), "-o", str(tmp_path / "plain.png"), *weights)[0] == 0
    code, _, stderr = run("derain", str(src), "-o", str(tmp_path / "cmp.png"), *weights, "--compare")
    assert code == 0, stderr
    both = pixels(tmp_path / "cmp.png")
    assert both.shape == (40, 96, 3)
    assert np.array_equal(both[:, :48], pixels(src))
    assert np.array_equal(both[:, 48:], pixels(tmp_path / "plain.png"))
    # gray in, colour out (sketch2photo): the input half is shown in the output's colours
    gray = tmp_path / "g.png"
    Image.fromarray(np.full((16, 16), 200, np.uint8)).save(gray)
    from tinymodels import make_checkpoint

    s2p = make_checkpoint(tmp_path / "s2p.safetensors", "sketch2photo")
    code, _, stderr = run("sketch2photo", str(gray), "-o", str(tmp_path / "g_cmp.png"), "--weights", str(s2p),
                          "--compare")  # fmt: skip
    assert code == 0, stderr
    g = pixels(tmp_path / "g_cmp.png")
    assert g.shape == (16, 32, 3) and (g[:, :16] == 200).all()


def _registry(tmp_path: Path, checkpoints: dict[str, Path], name: str, card: str | None) -> Path:
    text = (
        f'[models."{name}"]\ntask = "derain"\narch = "pan"\nfile = "{checkpoints["derain"]}"\n'
        f'sha256 = "{__import__("hashlib").sha256(checkpoints["derain"].read_bytes()).hexdigest()}"\n'
    )
    if card is not None:
        text += f'card = "{card}"\n'
    path = tmp_path / "reg.toml"
    path.write_text(text)
    return path


def test_models_list_does_not_truncate_names_when_piped(tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    name = "studio-derain-" + "very-long-name-" * 4 + "v2"
    registry = _registry(tmp_path, checkpoints, name, None)
    code, stdout, stderr = run("models", "list", "--registry", str(registry))
    assert code == 0, stderr
    assert name in stdout and "…" not in stdout
    row = next(line for line in stdout.splitlines() if line.startswith(name))
    assert row.split()[1] == "derain"


def test_models_show_prints_no_none_and_no_card_path_that_does_not_exist(
    tmp_path: Path, checkpoints: dict[str, Path]
) -> None:
    registry = _registry(tmp_path, checkpoints, "studio-derain", "cards/studio.md")
    code, stdout, stderr = run("models", "show", "studio-derain", "--registry", str(registry))
    assert code == 0, stderr
    assert "None" not in stdout and "cards/studio.md" not in stdout
    assert re.search(r"default: no\b", stdout)
    (tmp_path / "cards").mkdir()
    (tmp_path / "cards" / "studio.md").write_text("# studio-derain\n")
    code, stdout, _ = run("models", "show", "studio-derain", "--registry", str(registry))
    assert f"card: {tmp_path / 'cards' / 'studio.md'}" in stdout
    # the bundled models' cards are where models show says they are (inside the package once installed)
    code, stdout, _ = run("models", "show", "pan-derain")
    card = re.search(r"card: (\S+)", stdout)
    assert card is not None and Path(card.group(1)).is_file() and "None" not in stdout


def test_rerender_frame_names_are_zero_padded_so_they_sort(tmp_path: Path) -> None:
    from ganedit.archs.tdgan import TDGAN, TDGANConfig
    from ganedit.checkpoint import save_checkpoint

    config = TDGANConfig(
        tags=(("azimuth", ("0", "90", "180", "270")), ("light", ("front", "left"))),
        image_size=16, identity_dim=4, tag_dim=2, ngf=4, ndf=4,
    )  # fmt: skip
    torch.manual_seed(0)
    ckpt = tmp_path / "tdgan.safetensors"
    save_checkpoint(ckpt, TDGAN(config), task="rerender")
    src = photo(tmp_path / "chair.png", size=(20, 12))
    out = tmp_path / "out"
    code, _, stderr = run("rerender", str(src), "--weights", str(ckpt), "--device", "cpu",
                          "--tag", "azimuth=all", "--refine-steps", "0", "-o", str(out))  # fmt: skip
    assert code == 0, stderr
    names = sorted(p.name for p in out.glob("*.png"))  # beside them: .ganedit/, their provenance records
    assert names == [f"chair_azimuth-{a}.png" for a in ("000", "090", "180", "270")]


# ------------------------------------------------------------ 20. README


def test_readme_says_how_to_install_the_cpu_build_of_torch() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    # the two commands CI runs, verbatim
    venv = "python3 -m venv .venv && . .venv/bin/activate && "
    assert f"{venv}pip install . && ganedit derain samples/rain -o out/" in readme
    assert f'{venv}pip install ".[test]" && python -m pytest' in readme
    assert "pip install torch torchvision --index-url https://download.pytorch.org/whl/cpu" in readme
    assert "about a minute" not in readme
    assert re.search(r"test suite[^.]*\d+(\.\d+)? (s|seconds|min|minutes)\b", readme)
