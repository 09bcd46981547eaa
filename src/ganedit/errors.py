"""The errors ganedit raises, each carrying the exit code the CLI reports for it.

Library code raises these and never prints or exits; `cli.py` turns one into a single line on stderr and
``sys.exit(error.exit_code)``. Anything that is not a `GaneditError` is a bug and keeps its traceback.
"""

from __future__ import annotations


class GaneditError(Exception):
    """Base class: a failure the user can understand and act on."""

    exit_code: int = 1


class UsageError(GaneditError):
    """Bad arguments: unknown model, bad ``--tag``, output inside input, bad registry entry... (exit 2).

    The message names the valid choices whenever there is a finite set of them.
    """

    exit_code = 2


class RegistryError(UsageError):
    """A weights registry file (``weights.toml`` or a user's) is malformed."""


class CheckpointError(UsageError):
    """A checkpoint is not a ganedit checkpoint, or is for another task, arch or format version."""


class WeightsUnavailableError(GaneditError):
    """The weights cannot be had here: not bundled, not cached, and not downloadable (exit 3).

    The message says how to get them (``ganedit weights pull NAME`` on a machine with network, or
    ``--weights PATH``).
    """

    exit_code = 3


class ChecksumError(WeightsUnavailableError):
    """A weights file's sha256 differs from the registry's: it is never loaded."""


class ImageError(GaneditError):
    """One input file cannot be read, decoded or written. A per-file failure: the batch goes on."""
