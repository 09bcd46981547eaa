"""What a hostile run found (issue 15): nothing the user owns is written over, nothing is silently
wrong, and odd environments give one line and an exit code instead of a traceback."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from ganedit import api
from ganedit.cli import main
from ganedit.errors import ChecksumError
from ganedit.hub import HubOptions, resolve
from ganedit.registry import ModelSpec


def photo(path: Path, size: tuple[int, int] = (48, 40), seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def mask(path: Path, size: tuple[int, int] = (48, 40)) -> Path:
    m = np.zeros((size[1], size[0]), dtype=np.uint8)
    m[5:20, 5:20] = 255
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(m).save(path)
    return path


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from tinymodels import make_checkpoint

    folder = tmp_path_factory.mktemp("ckpt")
    return {task: make_checkpoint(folder / f"{task}.safetensors", task) for task in ("derain", "inpaint")}


def run(*args: str, input: bytes | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def ganedit(*args: str, **kwargs: object) -> subprocess.CompletedProcess[bytes]:
    """The real command in a child process (real file descriptors for stdin and stdout)."""
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-m", "ganedit", *args], capture_output=kwargs.pop("capture", True), timeout=300,
        check=False, **kwargs,
    )  # fmt: skip


def snapshot(*paths: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in paths}


# ---------------------------------------------------------------------------- 1. stdin input, file output


def test_stdin_skips_an_existing_output_unless_overwrite(
    tmp_path: Path, checkpoints: dict[str, Path]
) -> None:
    data = photo(tmp_path / "other.png").read_bytes()
    keep = tmp_path / "keep.png"
    keep.write_bytes(b"the user's file")
    weights = ("--weights", str(checkpoints["derain"]))
    code, _, stderr = run("derain", "-", "-o", str(keep), *weights, input=data)
    assert code == 0, stderr
    assert "1 skipped" in stderr
    assert keep.read_bytes() == b"the user's file"
    code, _, stderr = run("derain", "-", "-o", str(keep), *weights, "--overwrite", input=data)
    assert code == 0, stderr
    assert Image.open(keep).size == (48, 40)


@pytest.mark.parametrize("overwrite", [False, True])
def test_stdin_redirected_from_the_output_file_is_never_written_over(
    tmp_path: Path, checkpoints: dict[str, Path], overwrite: bool
) -> None:
    original = photo(tmp_path / "photo.png")
    alias = tmp_path / "alias.png"
    os.link(original, alias)  # the same file under another name
    before = original.read_bytes()
    for target in (original, alias):
        args = ["derain", "-", "-o", str(target), "--weights", str(checkpoints["derain"])]
        with original.open("rb") as stdin:  # ganedit derain - -o photo.png < photo.png
            done = ganedit(*args, *(["--overwrite"] if overwrite else []), stdin=stdin)
        stderr = done.stderr.decode()
        assert done.returncode == 2, stderr
        assert "stdin" in stderr and "Traceback" not in stderr
        assert original.read_bytes() == before


# ------------------------------------------------------------------ 2. originals inside the output folder


def test_an_original_inside_the_output_folder_is_never_replaced(
    tmp_path: Path, checkpoints: dict[str, Path]
) -> None:
    photos = tmp_path / "photos"
    photo(photos / "a.png", seed=1)
    original = photo(photos / "trip" / "a.png", seed=2)
    before = snapshot(*photos.rglob("*.png"))
    weights = ("--weights", str(checkpoints["derain"]))
    for recursive in (["-r"], []):
        code, _, stderr = run("derain", str(photos), *recursive, "-o", str(photos / "trip"), "--overwrite",
                              *weights)  # fmt: skip
        assert code == 2, stderr
        assert str(original) in stderr and "Traceback" not in stderr
        assert snapshot(*photos.rglob("*.png")) == before
    # without --overwrite nothing is written over either (the file is skipped)
    code, _, stderr = run("derain", str(photos), "-r", "-o", str(photos / "trip"), *weights)
    assert code == 0, stderr
    assert snapshot(*photos.rglob("*.png")) == before


def test_outputs_inside_the_input_folder_still_resume(tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    photos = tmp_path / "photos"
    photo(photos / "a.png")
    photo(photos / "b.png", seed=1)
    weights = ("--weights", str(checkpoints["derain"]))
    assert run("derain", str(photos), "-r", "-o", str(photos / "clean"), *weights)[0] == 0
    (photos / "clean" / "b.png").unlink()  # as if interrupted before b
    code, _, stderr = run("derain", str(photos), "-r", "-o", str(photos / "clean"), *weights)
    assert code == 0, stderr
    assert "1 done, 1 skipped" in stderr
    assert (photos / "clean" / "b.png").is_file()


# ------------------------------------------------------------------------------------------- 3. masks


@pytest.mark.parametrize("overwrite", [False, True])
def test_masks_are_never_written_over(tmp_path: Path, checkpoints: dict[str, Path], overwrite: bool) -> None:
    x, y = photo(tmp_path / "x.png"), photo(tmp_path / "y.png", seed=1)
    masks = tmp_path / "masks"
    mask(masks / "x.png")
    mask(masks / "y.png")
    before = snapshot(*masks.iterdir())
    extra = ["--overwrite"] if overwrite else []
    weights = ("--weights", str(checkpoints["inpaint"]))
    code, _, stderr = run("inpaint", str(x), str(y), "-o", str(masks), "--mask", str(masks), *extra, *weights)
    assert code == 2, stderr
    assert "mask" in stderr and "Traceback" not in stderr
    assert snapshot(*masks.iterdir()) == before
    # one mask file for all, named as the output too
    single = masks / "x.png"
    code, _, stderr = run("inpaint", str(x), "-o", str(single), "--mask", str(single), *extra, *weights)
    assert code == 2, stderr
    assert snapshot(*masks.iterdir()) == before


# --------------------------------------------------------------------------------- 4. hub-cache eviction


REVISION = "c" * 40


def _cache_entry_linking_outside(cache: Path, outside: Path) -> Path:
    """A hub-cache snapshot entry that is a link to a file of the user's outside the cache."""
    entry = cache / "models--acme--evict-test" / "snapshots" / REVISION / "w.safetensors"
    entry.parent.mkdir(parents=True)
    entry.symlink_to(outside)
    return entry


