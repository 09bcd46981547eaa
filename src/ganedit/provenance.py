"""What made each output: an index beside the outputs, so that a re-run skips only what it would redo.

An output that exists is skipped (a re-run resumes). But a file name says nothing about how the file
was made: ``ganedit derain a.png -o out.png`` after ``ganedit derain b.png -o out.png``, or a folder
re-run with ``--no-flip-average`` or another model, would keep outputs of other inputs or settings. So
every output ganedit writes gets a record of what made it:

- the input (name, a hash of its resolved path, size, modification time; for stdin the sha256 of its
  bytes) and the mask;
- the settings that change pixels: task, model (sha256), flip averaging, precision, strength, output
  container, quality (JPEG/WebP), ``--compare``;
- the output file's own size and modification time, so that a record only ever describes the file it
  was written for: an output changed since (edited by hand, written by another tool) has no record.

Where: ``FOLDER/.ganedit/index-PID-RANDOM.jsonl`` in the folder of the output, one file per process
that writes there, one JSON line appended per output right after the output's atomic rename. Each
process appends to its own file only, so processes sharing a folder (``--shard``, a Slurm array, two
terminals) never write one file; readers merge all of them. A line is tiny and written in one ``write``;
one cut short by ``kill -9`` is not valid JSON and is ignored. Appending costs O(1) per output where
rewriting one index (even atomically) would cost O(outputs) each time. Index files nobody has written
for a while are folded into one (`compact`, with the atomic writer) so that they do not pile up.

Why not the output's own metadata: it would change every output's bytes with data of ours (and a
photo editor that keeps metadata would carry a record over to pixels it changed); stdout has no file;
and a record in a folder of its own can be read for a whole folder without opening any image. The
index holds no input path, only its hash (an output folder is often shared or published).

An output with no matching record (made by hand, by an older ganedit, or changed since) is skipped as
before: ganedit cannot tell, and it never writes over what it cannot vouch for without ``--overwrite``.
Library code: nothing here prints.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import GaneditError

# Nothing here may fail a run (an index is a convenience), so what goes wrong is said here, with -v.
log = logging.getLogger(__name__)

INDEX_DIR = ".ganedit"
VERSION = 1
COMPACT_AFTER_FILES = 8  # fold the index files of a folder into one once there are more than this
COMPACT_IDLE_SECONDS = 600.0  # ... taking only files nobody has appended to for this long
MAX_INDEX_BYTES = 256 << 20  # an index file larger than this is ignored (about 500 bytes a record)

# Settings compared, and how a difference is named in "made with other settings (...)".
SETTING_NAMES = {
    "task": "task",
    "model": "model",
    "flip_average": "flip averaging",
    "precision": "precision",
    "strength": "strength",
    "format": "format",
    "quality": "quality",
    "compare": "--compare",
    "refine_steps": "--refine-steps",
    "keep_detail": "--keep-detail",
}
LOSSY = ("jpeg", "webp")


def file_identity(path: Path) -> dict[str, Any] | None:
    """``{"name", "path_sha256", "size", "mtime_ns"}`` of an existing file, None if it cannot be read.

    The resolved path is kept as a hash: an output folder that is shared or published must not tell
    where its inputs were (``/home/NAME/...``); the name is kept for messages."""
    try:
        st = Path(path).stat()
        resolved = str(Path(path).resolve())
    except (OSError, ValueError):
        return None
    return {
        "name": Path(path).name,
        "path_sha256": hashlib.sha256(resolved.encode("utf-8", "surrogateescape")).hexdigest(),
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
    }


def data_identity(data: bytes) -> dict[str, Any]:
    """The identity of bytes read from stdin: their sha256 (there is no path or date to go by)."""
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


@dataclass(frozen=True)
class Settings:
    """The settings that change an output's pixels, as a run asks for them (before any model loads).

    ``model``: the model's sha256 (or its name when it has none); None when it cannot be told without
    loading (then the model is not compared). ``precision``: as asked (``auto``...): a record matches when
    it was asked the same way or when it ran in exactly this precision.
    """

    task: str | None
    model: str | None
    flip_average: bool | None  # None: the model's own choice, not known before it loads (not compared)
    precision: str
    strength: float
    quality: int
    compare: bool
    refine_steps: int | None = None  # rerender: identity refinement steps (None for the PAN tasks)
    keep_detail: bool | None = None  # rerender: the input's detail kept (None for the PAN tasks)

    def values(self, fmt: str) -> dict[str, Any]:
        """The record's setting fields for an output of container ``fmt``."""
        return {
            "task": self.task,
            "model": self.model,
            "flip_average": self.flip_average,
            "strength": self.strength,
            "format": fmt,
            "quality": self.quality if fmt in LOSSY else None,
            "compare": self.compare,
            "refine_steps": self.refine_steps,
            "keep_detail": self.keep_detail,
        }


