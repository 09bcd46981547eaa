"""What the PAN and TDGAN training runs (`ganedit.train.pan`, `ganedit.train.tdgan`) share: the
training loop itself (`TrainingRun`: steps, lr schedule, data digest, log records, periodic sample / save,
Ctrl-C, export), the distributed setup, the device choice, TOML config reading / writing helpers and the
learning-rate schedule. Config loading is `ganedit.train.config`."""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import hashlib
import json
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

import torch
from torch import Tensor, nn

from ..errors import CheckpointError, GaneditError, UsageError
from ..io.atomic import write_atomic
from ..runtime.devices import select_device
from . import config as cfgload
from . import state as st
from .config import parse_override, read_toml, toml_value, unknown_key  # moved there; kept for one release

__all__ = [
    "MODEL_NAME",
    "Dist",
    "Interrupt",
    "TrainingRun",
    "fingerprint",
    "parse_override",
    "pick_device",
    "read_toml",
    "requires_grad",
    "scheduled_lr",
    "toml_value",
    "unknown_key",
]

MODEL_NAME = "model.safetensors"  # RUN_DIR/model.safetensors: the exported model

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
    """The training device (`ganedit.runtime.devices.select_device`): each torchrun rank on its own GPU;
    ``auto`` never picks an Apple GPU for training (ask for ``mps`` explicitly)."""
    return select_device(spec, local_rank=dist.local_rank, auto_mps=False)


