"""ganedit.io.atomic, the one atomic writer: what users rely on when ganedit writes a file.

A file appears complete or not at all (an interrupted write leaves the old file and no temporary file),
and it gets the permissions any program's new file gets under the user's umask: photos, checkpoints
and training state alike.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pytest
import torch

from ganedit import checkpoint, images
from ganedit import io as gio
from ganedit.errors import ImageError
from ganedit.io.atomic import TEMP_NAME, atomic_write, atomic_write_named, sweep_temporary_files, write_atomic
from ganedit.train import state
from tinymodels import make_model

pytestmark = pytest.mark.skipif(os.name == "nt", reason="POSIX permissions")


@pytest.fixture
def umask() -> Iterator[None]:
    """Restore the process umask after a test that sets it (tests run in one thread: no race)."""
    before = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(before)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_files_follow_the_umask(tmp_path: Path, umask: None, mask: int, expected: int) -> None:
    os.umask(mask)
    target = tmp_path / "sub" / "out.bin"
    atomic_write(target, b"data")
    assert target.read_bytes() == b"data"
    assert _mode(target) == expected  # like open(), not mkstemp's 0600
    assert _listing(target.parent) == ["out.bin"]


def test_replacing_a_file_keeps_its_permissions(tmp_path: Path, umask: None) -> None:
    target = tmp_path / "out.png"
    target.write_bytes(b"old")
    target.chmod(0o640)
    atomic_write(target, b"new")
    assert target.read_bytes() == b"new" and _mode(target) == 0o640
    target.chmod(0o444)  # read-only: still replaced (the folder is writable), still read-only
    atomic_write_named(target, lambda tmp: tmp.write_bytes(b"by name"))
    assert target.read_bytes() == b"by name" and _mode(target) == 0o444


def test_failure_mid_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.png"
    target.write_bytes(b"old")

    def half_then_fail(handle: BinaryIO) -> None:
        handle.write(b"new" * 1000)
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        atomic_write(target, half_then_fail)
    assert target.read_bytes() == b"old"
    assert _listing(tmp_path) == ["out.png"]

    with pytest.raises(KeyboardInterrupt):  # Ctrl-C in the middle of a write
        atomic_write(tmp_path / "fresh.png", lambda handle: (handle.write(b"x"), _interrupt()))
    assert _listing(tmp_path) == ["out.png"]


def _interrupt() -> None:
    raise KeyboardInterrupt


def test_interrupted_before_the_rename_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out.png"
    target.write_bytes(b"old")
    monkeypatch.setattr(os, "fsync", lambda fd: _interrupt())
    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, b"new")
    assert target.read_bytes() == b"old"
    assert _listing(tmp_path) == ["out.png"]


def test_streaming_writer_and_temporary_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    real_replace = os.replace

    def spy(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        seen.append(Path(src).name)
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    target = tmp_path / "big.bin"

    def chunks(handle: BinaryIO) -> None:
        for i in range(64):
            handle.write(bytes([i]) * 4096)

    atomic_write(target, chunks)
    assert target.stat().st_size == 64 * 4096
    assert len(seen) == 1 and TEMP_NAME.match(seen[0]) and seen[0].startswith(".big.bin.")


def test_write_atomic_names_the_file_in_an_image_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(ImageError, match=r"out\.jpg: cannot write"):
        write_atomic(tmp_path / "file" / "out.jpg", b"x")


def test_images_are_written_complete_with_the_usual_permissions(tmp_path: Path, umask: None) -> None:
    os.umask(0o027)
    pixels = np.arange(8 * 6 * 3, dtype=np.uint8).reshape(8, 6, 3)
    target = tmp_path / "photo.png"
    write_atomic(target, gio.encode_picture(gio.Picture(pixels, "png"), "png"))
    np.testing.assert_array_equal(gio.read_picture(target).pixels, pixels)
    assert _mode(target) == 0o640


def test_checkpoints_follow_the_umask_and_survive_a_failed_save(
    tmp_path: Path, umask: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "m.safetensors"
    os.umask(0o077)
    checkpoint.save_checkpoint(path, make_model("derain"), task="derain")
    assert _mode(path) == 0o600
    os.umask(0o022)
    path.unlink()
    checkpoint.save_checkpoint(path, make_model("derain"), task="derain")
    assert _mode(path) == 0o644
    before = path.read_bytes()

    def crash(tensors: object, filename: str, metadata: object = None) -> None:
        Path(filename).write_bytes(b"half a checkpoint")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint, "save_file", crash)
    with pytest.raises(OSError, match="No space left"):
        checkpoint.save_checkpoint(path, make_model("derain", seed=1), task="derain")
    assert path.read_bytes() == before
    assert _listing(tmp_path) == ["m.safetensors"]


def test_training_state_is_not_left_private(tmp_path: Path, umask: None) -> None:
    os.umask(0o022)
    saved = state.save_state(tmp_path / "state", 3, {"w": torch.zeros(2)}, {"note": "x"})
    assert _mode(saved) == 0o644  # it was mkstemp's 0600: unreadable to a colleague sharing the run
    assert _listing(saved.parent) == [saved.name]


def test_a_dead_writers_temporary_file_is_swept(tmp_path: Path) -> None:
    dead = tmp_path / ".out.png.ganedit-999999999-otherhost.abcdef12.tmp"
    dead.write_bytes(b"x")
    assert sweep_temporary_files([tmp_path], max_age=0.0) == [dead]
    assert not dead.exists()


def test_old_images_module_still_exports_the_old_names() -> None:
    for name in images.__all__:
        assert getattr(images, name) is getattr(gio, name)
