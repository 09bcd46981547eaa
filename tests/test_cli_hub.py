"""The download path as users meet it: through the CLI, against a fake hub on 127.0.0.1."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from fakehub import FakeHub
from ganedit.cli import main


@pytest.fixture(scope="module")
def checkpoint_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    from tinymodels import make_checkpoint

    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "d.safetensors", "derain").read_bytes()


def _registry(path: Path, hub: FakeHub, data: bytes, *, corrupt: bool = False, missing: bool = False) -> Path:
    revision = "a" * 40
    if not missing:
        revision = hub.add("acme/pan-derain", "pan-derain.safetensors", data, corrupt=corrupt)
    path.write_text(
        '[models."hub-derain"]\n'
        'task = "derain"\narch = "pan"\nfile = "pan-derain.safetensors"\n'
        f'sha256 = "{hashlib.sha256(data).hexdigest()}"\n'
        f'repo_id = "acme/pan-derain"\nrevision = "{revision}"\ndefault = true\n'
    )
    return path


def _photo(path: Path) -> Path:
    Image.fromarray(np.full((24, 32, 3), 90, np.uint8)).save(path)
    return path


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stderr


def test_first_run_downloads_second_makes_no_request(
    tmp_path: Path, checkpoint_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeHub() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        registry = _registry(tmp_path / "reg.toml", hub, checkpoint_bytes)
        photo = _photo(tmp_path / "a.png")
        code, stderr = invoke("derain", str(photo), "-o", str(tmp_path / "o1"), "--registry", str(registry))
        assert code == 0, stderr
        assert hub.count("GET") == 1
        hub.reset()
        code, stderr = invoke("derain", str(photo), "-o", str(tmp_path / "o2"), "--registry", str(registry))
        assert code == 0, stderr
        assert hub.count() == 0  # pinned revision + cached file: not a single request
        assert (tmp_path / "o2" / "a.png").is_file()


def test_weights_pull_then_offline_run(
    tmp_path: Path, checkpoint_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeHub() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        registry = _registry(tmp_path / "reg.toml", hub, checkpoint_bytes)
        code, stderr = invoke("weights", "pull", "hub-derain", "--registry", str(registry))
        assert code == 0, stderr
        downloads = hub.count("GET")
        assert downloads == 1
        code, stderr = invoke("derain", str(_photo(tmp_path / "a.png")), "-o", str(tmp_path / "o"),
                              "--registry", str(registry), "--offline")  # fmt: skip
        assert code == 0, stderr
        assert hub.count("GET") == downloads


def test_corrupted_download_is_refused_with_exit_3(
    tmp_path: Path, checkpoint_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeHub() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        registry = _registry(tmp_path / "reg.toml", hub, checkpoint_bytes, corrupt=True)
        code, stderr = invoke("derain", str(_photo(tmp_path / "a.png")), "-o", str(tmp_path / "o"),
                              "--registry", str(registry))  # fmt: skip
        assert code == 3
        assert "sha256" in stderr
        assert not (tmp_path / "o").exists()  # nothing was produced with unverified weights
        cache = Path(os.environ["HF_HUB_CACHE"])
        blobs = [p for p in cache.rglob("*") if p.is_file() and p.name != "CACHEDIR.TAG"]
        assert not [p for p in blobs if p.stat().st_size > 100]  # the bad blob was evicted


def test_404_gives_exit_3_with_advice(
    tmp_path: Path, checkpoint_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeHub() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        registry = _registry(tmp_path / "reg.toml", hub, checkpoint_bytes, missing=True)
        code, stderr = invoke("derain", str(_photo(tmp_path / "a.png")), "-o", str(tmp_path / "o"),
                              "--registry", str(registry))  # fmt: skip
        assert code == 3
        assert "weights pull" in stderr or "--weights" in stderr
        assert len(stderr.strip().splitlines()) == 1  # one clear line, no traceback


def test_offline_with_empty_cache_gives_exit_3(
    tmp_path: Path, checkpoint_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeHub() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        registry = _registry(tmp_path / "reg.toml", hub, checkpoint_bytes)
        code, stderr = invoke("derain", str(_photo(tmp_path / "a.png")), "-o", str(tmp_path / "o"),
                              "--registry", str(registry))  # fmt: skip
        assert code == 3
        assert "weights pull" in stderr
        assert hub.count() == 0
