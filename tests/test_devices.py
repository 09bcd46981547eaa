"""ganedit.runtime.devices: one device, thread and precision policy for editing and training."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from ganedit.errors import UsageError
from ganedit.runtime import devices
from ganedit.runtime.devices import (
    cpu_thread_count,
    default_threads,
    limit_threads,
    resolve_precision,
    select_device,
    set_threads,
)
from ganedit.train.common import Dist, pick_device

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def restore_threads() -> Iterator[None]:
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _machine(monkeypatch: pytest.MonkeyPatch, cpus: int, quota: float | None) -> None:
    """Pretend this process may run on ``cpus`` CPUs under a cgroup quota of ``quota`` CPUs."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cpus)), raising=False)
    monkeypatch.setattr(devices, "_cgroup_cpu_quota", lambda: quota)


def test_thread_count_honours_the_cgroup_quota(monkeypatch: pytest.MonkeyPatch) -> None:
    _machine(monkeypatch, 16, 2.5)
    assert cpu_thread_count() == 3  # 2.5 CPUs of quota: 3 threads, not the machine's 16
    assert default_threads(CPU) == 3
    assert default_threads(CPU, processes=2) == 1  # torchrun: the CPUs shared among its processes
    _machine(monkeypatch, 16, None)
    assert cpu_thread_count() == 16
    assert default_threads(CPU, processes=4) == 4
    assert default_threads(torch.device("cuda")) == devices.ACCELERATOR_THREADS  # threads only feed a GPU
    _machine(monkeypatch, 2, 0.1)
    assert cpu_thread_count() == 1


def test_training_threads_follow_the_quota_and_an_explicit_count_wins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _machine(monkeypatch, 8, 2.0)
    assert set_threads(0, device=CPU) == 2 and torch.get_num_threads() == 2  # not os.cpu_count()
    assert set_threads(3, device=CPU) == 3 and torch.get_num_threads() == 3  # explicit wins, even over quota
    with pytest.raises(UsageError, match="threads"):
        set_threads(-1, device=CPU)


def test_library_only_lowers_threads_once_and_respects_omp_num_threads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _machine(monkeypatch, 8, 2.0)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setitem(devices._limited, "done", False)
    torch.set_num_threads(4)
    limit_threads()
    assert torch.get_num_threads() == 2
    torch.set_num_threads(1)
    limit_threads()  # once per process: the host program's later choice stands
    assert torch.get_num_threads() == 1
    monkeypatch.setitem(devices._limited, "done", False)
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    torch.set_num_threads(4)
    limit_threads()
    assert torch.get_num_threads() == 4


def test_cgroup_readers(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert devices._cgroup_cpu_quota(tmp_path) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert devices._cgroup_cpu_quota(tmp_path) is None
    (tmp_path / "cpu.max").unlink()
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("200000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert devices._cgroup_cpu_quota(tmp_path) == 2.0
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert devices._cgroup_cpu_quota(tmp_path) is None
    assert devices._cgroup_cpu_quota(tmp_path / "nowhere") is None


def test_device_choices() -> None:
    assert select_device("cpu") == CPU
    assert select_device(" CPU ") == CPU
    assert pick_device("cpu", Dist()) == CPU  # training goes through the same policy
    if not torch.cuda.is_available():
        assert select_device("auto").type in ("cpu", "mps")
        assert pick_device("auto", Dist()) == CPU  # training never picks MPS by itself
        with pytest.raises(UsageError, match="no CUDA GPU"):
            pick_device("cuda", Dist())


@pytest.mark.parametrize("spec", ["tpu", "meta", "cuda:x", "cuda:", "cuda:-1", "gpu0", ""])
def test_an_unknown_device_is_one_clear_usage_error(spec: str) -> None:
    for choose in (select_device, lambda s: pick_device(s, Dist())):  # editing and training alike
        with pytest.raises(UsageError, match=r"^unknown device .*; valid: auto, cpu, cuda, cuda:N, mps$"):
            choose(spec)


def test_precision_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devices, "cpu_bf16_native", lambda: False)
    assert resolve_precision("auto", CPU) == ("fp32", None)  # emulated bf16 is slower than fp32
    monkeypatch.setattr(devices, "cpu_bf16_native", lambda: True)
    assert resolve_precision("auto", CPU) == ("bf16", torch.bfloat16)
    assert resolve_precision("auto", CPU, training=True) == ("bf16", torch.bfloat16)
    cuda = torch.device("cuda")
    monkeypatch.setattr(devices, "cuda_bf16_supported", lambda device: False)
    assert resolve_precision("auto", cuda) == ("fp16", torch.float16)  # inference: fp16 on older GPUs
    assert resolve_precision("auto", cuda, training=True) == ("fp32", None)  # no loss scaling in training
    assert resolve_precision("bf16", torch.device("mps"), training=True) == ("fp32", None)
    with pytest.raises(UsageError, match="fp16 is not supported on the CPU"):
        resolve_precision("fp16", CPU)
    with pytest.raises(UsageError, match="valid: auto, fp32, fp16, bf16"):
        resolve_precision("int8", CPU)
