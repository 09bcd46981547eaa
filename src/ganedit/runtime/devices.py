"""One device, threads and precision policy, for editing and training alike.

* Devices (`select_device`): ``auto`` is CUDA, then Apple MPS, then the CPU; or ``cpu``, ``cuda``,
  ``cuda:N``, ``mps``. Anything else, or a device this machine lacks, is one `UsageError` naming the
  valid choices. Under torchrun each rank takes GPU ``local_rank`` modulo the GPUs it sees.
* Threads (`cpu_thread_count`, `set_threads`, `limit_threads`): torch sizes its thread pool by the
  machine's cores, which in a container (cgroup CPU quota) or under taskset is more than the process
  gets, and oversubscribed threads make convolutions several times slower. So the count is the
  process's CPU affinity set, capped by the cgroup quota. A command that owns the process (training)
  sets it; the library (an `Editor` inside someone's program) only ever lowers it, once, and leaves it
  alone when the user set ``OMP_NUM_THREADS``.
* Precision (`resolve_precision`): ``auto`` is bf16 on CUDA GPUs with native bf16 (else fp16 for
  inference, fp32 for training, which has no loss scaling), bf16 on CPUs with native bf16 arithmetic
  (AVX512-BF16 or AMX: faster than fp32; elsewhere oneDNN emulates it and it is slower), and fp32
  everywhere else.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch

from ..errors import UsageError

__all__ = [
    "PRECISIONS",
    "cpu_bf16_native",
    "cpu_thread_count",
    "cuda_bf16_supported",
    "default_threads",
    "limit_threads",
    "resolve_precision",
    "select_device",
    "set_threads",
]

PRECISIONS = ("auto", "fp32", "fp16", "bf16")
DEVICES_HELP = "auto, cpu, cuda, cuda:N, mps"
# Threads per process when a GPU does the work: they only feed it (data loading, the optimizer's
# bookkeeping), and more just compete with the data-loading workers.
ACCELERATOR_THREADS = 4

_limited = {"done": False}  # `limit_threads` acts once per process

# ---------------------------------------------------------------------------------------------- devices


def select_device(
    spec: str = "auto", *, local_rank: int | None = None, auto_mps: bool = True
) -> torch.device:
    """The torch device for ``spec`` (see the module docstring), or a `UsageError` saying what is valid.

    ``local_rank`` (torchrun): a bare ``cuda``, or ``auto`` on a CUDA machine, becomes
    ``cuda:<local_rank % GPUs>``. ``auto_mps=False`` keeps ``auto`` off Apple GPUs (training asks
    for MPS explicitly only).
    """
    spec = spec.strip().lower()
    cuda_ok = torch.cuda.is_available()
    mps_ok = _mps_available()
    if spec == "auto":
        spec = "cuda" if cuda_ok else "mps" if mps_ok and auto_mps else "cpu"
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "mps":
        if not mps_ok:
            raise UsageError("device 'mps' is not available here (no Apple GPU); use --device cpu")
        return torch.device("mps")
    index = spec.removeprefix("cuda:") if spec.startswith("cuda:") else None
    if spec == "cuda" or (index and index.isascii() and index.isdigit()):
        return _cuda_device(spec, cuda_ok, local_rank)
    raise UsageError(f"unknown device {spec!r}; valid: {DEVICES_HELP}")


def _cuda_device(spec: str, cuda_ok: bool, local_rank: int | None) -> torch.device:
    if not cuda_ok:
        raise UsageError(f"device {spec!r} is not available: this torch sees no CUDA GPU; use --device cpu")
    count = torch.cuda.device_count()
    index = spec.partition(":")[2]
    if not index:
        return torch.device("cuda") if local_rank is None else torch.device("cuda", local_rank % count)
    if int(index) >= count:
        raise UsageError(
            f"device {spec!r} does not exist; valid: {', '.join(f'cuda:{i}' for i in range(count))}"
        )
    return torch.device("cuda", int(index))


def _mps_available() -> bool:
    return hasattr(torch.backends, "mps") and torch.backends.mps.is_available()


# ---------------------------------------------------------------------------------------------- threads


def cpu_thread_count() -> int:
    """CPUs this process may really use: its affinity set, capped by a cgroup CPU quota (rounded up)."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        n = os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    if quota is not None:
        n = min(n, max(1, math.ceil(quota)))
    return max(1, n)


