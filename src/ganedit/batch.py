"""Plan and run a batch of edits: which input goes to which output, and a report of what happened.

Planning (`plan_jobs`) is pure path logic and runs before any model is loaded, so that usage errors
(output inside input, two inputs writing one output, a bad shard) cost nothing. Running (`run_jobs`) keeps
the model busy: files are decoded on worker threads ahead of the model and encoded/written on worker
threads behind it, so on a folder of photos the model rarely waits for I/O.

Promises kept here, because photographers depend on them:
- inputs are never written: an output path that equals an input path is refused;
- outputs are written atomically (temp file + rename), so an interrupt leaves no half-written file;
- an output that already exists is skipped unless ``overwrite`` — re-running a command resumes it;
- a file that fails is reported and the others go on; the report's ``exit_code`` tells the truth.
"""

from __future__ import annotations

import glob
import os
import stat
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

import numpy as np

from .errors import GaneditError, ImageError, UsageError
from .io.atomic import write_atomic
from .io.decode import capture_warnings, file_limit, read_picture, too_large
from .io.discover import Found, discover
from .io.encode import encode_picture, output_format
from .io.masks import read_mask
from .io.picture import IMAGE_SUFFIXES, Picture
from .io.stream import write_stream
from .provenance import Recorder, data_identity, file_identity

if TYPE_CHECKING:
    from .editor import Editor

STDIO = "-"
Status = Literal["ok", "skipped", "failed"]


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
                f"{outer.source}={env[outer.source]} is set under a torchrun that spans several nodes "
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


@dataclass(frozen=True)
class Job:
    """One input -> one output. ``source``/``output`` of None mean stdin/stdout."""

    source: Path | None
    display: str
    output: Path | None
    fmt: str  # the output container ("jpeg", "png", "webp", "tiff", "bmp"), or "keep" for stdin's own
    mask: Path | None = None
    mask_error: str | None = None  # why no mask was found (a per-file failure at run time)
    data: bytes | None = field(default=None, repr=False, compare=False)  # stdin, when planning read it


@dataclass
class Plan:
    jobs: list[Job]
    skipped: list[Job] = field(default_factory=list)  # outputs that exist already
    # Of the skipped outputs, those made from another input or with other settings: why (from their
    # records in the output folder's index, ganedit.provenance). Still skipped: --overwrite redoes them.
    stale: dict[Path, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    shard: Shard | None = None  # the share of the inputs this plan took


@dataclass
class Entry:
    input: str
    output: str | None
    status: Status
    seconds: float = 0.0
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    stale: bool = False  # skipped, but made from another input or with other settings


@dataclass
class Report:
    entries: list[Entry] = field(default_factory=list)
    model: str | None = None
    sha256: str | None = None
    device: str | None = None
    precision: str | None = None
    flip_average: bool | None = None
    strength: float | None = None  # derain: result blended with the input (1 = the full edit)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    interrupted: bool = False
    shard: Shard | None = None  # which share of the inputs this run took, and where its index came from
    # Set by `ganedit report merge` (ganedit.reports): the reports merged, their shards, missing shards.
    merged: dict[str, Any] | None = None

    def count(self, status: Status) -> int:
        return sum(entry.status == status for entry in self.entries)

    @property
    def stale(self) -> int:
        """Outputs skipped that were made from another input or with other settings."""
        return sum(entry.stale for entry in self.entries)

    @property
    def failed(self) -> list[Entry]:
        return [entry for entry in self.entries if entry.status == "failed"]

    @property
    def exit_code(self) -> int:
        incomplete = bool(self.merged and self.merged.get("missing_shards"))
        return 1 if self.failed or self.interrupted or incomplete else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "sha256": self.sha256,
            "device": self.device,
            "precision": self.precision,
            "flip_average": self.flip_average,
            "strength": self.strength,
            "seconds": round(self.seconds, 3),
            "totals": {
                "inputs": len(self.entries),
                "ok": self.count("ok"),
                "skipped": self.count("skipped"),
                "failed": self.count("failed"),
                "skipped_stale": self.stale,
            },
            "interrupted": self.interrupted,
            "shard": self.shard.to_dict() if self.shard is not None else None,
            "merged": self.merged,
            "notes": list(self.notes),
            "files": [
                {
                    "input": e.input,
                    "output": e.output,
                    "status": e.status,
                    "seconds": round(e.seconds, 3),
                    "error": e.error,
                    "warnings": list(e.warnings),
                    "stale": e.stale,
                }
                for e in self.entries
            ],
        }


