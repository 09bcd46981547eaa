"""Keep every test away from the user's real caches, registries and network settings."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_environment(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path_factory.mktemp("hf-home")
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("GANEDIT_REGISTRY", raising=False)
    # A test suite run inside a Slurm array task, a Kubernetes Indexed Job or torchrun must not take a share
    # of every test's inputs: the scheduler variables ganedit reads (batch.Shard.from_env) are cleared.
    scheduler = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "JOB_COMPLETION_INDEX")
    slurm = ("ID", "COUNT", "MIN", "MAX", "STEP")
    for var in (*scheduler, "GANEDIT_SHARD_COUNT", *(f"SLURM_ARRAY_TASK_{s}" for s in slurm)):
        monkeypatch.delenv(var, raising=False)