def differences(
    record: Mapping[str, Any],
    settings: Settings,
    *,
    fmt: str,
    source: Mapping[str, Any] | None,
    mask: Mapping[str, Any] | None,
) -> str | None:
    """Why an existing output does not match this run (``"made from another input (a.png)"``), or None
    when it does. ``source``/``mask``: the identities of this run's input and mask."""
    reasons: list[str] = []
    recorded = record.get("input") or {}
    if source is not None and not _same_input(recorded, source):
        if "path_sha256" in recorded and recorded.get("path_sha256") == source.get("path_sha256"):
            reasons.append("from an earlier version of the input")
        elif "name" in recorded:
            reasons.append(f"from another input ({recorded['name']})")
        else:
            reasons.append("from other input data")
    other: list[str] = []
    if not _same_input(record.get("mask") or {}, mask or {}):
        other.append("mask")
    expected = settings.values(fmt)
    for key, label in SETTING_NAMES.items():
        if key == "precision":
            if settings.precision not in (record.get("precision"), record.get("precision_requested")):
                other.append(label)
        elif key in ("model", "task", "flip_average"):  # None: not known before the model loads, not compared
            if expected[key] is not None and record.get(key) != expected[key]:
                other.append(label)
        elif record.get(key) != expected[key]:
            other.append(label)
    if other:
        reasons.append(f"with other settings ({', '.join(other)})")
    return " and ".join(reasons) if reasons else None


def _same_input(recorded: Mapping[str, Any], current: Mapping[str, Any]) -> bool:
    """Same file: same size and modification time, and the same path or (a moved folder) the same name."""
    if not recorded and not current:
        return True
    if "sha256" in recorded or "sha256" in current:
        return recorded.get("sha256") == current.get("sha256")
    if recorded.get("size") != current.get("size") or recorded.get("mtime_ns") != current.get("mtime_ns"):
        return False
    same_path = recorded.get("path_sha256") == current.get("path_sha256")
    return same_path or recorded.get("name") == current.get("name")


class Index:
    """The records of the outputs in some folders, read once per folder (planning reads them)."""

    def __init__(self) -> None:
        self._folders: dict[Path, dict[str, list[dict[str, Any]]]] = {}

    def record_for(self, output: Path) -> dict[str, Any] | None:
        """The latest record written for ``output`` as it is now (same size and modification time)."""
        try:
            st = output.stat()
        except OSError:
            return None
        records = self._folder(output.parent).get(output.name, [])
        matching = [r for r in records if r.get("size") == st.st_size and r.get("mtime_ns") == st.st_mtime_ns]
        return max(matching, key=lambda r: r.get("written", 0)) if matching else None

    def _folder(self, folder: Path) -> dict[str, list[dict[str, Any]]]:
        key = folder.resolve() if folder.exists() else folder
        if key not in self._folders:
            self._folders[key] = read_records(folder)
        return self._folders[key]


def _index_files(folder: Path) -> list[Path]:
    if (folder / INDEX_DIR).is_symlink():  # never read (or fold, or write) an index outside the folder
        return []
    try:
        with os.scandir(folder / INDEX_DIR) as listing:
            return sorted(
                Path(e.path)
                for e in listing
                if e.name.startswith("index-") and e.name.endswith(".jsonl") and e.is_file()
            )
    except OSError:
        return []


def _parse(lines: Iterable[bytes]) -> Iterable[dict[str, Any]]:
    for line in lines:
        try:
            record = json.loads(line)
        except (ValueError, UnicodeDecodeError, RecursionError):  # cut short by kill -9, or not ours
            continue
        if isinstance(record, dict) and record.get("v") == VERSION and isinstance(record.get("name"), str):
            yield record


