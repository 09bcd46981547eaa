"""Issue 15, items 8, 11 and 17: outputs are skipped only when they were made from the same input with
the same settings; a file's pixels never depend on the other files of a run; big photos go one at a
time, with progress tile by tile and each file's own seconds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import ganedit
from ganedit.cli import main


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