def _spec(**kw: object) -> ModelSpec:
    fields: dict[str, object] = {
        "name": "evict-test", "task": "derain", "arch": "pan", "file": "w.safetensors",
        "sha256": hashlib.sha256(b"the real weights").hexdigest(), "repo_id": "acme/evict-test",
        "revision": REVISION,
    }  # fmt: skip
    return ModelSpec(**{**fields, **kw})  # type: ignore[arg-type]


def test_eviction_never_deletes_a_file_outside_the_cache(tmp_path: Path) -> None:
    precious = tmp_path / "precious.txt"
    precious.write_bytes(b"not weights: a file of the user's")
    cache = tmp_path / "hub"
    entry = _cache_entry_linking_outside(cache, precious)
    with pytest.raises(ChecksumError):
        resolve(_spec(), HubOptions(cache_dir=cache, offline=True, token=False))
    assert precious.read_bytes() == b"not weights: a file of the user's"
    assert not entry.is_symlink()  # the bad cache entry itself is gone: a retry downloads afresh


def test_a_snapshot_folder_linked_from_outside_the_cache_is_left_alone(tmp_path: Path) -> None:
    elsewhere = tmp_path / "my-models"
    elsewhere.mkdir()
    precious = elsewhere / "w.safetensors"
    precious.write_bytes(b"a checkpoint of the user's, not the registry's")
    cache = tmp_path / "hub"
    snapshot_dir = cache / "models--acme--evict-test" / "snapshots" / REVISION
    snapshot_dir.parent.mkdir(parents=True)
    snapshot_dir.symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(ChecksumError, match="could not remove it from the cache"):
        resolve(_spec(), HubOptions(cache_dir=cache, offline=True, token=False))
    assert precious.read_bytes() == b"a checkpoint of the user's, not the registry's"


def test_weights_verify_never_deletes_a_file_outside_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    precious = tmp_path / "precious.txt"
    precious.write_bytes(b"not weights: a file of the user's")
    cache = tmp_path / "hub"
    _cache_entry_linking_outside(cache, precious)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    spec = _spec()
    registry = tmp_path / "reg.toml"
    registry.write_text(
        f'[models."{spec.name}"]\ntask = "derain"\narch = "pan"\nfile = "{spec.file}"\n'
        f'sha256 = "{spec.sha256}"\nrepo_id = "{spec.repo_id}"\nrevision = "{spec.revision}"\n'
    )
    code, stdout, stderr = run("weights", "verify", spec.name, "--registry", str(registry))
    assert code == 1, stderr
    assert "mismatch" in stdout and "None" not in stdout  # no Python None in what users read
    assert precious.read_bytes() == b"not weights: a file of the user's"


# ------------------------------------------------------------------------------------------ 5. stdout


def _noisy(path: Path) -> Path:
    """An image whose PNG output is far larger than a pipe's buffer (64 KiB)."""
    return photo(path, size=(320, 240))


def test_stdout_gets_every_byte_through_a_non_blocking_unbuffered_pipe(
    tmp_path: Path, checkpoints: dict[str, Path]
) -> None:
    src = _noisy(tmp_path / "big.png")
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    args = [sys.executable, "-m", "ganedit", "derain", str(src), "-o", "-", "--precision", "fp32",
            "--weights", str(checkpoints["derain"])]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    child = subprocess.Popen(args, stdout=write_end, stderr=subprocess.PIPE, env=env)
    os.close(write_end)
    chunks = []
    with os.fdopen(read_end, "rb") as reader:
        while chunk := reader.read(4096):
            chunks.append(chunk)
    stderr = child.stderr.read().decode() if child.stderr else ""
    assert child.wait(timeout=300) == 0, stderr
    data = b"".join(chunks)
    assert len(data) > 3 * 65536  # several pipe buffers
    image = Image.open(io.BytesIO(data))
    image.load()  # a truncated PNG fails here
    assert image.size == (320, 240)


def test_a_reader_that_closes_early_is_one_clear_failure(
    tmp_path: Path, checkpoints: dict[str, Path]
) -> None:
    src = _noisy(tmp_path / "big.png")
    read_end, write_end = os.pipe()
    os.close(read_end)  # like `ganedit ... -o - | head -c 0`
    args = ["derain", str(src), "-o", "-", "--precision", "fp32", "--weights", str(checkpoints["derain"])]
    done = ganedit(*args, capture=False, stdout=write_end, stderr=subprocess.PIPE)
    os.close(write_end)
    stderr = done.stderr.decode()
    assert done.returncode == 1, stderr
    assert "<stdout>" in stderr
    assert "None" not in stderr and "Traceback" not in stderr and "Exception ignored" not in stderr


