"""Checkpoints: safetensors round trip, metadata, refusals (wrong task/arch, not ours, newer format)."""

from __future__ import annotations

import dataclasses
import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from ganedit import checkpoint
from ganedit.checkpoint import FORMAT_VERSION, load_checkpoint, read_info, save_checkpoint
from ganedit.errors import CheckpointError
from tinymodels import make_checkpoint, make_model


@pytest.fixture(autouse=True)
def _no_torch_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unpickling runs code: nothing in checkpoint handling may ever call torch.load."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("torch.load must never be called")

    monkeypatch.setattr(torch, "load", refuse)


@pytest.mark.parametrize("task", ["derain", "inpaint", "sketch2photo"])
def test_round_trip_gives_identical_outputs(tmp_path: Path, task: str) -> None:
    model = make_model(task, seed=7)
    path = tmp_path / "sub" / f"{task}.safetensors"  # parent folders are created
    save_checkpoint(path, model, task=task, extra={"ganedit.note": "tiny test model"})
    loaded, info = load_checkpoint(path, task=task, arch="pan")
    assert not loaded.training
    assert loaded.config == model.config
    x = torch.rand(2, 3, 16, 24) * 2 - 1
    mask = (torch.rand(2, 1, 16, 24) > 0.5).float() if task == "inpaint" else None
    with torch.no_grad():
        assert torch.equal(loaded(x, mask), model(x, mask))
    assert info.arch == "pan" and info.task == task
    assert info.arch_config == dataclasses.asdict(model.config)
    assert info.metadata["ganedit.format_version"] == FORMAT_VERSION == "1"
    assert info.metadata["ganedit.arch"] == "pan"
    assert info.metadata["ganedit.task"] == task
    assert json.loads(info.metadata["ganedit.arch_config"]) == dataclasses.asdict(model.config)
    assert info.metadata["ganedit.note"] == "tiny test model"
    assert read_info(path) == info


def test_write_is_atomic_and_leaves_no_temp_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = make_checkpoint(tmp_path / "m.safetensors", "derain", seed=1)
    before = path.read_bytes()

    def crash(*args: object, **kwargs: object) -> None:
        Path(args[1]).write_bytes(b"half a file")  # the temp file exists when the crash comes
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint, "save_file", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, make_model("derain", seed=2), task="derain")
    assert path.read_bytes() == before  # the old checkpoint survives intact
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


def test_another_task_or_arch_is_refused_by_name(tmp_path: Path) -> None:
    path = make_checkpoint(tmp_path / "derain.safetensors", "derain")
    with pytest.raises(CheckpointError, match=r"a checkpoint of the 'derain' task, not of 'inpaint'"):
        load_checkpoint(path, task="inpaint")
    with pytest.raises(CheckpointError, match=r"'pan' model, not the 'tdgan'"):
        load_checkpoint(path, arch="tdgan")


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "not a safetensors"),
        (b"just some text, not weights\n" * 10, "not a safetensors"),
        (b"\x80\x04" + pickle.dumps({"weight": [1.0, 2.0]}), "not a safetensors"),
    ],
    ids=["empty", "text", "pickle"],
)
def test_non_safetensors_files_are_refused(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=reason):
        load_checkpoint(path)


def test_torch_pickle_checkpoint_is_refused_without_unpickling(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    with path.open("wb") as f:
        pickle.dump(make_model("derain").state_dict(), f)  # what torch.save would make, legacy format
    with pytest.raises(CheckpointError, match=r"model\.pt: not a safetensors"):
        load_checkpoint(path)


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        read_info(tmp_path / "absent.safetensors")


def test_safetensors_without_ganedit_metadata_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(path), metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="not a ganedit checkpoint"):
        read_info(path)


def _rewrite_metadata(src: Path, dst: Path, **changes: str) -> None:
    info = read_info(src)
    from safetensors.torch import load_file

    save_file(load_file(str(src)), str(dst), metadata={**info.metadata, **changes})


def test_unknown_format_version_is_refused(tmp_path: Path) -> None:
    good = make_checkpoint(tmp_path / "good.safetensors", "derain")
    future = tmp_path / "future.safetensors"
    _rewrite_metadata(good, future, **{"ganedit.format_version": "2"})
    with pytest.raises(CheckpointError, match=r"format version '2' is not supported.*'1'"):
        load_checkpoint(future)