def read_records(folder: Path) -> dict[str, list[dict[str, Any]]]:
    """Every record in ``folder``'s index files, by output file name. Never raises."""
    found: dict[str, list[dict[str, Any]]] = {}
    for path in _index_files(folder):
        try:
            if path.stat().st_size > MAX_INDEX_BYTES:  # not one of ours (compaction keeps them small)
                continue
            data = path.read_bytes()
        except OSError:
            continue
        for record in _parse(data.splitlines()):
            found.setdefault(record["name"], []).append(record)
    return found


def compact(folder: Path, *, idle: float = COMPACT_IDLE_SECONDS, after: int = COMPACT_AFTER_FILES) -> None:
    """Fold ``folder``'s index files into one when there are more than ``after`` of them.

    Only files nobody has appended to for ``idle`` seconds are folded (a writer at work keeps its own);
    only the records that still describe an output as it is now are kept. Losing a record in a race
    can only make an output "unrecorded", i.e. skipped as before; never taken for what it is not.
    """
    files = _index_files(folder)
    if len(files) <= after:
        return
    now = time.time()
    old = []
    for path in files:
        try:
            if now - path.stat().st_mtime >= idle:
                old.append(path)
        except OSError:
            continue
    if len(old) < 2:
        return
    latest: dict[str, dict[str, Any]] = {}
    for path in old:
        try:
            records = list(_parse(path.read_bytes().splitlines()))
        except OSError as error:
            log.info("not compacting the index of %s: cannot read %s (%s)", folder, path, error)
            return
        for record in records:
            name = record["name"]
            if record.get("written", 0) >= latest.get(name, {}).get("written", -1):
                latest[name] = record
    kept = []
    for name, record in sorted(latest.items()):
        try:
            st = (folder / name).stat()
        except OSError:
            continue
        if record.get("size") == st.st_size and record.get("mtime_ns") == st.st_mtime_ns:
            kept.append(record)
    from .io.atomic import write_atomic

    merged = folder / INDEX_DIR / _index_name()
    try:
        write_atomic(merged, b"".join(_line(r) for r in kept))
        for path in old:
            path.unlink(missing_ok=True)
    except (OSError, GaneditError) as error:  # an index is a convenience: never fail a run over it
        log.info("not compacting the index of %s: %s", folder, error)
        return
    log.debug("compacted %d index files of %s into %s", len(old), folder, merged.name)


def _index_name() -> str:
    return f"index-{os.getpid()}-{secrets.token_hex(4)}.jsonl"


def _line(record: Mapping[str, Any]) -> bytes:
    return (json.dumps(record, separators=(",", ":"), sort_keys=True) + "\n").encode()


class Recorder:
    """Appends a record per output written, to this process's index file in the output's folder."""

    def __init__(self, settings: Settings, *, precision: str, model_name: str | None) -> None:
        """``precision``: the one the model runs in (``settings.precision`` is the one asked for)."""
        self.settings = settings
        self.precision = precision
        self.model_name = model_name
        self._name = _index_name()
        self._lock = threading.Lock()

    def record(
        self,
        output: Path,
        *,
        fmt: str,
        source: Mapping[str, Any] | None,
        mask: Mapping[str, Any] | None,
    ) -> None:
        """Record ``output``, just written. Never raises: without a record the output is simply
        skipped as unrecorded by a later run."""
        try:
            st = output.stat()
            record = {
                "v": VERSION,
                "name": output.name,
                "size": st.st_size,
                "mtime_ns": st.st_mtime_ns,
                "written": time.time_ns(),
                "input": dict(source) if source is not None else None,
                "mask": dict(mask) if mask is not None else None,
                **self.settings.values(fmt),
                "model_name": self.model_name,
                "precision": self.precision,
                "precision_requested": self.settings.precision,
            }
            folder = output.parent / INDEX_DIR
            if folder.is_symlink():  # a link could point anywhere: keep no record rather than write there
                log.info("no provenance record for %s: %s is a symbolic link", output, folder)
                return
            with self._lock:
                folder.mkdir(exist_ok=True)
                flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
                fd = os.open(folder / self._name, flags, 0o666)
                try:
                    os.write(fd, _line(record))
                finally:
                    os.close(fd)
        except OSError as error:
            log.info("no provenance record for %s (a re-run will skip it as unrecorded): %s", output, error)
            return


__all__ = [
    "INDEX_DIR",
    "Index",
    "Recorder",
    "Settings",
    "compact",
    "data_identity",
    "differences",
    "file_identity",
    "read_records",
]