class _Trickle(io.RawIOBase):
    """A raw stream that takes at most 1000 bytes per write and sometimes none ("would block")."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.calls = 0

    def writable(self) -> bool:
        return True

    def write(self, b: object) -> int | None:  # type: ignore[override]
        self.calls += 1
        if self.calls % 3 == 0:
            return None
        chunk = bytes(memoryview(b)[:1000])  # type: ignore[arg-type]
        self.data += chunk
        return len(chunk)


def test_a_stream_taking_partial_writes_gets_the_whole_image(tmp_path: Path) -> None:
    from tinymodels import make_editor

    src = _noisy(tmp_path / "big.png")
    stream = _Trickle()
    editor = make_editor("derain", precision="fp32")
    report = api.edit_folder([src], "-", editor=editor, stdout=stream)  # type: ignore[arg-type]
    assert report.exit_code == 0, report.failed
    assert len(stream.data) > 3 * 65536
    image = Image.open(io.BytesIO(bytes(stream.data)))
    image.load()  # a truncated PNG fails here
    assert image.size == (320, 240)


# ------------------------------------------------------------------------------------------- 10. suffix


@pytest.mark.parametrize("suffix", ["/../../../x", "_a/b", "\\..\\x", "..", "_..", "_x" + os.sep + "y"])
def test_a_suffix_is_a_name_fragment(tmp_path: Path, checkpoints: dict[str, Path], suffix: str) -> None:
    src = photo(tmp_path / "in" / "a.png")
    out = tmp_path / "deep" / "er" / "out"
    code, _, stderr = run("derain", str(src.parent), "-o", str(out), "--suffix", suffix,
                          "--weights", str(checkpoints["derain"]))  # fmt: skip
    assert code == 2, stderr
    assert "--suffix" in stderr and "Traceback" not in stderr
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["a.png"]


# ------------------------------------------------------------------------------------ 14. HF_ENDPOINT


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:99999", "http://[::1"])
@pytest.mark.parametrize("command", ["verify", "pull"])
def test_a_malformed_hf_endpoint_is_one_line_and_exit_3(tmp_path: Path, endpoint: str, command: str) -> None:
    spec = _spec()
    registry = tmp_path / "reg.toml"
    registry.write_text(
        f'[models."{spec.name}"]\ntask = "derain"\narch = "pan"\nfile = "{spec.file}"\n'
        f'sha256 = "{spec.sha256}"\nrepo_id = "{spec.repo_id}"\nrevision = "{spec.revision}"\n'
    )
    done = ganedit("weights", command, spec.name, "--registry", str(registry),
                   env={**os.environ, "HF_ENDPOINT": endpoint})  # fmt: skip
    stderr = done.stderr.decode()
    assert done.returncode == 3, stderr
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "HF_ENDPOINT" in lines[0] and endpoint in lines[0]


# ---------------------------------------------------------------------- 6. masks inside the input folder


def _box_mask(path: Path, size: tuple[int, int], box: tuple[int, int, int, int]) -> Path:
    m = np.zeros((size[1], size[0]), dtype=np.uint8)
    x0, y0, x1, y1 = box
    m[y0:y1, x0:x1] = 255
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(m).save(path)
    return path


def _files(folder: Path) -> dict[str, bytes]:
    """The images under ``folder`` (not the index of what made them, in ``.ganedit/``)."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and ".ganedit" not in p.relative_to(folder).parts
    }


