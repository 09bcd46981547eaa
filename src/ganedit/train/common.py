"""What the PAN and TDGAN training runs (`ganedit.train.pan`, `ganedit.train.tdgan`) share: the
distributed setup, the device choice, Ctrl-C handling, TOML config reading / writing helpers and the
learning-rate schedule."""

from __future__ import annotations

import json
import math
import os
import signal
import threading
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import UsageError

__all__ = [
    "Dist",
    "Interrupt",
    "parse_override",
    "pick_device",
    "read_toml",
    "requires_grad",
    "scheduled_lr",
    "toml_value",
]

# ---------------------------------------------------------------------------------------------- setup


@dataclass
class Dist:
    """The distributed context: world of one unless launched by torchrun with WORLD_SIZE > 1."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    owns_group: bool = False

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> Dist:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        return cls(
            rank=int(os.environ.get("RANK", "0")),
            world_size=world,
            local_rank=int(os.environ.get("LOCAL_RANK", "0")),
            local_world_size=int(os.environ.get("LOCAL_WORLD_SIZE", str(world))),
        )

    def init(self, device: torch.device) -> None:
        if not self.active:
            return
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
            self.owns_group = True

    def any(self, flag: bool, device: torch.device) -> bool:
        """True on every rank if `flag` is true on any (all ranks must call it at the same point)."""
        if not self.active:
            return flag
        import torch.distributed as dist

        t = torch.tensor([1.0 if flag else 0.0], device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item() > 0)

    def barrier(self) -> None:
        if self.active:
            import torch.distributed as dist

            dist.barrier()

    def close(self) -> None:
        if self.owns_group:
            import torch.distributed as dist

            dist.destroy_process_group()
            self.owns_group = False


def pick_device(spec: str, dist: Dist) -> torch.device:
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", dist.local_rank % torch.cuda.device_count())
        return torch.device("cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise UsageError(f"unknown device {spec!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError("device cuda was asked for but no CUDA GPU is available")
        if device.index is None:
            device = torch.device("cuda", dist.local_rank % torch.cuda.device_count())
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError("device mps was asked for but MPS is not available")
    return device


class Interrupt:
    """Turns the first Ctrl-C into a flag the loop checks between steps, so the state saved on the way
    out is a consistent one (never half a step: D updated and T not). A second Ctrl-C interrupts at once.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> Interrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def requires_grad(module: nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)


# --------------------------------------------------------------------------------------------- config


def parse_override(text: str) -> tuple[str, Any]:
    """``key=value`` (``--set``): the value is read as TOML (numbers, true/false, [lists], "strings"),
    and taken as a plain string when it is not valid TOML (``data=photos/`` needs no quotes)."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise UsageError(f"--set expects KEY=VALUE (e.g. --set lr=1e-4), got {text!r}")
    raw = raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value


def read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read config file {path}: {e}") from None
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"config file {path} is not valid TOML: {e}") from None


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def scheduled_lr(lr: float, step: int, steps: int, decay_steps: int) -> float:
    """The learning rate of the step after `step`: constant, then over the last `decay_steps` of `steps`
    linearly down towards 0 (pix2pix's schedule). A function of the step alone, so a resumed run follows
    the same schedule as a straight one."""
    if decay_steps <= 0:
        return lr
    remaining = steps - step
    return lr * min(1.0, max(remaining, 0) / decay_steps)