def test_weights_that_do_not_match_the_config_are_refused(tmp_path: Path) -> None:
    good = make_checkpoint(tmp_path / "good.safetensors", "derain")
    cfg = read_info(good).arch_config
    lying = tmp_path / "lying.safetensors"
    _rewrite_metadata(good, lying, **{"ganedit.arch_config": json.dumps({**cfg, "ngf": cfg["ngf"] * 2})})
    with pytest.raises(CheckpointError, match="weights do not match"):
        load_checkpoint(lying)
    unknown = tmp_path / "unknown.safetensors"
    _rewrite_metadata(good, unknown, **{"ganedit.arch_config": json.dumps({**cfg, "attention": True})})
    with pytest.raises(CheckpointError, match="attention"):
        load_checkpoint(unknown)
    broken = tmp_path / "broken.safetensors"
    _rewrite_metadata(good, broken, **{"ganedit.arch_config": "{not json"})
    with pytest.raises(CheckpointError, match="not valid JSON"):
        read_info(broken)


def test_save_refuses_inconsistent_requests(tmp_path: Path) -> None:
    model = make_model("derain")
    with pytest.raises(CheckpointError, match="unknown task 'deblur'"):
        save_checkpoint(tmp_path / "a.safetensors", model, task="deblur")
    with pytest.raises(CheckpointError, match=r"'rerender' uses arch 'tdgan'"):
        save_checkpoint(tmp_path / "a.safetensors", model, task="rerender")
    with pytest.raises(CheckpointError, match="may not override"):
        save_checkpoint(tmp_path / "a.safetensors", model, task="derain", extra={"ganedit.task": "inpaint"})
    with pytest.raises(CheckpointError, match="not a generator"):
        save_checkpoint(tmp_path / "a.safetensors", torch.nn.Linear(2, 2), task="derain")
    assert not list(tmp_path.iterdir())


def test_saved_checkpoint_is_readable_by_others(tmp_path: Path) -> None:
    import os
    import stat

    from tinymodels import make_checkpoint

    umask = os.umask(0o022)
    try:
        path = make_checkpoint(tmp_path / "m.safetensors", "derain")
    finally:
        os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


AVERAGE = Path(__file__).resolve().parents[1] / "scripts" / "average_checkpoints.py"


def test_average_checkpoints_script_writes_the_weighted_mean(tmp_path: Path) -> None:
    """scripts/average_checkpoints.py: the soup is the weighted mean of the inputs' float tensors, loads as
    a checkpoint of the same shape and task, names its inputs; different shapes are refused in one line."""
    a = make_checkpoint(tmp_path / "a.safetensors", "derain", seed=1)
    b = make_checkpoint(tmp_path / "b.safetensors", "derain", seed=2)
    out = tmp_path / "soup.safetensors"
    done = subprocess.run(
        [sys.executable, str(AVERAGE), str(a), str(b), "--weights", "3", "1", "-o", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    soup, info = load_checkpoint(out, task="derain")
    (model_a, _), (model_b, _) = load_checkpoint(a), load_checkpoint(b)
    assert info.arch_config == read_info(a).arch_config
    state_a, state_b = model_a.state_dict(), model_b.state_dict()
    floats = 0
    for name, value in soup.state_dict().items():
        if value.is_floating_point():
            expected = (0.75 * state_a[name].double() + 0.25 * state_b[name].double()).float()
            torch.testing.assert_close(value, expected, rtol=1e-6, atol=1e-7)
            floats += not torch.equal(state_a[name], state_b[name])
        else:
            assert torch.equal(value, state_a[name])
    assert floats > 0  # the inputs differ, so the check above compared real averages
    sources = json.loads(info.metadata["ganedit.soup"])
    assert [s["file"] for s in sources] == ["a.safetensors", "b.safetensors"]
    assert [s["weight"] for s in sources] == [0.75, 0.25]

    # b as a file written before `line_blocks` existed: its stored config lacks the key (the default, 0)
    from safetensors.torch import load_file, save_file

    meta = dict(read_info(b).metadata)
    stored = json.loads(meta["ganedit.arch_config"])
    del stored["line_blocks"]
    meta["ganedit.arch_config"] = json.dumps(stored, sort_keys=True)
    older = tmp_path / "older.safetensors"
    save_file(load_file(b), older, metadata=meta)
    done = subprocess.run(
        [sys.executable, str(AVERAGE), str(a), str(older), "-o", str(tmp_path / "mixed.safetensors")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr

    other = make_checkpoint(tmp_path / "c.safetensors", "derain", seed=1, ngf=8)
    refused = subprocess.run(
        [sys.executable, str(AVERAGE), str(a), str(other), "-o", str(tmp_path / "bad.safetensors")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode == 1 and len(refused.stderr.strip().splitlines()) == 1
    assert "not the same model shape" in refused.stderr and not (tmp_path / "bad.safetensors").exists()
