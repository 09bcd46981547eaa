"""The checkpoints shipped inside the package: registered, intact, loadable, and the README demo works.

These run the real (small) shipped models on the CPU: a few seconds in all.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from ganedit.checkpoint import load_checkpoint
from ganedit.cli import main as cli_main
from ganedit.hub import bundled_path
from ganedit.registry import bundled_registry_path, parse_registry

ROOT = Path(__file__).resolve().parents[1]
SPECS = parse_registry(bundled_registry_path().read_text(), origin=None)


def test_derain_has_a_shipped_default() -> None:
    assert any(s.task == "derain" and s.default for s in SPECS.values())


@pytest.mark.parametrize("name", sorted(SPECS))
def test_shipped_file_matches_its_registry_entry(name: str) -> None:
    spec = SPECS[name]
    path = bundled_path(spec)
    assert path is not None, f"{name}: {spec.file} is not inside the package"
    data = path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == spec.sha256
    assert len(data) <= 20_000_000
    if spec.size is not None:
        assert len(data) == spec.size
    _model, info = load_checkpoint(path, task=spec.task)
    assert info.arch == spec.arch


def test_readme_demo_derains_the_samples_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "out"
    result = CliRunner().invoke(cli_main, ["derain", str(ROOT / "samples" / "rain"), "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    inputs = sorted(p.name for p in (ROOT / "samples" / "rain").iterdir())
    assert sorted(p.name for p in out.iterdir()) == inputs
    for name in inputs:
        with Image.open(ROOT / "samples" / "rain" / name) as a, Image.open(out / name) as b:
            assert a.size == b.size
            # the model changed the picture (it is not the identity)
            assert np.abs(np.asarray(a, float) - np.asarray(b, float)).mean() > 1.0
