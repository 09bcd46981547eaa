"""One --json schema for every command that turns files into files (docs/cli.md, "The --json report"):
a PAN command (derain) and rerender, with tiny models, report the same keys with the same types; and
rerender follows the folder runner's rules (refusals, skip/resume, dry run, merge)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from ganedit.archs.tdgan import TDGAN, TDGANConfig
from ganedit.checkpoint import save_checkpoint
from ganedit.cli import main
from tinymodels import make_checkpoint

TDGAN_CONFIG = TDGANConfig(
    tags=(("azimuth", ("0", "90", "180")), ("light", ("front", "left"))),
    image_size=16,
    identity_dim=4,
    tag_dim=2,
    ngf=4,
    ndf=4,
)


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("weights")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        save_checkpoint(folder / "tdgan.safetensors", TDGAN(TDGAN_CONFIG), task="rerender")
    return {
        "derain": make_checkpoint(folder / "derain.safetensors", "derain", seed=1),
        "rerender": folder / "tdgan.safetensors",
    }


def _photos(folder: Path, count: int = 2) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (12, 20, 3), dtype=np.uint8)).save(folder / f"p{i}.png")
    return folder


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def _derain(weights: dict[str, Path], inputs: Path, out: Path, *more: str) -> tuple[int, str, str]:
    return _run("derain", str(inputs), "-o", str(out), "--weights", str(weights["derain"]), "--device", "cpu",
                *more)  # fmt: skip


def _rerender(weights: dict[str, Path], inputs: Path, out: Path, *more: str) -> tuple[int, str, str]:
    tags = ["--tag", "azimuth=0,90", "--sheet", "--refine-steps", "0"]
    return _run("rerender", str(inputs), "-o", str(out), "--weights", str(weights["rerender"]),
                "--device", "cpu", *tags, *more)  # fmt: skip


def _shape(value: Any) -> Any:
    """The structure of a JSON value: the keys of objects (recursively for the report's own objects), the
    type of everything else (None where a value may be absent)."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return type(value).__name__


def _same_structure(a: dict[str, Any], b: dict[str, Any], *, ran: bool = True) -> None:
    """``ran``: a model ran in both (else model, sha256 and device are null in both)."""
    assert set(a) == set(b)
    assert set(a["totals"]) == set(b["totals"])
    assert a["files"] and b["files"]
    for entry in [*a["files"], *b["files"]]:
        assert set(entry) == set(a["files"][0])
        assert entry["output"] == entry["outputs"][0]
        assert set(entry["written"]) <= set(entry["outputs"])
    for key in ("task", "model", "sha256", "device", "seconds", "interrupted", "notes", "options", "totals"):
        assert type(a[key]) is type(b[key]), key
    for key in ("model", "sha256", "device"):
        assert (a[key] is not None and b[key] is not None) if ran else (a[key] is None and b[key] is None)
    assert all(isinstance(v, int) for v in [*a["totals"].values(), *b["totals"].values()])


def test_derain_and_rerender_reports_have_one_schema(weights: dict[str, Path], tmp_path: Path) -> None:
    photos = _photos(tmp_path / "in")
    code, out_a, err = _derain(weights, photos, tmp_path / "clean", "--json", "-q")
    assert code == 0, err
    code, out_b, err = _rerender(weights, photos, tmp_path / "turn", "--json", "-q")
    assert code == 0, err
    a, b = json.loads(out_a), json.loads(out_b)
    _same_structure(a, b)
    assert (a["task"], b["task"]) == ("derain", "rerender")
    assert a["options"] == {} and b["options"]["refine_steps"] == 0
    assert b["options"]["sweep"] == [{"azimuth": "0"}, {"azimuth": "90"}]
    for entry in a["files"]:
        assert entry["outputs"] == entry["written"] == [entry["output"]] and entry["details"] is None
    for entry in b["files"]:
        stem = Path(entry["input"]).stem
        names = [Path(p).name for p in entry["outputs"]]
        assert names == [f"{stem}_azimuth-000.png", f"{stem}_azimuth-090.png", f"{stem}_sheet.png"]
        assert entry["written"] == entry["outputs"] and all(Path(p).is_file() for p in entry["outputs"])
        assert set(entry["details"]["inferred"]) == {"azimuth", "light"}

    # a re-run skips both alike: same structure, every input skipped, nothing written
    code, out_a, _ = _derain(weights, photos, tmp_path / "clean", "--json", "-q")
    assert code == 0
    code, out_b, _ = _rerender(weights, photos, tmp_path / "turn", "--json", "-q")
    assert code == 0
    a, b = json.loads(out_a), json.loads(out_b)
    _same_structure(a, b, ran=False)
    for report in (a, b):
        assert report["totals"]["skipped"] == report["totals"]["inputs"] == 2
        assert all(e["status"] == "skipped" and e["written"] == [] for e in report["files"])


def test_dry_run_plans_have_one_schema(weights: dict[str, Path], tmp_path: Path) -> None:
    photos = _photos(tmp_path / "in")
    code, out_a, err = _derain(weights, photos, tmp_path / "clean", "--dry-run", "--json")
    assert code == 0, err
    code, out_b, err = _rerender(weights, photos, tmp_path / "turn", "--dry-run", "--json")
    assert code == 0, err
    a, b = json.loads(out_a), json.loads(out_b)
    assert set(a) == set(b) and set(a["totals"]) == set(b["totals"])
    assert set(a["files"][0]) == set(b["files"][0])
    assert [len(row["outputs"]) for row in b["files"]] == [3, 3]
    assert not (tmp_path / "turn").exists()


def test_rerender_refuses_what_the_edit_commands_refuse(weights: dict[str, Path], tmp_path: Path) -> None:
    photos = _photos(tmp_path / "in")
    before = sorted(p.name for p in photos.iterdir())
    for command in (_derain, _rerender):
        code, _, stderr = command(weights, photos, photos)
        assert code == 2, stderr
        assert "is the input folder itself" in stderr
    assert sorted(p.name for p in photos.iterdir()) == before
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for folder in ("a", "b"):  # two inputs named alike: their outputs would clash
        _photos(tmp_path / folder, 1)
    a, b = str(tmp_path / "a" / "p0.png"), str(tmp_path / "b" / "p0.png")
    model = str(weights["rerender"])
    code, _, stderr = _run(
        "rerender", a, b, "-o", str(tmp_path / "out"), "--weights", model, "--tag", "azimuth=0"
    )
    assert code == 2 and "would both write" in stderr
    assert not (tmp_path / "out").exists()


def test_rerender_reports_merge_like_the_edit_commands(weights: dict[str, Path], tmp_path: Path) -> None:
    photos = _photos(tmp_path / "in", 3)
    files = []
    for k in range(2):
        code, stdout, err = _rerender(weights, photos, tmp_path / "turn", "--json", "-q", "--shard", f"{k}/2")
        assert code == 0, err
        files.append(tmp_path / f"shard-{k}.json")
        files[-1].write_text(stdout)
    code, stdout, err = _run("report", "merge", *map(str, files), "--json", "-q")
    assert code == 0, err
    merged = json.loads(stdout)
    assert merged["task"] == "rerender" and merged["totals"]["ok"] == 3
    assert sorted(len(e["outputs"]) for e in merged["files"]) == [3, 3, 3]


def test_verbose_logs_library_diagnostics_on_stderr(weights: dict[str, Path], tmp_path: Path) -> None:
    photos = _photos(tmp_path / "in", 1)
    code, _, stderr = _derain(weights, photos, tmp_path / "quiet", "-q")
    assert code == 0 and "INFO" not in stderr
    code, _, stderr = _run("-v", "derain", str(photos), "-o", str(tmp_path / "loud"), "--weights",
                           str(weights["derain"]), "--device", "cpu", "-q")  # fmt: skip
    assert code == 0, stderr
    assert "ganedit: INFO: ganedit.batch.run: 1 input(s) to do" in stderr
    code, _, stderr = _derain(weights, photos, tmp_path / "again", "-q")  # -v does not carry over
    assert code == 0 and "INFO" not in stderr


def test_rerender_resumes_a_partly_done_input_and_flags_other_settings(
    weights: dict[str, Path], tmp_path: Path
) -> None:
    photos = _photos(tmp_path / "in", 1)
    out = tmp_path / "turn"
    code, _, err = _rerender(weights, photos, out, "--gif", "-q")
    assert code == 0, err
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.is_file()}
    assert sorted(stamps) == ["p0.gif", "p0_azimuth-000.png", "p0_azimuth-090.png", "p0_sheet.png"]
    del stamps["p0_sheet.png"]
    (out / "p0_sheet.png").unlink()  # as if the run had been killed before writing it
    code, stdout, err = _rerender(weights, photos, out, "--gif", "--json", "-q")
    assert code == 0, err
    entry = json.loads(stdout)["files"][0]
    assert entry["status"] == "ok" and entry["written"] == [str(out / "p0_sheet.png")]
    assert all(p.stat().st_mtime_ns == stamps[p.name] for p in out.iterdir() if p.name in stamps)
    # made with other settings (--refine-steps): still skipped, and flagged as the PAN commands' outputs are
    more = ["--gif", "--json", "-q", "--refine-steps", "1"]
    code, stdout, err = _run("rerender", str(photos), "-o", str(out), "--weights", str(weights["rerender"]),
                             "--device", "cpu", "--tag", "azimuth=0,90", "--sheet", *more)  # fmt: skip
    assert code == 0, err
    report = json.loads(stdout)
    assert report["totals"]["skipped_stale"] == 1 and report["files"][0]["stale"] is True
    assert "--refine-steps" in report["files"][0]["warnings"][0]
