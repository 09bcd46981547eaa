"""The ``ganedit`` command line.

The group (`main`) and its error boundary (`boundary.Group`: errors as one line on stderr and an exit
code), and one module per command group: `edit` (the PAN commands, built by one factory from their
`Task` records), `rerender`, `models` (models and weights), `evaluate`, `train`, `report`. Shared options
are in `options`, progress bars in `progress`, and what a run over files prints in `reporting`.

Nothing here imports torch or huggingface-hub at the top: ``ganedit --help`` must start fast; the heavy
modules load inside the commands that need them.

Exit codes: 0 all done; 1 some files failed (listed at the end); 2 usage error (the valid choices named);
3 weights unavailable (the message says how to get them); 130 interrupted.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from .. import __version__
from . import edit, evaluate, models, report, rerender, train
from .boundary import CONTEXT, Group
from .edit import edit_command

LOG_FORMAT = "ganedit: %(levelname)s: %(name)s: %(message)s"


class _StderrHandler(logging.StreamHandler):
    """Writes to ``sys.stderr`` as it is when a record is written, not when the handler was made: a
    program (or a test) that runs several commands in one process may have swapped it since."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:  # StreamHandler.__init__ sets it; sys.stderr is always used
        pass


def configure_logging(verbose: int) -> None:
    """``-v``: the library's info messages on stderr; ``-vv``: its debug messages too. Without -v the
    library's warnings still reach stderr through Python's last-resort handler, as they always did.
    Each command sets it afresh, so one run's -v does not carry over to the next in the same process."""
    logger = logging.getLogger("ganedit")
    for handler in [h for h in logger.handlers if isinstance(h, _StderrHandler)]:
        logger.removeHandler(handler)
    if verbose <= 0:
        logger.setLevel(logging.NOTSET)
        return
    logger.setLevel(logging.INFO if verbose == 1 else logging.DEBUG)
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logger.addHandler(handler)


@click.group(cls=Group, context_settings=CONTEXT)
@click.version_option(__version__, prog_name="ganedit")
@click.option(
    "-v",
    "--verbose",
    count=True,
    help="Library diagnostics on stderr: -v what it decides, -vv debugging detail.",
)
def main(verbose: int) -> None:
    """Edit photos with generative adversarial networks.

    \b
    Tasks (PAN, Wang et al. 2017; TDGAN, Wang et al. 2017):
      derain        remove rain streaks
      inpaint       fill masked areas (white = fill)
      sketch2photo  turn a line drawing into a photo
      labels2photo  turn a CMP facade label map into a facade photo
      rerender      re-render an object at other tags (pose, lighting)
    \b
    Every task command takes files, folders (-r to recurse) or '-' for stdin, writes to -o (a folder,
    a file, or '-' for stdout), skips outputs that exist (so a re-run resumes), and keeps EXIF, ICC
    profile, alpha, grayscale and 16-bit depth. Run 'ganedit COMMAND --help' for examples.
    """
    configure_logging(verbose)


for _command in [
    *edit.commands(),
    rerender.rerender_command,
    report.report_group,
    models.models,
    models.weights,
    train.train,
    evaluate.eval_command,
]:
    main.add_command(_command)

__all__ = ["edit_command", "main"]