def _cgroup_cpu_quota(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """The cgroup's CPU quota in CPUs (cgroup v2 ``cpu.max``, else v1 ``cfs_quota_us``), None if none."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError, ZeroDivisionError):
        pass
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota_us <= 0 else quota_us / period_us  # -1: no quota
    except (OSError, ValueError, ZeroDivisionError):
        return None


def default_threads(device: torch.device, *, processes: int = 1) -> int:
    """Threads per process: the usable CPUs shared by the ``processes`` on this machine (torchrun's
    local world size) on the CPU; a few to feed an accelerator."""
    n = cpu_thread_count()
    if device.type == "cpu":
        return max(1, n // max(1, processes))
    return min(ACCELERATOR_THREADS, n)


def set_threads(threads: int = 0, *, device: torch.device, processes: int = 1) -> int:
    """Set torch's intra-op threads for a process this command owns (training): ``threads`` when
    given (> 0: an explicit choice wins), else `default_threads`. Returns the number set."""
    if threads < 0:
        raise UsageError(f"threads must be 0 (automatic) or a positive number, not {threads}")
    count = threads or default_threads(device, processes=processes)
    torch.set_num_threads(count)
    return count


def limit_threads() -> None:
    """For library use on the CPU: lower torch's thread pool to the usable CPUs, once per process.

    Never raises it (more threads than CPUs never helps, and the host program may have chosen fewer),
    and leaves it alone when ``OMP_NUM_THREADS`` is set: the user chose.
    """
    if _limited["done"]:
        return
    _limited["done"] = True
    if "OMP_NUM_THREADS" in os.environ:
        return
    n = cpu_thread_count()
    if torch.get_num_threads() > n:
        torch.set_num_threads(n)


# -------------------------------------------------------------------------------------------- precision


def cpu_bf16_native() -> bool:
    """Whether this CPU computes in bf16 natively (AVX512-BF16 or AMX), where bf16 autocast beats fp32."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private torch.cpu helpers (2.3+)
    for probe in probes:
        check = getattr(torch.cpu, probe, None)
        try:
            if check is not None and check():
                return True
        except Exception:  # a private API: a failing probe means "no", never a crash
            continue
    return False


def cuda_bf16_supported(device: torch.device) -> bool:
    """Whether the CUDA ``device`` has native bf16 (Ampere and later), not emulated."""
    if device.type != "cuda":
        return False
    try:
        return torch.cuda.is_bf16_supported(including_emulation=False)
    except TypeError:  # older torch without the keyword
        return torch.cuda.is_bf16_supported()


def resolve_precision(
    precision: str, device: torch.device, *, training: bool = False
) -> tuple[str, torch.dtype | None]:
    """``precision`` (one of `PRECISIONS`) on ``device`` -> (the precision used, the autocast dtype or
    None for fp32). ``training``: ``auto`` never picks fp16 (no loss scaling), and MPS trains in fp32."""
    if precision not in PRECISIONS:
        raise UsageError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
    kind = device.type
    if training and kind == "mps":
        return "fp32", None
    if precision == "auto":
        if kind == "cpu":
            return ("bf16", torch.bfloat16) if cpu_bf16_native() else ("fp32", None)
        if kind != "cuda":
            return "fp32", None
        if cuda_bf16_supported(device):
            return "bf16", torch.bfloat16
        return ("fp32", None) if training else ("fp16", torch.float16)
    if precision == "fp32":
        return "fp32", None
    if precision == "fp16" and kind == "cpu":
        raise UsageError("precision fp16 is not supported on the CPU; use fp32 or bf16")
    if precision == "bf16" and kind == "cuda" and not cuda_bf16_supported(device):
        raise UsageError(f"precision bf16 is not supported by {torch.cuda.get_device_name(device)}")
    return precision, torch.float16 if precision == "fp16" else torch.bfloat16
