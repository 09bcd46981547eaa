"""Reading the inputs of a run, on worker threads ahead of the model: one `Loaded` per job, holding the
decoded picture and mask, or the reason it could not be read (a per-file failure, never an exception)."""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np

from ..errors import GaneditError, ImageError
from ..io import Picture, capture_warnings, file_limit, read_mask, read_picture, too_large
from ..provenance import data_identity, file_identity
from .plan import Job


@dataclass
class Loaded:
    job: Job
    picture: Picture | None = None
    mask: np.ndarray | None = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0  # this file's own time so far: decoding, then the model, then encoding and writing
    source_id: dict[str, Any] | None = None  # what was read, for the output's record (ganedit.provenance)
    mask_id: dict[str, Any] | None = None


def load(job: Job, stdin: IO[bytes] | None) -> Loaded:
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


def _read(job: Job, stdin: IO[bytes] | None) -> Loaded:
    loaded = Loaded(job)
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
