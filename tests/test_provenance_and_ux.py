"""Issue 15, items 11 and 17: a file's pixels never depend on the other files of a run; big photos go
one at a time, with progress tile by tile and each file's own seconds."""

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


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from tinymodels import make_checkpoint

    folder = tmp_path_factory.mktemp("ckpt")
    return {"derain": make_checkpoint(folder / "derain.safetensors", "derain")}


def run(*args: str, input: bytes | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def report_of(*args: str, input: bytes | None = None) -> tuple[int, dict, str]:  # type: ignore[type-arg]
    code, stdout, stderr = run(*args, "--json", input=input)
    return code, json.loads(stdout) if stdout.strip() else {}, stderr


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im).copy()


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
