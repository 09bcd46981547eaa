"""Planning: which input goes to which output(s), before any model is loaded.

Pure path logic, so that usage errors (output inside input, two inputs writing one output, a bad shard)
cost nothing. A job has one output (the PAN commands) or several (rerender: one file per tag
combination, a contact sheet, a GIF); the refusal, clash and skip rules apply to every output alike.
"""

from __future__ import annotations

import glob
import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO

from ..errors import UsageError
from ..io import IMAGE_SUFFIXES, Found, discover, file_limit, output_format
from .masks import MaskFinder, is_within, leave_out_masks
from .report import STDIO
from .shard import Shard


@dataclass(frozen=True)
class Job:
    """One input -> its output(s). ``source``/``output`` of None mean stdin/stdout.

    ``output`` is the first (for a PAN command the only) output; ``extra_outputs`` the others (rerender:
    one file per tag combination, a contact sheet, a GIF). ``existing``: outputs that exist and are kept
    as they are (a job partly done by an interrupted run redoes only what is missing).
    """

    source: Path | None
    display: str
    output: Path | None
    fmt: str  # the output container ("jpeg", "png", "webp", "tiff", "bmp"), or "keep" for stdin's own
    mask: Path | None = None
    mask_error: str | None = None  # why no mask was found (a per-file failure at run time)
    data: bytes | None = field(default=None, repr=False, compare=False)  # stdin, when planning read it
    extra_outputs: tuple[Path, ...] = ()
    existing: frozenset[Path] = frozenset()

    @property
    def outputs(self) -> tuple[Path, ...]:
        """Every output file of this job, ``output`` first (none for stdout)."""
        return (self.output, *self.extra_outputs) if self.output is not None else self.extra_outputs

    @property
    def todo(self) -> tuple[Path, ...]:
        """The outputs this job is to write."""
        return tuple(path for path in self.outputs if path not in self.existing)


@dataclass
class Plan:
    jobs: list[Job]
    skipped: list[Job] = field(default_factory=list)  # every output exists already
    # Of the skipped outputs, those made from another input or with other settings: why (from their
    # records in the output folder's index, ganedit.provenance). Still skipped: --overwrite redoes them.
    stale: dict[Path, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    shard: Shard | None = None  # the share of the inputs this plan took


# Names the outputs of one input from its file name: the first is the job's ``output`` (rerender's
# renders, sheet and GIF; see `plan_jobs`).
Namer = Callable[[str], Sequence[str]]


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
    names: Namer | None = None,
) -> Plan:
    """Map inputs to outputs. Raises UsageError for anything that would lose data or cannot work.

    Never an output target: an input (of any shard), a mask, the file stdin is redirected from; with
    ``overwrite``, neither an existing file inside an input folder (files left out as "inside the output
    folder" included: they may be originals) nor one inside the mask folder.

    An INPUT that does not exist but holds a glob pattern (``photos/*.jpg``, ``**`` for any depth, as a
    quoted argument) stands for the files it matches. ``check(job)`` tells why an existing output was
    made from another input or with other settings (None: it was not, or nobody knows): such outputs
    are still skipped, and listed in ``Plan.stale``.

    ``names``: jobs with several outputs (rerender). It names the output files of an input from its
    file name; ``output`` must then be a folder (the tree mirrored under it as with ``recursive``), and
    ``fmt``, ``suffix`` and stdin/stdout do not apply. A job is skipped when all its outputs exist; one
    with some outputs missing writes only those (``Job.existing``), unless ``overwrite``.
    """
    if not inputs:
        raise UsageError("no INPUT given")
    _check_suffix(suffix)
    inputs = expand_patterns([str(i) for i in inputs])
    output = str(output)
    mask_path = _check_mask(mask, needs_mask)
    if STDIO in inputs:
        if len(inputs) > 1:
            raise UsageError("'-' (stdin) must be the only INPUT")
        if names is not None:
            raise UsageError("'-' (stdin) cannot be an input here: give files or folders")
        return _plan_stdin(output, mask_path, fmt=fmt, overwrite=overwrite, stdin=stdin, check=check)

    files, notes = _find_inputs(inputs, mask_path, recursive=recursive)
    # An input is never its own mask (nor any input another's): with --mask equal to an input folder,
    # x.png would otherwise be its own mask ("x.*" comes before "x_mask.*").
    not_masks = frozenset(f.path.resolve() for f in files)
    single_file = len(inputs) == 1 and Path(inputs[0]).is_file()
    if output == STDIO:
        if names is not None:
            raise UsageError("-o must be a folder here, not '-' (stdout)")
        return _plan_stdout(files, notes, single_file, mask_path, not_masks, fmt)

    out = Path(output)
    folder = names is not None or _is_folder_target(
        out, single_file=single_file, trailing_slash=output.endswith(("/", os.sep))
    )
    _check_output(out, folder=folder, single_file=single_file, several=names is not None)
    if folder:
        files = _leave_out_outputs(files, inputs, out, notes)
    return _plan_files(
        files,
        inputs,
        out,
        _Targets(folder, recursive or names is not None, fmt, suffix, names),
        mask_path=mask_path,
        not_masks=not_masks,
        overwrite=overwrite,
        shard=shard,
        check=check,
        notes=notes,
    )


