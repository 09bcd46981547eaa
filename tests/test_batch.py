"""The folder runner with a stand-in editor: ordering, one file at a time, interrupts, model failures."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganedit.batch import Shard, plan_jobs, run_jobs
from ganedit.errors import UsageError
from ganedit.tasks import get_task


@dataclass
class FakeEditor:
    """Inverts pixels; records the calls it was given; can be told to fail or be interrupted."""

    batch_size: int = 4
    interrupt_on_call: int | None = None
    fail_on_call: int | None = None
    calls: list[int] = field(default_factory=list)
    name: str = "fake"
    sha256: str = "0" * 64
    device: str = "cpu"
    precision: str = "fp32"
    flip_average: bool = False
    strength: float = 1.0
    task = get_task("derain")

    def inspect(self, pixels: np.ndarray) -> list[str]:
        return []

    def edit_many(
        self, items: list[tuple[np.ndarray, np.ndarray | None]], progress: object = None
    ) -> list[np.ndarray]:
        self.calls.append(len(items))
        if self.interrupt_on_call == len(self.calls):
            raise KeyboardInterrupt
        if self.fail_on_call == len(self.calls):
            raise RuntimeError("CUDA out of memory (simulated)")
        return [(np.iinfo(p.dtype).max - p) for p, _ in items]


def _folder(root: Path, n: int, size: tuple[int, int] = (20, 16)) -> Path:
    root.mkdir(parents=True)
    for i in range(n):
        pixels = np.full((size[1], size[0], 3), i * 10, dtype=np.uint8)
        Image.fromarray(pixels).save(root / f"{i:02d}.png")
    return root


def test_each_file_goes_through_the_model_alone_and_outputs_correct(tmp_path: Path) -> None:
    # never batched with other files, whatever --batch-size: a file's pixels must not depend on its
    # neighbours (batched forwards round differently), and each output is written as soon as it is done
    src = _folder(tmp_path / "in", 6)
    editor = FakeEditor(batch_size=4)
    report = run_jobs(plan_jobs([src], tmp_path / "out"), editor)  # type: ignore[arg-type]
    assert report.exit_code == 0 and report.count("ok") == 6
    assert editor.calls == [1] * 6
    out = np.asarray(Image.open(tmp_path / "out" / "03.png"))
    assert (out == 255 - 30).all()


def test_model_error_fails_that_file_only(tmp_path: Path) -> None:
    src = _folder(tmp_path / "in", 4)
    editor = FakeEditor(batch_size=2, fail_on_call=1)
    report = run_jobs(plan_jobs([src], tmp_path / "out"), editor)  # type: ignore[arg-type]
    assert report.count("failed") == 1 and report.count("ok") == 3 and report.exit_code == 1
    assert "out of memory" in (report.failed[0].error or "") and "00.png" in (report.failed[0].error or "")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["01.png", "02.png", "03.png"]


def test_interrupt_leaves_only_complete_files(tmp_path: Path) -> None:
    src = _folder(tmp_path / "in", 8)
    editor = FakeEditor(batch_size=2, interrupt_on_call=3)
    with pytest.raises(KeyboardInterrupt) as caught:
        run_jobs(plan_jobs([src], tmp_path / "out"), editor)  # type: ignore[arg-type]
    report = caught.value.report  # type: ignore[attr-defined]
    assert report.interrupted and report.exit_code == 1
    written = sorted((tmp_path / "out").iterdir())
    assert [p.name for p in written] == ["00.png", "01.png"]  # no temp files, no partials
    for path in written:
        Image.open(path).load()  # every file left behind decodes completely


def test_shard_parse_and_env() -> None:
    assert Shard.parse("1/3") == Shard(1, 3)
    for bad in ("3/3", "-1/2", "a/b", "1"):
        with pytest.raises(UsageError):
            Shard.parse(bad)


def test_two_inputs_writing_one_output_is_refused(tmp_path: Path) -> None:
    a = _folder(tmp_path / "a", 1)
    b = _folder(tmp_path / "b", 1)
    with pytest.raises(UsageError, match="both write"):
        plan_jobs([a, b], tmp_path / "out")
