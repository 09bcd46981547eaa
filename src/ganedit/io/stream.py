"""Writing an encoded image to a stream (stdout in a shell pipeline), all of it or an error."""

from __future__ import annotations

import os
import select
import time
from collections.abc import Callable
from typing import IO

from ..errors import ImageError


def write_stream(stream: IO[bytes], data: bytes, name: str = "<stdout>") -> None:
    """Write every byte of ``data`` to ``stream`` (stdout), or raise `ImageError` naming ``name``.

    One ``write`` may take only part of the data: an unbuffered stdout (``python -u``,
    ``PYTHONUNBUFFERED=1``) is a raw file, and a non-blocking pipe takes what fits in its buffer (64 KiB),
    or nothing. So the bytes go out in a loop until all are written, waiting while the pipe is full. A
    reader that went away (``| head -c 100``) is a per-file error, not a silent success.
    """
    view = memoryview(data).cast("B")
    try:
        try:
            fd: int | None = stream.fileno()
        except (AttributeError, OSError, ValueError):  # no file descriptor: a BytesIO, a test's stream
            fd = None
        if fd is not None:
            _until_written(stream.flush, fd)  # whatever the stream holds goes out first
            while view:
                try:
                    view = view[os.write(fd, view) :]
                except BlockingIOError:
                    _wait_writable(fd)
            return
        while view:
            try:
                written = stream.write(view)
            except BlockingIOError as exc:
                written = exc.characters_written
                _wait_writable(None)
            if written is None:  # a non-blocking raw stream that is full
                _wait_writable(None)
                continue
            view = view[written:]
        _until_written(stream.flush, None)
    except BrokenPipeError:
        raise ImageError(f"{name}: the reader closed the pipe before the whole image was written") from None
    except (OSError, ValueError) as exc:  # ValueError: a closed stream
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ImageError(f"{name}: cannot write ({detail})") from exc


def _until_written(flush: Callable[[], object], fd: int | None) -> None:
    while True:
        try:
            flush()
            return
        except BlockingIOError:
            _wait_writable(fd)


def _wait_writable(fd: int | None) -> None:
    """Wait until a full pipe can take more (polling where select() does not take pipes: Windows)."""
    if fd is not None:
        try:
            select.select([], [fd], [], 1.0)
            return
        except (OSError, ValueError):
            pass
    time.sleep(0.005)
