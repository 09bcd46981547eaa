"""The one atomic file writer: a file is either untouched or complete, never half-written.

Everything ganedit writes that someone may read (edited photos, checkpoints, training state, configs,
logs merged, rendered data sets) goes through `atomic_write`:

1. A hidden temporary file is created in the target's folder (a rename is only atomic within one file
   system) under a unique name, ``.NAME.ganedit-PID-HOST.XXXXXXXX.tmp`` (`TEMP_NAME`).
2. It is created with ``os.open(..., O_CREAT | O_EXCL, 0o666)``, so the kernel applies the process's
   umask exactly as for a plain ``open()``: 0o644 under umask 022, 0o600 under 077. Nothing reads the
   umask (``os.umask`` can only be queried by setting it, which races with other threads creating
   files). Replacing an existing file keeps that file's permissions instead. The mode is set again
   after the content is written: a library writing by name may replace the file (safetensors does).
3. The content is written (bytes, a callback given the open file, or a callback given the temporary
   file's name for libraries that only write by name, e.g. safetensors), flushed and fsynced.
4. ``os.replace`` renames it over the target (atomic on POSIX and Windows), and the folder is fsynced
   so that the rename itself survives a power cut (best effort: not possible on Windows).

On any exception, KeyboardInterrupt included, the temporary file is removed and the old target, if
any, is left as it was. A ``kill -9`` leaves the temporary file behind: `sweep_temporary_files` removes
it on a later run, knowing it by its name.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import socket
import stat
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

from ..errors import ImageError

__all__ = [
    "STALE_SECONDS",
    "TEMP_NAME",
    "atomic_write",
    "atomic_write_named",
    "sweep_temporary_files",
    "write_atomic",
]

#: what `atomic_write` accepts as content: the bytes, or a function writing them to the open file
Content = bytes | bytearray | memoryview | Callable[[BinaryIO], object]

_HOST = re.sub(r"[^A-Za-z0-9-]", "", socket.gethostname().split(".")[0])[:32] or "host"
# The atomic writer's temporary files, and only they: .NAME.ganedit-PID-HOST.XXXXXXXX.tmp (8 random
# characters). The writer's PID and host tell a sweep whether the writer may still be at work.
TEMP_NAME = re.compile(
    r"^\.(?P<name>.+)\.ganedit-(?P<pid>[0-9]{1,10})-(?P<host>[A-Za-z0-9-]{1,32})\.[a-z0-9_]{8}\.tmp$"
)
STALE_SECONDS = 600.0  # a temporary file untouched this long is abandoned, whoever wrote it
_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)


def atomic_write(path: Path | str, content: Content) -> None:
    """Write ``content`` to ``path`` atomically (see the module docstring); parent folders are created.

    ``content`` is bytes, or a callable that writes to the binary file it is given (for output produced
    piece by piece: nothing needs to be held in memory whole). OS errors propagate unchanged.
    """
    path = Path(path)
    if callable(content):
        writer = content
    else:
        data = content

        def writer(handle: BinaryIO) -> object:
            return handle.write(data)

    def fill(handle: BinaryIO, _tmp: Path) -> None:
        writer(handle)

    _commit(path, fill)


def atomic_write_named(path: Path | str, fill: Callable[[Path], object]) -> None:
    """Like `atomic_write`, for libraries that only write to a file name (``safetensors.save_file``):
    ``fill(tmp)`` writes the whole file at the temporary path ``tmp``, which already exists, with the
    final permissions; it is fsynced and renamed over ``path`` afterwards."""

    def by_name(handle: BinaryIO, tmp: Path) -> None:
        handle.close()  # the library opens the file itself (truncating it keeps its permissions)
        fill(tmp)

    _commit(Path(path), by_name)


def write_atomic(path: Path, data: bytes) -> None:
    """`atomic_write` for the commands' outputs: an OS error becomes an `ImageError` naming ``path``,
    which the folder runner reports as that one file's failure."""
    try:
        atomic_write(path, data)
    except OSError as exc:
        raise ImageError(f"{path}: cannot write ({exc.strerror or exc})") from exc


