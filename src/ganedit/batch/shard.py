"""Sharding: which share of the sorted inputs this process takes (``--shard K/N``, or a scheduler's
index: a Slurm job array, a Kubernetes Indexed Job, torchrun's RANK)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import UsageError


@dataclass(frozen=True)
class Shard:
    """This process takes inputs ``index, index + count, index + 2*count, ...`` of the sorted list.

    ``source`` says where the index came from (``--shard``, ``SLURM_ARRAY_TASK_ID``, ``JOB_COMPLETION_INDEX``,
    ``RANK``...); it is reported, and plays no part in equality.
    """

    index: int
    count: int
    source: str | None = field(default=None, compare=False)

    @classmethod
    def parse(cls, text: str, *, count: int | None = None) -> Shard:
        """Parse ``K/N`` (K counted from 0, as torchrun's RANK is); ``count``: --shard-count, must be N."""
        try:
            k, n = (int(part) for part in text.split("/"))
        except ValueError:
            raise UsageError(f"--shard must look like K/N (e.g. 0/4), not {text!r}") from None
        if n < 1 or not 0 <= k < n:
            raise UsageError(f"--shard {text}: need 0 <= K < N")
        if count is not None and count != n:
            raise UsageError(f"--shard {text} and --shard-count {count} disagree; give one of them")
        return cls(k, n, "--shard")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, count: int | None = None) -> Shard | None:
        """The share a scheduler gave this process, read from its environment; None when there is none.

        Read, in this order, and validated like ``--shard`` (a bad value is a UsageError naming the
        variable, never a silent full or empty run):

        - a Slurm job array: ``SLURM_ARRAY_TASK_ID`` with ``SLURM_ARRAY_TASK_COUNT`` and/or
          ``SLURM_ARRAY_TASK_MIN``/``MAX`` (and ``STEP``): share ``(ID - MIN) / STEP`` of the array's tasks;
          with ``count`` given, share ``ID`` of ``count`` (IDs 0..count-1), so that one task re-submitted
          alone (``sbatch --array=5``) still takes its own share;
        - a Kubernetes Indexed Job: ``JOB_COMPLETION_INDEX``, with the number of shares from ``count``
          (``--shard-count``) or ``GANEDIT_SHARD_COUNT`` (Kubernetes does not tell a pod the completions);
        - torchrun: ``RANK``/``WORLD_SIZE``. Inside one array task or pod, a torchrun that spans this node
          only (``LOCAL_WORLD_SIZE == WORLD_SIZE``) splits the task's share further.

        ``count`` (or ``GANEDIT_SHARD_COUNT``) given with torchrun alone must agree with ``WORLD_SIZE``.
        """
        env = os.environ if env is None else env
        count_name = "--shard-count "  # how messages name the count: "--shard-count 8" or "..._COUNT=8"
        if count is None and env.get("GANEDIT_SHARD_COUNT") is not None:
            count_name = "GANEDIT_SHARD_COUNT="
            count = _env_int(env, "GANEDIT_SHARD_COUNT", minimum=1)
        elif count is not None and count < 1:
            raise UsageError(f"--shard-count must be >= 1, not {count}")

        slurm = "SLURM_ARRAY_TASK_ID" in env
        k8s = "JOB_COMPLETION_INDEX" in env
        if slurm and k8s:
            raise UsageError(
                "both SLURM_ARRAY_TASK_ID and JOB_COMPLETION_INDEX are set; pass --shard K/N, or unset the "
                "one that does not number this task's share"
            )
        if slurm:
            outer: Shard | None = _slurm_shard(env, count, count_name)
        else:
            outer = _k8s_shard(env, count, count_name) if k8s else None
        torchrun = _torchrun_shard(env)
        if torchrun is None:
            if outer is None and count is not None:
                raise UsageError(
                    f"{count_name}{count} is given but no shard index is set (JOB_COMPLETION_INDEX, "
                    "SLURM_ARRAY_TASK_ID, RANK); pass --shard K/N"
                )
            return outer
        if outer is None:
            if count is not None and count != torchrun.count:
                raise UsageError(f"{count_name}{count} disagrees with WORLD_SIZE={torchrun.count}")
            return torchrun
        if env.get("LOCAL_WORLD_SIZE") != env.get("WORLD_SIZE"):
            raise UsageError(
                f"{outer.source}={env.get(outer.source or '')} is set under a torchrun that spans several "
                "nodes "
                f"(WORLD_SIZE={torchrun.count}, LOCAL_WORLD_SIZE={env.get('LOCAL_WORLD_SIZE', 'unset')}): "
                f"ganedit cannot tell whether RANK already counts the {outer.source} tasks; pass --shard "
                f"K/N, or unset {outer.source} (env -u {outer.source} ...)"
            )
        # One torchrun per array task / pod: its ranks split that task's share.
        return cls(
            outer.index * torchrun.count + torchrun.index,
            outer.count * torchrun.count,
            f"{outer.source}+RANK",
        )

    def describe(self) -> str:
        """``shard 3/8``, with ``from SLURM_ARRAY_TASK_ID`` when the index came from the environment."""
        where = f" from {self.source}" if self.source and self.source != "--shard" else ""
        return f"shard {self}{where}"

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "count": self.count, "source": self.source}

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def _env_int(env: Mapping[str, str], name: str, *, minimum: int = 0) -> int:
    text = env[name]
    stripped = text.strip()
    digits = stripped[1:] if stripped[:1] in "+-" else stripped
    if not (digits.isascii() and digits.isdigit()):  # int() would also take '٣' or '1_000'
        raise UsageError(f"{name}={text!r} is not a whole number")
    value = int(stripped)
    if value < minimum:
        raise UsageError(f"{name}={text!r}: must be >= {minimum}")
    return value