@dataclass(frozen=True)
class _Targets:
    """How inputs are named into outputs: into a ``folder`` (the tree mirrored when ``mirror``) or one
    file; with ``names``, several outputs per input."""

    folder: bool
    mirror: bool
    fmt: str
    suffix: str
    names: Namer | None

    def of(self, found: Found, out: Path) -> tuple[list[Path], str]:
        """The output paths of one input, and the container of the first."""
        if not self.folder:
            return [out], _file_target_format(out, self.fmt)
        rel = found.rel if self.mirror else Path(found.rel.name)
        if self.names is not None:
            return [out / rel.parent / name for name in self.names(rel.name)], "png"
        name, out_fmt = _output_name(rel.name, self.fmt, self.suffix)
        return [out / rel.parent / name], out_fmt


def _check_mask(mask: str | Path | None, needs_mask: bool) -> Path | None:
    mask_path = Path(mask) if mask is not None else None
    if needs_mask and mask_path is None:
        raise UsageError(
            "this task needs --mask (a mask file for all inputs, or a folder of masks matched by name)"
        )
    if mask_path is not None and not mask_path.exists():
        raise UsageError(f"--mask {mask_path}: no such file or folder")
    if mask_path is not None and not (mask_path.is_file() or mask_path.is_dir()):
        raise UsageError(f"--mask {mask_path}: not a file or folder ({_special_kind(mask_path)})")
    return mask_path


def _find_inputs(
    inputs: Sequence[str], mask_path: Path | None, *, recursive: bool
) -> tuple[list[Found], list[str]]:
    """The image files among the inputs (masks left out), and notes on what was left out."""
    found = discover([Path(i) for i in inputs], recursive=recursive)
    notes = list(found.notes)
    files, mask_notes = leave_out_masks(found.files, mask_path, inputs)
    notes += mask_notes
    if not files and not all(Path(i).is_dir() for i in inputs):  # named files, none an image: a mistake
        detail = f" ({'; '.join(notes)})" if notes else ""
        raise UsageError(f"no images found in {', '.join(inputs)}{detail}")
    if not files:  # folders with no image in them (yet): a cron job with nothing to do is not an error
        notes.append(f"nothing to do: no images found in {', '.join(inputs)}")
    return files, notes


def _plan_stdout(
    files: list[Found],
    notes: list[str],
    single_file: bool,
    mask_path: Path | None,
    not_masks: frozenset[Path],
    fmt: str,
) -> Plan:
    if not single_file or len(files) != 1:
        raise UsageError("-o - (stdout) takes exactly one input image")
    entry = files[0]
    _, out_fmt = _output_name(entry.path.name, fmt, "")
    m, m_err = MaskFinder(mask_path, exclude=not_masks).find(entry.rel)
    return Plan([Job(entry.path, str(entry.path), None, out_fmt, m, m_err)], notes=notes)


def _check_output(out: Path, *, folder: bool, single_file: bool, several: bool) -> None:
    if several and out.exists() and not out.is_dir():
        raise UsageError(f"{out}: -o must be a folder (it is a file)")
    if not folder and out.suffix.lower() not in IMAGE_SUFFIXES:
        raise UsageError(f"-o {out}: not an image file name ({', '.join(sorted(IMAGE_SUFFIXES))})")
    if folder and out.is_file():
        if single_file:  # -o notes.txt: an existing file, and not an image name we could write
            raise UsageError(
                f"-o {out} is an existing file and not an image file name "
                f"({', '.join(sorted(IMAGE_SUFFIXES))}); give an image file name or a folder"
            )
        raise UsageError(f"-o {out} is a file, but several inputs need an output folder")


def _leave_out_outputs(files: list[Found], inputs: Sequence[str], out: Path, notes: list[str]) -> list[Found]:
    """Refuse the input folder itself as the output folder; leave out the files found inside it."""
    for given in inputs:
        if Path(given).is_dir() and Path(given).resolve() == out.resolve():
            raise UsageError(
                f"-o {out} is the input folder itself; write into another folder (a subfolder is fine)"
            )
    # Outputs written inside an input folder must not be picked up as inputs by a later run
    # (files the user named one by one are theirs to choose, though).
    named = {Path(i).resolve() for i in inputs if Path(i).is_file()}
    kept = [f for f in files if f.path.resolve() in named or not is_within(f.path, out)]
    # Left out as inputs, but not fair game as outputs: see `_check_target`.
    if len(kept) != len(files):
        dropped = len(files) - len(kept)
        notes.append(f"skipped {dropped} file{'s' if dropped > 1 else ''} inside the output folder {out}")
    return kept