def _commit(path: Path, fill: Callable[[BinaryIO, Path], None]) -> None:
    """Create the temporary file, let ``fill`` write it, make it durable and rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temporary(path)
    try:
        mode = stat.S_IMODE(os.fstat(fd).st_mode)  # what the kernel gave under the umask
        with os.fdopen(fd, "wb") as handle:
            fill(handle, tmp)
        _fsync_file(tmp)  # reopened: ``fill`` may have closed its handle and written by name
        # Last, so that a read-only mode cannot stop ``fill`` opening the file by name; and needed after
        # it, because a library may replace the file it is given (safetensors >= 0.8 does, with 0600).
        _set_mode(tmp, _existing_mode(path, default=mode))
        tmp.replace(path)  # os.replace: atomic on POSIX and Windows
    except BaseException:  # KeyboardInterrupt too: never leave a temporary file or half a file behind
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)


def _create_temporary(path: Path) -> tuple[int, Path]:
    """An open, new, empty file beside ``path`` with a name of `TEMP_NAME`'s pattern."""
    prefix = f".{path.name[:160]}.ganedit-{os.getpid()}-{_HOST}."  # within a 255-byte name
    for _ in range(100):
        tmp = path.parent / f"{prefix}{secrets.token_hex(4)}.tmp"
        try:
            # 0o666: the kernel applies the umask, as for any new file (see the module docstring).
            return os.open(tmp, _FLAGS, 0o666), tmp
        except FileExistsError:  # 2**32 names: only ever another writer's file left behind
            continue
    raise FileExistsError(f"{path.parent}: no free temporary file name")


def _existing_mode(path: Path, *, default: int) -> int:
    """Replacing a file keeps its permissions (a user who made an output group-writable expects so)."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:  # no such file yet
        return default


def _set_mode(tmp: Path, mode: int) -> None:
    if os.name != "nt" and stat.S_IMODE(tmp.stat().st_mode) != mode:  # Windows files have no such mode
        tmp.chmod(mode)


def _fsync_file(tmp: Path) -> None:
    # Windows' fsync (_commit) needs a writable descriptor; POSIX does not, and a read-only one always opens.
    fd = os.open(tmp, (os.O_RDWR if os.name == "nt" else os.O_RDONLY) | getattr(os, "O_BINARY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable on POSIX; best effort (not possible on Windows).
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _writer_alive(pid: int, host: str) -> bool:
    """Whether the writer of a temporary file may still be at work (when unsure: yes)."""
    if host != _HOST or os.name == "nt":  # another machine's PIDs mean nothing here; no kill(pid, 0) there
        return True
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. another user's process: it exists
        return True
    return True


def sweep_temporary_files(folders: Sequence[Path], *, max_age: float = STALE_SECONDS) -> list[Path]:
    """Remove the atomic writer's abandoned temporary files from ``folders`` (not their subfolders).

    Only names of `TEMP_NAME`'s exact pattern are considered, and only those whose writer is dead (same
    host, no such PID) or that nobody has touched for ``max_age`` seconds: a run killed with ``kill -9``
    leaves one, the next run into the same folder removes it. Returns the removed paths; never raises.
    """
    removed: list[Path] = []
    now = time.time()
    for folder in folders:
        try:
            with os.scandir(folder) as listing:
                entries = [e for e in listing if TEMP_NAME.match(e.name)]
        except OSError:
            continue
        for entry in entries:
            match = TEMP_NAME.match(entry.name)
            assert match is not None
            try:
                info = entry.stat(follow_symlinks=False)
                if not stat.S_ISREG(info.st_mode):
                    continue
                if now - info.st_mtime < max_age and _writer_alive(int(match["pid"]), match["host"]):
                    continue
                Path(entry.path).unlink()
            except OSError:
                continue
            removed.append(Path(entry.path))
    return removed