def _slurm_shard(env: Mapping[str, str], count: int | None, count_name: str) -> Shard:
    """A Slurm job array task: ``--array=A-B[:S]`` numbers tasks A, A+S, ..., B; share (ID - A) / S.

    With a count of shares given (--shard-count), the task ID is the share itself: the array's own
    MIN/MAX/COUNT then describe only what was submitted this time (a re-run of task 5 is an array of one).
    """
    task_id = _env_int(env, "SLURM_ARRAY_TASK_ID")
    if count is not None:
        if task_id >= count:
            raise UsageError(
                f"SLURM_ARRAY_TASK_ID={task_id} is out of range for {count_name}{count}: with "
                f"{count_name.strip(' =')} the array's task IDs are the shares, 0..{count - 1} "
                f"(--array=0-{count - 1})"
            )
        return Shard(task_id, count, "SLURM_ARRAY_TASK_ID")
    has = {name: f"SLURM_ARRAY_TASK_{name}" in env for name in ("COUNT", "MIN", "MAX", "STEP")}
    if not (has["COUNT"] or has["MAX"]):
        raise UsageError(
            "SLURM_ARRAY_TASK_ID is set but neither SLURM_ARRAY_TASK_COUNT nor SLURM_ARRAY_TASK_MAX is: "
            "cannot tell how many shares there are; pass --shard K/N"
        )
    low = _env_int(env, "SLURM_ARRAY_TASK_MIN") if has["MIN"] else 0
    step = _env_int(env, "SLURM_ARRAY_TASK_STEP", minimum=1) if has["STEP"] else 1
    count = _env_int(env, "SLURM_ARRAY_TASK_COUNT", minimum=1) if has["COUNT"] else None
    if has["MAX"]:
        high = _env_int(env, "SLURM_ARRAY_TASK_MAX")
        if high < low:
            raise UsageError(f"SLURM_ARRAY_TASK_MAX={high} is below SLURM_ARRAY_TASK_MIN={low}")
        span = (high - low) // step + 1
        if count is not None and count != span:
            # e.g. --array=1,3,8: MIN 1, MAX 8, COUNT 3. Numbering shares by ID would leave some out.
            raise UsageError(
                f"the Slurm array is not a plain range (SLURM_ARRAY_TASK_COUNT={count}, but MIN={low}, "
                f"MAX={high}, STEP={step} span {span} tasks); use --array=0-{count - 1}, or pass --shard K/N"
            )
        count = span
    assert count is not None
    offset = task_id - low
    if offset < 0 or offset % step or offset // step >= count:
        raise UsageError(
            f"SLURM_ARRAY_TASK_ID={task_id} is not one of the array's {count} tasks "
            f"({low}, {low + step}, ..., {low + (count - 1) * step})"
        )
    return Shard(offset // step, count, "SLURM_ARRAY_TASK_ID")


def _k8s_shard(env: Mapping[str, str], count: int | None, count_name: str) -> Shard:
    """A Kubernetes Indexed Job pod: ``JOB_COMPLETION_INDEX`` of the Job's ``completions``."""
    index = _env_int(env, "JOB_COMPLETION_INDEX")
    if count is None:
        raise UsageError(
            f"JOB_COMPLETION_INDEX={index} is set (a Kubernetes Indexed Job) but not the number of shares: "
            "pass --shard-count N or set GANEDIT_SHARD_COUNT=N (N = the Job's completions)"
        )
    if index >= count:
        raise UsageError(
            f"JOB_COMPLETION_INDEX={index} is out of range for {count_name}{count} "
            f"(need 0 <= index < {count})"
        )
    return Shard(index, count, "JOB_COMPLETION_INDEX")


def _torchrun_shard(env: Mapping[str, str]) -> Shard | None:
    """torchrun's ``RANK`` of ``WORLD_SIZE`` processes; None for a world of one (or no torchrun)."""
    if "RANK" not in env and "WORLD_SIZE" not in env:
        return None
    for name in ("RANK", "WORLD_SIZE"):
        if name not in env:
            other = "WORLD_SIZE" if name == "RANK" else "RANK"
            raise UsageError(f"{other} is set but {name} is not (as torchrun sets both); pass --shard K/N")
    world = _env_int(env, "WORLD_SIZE", minimum=1)
    rank = _env_int(env, "RANK")
    if rank >= world:
        raise UsageError(f"RANK={rank} is out of range for WORLD_SIZE={world} (need 0 <= RANK < WORLD_SIZE)")
    if world == 1:
        return None
    return Shard(rank, world, "RANK")