def _plan_files(
    files: list[Found],
    inputs: Sequence[str],
    out: Path,
    targets: _Targets,
    *,
    mask_path: Path | None,
    not_masks: frozenset[Path],
    overwrite: bool,
    shard: Shard | None,
    check: Callable[[Job], str | None] | None,
    notes: list[str],
) -> Plan:
    # Never an output target, whatever the shard: an input, or a mask that an input uses.
    # An output folder inside the mask folder holds outputs, not masks (the mask folder itself is kept:
    # its masks must stay protected below).
    nested = targets.folder and mask_path is not None and is_within(out, mask_path)
    outside = out if nested and out.resolve() != mask_path.resolve() else None  # type: ignore[union-attr]
    finder = MaskFinder(mask_path, exclude=not_masks, outside=outside)
    protected = _Protected(
        inputs={f.path.resolve(): f.path for f in files},
        masks=({mask_path.resolve()} if mask_path is not None and mask_path.is_file() else set())
        | {m.resolve() for f in files if (m := finder.find(f.rel)[0]) is not None},
        input_folders=[Path(i) for i in inputs if Path(i).is_dir()],
        mask=mask_path,
        overwrite=overwrite,
    )
    if shard is not None and shard.count > 1:
        total = len(files)
        files = files[shard.index :: shard.count]
        notes.append(f"{shard.describe()}: {len(files)} of {total} inputs")

    jobs: list[Job] = []
    for entry in files:
        paths, out_fmt = targets.of(entry, out)
        for target in paths:
            protected.check(target, entry.path)
        m, m_err = finder.find(entry.rel)
        jobs.append(
            Job(entry.path, str(entry.path), paths[0], out_fmt, m, m_err, extra_outputs=tuple(paths[1:]))
        )
    if overwrite:
        return Plan(jobs, notes=notes, shard=shard)
    todo: list[Job] = []
    skipped: list[Job] = []
    for job in jobs:
        existing = frozenset(path for path in job.outputs if path.exists())
        if len(existing) == len(job.outputs):
            skipped.append(job)
        else:
            todo.append(replace(job, existing=existing) if existing else job)
    return Plan(todo, skipped=skipped, notes=notes, shard=shard, stale=_stale(skipped, check))


@dataclass
class _Protected:
    """The files no output may be: inputs and masks; with ``overwrite``, maybe-originals too."""

    inputs: dict[Path, Path]
    masks: set[Path]
    input_folders: list[Path]
    mask: Path | None
    overwrite: bool
    seen: dict[Path, Path] = field(default_factory=dict)

    def check(self, target: Path, source: Path) -> None:
        """Refuse ``target`` as an output of ``source`` (UsageError) when it is at risk or taken."""
        resolved = target.resolve()
        if resolved in self.inputs:  # name the file at risk, which may be another input than this one
            at_risk = self.inputs[resolved]
            edit = "" if at_risk == source else f" with the edit of {source}"
            raise UsageError(
                f"refusing to overwrite the input {at_risk}{edit} (choose another -o or a --suffix)"
            )
        if resolved in self.masks:
            raise UsageError(f"refusing to overwrite the mask {target} (choose another -o or a --suffix)")
        if self.overwrite and target.exists():
            _refuse_if_maybe_original(target, self.input_folders, self.mask)
        if resolved in self.seen:
            raise UsageError(f"inputs {self.seen[resolved]} and {source} would both write {target}")
        self.seen[resolved] = source


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
        if is_within(target, folder):
            raise UsageError(
                f"refusing to overwrite {target}: it is inside the input folder {folder}, so it may be an "
                "original, and --overwrite cannot tell it from an earlier output there; delete the old "
                "outputs first, or write to an -o outside the input folders"
            )
    if mask is not None and mask.is_dir() and is_within(target, mask):
        raise UsageError(
            f"refusing to overwrite {target}: it is inside the mask folder {mask}, so it may be a mask; "
            "write to an -o outside the mask folder"
        )


def tidy_output_folders(plan: Plan) -> None:
    """Before a run writes: remove the temporary files an interrupted run (``kill -9``) left in this run's
    output folders (noted in ``plan.notes``), and fold the provenance index files that pile up there
    over many runs (ganedit.provenance)."""
    from ..io import sweep_temporary_files
    from ..provenance import compact

    folders = sorted({path.parent for job in [*plan.jobs, *plan.skipped] for path in job.outputs})
    removed = sweep_temporary_files(folders)
    if removed:
        where = ", ".join(sorted({str(path.parent) for path in removed}))
        plural = "s" if len(removed) > 1 else ""
        plan.notes.append(
            f"removed {len(removed)} temporary file{plural} left by an interrupted run in {where}"
        )
    for folder in folders:
        compact(folder)