# ---------------------------------------------------------------------------------------------- planning


def _is_folder_target(output: Path, *, single_file: bool, trailing_slash: bool = False) -> bool:
    """A single input writes to a file unless OUTPUT is an existing folder, ends with a slash, or has no
    image suffix."""
    if output.is_dir() or trailing_slash:
        return True
    if not single_file:
        return True
    return output.suffix.lower() not in IMAGE_SUFFIXES


def _output_name(name: str, fmt_requested: str, suffix: str) -> tuple[str, str]:
    """Output file name for an input name: keep the extension (even its case) when the format is kept."""
    stem, ext = Path(name).stem, Path(name).suffix
    fmt, new_ext = output_format(_format_of_suffix(ext), fmt_requested)
    if fmt_requested == "keep" and _format_of_suffix(ext) == fmt:
        new_ext = ext
    return f"{stem}{suffix}{new_ext}", fmt


_SUFFIX_FORMATS = {
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
    ".png": "png",
    ".webp": "webp",
    ".tif": "tiff",
    ".tiff": "tiff",
    ".bmp": "bmp",
}


def _format_of_suffix(ext: str) -> str:
    return _SUFFIX_FORMATS[ext.lower()]


def _file_target_format(out: Path, fmt: str) -> str:
    """With an explicit output file name its extension decides the format; --format may only agree."""
    named = _format_of_suffix(out.suffix)
    if fmt != "keep" and output_format(named, fmt)[0] != named:
        raise UsageError(f"-o {out} is a {named.upper()} name but --format is {fmt}; drop one of them")
    return named