class Interrupt:
    """Turns the first Ctrl-C (SIGINT) or SIGTERM into a flag the loop checks between steps, so the state
    saved on the way out is a consistent one (never half a step: D updated and T not). SIGTERM is what a
    batch scheduler, ``kill``, a container stop or torchrun sends before it kills; without this a run
    stopped that way loses everything since its last periodic save. A second signal interrupts at once.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> Interrupt:
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc: object) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()


def requires_grad(module: nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)


# ----------------------------------------------------------------------------------------- schedule


def scheduled_lr(lr: float, step: int, steps: int, decay_steps: int) -> float:
    """The learning rate of the step after `step`: constant, then over the last `decay_steps` of `steps`
    linearly down towards 0 (pix2pix's schedule). A function of the step alone, so a resumed run follows
    the same schedule as a straight one."""
    if decay_steps <= 0:
        return lr
    remaining = steps - step
    return lr * min(1.0, max(remaining, 0) / decay_steps)


# ----------------------------------------------------------------------------------------------- loop


class LoopConfig(Protocol):
    """The settings `TrainingRun` reads; both trainers' config dataclasses have them."""

    @property
    def out(self) -> str: ...
    @property
    def steps(self) -> int: ...
    @property
    def lr(self) -> float: ...
    @property
    def lr_decay_steps(self) -> int: ...
    @property
    def log_every(self) -> int: ...
    @property
    def sample_every(self) -> int: ...
    @property
    def save_every(self) -> int: ...
    @property
    def keep_states(self) -> int: ...


class _Data(Protocol):
    @property
    def description(self) -> dict[str, Any]: ...


def fingerprint(batch: Mapping[str, Tensor], keys: Iterable[str]) -> str:
    """A short hash of a batch's entries `keys` (those it has: sample indices, tags, pixels)."""
    h = hashlib.blake2b(digest_size=8)
    for key in keys:
        if key in batch:
            h.update(batch[key].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


class _Closer:
    """Stops a data-loader iterator's worker processes now, rather than whenever it is collected (an
    exception's traceback would keep it, and its workers, alive). Other iterators: nothing to do."""

    def __init__(self, iterator: Iterator[Any]) -> None:
        self.iterator = iterator

    def close(self) -> None:
        shutdown = getattr(self.iterator, "_shutdown_workers", None)
        if shutdown is not None:
            shutdown()


class TrainingRun(abc.ABC):
    """One training run of a D / G pair (PAN, TDGAN) in its folder: the loop and its bookkeeping.

    Why one loop for both: bit-for-bit resume rests on details that must be the same everywhere -- a
    step's lr is a function of the step alone, every batch is hashed into the running ``data_digest``, a
    state is saved only between whole steps (Ctrl-C included), a resumed run redoes the log lines after
    its state, Ctrl-C leaves a state and a model behind. Two copies of that drift apart.

    A subclass's ``__init__`` calls ``super().__init__``, then sets `device`, `data`, `opt_g`, `opt_d`
    (and `state_file` via `_find_state`, restoring it with `_restore`). It says what differs between
    trainers: how batches come (`batches`), one step (`train_step`), the periodic look at the model
    (`sample`), which modules and plain values a state holds (`networks`, `state_meta`), the export
    (`export_model`), the names of its losses (`loss_names`) and which batch entries identify a batch
    (`fingerprint_keys`).
    """

    loss_names: ClassVar[tuple[str, ...]]  # what train_step's loss vector holds, in order: the log's keys
    finite_losses: ClassVar[tuple[str, ...]] = ("loss_d", "loss_g")  # not finite: the run has diverged
    fingerprint_keys: ClassVar[tuple[str, ...]]  # the batch entries hashed into its fingerprint

    device: torch.device
    data: _Data
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer

    def __init__(self, config: LoopConfig, dist: Dist, on_log: Callable[[dict], None] | None) -> None:
        self.config = config
        self.dist = dist
        self.on_log = on_log
        self.run_dir = Path(config.out)
        self.state_file: Path | None = None  # the state this run resumed from
        self.step = 0
        self.digest = ""  # running hash of every step's batch fingerprint: equal digests, equal data order
        self.elapsed = 0.0  # seconds of training, over all sessions of the run

    # ------------------------------------------------------------------------------ what differs

    @abc.abstractmethod
    def batches(self) -> Iterator[Mapping[str, Tensor]]:
        """The batches of steps `step`, `step` + 1, ..., in order; called once, before the loop (and its
        Ctrl-C handler). A data loader's worker processes are stopped when the loop ends."""

    @abc.abstractmethod
    def train_step(self, batch: Mapping[str, Tensor]) -> Tensor:
        """One update of D and G on `batch`; returns the losses (`loss_names`) as one tensor."""

    @abc.abstractmethod
    def sample(self) -> dict[str, Any] | None:
        """Every ``sample_every`` steps and at the end: look at the model (grid, metrics) and log it."""

    @abc.abstractmethod
    def networks(self) -> dict[str, nn.Module]:
        """The modules a state holds, by the prefix of their tensors' names (``{"D": ...}``)."""

    @abc.abstractmethod
    def state_meta(self) -> dict[str, Any]:
        """The trainer's own plain values in a state (task, model configs), beside the loop's."""

    @abc.abstractmethod
    def export_model(self, path: Path) -> Path:
        """Write the latest state's model as a ganedit checkpoint at `path`."""

    def start_details(self) -> dict[str, Any]:
        """More settings for the ``start`` record (after ``device``)."""
        return {}

    def check_state(self, meta: Mapping[str, Any]) -> None:  # noqa: B027 - optional, by default none
        """Reject a state (its metadata) that cannot continue this run, before anything is loaded."""

    # ------------------------------------------------------------------------------------- state

    def _find_state(
        self, resume: bool, cls: type[cfgload.TrainConfig], mutable: frozenset[str], new_run: str
    ) -> None:
        """Set `state_file` to the state a resumed run continues from. UsageError when there is none, when
        the config changes a setting outside `mutable` from the run's saved config (of class `cls`;
        `new_run` says what to do instead), or when a new run would write over an existing one."""
        if resume:
            self.state_file = st.latest_state(self.run_dir / "state")
            if self.state_file is None:
                raise UsageError(
                    f"{self.run_dir} has no saved state to resume from (no state/step-*.safetensors)"
                )
            saved = cfgload.resume(cls, self.run_dir)
            cfgload.check_unchanged(self.config, saved, mutable, self.run_dir, new_run)  # type: ignore[arg-type]
        elif st.latest_state(self.run_dir / "state") is not None:
            raise UsageError(
                f"{self.run_dir} already holds a training run; resume it (--resume {self.run_dir}) "
                "or choose another --out"
            )

    def _restore(self, path: Path) -> dict[str, Any]:
        """Load the state `path` into the networks, optimizers, RNGs and counters; returns its metadata."""
        tensors, meta = st.load_state(path)
        self.check_state(meta)
        try:
            for prefix, module in self.networks().items():
                head = f"{prefix}."
                own = {k[len(head) :]: v for k, v in tensors.items() if k.startswith(head)}
                module.load_state_dict(own, strict=True)
            self.opt_g.load_state_dict(st.unflatten_optimizer(tensors, meta["opt_g"], "opt_g"))
            self.opt_d.load_state_dict(st.unflatten_optimizer(tensors, meta["opt_d"], "opt_d"))
        except (RuntimeError, KeyError, ValueError) as e:
            raise CheckpointError(f"{path}: state does not match this run's models ({e})") from None
        for opt in (self.opt_g, self.opt_d):  # Adam keeps its moments on the parameters' device
            for entries in opt.state.values():
                for key, value in entries.items():
                    if isinstance(value, Tensor) and key != "step":
                        entries[key] = value.to(self.device)
        st.restore_rng_state(tensors)
        self.step = int(meta["step"])
        self.digest = str(meta["data_digest"])
        self.elapsed = float(meta.get("elapsed_s", 0.0))
        return meta

    def save(self) -> Path | None:
        """Write RUN_DIR/state/step-*.safetensors (rank 0 only): networks, optimizers, RNGs, counters."""
        if not self.dist.main:
            return None
        tensors: dict[str, Tensor] = {}
        for prefix, module in self.networks().items():
            tensors.update({f"{prefix}.{k}": v for k, v in module.state_dict().items()})
        opt_g, meta_g = st.flatten_optimizer(self.opt_g.state_dict(), "opt_g")
        opt_d, meta_d = st.flatten_optimizer(self.opt_d.state_dict(), "opt_d")
        tensors.update(opt_g)
        tensors.update(opt_d)
        tensors.update(st.rng_state_tensors())
        meta = {
            **self.state_meta(),
            "data_digest": self.digest,
            "elapsed_s": self.elapsed,
            "opt_g": meta_g,
            "opt_d": meta_d,
            "config": json.loads(json.dumps(dataclasses.asdict(self.config))),  # type: ignore[call-overload]
            "data": self.data.description,
        }
        path = st.save_state(self.run_dir / "state", self.step, tensors, meta, keep=self.config.keep_states)
        self._emit({"event": "save", "step": self.step, "path": str(path)}, to_file=False)
        return path

    # ----------------------------------------------------------------------------------- logging

    def _emit(self, record: dict[str, Any], *, to_file: bool = True) -> None:
        """Append `record` to RUN_DIR/log.jsonl (unless not `to_file`) and pass it to `on_log`; rank 0."""
        if not self.dist.main:
            return
        if to_file:
            with (self.run_dir / "log.jsonl").open("a", encoding="utf-8") as f:
                f.write(json.dumps(record, sort_keys=True) + "\n")
        if self.on_log is not None:
            self.on_log(record)

    def _truncate_log(self) -> None:
        """A resumed run drops the log lines written after its state was saved: they are redone."""
        path = self.run_dir / "log.jsonl"
        if not self.dist.main or not path.is_file():
            return
        kept = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                if int(json.loads(line).get("step", 0)) <= self.step:
                    kept.append(line)
            except (ValueError, AttributeError):
                continue
        write_atomic(path, ("\n".join(kept) + "\n").encode() if kept else b"")

    # --------------------------------------------------------------------------------------- run

    def run(self) -> Path:
        """Train from `step` to ``config.steps``, then save, export and return RUN_DIR/model.safetensors.
        Ctrl-C or SIGTERM (or a KeyboardInterrupt from `on_log`) ends the current step, saves, exports and
        raises KeyboardInterrupt.
        """
        cfg = self.config
        self._truncate_log()
        if self.step >= cfg.steps:
            self.dist.barrier()
            return self._finish()
        self._emit(
            {
                "event": "start",
                "step": self.step,
                "steps": cfg.steps,
                "device": str(self.device),
                **self.start_details(),
                "data": self.data.description,
                "resumed": self.state_file is not None,
            },
            to_file=False,
        )
        batches = self.batches()
        sums = torch.zeros(len(self.loss_names), device=self.device)
        count = 0
        tick = time.perf_counter()
        last_saved = self.step if self.state_file is not None else -1
        consistent = True  # False while a step is under way: no state can be saved then
        with Interrupt() as interrupt, contextlib.closing(_Closer(batches)):
            try:
                while self.step < cfg.steps:
                    batch = next(batches)
                    batch_hash = fingerprint(batch, self.fingerprint_keys)
                    consistent = False
                    lr = scheduled_lr(cfg.lr, self.step, cfg.steps, cfg.lr_decay_steps)
                    for opt in (self.opt_g, self.opt_d):
                        for group in opt.param_groups:
                            group["lr"] = lr
                    losses = self.train_step(batch)
                    self.step += 1
                    self.digest = hashlib.blake2b(
                        f"{self.digest}{batch_hash}".encode(), digest_size=8
                    ).hexdigest()
                    consistent = True
                    sums += losses
                    count += 1
                    if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                        now = time.perf_counter()
                        self._log(sums / count, count, now - tick, lr, batch_hash)
                        tick, sums, count = now, torch.zeros_like(sums), 0
                    if cfg.sample_every and self.step % cfg.sample_every == 0:
                        self.sample()
                    if cfg.save_every and self.step % cfg.save_every == 0:
                        self.save()
                        last_saved = self.step
                    if self.dist.any(interrupt.requested, self.device):
                        raise KeyboardInterrupt
            except KeyboardInterrupt:
                if consistent and last_saved != self.step:
                    self.save()
                if consistent:
                    self._finish(barrier=False)
                raise
        if last_saved != self.step:
            self.save()
        if cfg.sample_every and self.step % cfg.sample_every:
            self.sample()
        self.dist.barrier()
        return self._finish()

    def _log(self, means: Tensor, count: int, seconds: float, lr: float, batch_hash: str) -> None:
        """Log the mean losses of the last `count` steps (`seconds` long); a loss in `finite_losses` that
        is not finite stops the run (it has diverged)."""
        values = dict(zip(self.loss_names, means.tolist(), strict=True))
        self.elapsed += seconds
        record: dict[str, Any] = {
            "event": "log",
            "step": self.step,
            **{k: round(v, 6) for k, v in values.items()},
            "steps_per_s": round(count / max(seconds, 1e-9), 4),
            "lr": lr,
            "elapsed_s": round(self.elapsed, 2),
            "batch": batch_hash,
            "data_digest": self.digest,
        }
        if not all(math.isfinite(values[k]) for k in self.finite_losses):
            raise GaneditError(
                f"training diverged at step {self.step} (loss is not finite); "
                f"resume from the last state in {self.run_dir / 'state'} with a lower lr"
            )
        self._emit(record)

    def _finish(self, barrier: bool = True) -> Path:
        path = self.run_dir / MODEL_NAME
        if self.dist.main:
            self.export_model(path)
            self._emit({"event": "done", "step": self.step, "model": str(path)}, to_file=False)
        if barrier:
            self.dist.barrier()
        return path
