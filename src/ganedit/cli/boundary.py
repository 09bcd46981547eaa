"""The error boundary of the command line: every command group is a `Group`, which turns ganedit's errors
into one line on stderr and their exit code, Ctrl-C and SIGTERM into exit 130, and a stdout that cannot
take what is printed into one line and exit 1, instead of a traceback.

Its own module (not ``cli/__init__``) so that the command modules can use it without importing the
package that imports them.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from ..errors import GaneditError, UsageError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def fail(error: GaneditError) -> NoReturn:
    click.echo(f"ganedit: error: {error}", err=True)
    sys.exit(error.exit_code)


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, a scheduler's stop, ``docker stop``): handled exactly like Ctrl-C."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated


def _catch_sigterm() -> Any:
    """Make SIGTERM raise `Terminated` in the main thread, as Ctrl-C raises KeyboardInterrupt, so that
    in-flight writes finish (atomically) and the run stops with one line and exit 130. Returns the
    handler to restore, or None when nothing was changed (not the main thread, a handler already set,
    or SIGTERM ignored)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return None
    return signal.signal(signal.SIGTERM, _on_sigterm)


# A stdout that cannot take what is printed: a full disk, a reader that went away, a closed descriptor.
_STDOUT_ERRNOS = {
    errno.EPIPE,
    errno.ENOSPC,
    errno.EBADF,
    errno.EIO,
    errno.EFBIG,
    getattr(errno, "EDQUOT", -1),
}


def _printing_failed(error: OSError) -> bool:
    """Whether ``error`` came from printing (``click.echo``) to a stream that cannot take it."""
    import traceback

    frames = traceback.extract_tb(error.__traceback__)
    inner = frames[-1] if frames else None
    return (
        error.errno in _STDOUT_ERRNOS
        and inner is not None
        and inner.name == "echo"
        and Path(inner.filename).parent.name == "click"
    )


def _stdout_failed(error: OSError) -> NoReturn:
    """One line and exit 1 instead of a traceback; stdout is pointed at /dev/null so that Python's own
    flush at exit does not fail a second time."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    with contextlib.suppress(OSError):
        click.echo(f"ganedit: error: cannot write to stdout ({error.strerror or error})", err=True)
    sys.exit(1)


def _fill_closed_descriptors() -> None:
    """With stdin, stdout or stderr closed (``ganedit ... >&-``), the next file opened would take its
    descriptor, and whatever a library printed there would land in it (an output image, an index):
    hold them with /dev/null. Python's own ``sys.stdout`` stays None, so that what needs stdout says so."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            with contextlib.suppress(OSError):
                opened = os.open(os.devnull, os.O_RDWR)
                if opened != fd:  # a lower descriptor was free too: it gets its own in this loop
                    os.dup2(opened, fd)
                    os.close(opened)


def need_stream(name: str, what: str) -> None:
    """UsageError when ``what`` needs stdin or stdout and it is closed (``<&-``, ``>&-``)."""
    if getattr(sys, name) is None:
        raise UsageError(
            f"{what}, but {name} is closed (give it one, e.g. {'< FILE' if name == 'stdin' else '> FILE'})"
        )


class Group(click.Group):
    """Turns our errors into one line on stderr and their exit code; Ctrl-C and SIGTERM into exit 130."""

    def invoke(self, ctx: click.Context) -> Any:
        previous = _catch_sigterm()
        _fill_closed_descriptors()
        try:
            return super().invoke(ctx)
        except GaneditError as error:
            fail(error)
        except OSError as error:  # printing a report or a table to a stdout that cannot take it
            if not _printing_failed(error):
                raise
            _stdout_failed(error)
        except KeyboardInterrupt as interrupt:
            what = "terminated (SIGTERM)" if isinstance(interrupt, Terminated) else "interrupted"
            click.echo(f"ganedit: {what} (finished files are complete; no partial files were left)", err=True)
            sys.exit(130)
        finally:
            if previous is not None:
                import signal

                signal.signal(signal.SIGTERM, previous)