def _is_within(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


class _MaskFinder:
    """Masks for inputs: one file for all, or a folder matched by relative path and file stem."""

    SUFFIXES = ("", "_mask", ".mask", "-mask")

    def __init__(
        self, mask: Path | None, *, exclude: frozenset[Path] = frozenset(), outside: Path | None = None
    ):
        """``exclude``: resolved paths never taken as masks (the inputs: an input is never its own mask);
        ``outside``: a folder under the mask folder whose files are not masks (an output folder there)."""
        self.mask = mask
        self.by_stem: dict[str, list[Path]] = {}
        if mask is not None and mask.is_dir():
            for path in sorted(mask.rglob("*")):
                if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith("."):
                    if path.resolve() in exclude or (outside is not None and _is_within(path, outside)):
                        continue
                    rel = path.relative_to(mask).with_suffix("").as_posix()
                    self.by_stem.setdefault(rel, []).append(path)
                    self.by_stem.setdefault(path.stem, []).append(path)

    def find(self, rel: Path) -> tuple[Path | None, str | None]:
        if self.mask is None:
            return None, None
        if self.mask.is_file():
            return self.mask, None
        base = rel.with_suffix("").as_posix()
        for key in (base, rel.stem):
            for extra in self.SUFFIXES:
                found = self.by_stem.get(key + extra)
                if found:
                    return found[0], None
        return (
            None,
            f"no mask for {rel.as_posix()} in {self.mask} (looked for {rel.stem}.*, {rel.stem}_mask.*)",
        )


def _leave_out_masks(
    files: list[Found], mask: Path | None, inputs: Sequence[str]
) -> tuple[list[Found], list[str]]:
    """A mask is never an input: the ``--mask`` file, the files of a ``--mask`` folder found inside an
    input folder (``photos/ -r --mask photos/masks/``), and, in a ``--mask`` folder that is an input
    folder (or holds one), the masks of other inputs (``x_mask.png`` beside ``x.png``) are left out of
    the inputs, with a note."""
    if mask is None:
        return files, []
    if mask.is_file():
        target = mask.resolve()
        kept = [f for f in files if f.path.resolve() != target]
        return kept, [f"left out {mask} from the inputs: it is the --mask"] if len(kept) < len(files) else []
    if not mask.is_dir():
        return files, []
    stems = {f.path.stem for f in files}
    extras = _MaskFinder.SUFFIXES[1:]
    named = {Path(i).resolve() for i in inputs if Path(i).is_file()}
    # The mask folder is a subfolder of an input folder: everything found in it is a mask.
    nested = any(
        _is_within(mask, Path(i)) and not _is_within(Path(i), mask) for i in inputs if Path(i).is_dir()
    )

    def is_mask(f: Found) -> bool:
        if not _is_within(f.path, mask):
            return False
        if nested and f.path.resolve() not in named:
            return True
        stem = f.path.stem
        return any(stem.endswith(extra) and stem[: -len(extra)] in stems for extra in extras)

    left_out = [f for f in files if is_mask(f)]
    if not left_out:
        return files, []
    names = ", ".join(str(f.path) for f in left_out[:5]) + (", ..." if len(left_out) > 5 else "")
    where = "is inside an input folder" if nested else "is also an input folder"
    note = (
        f"left out {len(left_out)} mask{'s' if len(left_out) > 1 else ''} from the inputs ({names}): "
        f"the --mask folder {mask} {where}"
    )
    return [f for f in files if not is_mask(f)], [note]


def plan_jobs(
    inputs: Sequence[str | Path],
    output: str | Path,
    *,
    recursive: bool = False,
    mask: str | Path | None = None,
    needs_mask: bool = False,
    fmt: str = "keep",
    suffix: str = "",
    overwrite: bool = False,
    shard: Shard | None = None,
    stdin: IO[bytes] | None = None,
    check: Callable[[Job], str | None] | None = None,
) -> Plan:
    """Map inputs to outputs. Raises UsageError for anything that would lose data or cannot work.

    Never an output target: an input (of any shard), a mask, the file stdin is redirected from; with
    ``overwrite``, neither an existing file inside an input folder (files left out as "inside the output
    folder" included: they may be originals) nor one inside the mask folder.

    An INPUT that does not exist but holds a glob pattern (``photos/*.jpg``, ``**`` for any depth, as a
    quoted argument) stands for the files it matches. ``check(job)`` tells why an existing output was
    made from another input or with other settings (None: it was not, or nobody knows): such outputs
    are still skipped, and listed in ``Plan.stale``.
    """
    if not inputs:
        raise UsageError("no INPUT given")
    _check_suffix(suffix)
    inputs = expand_patterns([str(i) for i in inputs])
    output = str(output)
    mask_path = Path(mask) if mask is not None else None
    if needs_mask and mask_path is None:
        raise UsageError(
            "this task needs --mask (a mask file for all inputs, or a folder of masks matched by name)"
        )
    if mask_path is not None and not mask_path.exists():
        raise UsageError(f"--mask {mask_path}: no such file or folder")
    if mask_path is not None and not (mask_path.is_file() or mask_path.is_dir()):
        raise UsageError(f"--mask {mask_path}: not a file or folder ({_special_kind(mask_path)})")

    if STDIO in inputs:
        if len(inputs) > 1:
            raise UsageError("'-' (stdin) must be the only INPUT")
        return _plan_stdin(output, mask_path, fmt=fmt, overwrite=overwrite, stdin=stdin, check=check)

    found = discover([Path(i) for i in inputs], recursive=recursive)
    notes = list(found.notes)
    files, mask_notes = _leave_out_masks(found.files, mask_path, inputs)
    notes += mask_notes
    # An input is never its own mask (nor any input another's): with --mask equal to an input folder,
    # x.png would otherwise be its own mask ("x.*" comes before "x_mask.*").
    not_masks = frozenset(f.path.resolve() for f in files)
    if not files and not all(Path(i).is_dir() for i in inputs):  # named files, none an image: a mistake
        detail = f" ({'; '.join(notes)})" if notes else ""
        raise UsageError(f"no images found in {', '.join(inputs)}{detail}")
    if not files:  # folders with no image in them (yet): a cron job with nothing to do is not an error
        notes.append(f"nothing to do: no images found in {', '.join(inputs)}")
    single_file = len(inputs) == 1 and Path(inputs[0]).is_file()

    if output == STDIO:
        if not single_file or len(files) != 1:
            raise UsageError("-o - (stdout) takes exactly one input image")
        entry = files[0]
        name, out_fmt = _output_name(entry.path.name, fmt, "")
        finder = _MaskFinder(mask_path, exclude=not_masks)
        m, m_err = finder.find(entry.rel)
        return Plan([Job(entry.path, str(entry.path), None, out_fmt, m, m_err)], notes=notes)

    out = Path(output)
    trailing_slash = output.endswith(("/", os.sep))
    folder = _is_folder_target(out, single_file=single_file, trailing_slash=trailing_slash)
    if not folder and out.suffix.lower() not in IMAGE_SUFFIXES:
        raise UsageError(f"-o {out}: not an image file name ({', '.join(sorted(IMAGE_SUFFIXES))})")
    if folder and out.is_file():
        if single_file:  # -o notes.txt: an existing file, and not an image name we could write
            raise UsageError(
                f"-o {out} is an existing file and not an image file name "
                f"({', '.join(sorted(IMAGE_SUFFIXES))}); give an image file name or a folder"
            )
        raise UsageError(f"-o {out} is a file, but several inputs need an output folder")

    if folder:
        for given in inputs:
            if Path(given).is_dir() and Path(given).resolve() == out.resolve():
                raise UsageError(
                    f"-o {out} is the input folder itself; write into another folder (a subfolder is fine)"
                )
        # Outputs written inside an input folder must not be picked up as inputs by a later run
        # (files the user named one by one are theirs to choose, though).
        named = {Path(i).resolve() for i in inputs if Path(i).is_file()}
        kept = [f for f in files if f.path.resolve() in named or not _is_within(f.path, out)]
        # Left out as inputs, but not fair game as outputs: see the `overwrite` check below.
        if len(kept) != len(files):
            dropped = len(files) - len(kept)
            notes.append(f"skipped {dropped} file{'s' if dropped > 1 else ''} inside the output folder {out}")
        files = kept

    # Never an output target, whatever the shard: an input, or a mask that an input uses.
    # An output folder inside the mask folder holds outputs, not masks (the mask folder itself is kept:
    # its masks must stay protected below).
    nested = folder and mask_path is not None and _is_within(out, mask_path)
    outside = out if nested and out.resolve() != mask_path.resolve() else None  # type: ignore[union-attr]
    finder = _MaskFinder(mask_path, exclude=not_masks, outside=outside)
    input_paths = {f.path.resolve(): f.path for f in files}
    masks = {mask_path.resolve()} if mask_path is not None and mask_path.is_file() else set()
    masks |= {m.resolve() for f in files if (m := finder.find(f.rel)[0]) is not None}
    input_folders = [Path(i) for i in inputs if Path(i).is_dir()]

    if shard is not None and shard.count > 1:
        total = len(files)
        files = files[shard.index :: shard.count]
        notes.append(f"{shard.describe()}: {len(files)} of {total} inputs")

    jobs: list[Job] = []
    seen: dict[Path, str] = {}
    for entry in files:
        if folder:
            rel = entry.rel if recursive else Path(entry.rel.name)
            name, out_fmt = _output_name(rel.name, fmt, suffix)
            target = out / rel.parent / name
        else:
            out_fmt = _file_target_format(out, fmt)
            target = out
        resolved = target.resolve()
        if resolved in input_paths:  # name the file at risk, which may be another input than this one
            at_risk = input_paths[resolved]
            edit = "" if at_risk == entry.path else f" with the edit of {entry.path}"
            raise UsageError(
                f"refusing to overwrite the input {at_risk}{edit} (choose another -o or a --suffix)"
            )
        if resolved in masks:
            raise UsageError(f"refusing to overwrite the mask {target} (choose another -o or a --suffix)")
        if overwrite and target.exists():
            _refuse_if_maybe_original(target, input_folders, mask_path)
        if resolved in seen:
            raise UsageError(f"inputs {seen[resolved]} and {entry.path} would both write {target}")
        seen[resolved] = str(entry.path)
        m, m_err = finder.find(entry.rel)
        jobs.append(Job(entry.path, str(entry.path), target, out_fmt, m, m_err))

    if overwrite:
        return Plan(jobs, notes=notes, shard=shard)
    todo = [j for j in jobs if j.output is None or not j.output.exists()]
    skipped = [j for j in jobs if j.output is not None and j.output.exists()]
    return Plan(todo, skipped=skipped, notes=notes, shard=shard, stale=_stale(skipped, check))


def _stale(skipped: Sequence[Job], check: Callable[[Job], str | None] | None) -> dict[Path, str]:
    if check is None:
        return {}
    reasons = {job.output: check(job) for job in skipped if job.output is not None}
    return {output: reason for output, reason in reasons.items() if reason is not None}


_GLOB_CHARS = frozenset("*?[")


def expand_patterns(inputs: Sequence[str]) -> list[str]:
    """Inputs with a quoted glob pattern (``"photos/*.jpg"``, ``**`` for any depth) replaced by the files
    and folders it matches, sorted; a path that exists is always taken as it is (``[1].jpg``). A pattern
    that matches nothing is a UsageError; hidden files match only a pattern that names them (``.*``)."""
    expanded: list[str] = []
    for given in inputs:
        if given == STDIO or os.path.lexists(given) or not _GLOB_CHARS & set(given):
            expanded.append(given)
            continue
        matches = sorted(glob.glob(given, recursive=True))  # noqa: PTH207 (absolute patterns too)
        if not matches:
            raise UsageError(f"{given}: no such file or folder, and as a pattern it matches no file")
        expanded += matches
    return expanded


def _plan_stdin(
    output: str,
    mask: Path | None,
    *,
    fmt: str,
    overwrite: bool,
    stdin: IO[bytes] | None,
    check: Callable[[Job], str | None] | None = None,
) -> Plan:
    if mask is not None and mask.is_dir():
        raise UsageError("with stdin input, --mask must be one file")
    if output == STDIO:
        out_fmt = fmt if fmt == "keep" else output_format("png", fmt)[0]
        return Plan([Job(None, "<stdin>", None, out_fmt, mask)])
    out = Path(output)
    if out.is_dir() or out.suffix.lower() not in IMAGE_SUFFIXES:
        raise UsageError(f"with stdin input, -o must be '-' or an image file name, not {out}")
    job = Job(None, "<stdin>", out, _file_target_format(out, fmt), mask)
    target = _identity(out)
    if target is not None and target == _stdin_identity(stdin):
        # `ganedit derain - -o photo.png < photo.png`: the edit would replace the photo being read.
        raise UsageError(f"refusing to overwrite the input {out}: stdin is read from it (choose another -o)")
    if target is not None and mask is not None and target == _identity(mask):
        raise UsageError(f"refusing to overwrite the mask {out} (choose another -o)")
    if not overwrite and target is not None:  # as for file inputs: an existing output is kept
        if check is not None and stdin is not None:  # made from these bytes? read them to tell
            limit = file_limit()
            job = replace(job, data=stdin.read(limit + 1) or b"")
        return Plan([], skipped=[job], stale=_stale([job], check))
    return Plan([job])


def _special_kind(path: Path) -> str:
    """What an existing path that is neither a file nor a folder is (for a message)."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        return exc.strerror or str(exc)
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file"


def _check_suffix(suffix: str) -> None:
    """--suffix goes into a file name: a path separator or '..' in it could write outside -o."""
    forbidden = {"/", "\\", "\0", os.sep} | ({os.altsep} if os.altsep else set())
    if any(char in suffix for char in forbidden) or ".." in suffix:
        raise UsageError(
            f"--suffix {suffix!r}: a suffix is part of a file name; it may not contain '/', '\\' or '..'"
        )
    if any(not char.isprintable() for char in suffix):  # a newline or a tab in a name breaks scripts
        raise UsageError(f"--suffix {suffix!r}: a suffix may not contain control characters")


def _identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of an existing file, None if there is none: hard links and symlinks compare equal."""
    try:
        st = path.stat()
    except (OSError, ValueError):
        return None
    return (st.st_dev, st.st_ino)


def _stdin_identity(stdin: IO[bytes] | None) -> tuple[int, int] | None:
    """(device, inode) of the regular file stdin is redirected from (``< photo.png``), else None."""
    if stdin is None:
        return None
    try:
        st = os.fstat(stdin.fileno())
    except (AttributeError, OSError, ValueError):  # no file descriptor (a test's BytesIO) or closed
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISREG(st.st_mode) else None


def _refuse_if_maybe_original(target: Path, input_folders: Sequence[Path], mask: Path | None) -> None:
    """With --overwrite, an existing file inside an input folder or the mask folder is not replaced: it
    may be an original (a photo left out as "inside the output folder", a mask), and nothing tells it
    apart from an earlier output. Without --overwrite such a file is skipped like any existing output."""
    for folder in input_folders:
        if _is_within(target, folder):
            raise UsageError(
                f"refusing to overwrite {target}: it is inside the input folder {folder}, so it may be an "
                "original, and --overwrite cannot tell it from an earlier output there; delete the old "
                "outputs first, or write to an -o outside the input folders"
            )
    if mask is not None and mask.is_dir() and _is_within(target, mask):
        raise UsageError(
            f"refusing to overwrite {target}: it is inside the mask folder {mask}, so it may be a mask; "
            "write to an -o outside the mask folder"
        )


# ----------------------------------------------------------------------------------------------- running


@dataclass
class _Loaded:
    job: Job
    picture: Picture | None = None
    mask: np.ndarray | None = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0  # this file's own time so far: decoding, then the model, then encoding and writing
    source_id: dict[str, Any] | None = None  # what was read, for the output's record (ganedit.provenance)
    mask_id: dict[str, Any] | None = None


def _load(job: Job, stdin: IO[bytes] | None) -> _Loaded:
    started = time.perf_counter()
    with capture_warnings() as caught:  # Pillow's warnings go into the report, not raw to stderr
        loaded = _read(job, stdin)
    loaded.warnings[:0] = caught
    loaded.seconds = time.perf_counter() - started  # decoding: this file's own time, not its wait
    return loaded


def _refuse_oversized_stdin(stdin: IO[bytes], limit: int) -> None:
    """stdin redirected from a regular file (``< huge.jpg``): refuse it by its size, before reading
    gigabytes only to refuse them (a pipe has no size: it is read up to the limit)."""
    try:
        info = os.fstat(stdin.fileno())
        position = stdin.tell() if stdin.seekable() else 0
    except (OSError, ValueError):  # no descriptor (an in-memory stream), or not seekable
        return
    if stat.S_ISREG(info.st_mode) and info.st_size - position > limit:
        raise too_large("<stdin>", info.st_size - position)


def _read(job: Job, stdin: IO[bytes] | None) -> _Loaded:
    loaded = _Loaded(job)
    try:
        if job.source is None:
            limit = file_limit()  # read at most that (+1 byte to tell): stdin may be endless
            if job.data is None and stdin is not None:
                _refuse_oversized_stdin(stdin, limit)
            data = job.data if job.data is not None else (stdin.read(limit + 1) if stdin is not None else b"")
            data = data or b""
            if len(data) > limit:
                raise too_large("<stdin>", len(data))
            loaded.source_id = data_identity(data)
            picture = read_picture(data, name="<stdin>")
        else:
            loaded.source_id = file_identity(job.source)
            picture = read_picture(job.source)
        if job.mask_error is not None:
            raise ImageError(f"{job.display}: {job.mask_error}")
        if job.mask is not None:
            loaded.mask_id = file_identity(job.mask)
            try:
                with capture_warnings() as caught:
                    loaded.mask, warning = read_mask(job.mask, (picture.width, picture.height))
            except ImageError as error:  # name the input too: which photo this mask was for
                raise ImageError(f"{job.display}: mask {error}") from error
            loaded.warnings.extend(f"mask {job.mask}: {text}" for text in caught)
            if warning:
                loaded.warnings.append(warning)
        loaded.picture = picture
    except GaneditError as error:
        loaded.error = str(error)
    except OSError as error:  # e.g. a permission problem Pillow did not wrap
        loaded.error = f"{job.display}: {error.strerror or error}"
    except MemoryError:  # this file only: the others go on
        loaded.picture, loaded.mask = None, None
        loaded.error = f"{job.display}: not enough memory to read this image"
    return loaded


def side_by_side(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """``--compare``: the input left of the output, in the output's layout (a gray input beside a
    colourised output is shown in RGB; alpha stays alpha)."""
    if before.shape[:2] != after.shape[:2] or before.dtype != after.dtype:
        raise ValueError("before and after must have one size and dtype")
    channels = after.shape[2]
    if before.shape[2] != channels:
        color = before[:, :, :1]
        color = np.repeat(color, 3, axis=2) if channels in (3, 4) else color
        alpha = [before[:, :, -1:]] if before.shape[2] in (2, 4) else []
        if channels in (2, 4) and not alpha:
            alpha = [np.full_like(before[:, :, :1], np.iinfo(before.dtype).max)]
        before = np.concatenate([color, *alpha], axis=2) if channels in (2, 4) else color
    return np.concatenate([before, after], axis=1)


def _save(
    loaded: _Loaded,
    pixels: np.ndarray,
    quality: int,
    stdout: IO[bytes] | None,
    *,
    compare: bool = False,
    recorder: Recorder | None = None,
) -> Entry:
    started = time.perf_counter()
    job, picture = loaded.job, loaded.picture
    assert picture is not None
    if compare:
        pixels = side_by_side(picture.pixels, pixels)
    out = replace(picture, pixels=pixels)
    if picture.channels in (1, 2) and pixels.shape[2] in (3, 4):
        out = replace(out, icc_profile=None)  # a gray ICC profile would mislabel colour output
    entry = Entry(job.display, str(job.output) if job.output else STDIO, "ok", warnings=loaded.warnings)
    fmt = output_format(picture.format, "keep")[0] if job.fmt == "keep" else job.fmt
    try:
        with capture_warnings() as caught:
            data = encode_picture(out, fmt, quality=quality, name=job.display)
        entry.warnings.extend(caught)
        if job.output is None:
            if stdout is None:
                raise ImageError(f"{job.display}: no stdout to write to")
            write_stream(stdout, data)
        else:
            write_atomic(job.output, data)
            if recorder is not None:
                recorder.record(job.output, fmt=fmt, source=loaded.source_id, mask=loaded.mask_id)
    except GaneditError as error:
        entry.status, entry.error = "failed", str(error)
    except OSError as error:
        entry.status, entry.error = "failed", f"{job.output or '<stdout>'}: {error.strerror or error}"
    except MemoryError:
        entry.status, entry.error = "failed", f"{job.display}: not enough memory to encode this image"
    entry.seconds = loaded.seconds + time.perf_counter() - started
    return entry


def run_jobs(
    plan: Plan,
    editor: Editor | None,
    *,
    quality: int = 95,
    on_entry: Callable[[Entry], None] | None = None,
    on_progress: Callable[[float], None] | None = None,
    stdin: IO[bytes] | None = None,
    stdout: IO[bytes] | None = None,
    workers: int = 2,
    compare: bool = False,
    recorder: Recorder | None = None,
) -> Report:
    """Run every job of the plan through the editor; never raises for a single bad file.

    Files go through the model one at a time (a large one as batches of its tiles), each written as
    soon as it is done, while the next ones are decoded: a file's pixels never depend on which other
    files were in the run, and an interrupt loses at most the one in the model. ``on_progress(done)``
    is called as the work advances: ``done`` counts the files of ``plan.jobs`` through the model, with
    the fraction of the current one (its tiles), so a progress bar moves tile by tile.
    ``compare`` writes each input and its output side by side; ``recorder`` records what made each
    output written (ganedit.provenance).

    KeyboardInterrupt propagates after in-flight writes have finished (each is atomic), so no partial
    output is left behind; the report so far is attached to the exception as ``report``.
    """
    report = Report(notes=list(plan.notes), shard=plan.shard)
    if editor is not None:
        report.model, report.sha256 = editor.name, editor.sha256
        report.device, report.precision = str(editor.device), editor.precision
        report.flip_average = editor.flip_average
        report.strength = editor.strength
    started = time.perf_counter()

    def record(entry: Entry) -> None:
        report.entries.append(entry)
        if on_entry is not None:
            on_entry(entry)

    for job in plan.skipped:
        stale = plan.stale.get(job.output) if job.output is not None else None  # type: ignore[arg-type]
        why = f"exists, made {stale}: use --overwrite" if stale else "output exists"
        record(Entry(job.display, str(job.output), "skipped", error=None, warnings=[why], stale=bool(stale)))
    if not plan.jobs:
        return report
    if editor is None:
        raise UsageError("run_jobs needs an editor when there is work to do")

    lookahead = max(2, workers + 1)  # decoded files waiting for the model (a 100 MP photo is 600 MB)
    readers = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="ganedit-read")
    writers = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="ganedit-write")
    pending_writes: list[Future[Entry]] = []

    def decoded() -> Iterator[_Loaded]:
        queue: list[Future[_Loaded]] = []
        jobs = iter(plan.jobs)
        for job in jobs:
            queue.append(readers.submit(_load, job, stdin))
            if len(queue) >= lookahead:
                break
        while queue:
            item = queue.pop(0).result()
            nxt = next(jobs, None)
            if nxt is not None:
                queue.append(readers.submit(_load, nxt, stdin))
            if item.picture is not None:
                try:  # e.g. labels2photo: is this a label map at all?
                    item.warnings.extend(editor.inspect(item.picture.pixels))
                except GaneditError as error:
                    item.picture, item.error = None, f"{item.job.display}: {error}"
            yield item

    def drain(block: bool) -> None:
        while pending_writes and (block or pending_writes[0].done()):
            record(pending_writes.pop(0).result())

    done = 0

    def advance(fraction: float) -> None:
        if on_progress is not None:
            on_progress(done + fraction)

    try:
        for item in decoded():
            if item.picture is None:
                record(
                    Entry(item.job.display, _out(item.job), "failed", item.seconds, item.error, item.warnings)
                )
            else:
                began = time.perf_counter()
                try:
                    (result,) = editor.edit_many(
                        [(item.picture.pixels, item.mask)],
                        progress=lambda step, steps: advance(step / steps) if step < steps else None,
                    )
                except (GaneditError, RuntimeError, MemoryError) as error:  # torch or numpy out of memory...
                    message = _model_error(item.job.display, error)  # ... fails this file only, named
                    seconds = item.seconds + time.perf_counter() - began
                    record(Entry(item.job.display, _out(item.job), "failed", seconds, message, item.warnings))
                else:
                    item.seconds += time.perf_counter() - began
                    pending_writes.append(
                        writers.submit(
                            _save, item, result, quality, stdout, compare=compare, recorder=recorder
                        )
                    )
            done += 1
            advance(0.0)
            drain(block=False)
        drain(block=True)
    except KeyboardInterrupt as interrupt:
        report.interrupted = True
        readers.shutdown(wait=True, cancel_futures=True)
        writers.shutdown(wait=True)  # images already edited are written (atomically): no work is thrown away
        for future in pending_writes:
            if future.done() and not future.cancelled():
                record(future.result())
        report.seconds = time.perf_counter() - started
        interrupt.report = report  # type: ignore[attr-defined]
        raise
    finally:
        readers.shutdown(wait=True, cancel_futures=True)
        writers.shutdown(wait=True)
    report.seconds = time.perf_counter() - started
    return report


def _model_error(display: str, error: BaseException) -> str:
    """A model failure as a per-file message that names the file (torch's own messages do not)."""
    if isinstance(error, MemoryError):
        return f"{display}: out of memory while editing it (try --tile 512 or --batch-size 1)"
    text = " ".join(str(error).split()) or type(error).__name__
    if len(text) > 300:
        text = text[:300] + "..."
    return text if text.startswith(display) else f"{display}: {text}"


def _out(job: Job) -> str:
    return str(job.output) if job.output else STDIO