def test_mask_folder_equal_to_the_input_folder(tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    photos, alone, masks = tmp_path / "photos", tmp_path / "alone", tmp_path / "masks"
    for folder in (photos, alone):
        photo(folder / "x.png", seed=1)
        photo(folder / "y.png", seed=2)
    for folder in (photos, masks):
        _box_mask(folder / "x_mask.png", (48, 40), (4, 4, 20, 20))
        _box_mask(folder / "y_mask.png", (48, 40), (24, 10, 44, 36))
    inputs_before = _files(photos)
    common = ("--weights", str(checkpoints["inpaint"]), "--precision", "fp32")
    # the same photos and masks, in two folders: what the run below must give
    code, _, stderr = run("inpaint", str(alone), "--mask", str(masks), "-o", str(tmp_path / "ref"), *common)
    assert code == 0, stderr
    code, stdout, stderr = run("inpaint", str(photos), "--mask", str(photos), "-o", str(tmp_path / "out"),
                               *common, "--json")  # fmt: skip
    assert code == 0, stderr
    assert _files(tmp_path / "out") == _files(tmp_path / "ref")  # x_mask.png is no input; x.png no mask
    notes = " ".join(json.loads(stdout)["notes"])
    assert "x_mask.png" in notes and "y_mask.png" in notes and "mask" in stderr
    assert _files(photos) == inputs_before


def test_a_mask_folder_inside_the_input_folder_holds_masks_only(
    tmp_path: Path, checkpoints: dict[str, Path]
) -> None:
    photos, alone, masks = tmp_path / "photos", tmp_path / "alone", tmp_path / "masks"
    for folder in (photos, alone):
        photo(folder / "x.png", seed=1)
        photo(folder / "trip" / "y.png", seed=2)
    for folder in (photos / "masks", masks):  # masks named exactly like the photos
        _box_mask(folder / "x.png", (48, 40), (4, 4, 20, 20))
        _box_mask(folder / "y.png", (48, 40), (24, 10, 44, 36))
    common = ("-r", "--weights", str(checkpoints["inpaint"]), "--precision", "fp32")
    code, _, stderr = run("inpaint", str(alone), "--mask", str(masks), "-o", str(tmp_path / "ref"), *common)
    assert code == 0, stderr
    code, stdout, stderr = run("inpaint", str(photos), "--mask", str(photos / "masks"),
                               "-o", str(tmp_path / "out"), *common, "--json")  # fmt: skip
    assert code == 0, stderr
    assert _files(tmp_path / "out") == _files(tmp_path / "ref")  # masks/x.png is a mask, not an input
    assert any("masks" in note for note in json.loads(stdout)["notes"])


def test_the_mask_file_is_not_also_an_input(tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    photos = tmp_path / "photos"
    photo(photos / "x.png")
    the_mask = _box_mask(photos / "m.png", (48, 40), (4, 4, 20, 20))
    code, stdout, stderr = run("inpaint", str(photos), "--mask", str(the_mask), "-o", str(tmp_path / "out"),
                               "--weights", str(checkpoints["inpaint"]), "--json")  # fmt: skip
    assert code == 0, stderr
    assert sorted(_files(tmp_path / "out")) == ["x.png"]
    assert any("m.png" in note for note in json.loads(stdout)["notes"])


# --------------------------------------------------------------------- 7. what a mask must look like


def _inpaint_one(
    tmp_path: Path, checkpoints: dict[str, Path], the_mask: Path, size: tuple[int, int] = (48, 40)
) -> tuple[int, dict[str, object], Path]:
    src = photo(tmp_path / "in" / "x.png", size=size)
    out = tmp_path / "out"
    code, stdout, stderr = run("inpaint", str(src), "--mask", str(the_mask), "-o", str(out / "x.png"),
                               "--weights", str(checkpoints["inpaint"]), "--json")  # fmt: skip
    assert "Traceback" not in stderr
    return code, json.loads(stdout)["files"][0], out / "x.png"


def test_a_colour_photo_is_refused_as_a_mask(tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    code, entry, written = _inpaint_one(tmp_path, checkpoints, photo(tmp_path / "holiday.png", seed=7))
    assert code == 1 and entry["status"] == "failed"
    assert "holiday.png" in entry["error"] and "colour" in entry["error"]  # type: ignore[operator]
    assert not written.exists()


def test_a_mask_of_another_aspect_ratio_is_refused(tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    code, entry, written = _inpaint_one(
        tmp_path, checkpoints, _box_mask(tmp_path / "m.png", (48, 20), (0, 0, 9, 9))
    )
    assert code == 1 and entry["status"] == "failed"
    assert "48x20" in entry["error"] and "aspect ratio" in entry["error"]  # type: ignore[operator]
    assert not written.exists()


@pytest.mark.parametrize("mask_size", [(24, 20), (35, 26)])  # half size; within a pixel of 100x75's ratio
def test_a_smaller_mask_of_the_same_aspect_ratio_is_resized(
    tmp_path: Path, checkpoints: dict[str, Path], mask_size: tuple[int, int]
) -> None:
    size = (48, 40) if mask_size == (24, 20) else (100, 75)
    the_mask = _box_mask(tmp_path / "m.png", mask_size, (2, 2, 9, 9))
    code, entry, written = _inpaint_one(tmp_path, checkpoints, the_mask, size=size)
    assert code == 0 and entry["status"] == "ok"
    assert any("resized" in w for w in entry["warnings"])  # type: ignore[attr-defined]
    assert Image.open(written).size == size


def test_gray_looking_rgb_and_black_and_white_masks_are_masks(
    tmp_path: Path, checkpoints: dict[str, Path]
) -> None:
    rng = np.random.default_rng(3)
    gray = np.zeros((40, 48), np.int16)
    gray[5:20, 5:20] = 255
    # an RGB mask whose channels differ by a few levels (a JPEG round trip, a screenshot tool)
    rgb = np.clip(gray[:, :, None] + rng.integers(-3, 4, (40, 48, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    code, entry, _ = _inpaint_one(tmp_path / "a", checkpoints, tmp_path / "rgb.png")
    assert code == 0 and entry["status"] == "ok", entry
    # black and white, with a few red pen pixels: clearly binary
    bw = np.repeat(gray[:, :, None], 3, axis=2).astype(np.uint8)
    bw[30:32, 30:40] = (255, 0, 0)
    Image.fromarray(bw).save(tmp_path / "bw.png")
    code, entry, _ = _inpaint_one(tmp_path / "b", checkpoints, tmp_path / "bw.png")
    assert code == 0 and entry["status"] == "ok", entry


# ------------------------------------------------------------------------------ 12. huge files, memory

# Address space for a child: enough for torch and a tiny model (~3.6 GiB), not for a 2 GiB read.
LIMIT = 5 << 30


def limited(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    """The real command in a child whose address space is capped: reading a huge file whole, or building
    a huge model, fails there at once instead of taking this machine's memory."""
    import resource

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))

    return subprocess.run(
        [sys.executable, "-m", "ganedit", *args], capture_output=True, timeout=300, check=False,
        preexec_fn=cap, env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
    )  # fmt: skip


def test_a_huge_file_fails_alone_without_being_read(tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    photos, out = tmp_path / "photos", tmp_path / "out"
    photo(photos / "a.png")
    photo(photos / "c.png", seed=2)
    with (photos / "b.jpg").open("wb") as f:
        f.truncate(6 << 30)  # a 6 GiB sparse file: no disk used
    done = limited("derain", str(photos), "-o", str(out), "--weights", str(checkpoints["derain"]), "--json")
    stderr = done.stderr.decode()
    assert done.returncode == 1, stderr
    assert "Traceback" not in stderr
    assert sorted(_files(out)) == ["a.png", "c.png"]
    failed = [f for f in json.loads(done.stdout)["files"] if f["status"] == "failed"]
    assert [Path(f["input"]).name for f in failed] == ["b.jpg"]
    assert "b.jpg" in failed[0]["error"] and "6.0 GiB" in failed[0]["error"]


def _png_header(width: int, height: int) -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + ihdr + struct.pack(">I", 0x7FFFFFFF) + b"IDAT"


def test_too_many_pixels_is_refused_before_the_file_is_read(
    tmp_path: Path, checkpoints: dict[str, Path]
) -> None:
    photos, out = tmp_path / "photos", tmp_path / "out"
    photo(photos / "a.png")
    with (photos / "bomb.png").open("wb") as f:  # 2 GiB, under the size limit, declaring 900 megapixels
        f.write(_png_header(30000, 30000))
        f.truncate(2 << 30)
    done = limited("derain", str(photos), "-o", str(out), "--weights", str(checkpoints["derain"]), "--json")
    stderr = done.stderr.decode()
    assert done.returncode == 1, stderr
    assert "Traceback" not in stderr
    assert sorted(_files(out)) == ["a.png"]
    failed = [f for f in json.loads(done.stdout)["files"] if f["status"] == "failed"]
    assert len(failed) == 1 and "bomb.png" in failed[0]["error"] and "30000x30000" in failed[0]["error"]


def test_out_of_memory_fails_those_files_only_and_names_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tinymodels import make_editor

    photos, out = tmp_path / "photos", tmp_path / "out"
    photo(photos / "a.png")
    photo(photos / "big.png", size=(64, 40))
    photo(photos / "gpu.png", size=(56, 40))
    editor = make_editor("derain", precision="fp32")
    real = editor.edit_many

    def edit_many(items: list[tuple[np.ndarray, np.ndarray | None]], **options: object) -> list[np.ndarray]:
        width = items[0][0].shape[1]
        if width == 64:
            raise MemoryError
        if width == 56:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(items, **options)

    monkeypatch.setattr(editor, "edit_many", edit_many)
    report = api.edit_folder([photos], out, editor=editor)
    assert report.exit_code == 1
    errors = {Path(e.input).name: e.error or "" for e in report.failed}
    assert sorted(errors) == ["big.png", "gpu.png"]
    assert "big.png" in errors["big.png"] and "memory" in errors["big.png"]
    assert "gpu.png" in errors["gpu.png"] and "out of memory" in errors["gpu.png"]
    assert sorted(_files(out)) == ["a.png"]


# ------------------------------------------------------------------- 13. absurd checkpoint configs


def _doctored(path: Path, base: Path, **config: object) -> Path:
    """A well-formed checkpoint: `base`'s tensors, with its arch config changed."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(base), framework="pt") as f:
        metadata = dict(f.metadata())
    metadata["ganedit.arch_config"] = json.dumps({**json.loads(metadata["ganedit.arch_config"]), **config})
    save_file(load_file(str(base)), str(path), metadata=metadata)
    return path


def _refused(done: subprocess.CompletedProcess[bytes] | tuple[int, str], weights: Path, out: Path) -> str:
    code, stderr = (done.returncode, done.stderr.decode()) if not isinstance(done, tuple) else done
    assert code == 2, stderr
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ganedit: error: ") and str(weights) in lines[0], stderr
    assert not out.exists()
    return lines[0]


@pytest.mark.parametrize(
    "config", [{"ngf": 4.5}, {"ngf": "4"}, {"ngf": -4}, {"blocks": -1}, {"depth": 0}, {"residual_output": 1}]
)
def test_a_checkpoint_config_of_the_wrong_type_or_sign_is_refused(
    tmp_path: Path, checkpoints: dict[str, Path], config: dict[str, object]
) -> None:
    weights = _doctored(tmp_path / "bad.safetensors", checkpoints["derain"], **config)
    src, out = photo(tmp_path / "a.png"), tmp_path / "out"
    result = CliRunner().invoke(main, ["derain", str(src), "-o", str(out), "--weights", str(weights)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    line = _refused((result.exit_code, result.stderr), weights, out)
    assert next(iter(config)) in line


@pytest.mark.parametrize(
    "config",
    [
        {"depth": 24},  # tensors and config agree: the limits must refuse it
        {"ngf": 1e9},
        {"ngf": 3000},
        {"ngf": 512, "blocks": 32},  # within the limits, but the tensors are a tiny model's: 10 GB to build
    ],
)
def test_an_absurd_checkpoint_config_is_refused_before_any_model_is_built(
    tmp_path: Path, checkpoints: dict[str, Path], config: dict[str, object]
) -> None:
    from tinymodels import make_checkpoint

    if config == {"depth": 24}:
        weights = make_checkpoint(tmp_path / "deep.safetensors", "derain", depth=24)
    else:
        weights = _doctored(tmp_path / "bad.safetensors", checkpoints["derain"], **config)
    src, out = photo(tmp_path / "a.png"), tmp_path / "out"
    line = _refused(limited("derain", str(src), "-o", str(out), "--weights", str(weights)), weights, out)
    if "blocks" in config:
        assert "weights do not match its pan config" in line and "in the file but the config implies" in line
    else:
        assert next(iter(config)) in line


@pytest.mark.parametrize("config", [{"identity_dim": 10**9}, {"image_size": 1 << 20}])
def test_an_absurd_tdgan_config_is_refused(tmp_path: Path, config: dict[str, object]) -> None:
    import torch

    from ganedit.archs.tdgan import TDGAN, TDGANConfig
    from ganedit.checkpoint import save_checkpoint

    tags = (("azimuth", ("0", "90")),)
    tiny = TDGANConfig(tags=tags, image_size=16, identity_dim=4, tag_dim=2, ngf=4, ndf=4)
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "t.safetensors", TDGAN(tiny), task="rerender")
    weights = _doctored(tmp_path / "bad.safetensors", tmp_path / "t.safetensors", **config)
    src, out = photo(tmp_path / "chair.png"), tmp_path / "out"
    done = limited("rerender", str(src), "-o", str(out), "--weights", str(weights), "--tag", "azimuth=90")
    line = _refused(done, weights, out)
    assert next(iter(config)) in line


# ------------------------------------------------------------------ 15. SIGTERM, stale temporary files


def _temps(folder: Path) -> list[Path]:
    """Hidden temporary files of ganedit's atomic writer (.NAME.*.tmp) anywhere under `folder`."""
    return sorted(p for p in folder.rglob(".*.tmp") if p.is_file())


def _wait_for(condition: object, timeout: float = 120.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.002)


def _folder_of_photos(folder: Path, count: int, size: tuple[int, int]) -> Path:
    for i in range(count):
        photo(folder / f"{i:02d}.png", size=size, seed=i)
    return folder


def test_sigterm_is_handled_like_ctrl_c(tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    import signal

    photos = _folder_of_photos(tmp_path / "photos", 30, (384, 288))
    out = tmp_path / "out"
    args = [sys.executable, "-m", "ganedit", "derain", str(photos), "-o", str(out), "--batch-size", "1",
            "--weights", str(checkpoints["derain"])]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen(args, stderr=subprocess.PIPE, env=env)
    _wait_for(lambda: out.is_dir() and any(p.suffix == ".png" for p in out.iterdir()))
    child.send_signal(signal.SIGTERM)
    stderr = child.communicate(timeout=120)[1].decode()
    assert child.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1].startswith("ganedit: terminated")
    assert _temps(out) == []  # in-flight writes finished or cleaned up: nothing half-written
    written = sorted(out.glob("[!.]*"))  # the outputs (.ganedit: the index of what made them)
    assert 0 < len(written) < 30
    for path in written:
        with Image.open(path) as image:
            image.load()  # complete
    # and the next run resumes
    code, _, stderr = run("derain", str(photos), "-o", str(out), "--weights", str(checkpoints["derain"]))
    assert code == 0 and f"{30 - len(written)} done, {len(written)} skipped" in stderr, stderr


def _killed_mid_write(target: Path) -> None:
    """A process that dies by SIGKILL inside write_atomic, after writing its temporary file."""
    code = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from ganedit.io.atomic import write_atomic\n"
        "os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)\n"
        "write_atomic(Path(sys.argv[1]), b'half an image')\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(target)], check=False, timeout=120)
    assert done.returncode == -9


def test_a_killed_runs_temporary_file_is_swept(tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    photos = _folder_of_photos(tmp_path / "photos", 2, (48, 40))
    out = tmp_path / "out"
    _killed_mid_write(out / "00.png")
    _killed_mid_write(out / "sub" / "x.png")  # not an output folder of this run: left alone
    assert len(_temps(out)) == 2
    code, stdout, stderr = run("derain", str(photos), "-o", str(out), "--weights", str(checkpoints["derain"]),
                               "--json")  # fmt: skip
    assert code == 0, stderr
    assert [p.parent for p in _temps(out)] == [out / "sub"]
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == ["00.png", "01.png"]
    assert any("temporary" in note for note in json.loads(stdout)["notes"])


def test_only_stale_temporary_files_of_ours_are_swept(tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    photos = _folder_of_photos(tmp_path / "photos", 1, (48, 40))
    out = tmp_path / "out"
    out.mkdir()
    _killed_mid_write(out / "dead.png")  # its writer is dead: swept
    [dead] = _temps(out)
    prefix, rest = dead.name.split(".ganedit-")  # .dead.png | PID-HOST.XXXXXXXX.tmp
    mine = f"{os.getpid()}-{rest.split('-', 1)[1]}"  # the same name, written by a live process: this one
    alive = out / f"{prefix}.ganedit-{mine}"  # a writer at work: kept
    alive.write_bytes(b"being written")
    old_alive = out / f".old.png.ganedit-{mine}"
    old_alive.write_bytes(b"abandoned long ago")
    hour_ago = old_alive.stat().st_mtime - 3600
    os.utime(old_alive, (hour_ago, hour_ago))  # older than a few minutes: swept even if the PID lives
    foreign = [out / ".notes.txt.swp", out / ".a.png.tmp", out / ".a.png.k3j4h5g6.tmp", out / "a.png.tmp"]
    for path in foreign:  # not the atomic writer's names: never touched, however old
        path.write_bytes(b"the user's")
        os.utime(path, (hour_ago, hour_ago))
    code, _, stderr = run("derain", str(photos), "-o", str(out), "--weights", str(checkpoints["derain"]))
    assert code == 0, stderr
    assert not dead.exists() and not old_alive.exists()
    assert alive.read_bytes() == b"being written"
    assert all(path.read_bytes() == b"the user's" for path in foreign)


# ------------------------------------------------- kill -9 and SIGTERM at random moments, then resume


def _visible(folder: Path) -> dict[str, bytes]:
    return {name: data for name, data in _files(folder).items() if not Path(name).name.startswith(".")}


def _count_visible(folder: Path) -> int:
    """Outputs in `folder` now, while a run writes into it (names only: temporary files come and go)."""
    try:
        return sum(not path.name.startswith(".") for path in folder.iterdir())
    except FileNotFoundError:
        return 0


@pytest.mark.slow
def test_killed_at_random_moments_a_resumed_run_gives_the_uninterrupted_result(
    tmp_path: Path, checkpoints: dict[str, Path]
) -> None:
    import random
    import signal
    import time

    photos = _folder_of_photos(tmp_path / "photos", 12, (512, 384))
    args = [sys.executable, "-m", "ganedit", "derain", str(photos), "--weights", str(checkpoints["derain"]),
            "--precision", "fp32", "--batch-size", "1"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([*args, "-o", str(tmp_path / "ref")], env=env, capture_output=True, timeout=300,
                          check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    reference = _files(tmp_path / "ref")  # the uninterrupted run
    assert len(reference) == 12

    rng = random.Random(15)
    for round_ in range(3):
        out = tmp_path / f"out{round_}"
        signals = [signal.SIGKILL, signal.SIGTERM] if round_ % 2 == 0 else [signal.SIGTERM, signal.SIGKILL]
        for sig in signals:
            before = _visible(out) if out.exists() else {}
            child = subprocess.Popen([*args, "-o", str(out)], env=env, stderr=subprocess.PIPE)
            wanted = len(before) + rng.randrange(0, 12 - len(before))  # kill once this many outputs exist
            _wait_for(lambda: child.poll() is not None or _count_visible(out) >= wanted)  # noqa: B023
            time.sleep(rng.uniform(0.0, 0.05))
            child.send_signal(sig)
            stderr = child.communicate(timeout=120)[1].decode()
            after = _visible(out) if out.exists() else {}
            # no visible partial (or wrong) output, whenever the signal came
            assert all(reference[name] == data for name, data in after.items()), (sig, stderr)
            if sig == signal.SIGTERM:
                assert child.returncode in (130, -signal.SIGTERM, 0), stderr
                if child.returncode == -signal.SIGTERM:  # before ganedit set its handler: nothing written yet
                    assert after == before
                if child.returncode == 130:
                    assert stderr.strip().splitlines()[-1].startswith("ganedit: terminated"), stderr
                    assert not [p for p in _temps(out) if f".ganedit-{child.pid}-" in p.name]
            else:
                assert child.returncode in (-signal.SIGKILL, 0), stderr
        done = subprocess.run([*args, "-o", str(out)], env=env, capture_output=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr.decode()
        assert _files(out) == reference  # identical results, and no temporary file left


# ------------------------------------------------------------------------------ 16. clear messages


def test_stdout_failures_name_stdout(tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    src = photo(tmp_path / "a.png")
    with Path("/dev/full").open("wb") as full:  # every write: ENOSPC
        done = ganedit("derain", str(src), "-o", "-", "--weights", str(checkpoints["derain"]),
                       capture=False, stdout=full, stderr=subprocess.PIPE)  # fmt: skip
    stderr = done.stderr.decode()
    assert done.returncode == 1, stderr
    assert "<stdout>" in stderr and "None" not in stderr and "Traceback" not in stderr


def test_an_unknown_architecture_is_not_sent_to_another_command(
    tmp_path: Path, checkpoints: dict[str, Path]
) -> None:
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(checkpoints["derain"]), framework="pt") as f:
        metadata = {**f.metadata(), "ganedit.arch": "pan2"}
    weights = tmp_path / "future.safetensors"
    save_file(load_file(str(checkpoints["derain"])), str(weights), metadata=metadata)
    code, _, stderr = run("derain", str(photo(tmp_path / "a.png")), "-o", str(tmp_path / "out"),
                          "--weights", str(weights))  # fmt: skip
    assert code == 2, stderr
    assert "pan2" in stderr and "unknown" in stderr
    assert "ganedit derain" not in stderr


def test_one_input_and_an_existing_non_image_file_as_o(tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("the user's notes")
    code, _, stderr = run("derain", str(photo(tmp_path / "a.png")), "-o", str(notes),
                          "--weights", str(checkpoints["derain"]))  # fmt: skip
    assert code == 2, stderr
    assert "several inputs" not in stderr
    assert "notes.txt" in stderr and "not an image file name" in stderr
    assert notes.read_text() == "the user's notes"


def test_the_overwrite_refusal_names_the_file_at_risk(tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    first, second = photo(tmp_path / "x" / "a.png"), photo(tmp_path / "y" / "a.png", seed=1)
    code, _, stderr = run("derain", str(first), str(second), "-o", str(tmp_path / "y"),
                          "--weights", str(checkpoints["derain"]))  # fmt: skip
    assert code == 2, stderr
    assert f"refusing to overwrite the input {second}" in stderr


def test_a_fifo_given_as_mask_is_not_called_a_folder(tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    fifo = tmp_path / "mask.png"
    os.mkfifo(fifo)
    code, _, stderr = run("inpaint", str(photo(tmp_path / "a.png")), "--mask", str(fifo), "-o",
                          str(tmp_path / "out"), "--weights", str(checkpoints["inpaint"]))  # fmt: skip
    assert code == 2, stderr
    assert f"--mask {fifo}: not a file or folder (a FIFO)" in stderr and "no mask" not in stderr


def test_heic_and_avif_are_named(tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    photos = tmp_path / "photos"
    photo(photos / "a.png")
    (photos / "b.heic").write_bytes(b"\x00\x00\x00\x18ftypheic")
    (photos / "c.AVIF").write_bytes(b"\x00\x00\x00\x18ftypavif")
    code, stdout, stderr = run("derain", str(photos), "-o", str(tmp_path / "out"), "--json",
                               "--weights", str(checkpoints["derain"]))  # fmt: skip
    assert code == 0, stderr
    notes = json.loads(stdout)["notes"]
    assert "skipped b.heic: HEIC/AVIF not supported (convert to JPEG, PNG or TIFF)" in notes
    assert "skipped c.AVIF: HEIC/AVIF not supported (convert to JPEG, PNG or TIFF)" in notes
    code, _, stderr = run("derain", str(photos / "b.heic"), "-o", str(tmp_path / "out"),
                          "--weights", str(checkpoints["derain"]))  # fmt: skip
    assert code == 2 and "HEIC/AVIF not supported" in stderr, stderr


def test_broken_links_fifos_and_link_loops_get_a_note(tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    photos = tmp_path / "photos"
    photo(photos / "a.png")
    (photos / "gone.png").symlink_to(tmp_path / "nowhere.png")
    (photos / "loop.png").symlink_to(photos / "loop.png")
    os.mkfifo(photos / "pipe.png")
    code, stdout, stderr = run("derain", str(photos), "-o", str(tmp_path / "out"), "--json",
                               "--weights", str(checkpoints["derain"]))  # fmt: skip
    assert code == 0, stderr
    notes = json.loads(stdout)["notes"]
    assert "skipped gone.png: a broken link" in notes
    assert "skipped loop.png: a symlink loop" in notes
    assert "skipped pipe.png: not a regular file (a FIFO)" in notes
    assert json.loads(stdout)["totals"]["ok"] == 1


def _corrupt_exif_jpeg(path: Path) -> Path:
    """A JPEG whose EXIF has a tag pointing past its end: Pillow warns when it reads it."""
    import struct

    entries = [(0x010F, 2, 200, 5000), (0x0112, 3, 1, 1)]  # Make: 200 bytes at offset 5000; Orientation 1
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *e) for e in entries) + bytes(4)
    exif = b"Exif\x00\x00II*\x00" + struct.pack("<I", 8) + ifd
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((40, 48, 3), np.uint8)).save(path, exif=exif)
    return path


def test_pillow_warnings_go_into_the_report(tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    src = _corrupt_exif_jpeg(tmp_path / "photos" / "odd.jpg")
    photo(tmp_path / "photos" / "fine.png")
    done = ganedit("derain", str(src.parent), "-o", str(tmp_path / "out"), "--json",
                   "--weights", str(checkpoints["derain"]))  # fmt: skip
    stderr = done.stderr.decode()
    assert done.returncode == 0, stderr
    assert "UserWarning" not in stderr and "warnings.warn" not in stderr
    files = {Path(f["input"]).name: f for f in json.loads(done.stdout)["files"]}
    assert any("Tag data larger than file" in w for w in files["odd.jpg"]["warnings"])
    assert files["fine.png"]["warnings"] == []
    assert f"ganedit: warning: {src}: " in stderr


def test_tag_pose_says_it_means_azimuth(tmp_path: Path) -> None:
    import torch

    from ganedit.archs.tdgan import TDGAN, TDGANConfig
    from ganedit.checkpoint import save_checkpoint

    tags = (("azimuth", ("0", "90")), ("light", ("front", "left")))
    torch.manual_seed(0)
    weights = tmp_path / "t.safetensors"
    config = TDGANConfig(tags=tags, image_size=16, identity_dim=4, tag_dim=2, ngf=4, ndf=4)
    save_checkpoint(weights, TDGAN(config), task="rerender")
    code, _, stderr = run("rerender", str(photo(tmp_path / "chair.png")), "-o", str(tmp_path / "out"),
                          "--weights", str(weights), "--tag", "pose=bogus")  # fmt: skip
    assert code == 2, stderr
    assert "--tag pose=bogus" in stderr and "pose means azimuth" in stderr and "0, 90" in stderr


def test_an_empty_input_folder_is_nothing_to_do(tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    (tmp_path / "empty").mkdir()
    code, stdout, stderr = run("derain", str(tmp_path / "empty"), "-o", str(tmp_path / "out"), "--json",
                               "--weights", str(checkpoints["derain"]))  # fmt: skip
    assert code == 0, stderr
    assert "nothing to do" in stderr
    assert json.loads(stdout)["totals"]["inputs"] == 0
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------ re-check: crafted files, closed or full stdout


def test_a_crafted_provenance_index_is_ignored_not_a_crash(
    tmp_path: Path, checkpoints: dict[str, Path]
) -> None:
    out = tmp_path / "out"
    weights = ("--weights", str(checkpoints["derain"]))
    code, _, stderr = run("derain", str(photo(tmp_path / "in" / "a.png")), "-o", f"{out}/", *weights)
    assert code == 0, stderr
    # JSON nested deeper than the parser's recursion limit (a corrupt or hostile index file)
    (out / ".ganedit" / "index-1-deadbeef.jsonl").write_text("[" * 100_000 + "]" * 100_000 + "\n")
    code, _, stderr = run("derain", str(tmp_path / "in"), "-o", f"{out}/", *weights)
    assert code == 0, stderr
    assert "1 skipped" in stderr


def _shard_report(tmp_path: Path, checkpoints: dict[str, Path]) -> dict[str, object]:
    photo(tmp_path / "in" / "a.png")
    code, stdout, stderr = run("derain", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--json", "-q",
                               "--shard", "0/2", "--weights", str(checkpoints["derain"]))  # fmt: skip
    assert code == 0, stderr
    return json.loads(stdout)  # type: ignore[no-any-return]


def test_report_merge_refuses_crafted_reports_in_one_line(
    tmp_path: Path, checkpoints: dict[str, Path]
) -> None:
    report = _shard_report(tmp_path, checkpoints)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    code, _, stderr = run("report", "merge", str(deep))
    assert code == 2 and stderr.count("\n") == 1 and str(deep) in stderr, stderr
    huge = tmp_path / "huge.json"  # one shard of 10^12: listing the missing ones would never end
    huge.write_text(json.dumps({**report, "shard": {"index": 0, "count": 10**12, "source": "--shard"}}))
    code, _, stderr = run("report", "merge", str(huge))
    assert code == 2 and stderr.count("\n") == 1 and "one of 1000000000000 shards" in stderr, stderr


def test_a_closed_stdin_or_stdout_is_one_line(tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    src = photo(tmp_path / "a.png")
    weights = ("--weights", str(checkpoints["derain"]))
    cases = [
        (["derain", "-", "-o", str(tmp_path / "o1.png"), *weights], "<&-", "stdin"),
        (["derain", str(src), "-o", "-", *weights], ">&-", "stdout"),
        (["derain", str(src), "-o", str(tmp_path / "o2.png"), "--json", *weights], ">&-", "stdout"),
        (["models", "list"], ">&-", "stdout"),
        (["models", "show", "pan-derain"], ">&-", "stdout"),
        (["weights", "verify", "pan-derain"], ">&-", "stdout"),
        (["report", "merge", str(src), "--json"], ">&-", "stdout"),
        (["eval", *weights, "--data", str(tmp_path)], ">&-", "stdout"),
    ]
    for args, close, what in cases:  # a closed descriptor, as `ganedit ... >&-` leaves it: sys.stdout is None
        done = subprocess.run(["sh", "-c", f'exec "$0" -m ganedit "$@" {close}', sys.executable, *args],
                              stdout=subprocess.DEVNULL if what == "stdin" else None, stderr=subprocess.PIPE,
                              timeout=300, check=False)  # fmt: skip
        stderr = done.stderr.decode()
        assert "Traceback" not in stderr, (args, stderr)
        assert done.returncode in (1, 2) and f"{what} is closed" in stderr, (args, stderr)
    assert not (tmp_path / "o1.png").exists()
    assert not (tmp_path / "o2.png").exists()  # refused before the run: its report could not be given


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_stdout_is_one_line_and_exit_1(tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    src = photo(tmp_path / "in" / "a.png")
    weights = ("--weights", str(checkpoints["derain"]))
    for extra in (["--json"], ["--dry-run"]):
        with Path("/dev/full").open("wb") as full:
            done = ganedit("derain", str(src.parent), "-o", str(tmp_path / "out"), *extra, *weights,
                           stdout=full, stderr=subprocess.PIPE, capture=False)  # fmt: skip
        stderr = done.stderr.decode()
        assert done.returncode == 1 and "Traceback" not in stderr, stderr
        assert "ganedit: error: cannot write to stdout (No space left on device)" in stderr, stderr


def test_a_symlinked_provenance_folder_is_never_written_through(tmp_path: Path) -> None:
    """OUT/.ganedit as a link to somewhere else: the outputs are written, nothing lands where it points."""
    from tinymodels import make_checkpoint

    weights = make_checkpoint(tmp_path / "tiny.safetensors", "derain", seed=1)
    photos, out, elsewhere = tmp_path / "photos", tmp_path / "out", tmp_path / "elsewhere"
    photos.mkdir()
    out.mkdir()
    elsewhere.mkdir()
    for i in range(2):
        Image.fromarray(np.full((24, 32, 3), 40 * i, np.uint8)).save(photos / f"p{i}.png")
    (out / ".ganedit").symlink_to(elsewhere, target_is_directory=True)
    code, _stdout, stderr = run("derain", str(photos), "-o", str(out), "--weights", str(weights))
    assert code == 0, stderr
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["p0.png", "p1.png"]
    assert list(elsewhere.iterdir()) == []


def test_suffix_control_characters_and_non_ascii_shard_numbers_are_refused(tmp_path: Path) -> None:
    src = photo(tmp_path / "in" / "a.png")
    code, _, stderr = run("derain", str(src.parent), "-o", str(tmp_path / "out"), "--suffix", "x\ny")
    assert code == 2 and "control characters" in stderr, stderr
    assert not (tmp_path / "out").exists()
    from ganedit.batch import Shard
    from ganedit.errors import UsageError

    for bad in ("\u0663", "1_0", "٣"):
        with pytest.raises(UsageError, match="whole number"):
            Shard.from_env({"RANK": bad, "WORLD_SIZE": "4"})
    assert Shard.from_env({"RANK": " 3 ", "WORLD_SIZE": "4"}) == Shard(3, 4)


def test_a_huge_file_on_stdin_is_refused_by_its_size_unread(
    tmp_path: Path, checkpoints: dict[str, Path]
) -> None:
    """`< huge.jpg` (6 GiB, sparse): refused by its size, which the message gives, unread."""
    huge = tmp_path / "huge.jpg"
    with huge.open("wb") as f:
        f.truncate(6 << 30)
    with huge.open("rb") as stdin:
        weights = ("--weights", str(checkpoints["derain"]))
        pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
        done = ganedit(
            "derain", "-", "-o", str(tmp_path / "o.png"), *weights, stdin=stdin, capture=False, **pipes
        )
    stderr = done.stderr.decode()
    assert done.returncode == 1 and "<stdin>: 6.0 GiB is too large" in stderr, stderr
    assert not (tmp_path / "o.png").exists()
