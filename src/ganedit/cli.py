"""The ``ganedit`` command line.

One factory (`edit_command`) builds every editing subcommand from its `Task` record, so the commands
share their options and behaviour. This module imports neither torch nor huggingface-hub at the top:
``ganedit --help`` must start fast; the heavy modules load inside the commands that need them.

Exit codes: 0 all done; 1 some files failed (listed at the end); 2 usage error (the valid choices named);
3 weights unavailable (the message says how to get them); 130 interrupted.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from . import __version__
from .errors import GaneditError, UsageError
from .tasks import TASKS, Task

if TYPE_CHECKING:
    from .batch import Entry, Plan, Report
    from .hub import HubOptions

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
FORMATS = ("keep", "png", "jpg", "jpeg", "webp", "tiff", "tif")


def _fail(error: GaneditError) -> NoReturn:
    click.echo(f"ganedit: error: {error}", err=True)
    sys.exit(error.exit_code)


class _Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, a scheduler's stop, ``docker stop``): handled exactly like Ctrl-C."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise _Terminated


def _catch_sigterm() -> Any:
    """Make SIGTERM raise `_Terminated` in the main thread, as Ctrl-C raises KeyboardInterrupt, so that
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


def _need_stream(name: str, what: str) -> None:
    """UsageError when ``what`` needs stdin or stdout and it is closed (``<&-``, ``>&-``)."""
    if getattr(sys, name) is None:
        raise UsageError(
            f"{what}, but {name} is closed (give it one, e.g. {'< FILE' if name == 'stdin' else '> FILE'})"
        )


class _Group(click.Group):
    """Turns our errors into one line on stderr and their exit code; Ctrl-C and SIGTERM into exit 130."""

    def invoke(self, ctx: click.Context) -> Any:
        previous = _catch_sigterm()
        _fill_closed_descriptors()
        try:
            return super().invoke(ctx)
        except GaneditError as error:
            _fail(error)
        except OSError as error:  # printing a report or a table to a stdout that cannot take it
            if not _printing_failed(error):
                raise
            _stdout_failed(error)
        except KeyboardInterrupt as interrupt:
            what = "terminated (SIGTERM)" if isinstance(interrupt, _Terminated) else "interrupted"
            click.echo(f"ganedit: {what} (finished files are complete; no partial files were left)", err=True)
            sys.exit(130)
        finally:
            if previous is not None:
                import signal

                signal.signal(signal.SIGTERM, previous)


@click.group(cls=_Group, context_settings=CONTEXT)
@click.version_option(__version__, prog_name="ganedit")
def main() -> None:
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


# ------------------------------------------------------------------------------------- shared options


def _hub_options(offline: bool) -> HubOptions:
    """Hub settings from the environment, read now rather than when huggingface-hub was imported."""
    from .hub import HubOptions

    # huggingface-hub otherwise pings its default host (not HF_ENDPOINT) once a day from every download
    # call, even for users of a private mirror. A CLI of ours does not phone home unasked.
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

    cache = os.environ.get("HF_HUB_CACHE")
    return HubOptions(
        cache_dir=Path(cache) if cache else None,
        endpoint=os.environ.get("HF_ENDPOINT") or None,
        offline=True if offline else None,
    )


def _registry_files(registry: tuple[str, ...]) -> list[Path]:
    return [Path(r) for r in registry]


registry_option = click.option(
    "--registry",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Extra weights registry file(s) (TOML, like weights.toml). Also read from $GANEDIT_REGISTRY.",
)


def refine_option(lead: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--refine-steps`` of rerender and eval (default None: ganedit.rerender.REFINE_STEPS, which the
    help states without importing the module)."""
    return click.option(
        "--refine-steps",
        type=click.IntRange(min=0),
        default=None,
        help=f"{lead} refining each input's identity code so the model redraws the input before "
        "turning it (test-time inversion); 0 = R's code as it is (the paper).  [default: 5]",
    )


flip_average_option = click.option(
    "--flip-average/--no-flip-average",
    default=True,
    show_default=True,
    help="Also run each image's mirror image and average the two results: a little cleaner, twice "
    "the model time.",
)

offline_option = click.option(
    "--offline",
    is_flag=True,
    help="Never touch the network (like HF_HUB_OFFLINE=1): bundled or cached weights only.",
)


def _registered_names(task: str) -> str:
    """For --help: the models weights.toml offers for a task (cheap: a TOML parse, no torch)."""
    try:
        from .registry import load_registry

        names = [s.name + (" (default)" if s.default else "") for s in load_registry().for_task(task)]
    except GaneditError:
        return "unreadable registry"
    return ", ".join(names) or "none registered yet"


def _strength_option(task: Task) -> list[Callable[[Any], Any]]:
    """--strength, for the tasks whose output is their input edited (derain)."""
    if not task.strength:
        return []
    return [
        click.option(
            "--strength",
            type=click.FloatRange(0.0, 1.0),
            default=1.0,
            show_default=True,
            help="How much of the edit to apply: 1 = the model's result, 0.5 = half way between it and "
            "the input, 0 = the input unchanged.",
        )
    ]


def _edit_options(task: Task) -> list[Callable[[Any], Any]]:
    options: list[Callable[[Any], Any]] = [
        click.argument("inputs", nargs=-1, required=True, type=click.Path(allow_dash=True)),
        click.option(
            "-o",
            "--output",
            required=True,
            type=click.Path(allow_dash=True),
            help="Output folder, output file (single input), or '-' for stdout.",
        ),
        click.option(
            "-r", "--recursive", is_flag=True, help="Search folders recursively; mirror the tree under -o."
        ),
    ]
    if task.needs_mask:
        options.append(
            click.option(
                "--mask",
                required=True,
                type=click.Path(exists=True),
                help="Mask file for all inputs, or a folder of masks matched by file stem "
                "(NAME.*, NAME_mask.*). White = fill.",
            )
        )
    options += [
        click.option(
            "--model",
            "model",
            metavar="NAME",
            help=f"Registered model to use. [{_registered_names(task.name)}]",
        ),
        click.option(
            "--weights",
            type=click.Path(exists=True, dir_okay=False),
            help="A local .safetensors checkpoint instead of a registered model.",
        ),
        registry_option,
        offline_option,
        click.option(
            "--device",
            default="auto",
            show_default=True,
            help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps.",
        ),
        click.option(
            "--precision",
            type=click.Choice(PRECISIONS),
            default="auto",
            show_default=True,
            help="auto: bf16/fp16 on CUDA (fp32 where that overflows); bf16 on CPUs with native bf16 "
            "(AVX512-BF16, AMX), else fp32.",
        ),
        flip_average_option,
        *_strength_option(task),
        click.option(
            "--batch-size",
            type=click.IntRange(min=1),
            default=4,
            show_default=True,
            help="Images or tiles per forward pass.",
        ),
        click.option(
            "--tile",
            type=click.IntRange(min=64),
            default=None,
            help="Tile size in pixels for large images. [default: automatic by image size]",
        ),
        click.option("--no-tile", is_flag=True, help="Never tile (needs memory for the whole image)."),
        click.option("--overwrite", is_flag=True, help="Replace outputs that exist (default: skip them)."),
        click.option(
            "--format",
            "fmt",
            type=click.Choice(FORMATS, case_sensitive=False),
            default="keep",
            show_default=True,
            help="Output format; 'keep' keeps each input's format (jpeg = jpg, tif = tiff).",
        ),
        click.option(
            "--quality",
            type=click.IntRange(1, 100),
            default=95,
            show_default=True,
            help="JPEG/WebP quality (WebP 100 = lossless).",
        ),
        click.option("--suffix", default="", help="Added to output file stems, e.g. '_clean'."),
        click.option(
            "--compare", is_flag=True, help="Write the input and its output side by side (input | output)."
        ),
        click.option(
            "--dry-run",
            is_flag=True,
            help="Print what would be written, skipped or would fail, and exit; loads no model, writes "
            "nothing (with --json: the plan as JSON).",
        ),
        click.option(
            "--shard",
            metavar="K/N",
            help="Take the K-th of N shares of the inputs (K from 0). Default: from a Slurm job array "
            "(SLURM_ARRAY_TASK_ID), a Kubernetes Indexed Job (JOB_COMPLETION_INDEX) or torchrun "
            "(RANK/WORLD_SIZE).",
        ),
        click.option(
            "--shard-count",
            type=click.IntRange(min=1),
            metavar="N",
            help="Number of shares for a Kubernetes Indexed Job (the Job's completions; or env "
            "GANEDIT_SHARD_COUNT); its pods take share JOB_COMPLETION_INDEX.",
        ),
        click.option("--json", "as_json", is_flag=True, help="Print a JSON report on stdout."),
        click.option(
            "-q", "--quiet", is_flag=True, help="No progress bar or notes (errors still go to stderr)."
        ),
    ]
    return options


def edit_command(task: Task) -> click.Command:
    """Build the subcommand for one task. Every editing command is made here."""

    def command(**kwargs: Any) -> None:
        _run_edit(task, **kwargs)

    command.__doc__ = task.summary
    for option in reversed(_edit_options(task)):
        command = option(command)
    epilog = "\b\nExamples:\n" + "\n".join(f"  {line}" for line in task.examples)
    return click.command(name=task.name, context_settings=CONTEXT, epilog=epilog, help=task.summary)(command)


class _Progress:
    """A rich progress bar on stderr; silent when quiet or stderr is not a terminal."""

    def __init__(self, enabled: bool, label: str):
        self.enabled = enabled
        self.label = label
        self.progress: Any = None
        self.task_id: Any = None
        self.skipped = 0

    def start(self, plan: Plan) -> None:
        if not self.enabled:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
            speed_estimate_period=60.0,
        )
        self.progress.start()
        # Skipped outputs count as done from the start, not as work done at once: the speed, hence the
        # time remaining, is that of the files edited (advanced tile by tile as the model goes).
        self.skipped = len(plan.skipped)
        total = len(plan.jobs) + self.skipped
        self.task_id = self.progress.add_task(self.label, total=total, completed=self.skipped, status="")

    def advance(self, entry: Entry) -> None:
        if self.progress is not None and entry.status != "skipped":
            self.progress.update(self.task_id, status=Path(entry.input).name[-32:])

    def model_progress(self, done: float) -> None:
        """Files through the model so far, with the fraction of the current one (its tiles)."""
        if self.progress is not None:
            self.progress.update(self.task_id, completed=self.skipped + done)

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def _run_edit(
    task: Task,
    *,
    inputs: tuple[str, ...],
    output: str,
    recursive: bool,
    model: str | None,
    weights: str | None,
    registry: tuple[str, ...],
    offline: bool,
    device: str,
    precision: str,
    flip_average: bool,
    batch_size: int,
    tile: int | None,
    no_tile: bool,
    overwrite: bool,
    fmt: str,
    quality: int,
    suffix: str,
    shard: str | None,
    shard_count: int | None,
    as_json: bool,
    quiet: bool,
    compare: bool = False,
    dry_run: bool = False,
    mask: str | None = None,
    strength: float = 1.0,
) -> None:
    from .batch import STDIO, Shard

    if model and weights:
        raise UsageError("give --model or --weights, not both")
    if as_json and output == STDIO and not dry_run:
        raise UsageError("--json prints the report on stdout, which -o - already uses for the image")
    if no_tile and tile is not None:
        raise UsageError("give --tile N or --no-tile, not both")
    if STDIO in inputs:
        _need_stream("stdin", "'-' reads the image from stdin")
    if output == STDIO and not dry_run:
        _need_stream("stdout", "-o - writes the image to stdout")
    if as_json or dry_run:
        _need_stream("stdout", f"{'--dry-run' if dry_run else '--json'} prints on stdout")
    # --shard wins over the environment (a scheduler's index, torchrun's RANK), which is then not read.
    shard_spec = Shard.parse(shard, count=shard_count) if shard else Shard.from_env(count=shard_count)
    if device == "auto" and shard is None and shard_spec is not None and "LOCAL_RANK" in os.environ:
        local_rank = os.environ["LOCAL_RANK"]
        if not local_rank.strip().isdigit():
            raise UsageError(f"LOCAL_RANK={local_rank!r} is not a whole number >= 0")
        import torch

        if torch.cuda.is_available():  # under torchrun: one GPU per rank
            device = f"cuda:{int(local_rank) % torch.cuda.device_count()}"

    from . import api

    options: dict[str, Any] = dict(
        model=weights or model,
        task=task.name,
        recursive=recursive,
        mask=mask,
        fmt=fmt.lower(),
        quality=quality,
        suffix=suffix,
        overwrite=overwrite,
        shard=shard_spec,
        stdin=sys.stdin.buffer if STDIO in inputs else None,
        compare=compare,
        precision=precision,
        flip_average=flip_average,
        strength=strength,
        registry_files=_registry_files(registry),
        hub=_hub_options(offline),
    )
    if dry_run:
        _print_plan(task, api.plan_edits(list(inputs), output, **options), as_json=as_json, quiet=quiet)
        return

    show = not quiet and sys.stderr.isatty()
    progress = _Progress(show, task.name)
    echo_note = (lambda msg: None) if quiet else (lambda msg: click.echo(f"ganedit: {msg}", err=True))
    failures: list[Entry] = []
    stale_shown = [0]

    def on_plan(plan: Plan) -> None:
        for note in plan.notes:
            echo_note(note)
        progress.start(plan)

    def on_entry(entry: Entry) -> None:
        progress.advance(entry)
        if entry.stale and not quiet:  # not redone: say so, for the first few (all are in --json)
            stale_shown[0] += 1
            if stale_shown[0] <= STALE_LINES:
                click.echo(f"ganedit: skipped {entry.output}: {entry.warnings[0]}", err=True)
        if entry.status == "failed":
            failures.append(entry)
            if progress.progress is not None:  # live, above the bar; the full list follows at the end
                progress.progress.console.print(f"[red]failed[/red] {entry.error}", highlight=False)
        for warning in entry.warnings if entry.status != "skipped" else ():
            if not quiet:
                click.echo(f"ganedit: warning: {entry.input}: {warning}", err=True)

    try:
        report = api.edit_folder(
            list(inputs),
            output,
            on_plan=on_plan,
            on_entry=on_entry,
            on_progress=progress.model_progress,
            stdout=sys.stdout.buffer if output == STDIO else None,
            device=device,
            tile=0 if no_tile else tile,
            batch_size=batch_size,
            **options,
        )
    except KeyboardInterrupt as interrupt:
        progress.stop()
        partial: Report | None = getattr(interrupt, "report", None)
        if as_json and partial is not None:  # a CI job still gets what was done before the interrupt
            click.echo(json.dumps(partial.to_dict(), indent=2))
        raise
    finally:
        progress.stop()
    _finish(task, report, as_json=as_json, quiet=quiet)


STALE_LINES = 10  # outputs made with other settings named one by one on stderr; the rest are counted


def _skipped_text(skipped: int, stale: int) -> str:
    """``3 skipped (output exists)``, with how many of them were made with other settings."""
    more = f", {stale} made with other settings: use --overwrite" if stale else ""
    return f"{skipped} skipped (output exists{more})"


def _finish(task: Task, report: Report, *, as_json: bool, quiet: bool) -> None:
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    ok, skipped, failed = report.count("ok"), report.count("skipped"), report.count("failed")
    if not quiet and report.stale > STALE_LINES:
        click.echo(f"ganedit: ... and {report.stale - STALE_LINES} more made with other settings", err=True)
    if not quiet or failed:
        where = f" with {report.model} on {report.device}" if report.model else ""
        share = f" ({report.shard.describe()})" if report.shard is not None else ""
        click.echo(
            f"ganedit {task.name}: {ok} done, {_skipped_text(skipped, report.stale)}, {failed} failed "
            f"in {report.seconds:.1f} s{where}{share}",
            err=True,
        )
    if failed:
        click.echo("failed files:", err=True)
        for entry in report.failed:
            click.echo(f"  {entry.error}", err=True)
    if report.exit_code:
        sys.exit(report.exit_code)


def _print_plan(task: Task, plan: Plan, *, as_json: bool, quiet: bool) -> None:
    """``--dry-run``: one line per input on stdout (``write``, ``skip``, ``stale``, ``fail``), or JSON."""
    rows: list[dict[str, Any]] = []
    for job in plan.skipped:
        stale = plan.stale.get(job.output) if job.output is not None else None  # type: ignore[arg-type]
        reason = f"exists, made {stale}: use --overwrite" if stale else "output exists"
        rows.append(_plan_row(job, "stale" if stale else "skip", reason))
    for job in plan.jobs:
        failing = job.mask_error is not None
        rows.append(_plan_row(job, "fail" if failing else "write", job.mask_error))
    counts = {
        action: sum(r["action"] == action for r in rows) for action in ("write", "skip", "stale", "fail")
    }
    if as_json:
        plan_json = {
            "dry_run": True,
            "task": task.name,
            "totals": {
                "inputs": len(rows),
                "write": counts["write"],
                "skipped": counts["skip"] + counts["stale"],
                "skipped_stale": counts["stale"],
                "fail": counts["fail"],
            },
            "shard": plan.shard.to_dict() if plan.shard is not None else None,
            "notes": list(plan.notes),
            "files": rows,
        }
        click.echo(json.dumps(plan_json, indent=2))
    else:
        for row in rows:
            reason = f" ({row['reason']})" if row["reason"] else ""
            click.echo(f"{row['action']:<6} {row['input']} -> {row['output']}{reason}")
    if not quiet:
        for note in plan.notes:
            click.echo(f"ganedit: {note}", err=True)
        click.echo(
            f"ganedit {task.name} --dry-run: {counts['write']} to write, "
            f"{_skipped_text(counts['skip'] + counts['stale'], counts['stale'])}, {counts['fail']} would "
            "fail; nothing was written",
            err=True,
        )


def _plan_row(job: Any, action: str, reason: str | None) -> dict[str, Any]:
    return {
        "input": job.display,
        "output": str(job.output) if job.output is not None else "-",
        "action": action,
        "mask": str(job.mask) if job.mask is not None else None,
        "reason": reason,
    }


for _task in TASKS.values():
    if _task.arch == "pan":  # rerender joins with its TDGAN checkpoint (it adds --tag options)
        main.add_command(edit_command(_task))


@main.command(
    "rerender",
    context_settings=CONTEXT,
    epilog="\b\nExamples:\n"
    + "\n".join(
        f"  {line}"
        for line in (
            "ganedit rerender chair.png --tag azimuth=30 --snap --tag light=left -o out/",
            "ganedit rerender chairs/ --tag azimuth=all --gif --sheet -o turntables/",
            "ganedit rerender chair.png --tag azimuth=0,90,180 --tag light=all -o out/ --json",
            "ganedit models show tdgan-chairs              # the tags and values a model knows",
        )
    ),
)
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("-r", "--recursive", is_flag=True, help="Search folders recursively; mirror the tree under -o.")
@click.option(
    "--tag",
    "tags",
    multiple=True,
    metavar="NAME=VALUE[,VALUE...]",
    help="Target tag value(s), or NAME=all; repeatable. Every combination is rendered. Tags not given "
    "keep the value the model reads off the input.",
)
@click.option("--snap", is_flag=True, help="Round a number to the nearest value the model knows (30 -> 35).")
@click.option("--sheet", is_flag=True, help="Also write STEM_sheet.png: all renders of an input in a grid.")
@click.option("--gif", is_flag=True, help="Also write STEM.gif: the renders as an animation (a turntable).")
@click.option(
    "--gif-ms", type=click.IntRange(min=10), default=120, show_default=True, help="GIF frame duration (ms)."
)
@click.option(
    "--model", "model", metavar="NAME", help=f"Registered model to use. [{_registered_names('rerender')}]"
)
@click.option(
    "--weights",
    type=click.Path(exists=True, dir_okay=False),
    help="A local .safetensors checkpoint instead of a registered model.",
)
@registry_option
@offline_option
@click.option(
    "--device",
    default="auto",
    show_default=True,
    help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps.",
)
@refine_option("Steps")
@click.option("--overwrite", is_flag=True, help="Replace outputs that exist (default: skip them).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No notes (errors still go to stderr).")
def rerender_command(
    inputs: tuple[str, ...],
    output: str,
    recursive: bool,
    tags: tuple[str, ...],
    snap: bool,
    sheet: bool,
    gif: bool,
    gif_ms: int,
    model: str | None,
    weights: str | None,
    registry: tuple[str, ...],
    offline: bool,
    device: str,
    refine_steps: int | None,
    overwrite: bool,
    as_json: bool,
    quiet: bool,
) -> None:
    """Re-render objects at other tags such as pose or lighting (TDGAN).

    Writes one PNG per combination of the --tag values, named STEM_TAG-VALUE_....png.
    """
    import time

    from . import api
    from . import rerender as rr
    from .batch import expand_patterns
    from .errors import ImageError
    from .io.decode import capture_warnings, read_picture
    from .io.discover import discover

    started = time.monotonic()
    if model and weights:
        raise UsageError("give --model or --weights, not both")
    steps = rr.REFINE_STEPS if refine_steps is None else refine_steps
    out_root = Path(output)
    if out_root.exists() and not out_root.is_dir():
        raise UsageError(f"{output}: -o must be a folder (it is a file)")
    discovery = discover([Path(i) for i in expand_patterns(inputs)], recursive=recursive)
    resolved_out = out_root.resolve()
    found = [f for f in discovery.files if resolved_out not in f.path.resolve().parents]
    notes = list(discovery.notes)
    if len(found) < len(discovery.files):
        notes.append(f"skipped {len(discovery.files) - len(found)} file(s) inside the output folder")
    name, resolved, _ = api.locate(
        weights or model, task="rerender", registry_files=_registry_files(registry), hub=_hub_options(offline)
    )
    config = rr.read_config(resolved.path)
    if not tags:
        valid = "; ".join(f"{n} ({', '.join(v)})" for n, v in config.tags)
        raise UsageError(f"give at least one --tag NAME=VALUE (or NAME=all); tags of {name}: {valid}")
    sweep = rr.parse_tag_options(tags, config, snap=snap)
    columns = rr.sheet_columns(sweep)
    widths = rr.name_widths(config)  # azimuth-012 before azimuth-105: names sort like the sweep

    # Plan every output before touching an image: name clashes are usage errors.
    owners: dict[Path, Path] = {}
    plan: list[tuple[Path, list[Path], Path | None, Path | None]] = []
    for f in found:
        folder = out_root / f.rel.parent
        stem = f.rel.stem
        renders = [folder / rr.output_name(stem, target, widths=widths) for target in sweep]
        sheet_path = folder / rr.output_name(f"{stem}_sheet", {}) if sheet else None
        gif_path = folder / rr.output_name(stem, {}, ".gif") if gif else None
        for path in [*renders, sheet_path, gif_path]:
            if path is None:
                continue
            if path in owners:
                raise UsageError(f"{f.path} and {owners[path]} would both write {path}; rename one")
            owners[path] = f.path
        plan.append((f.path, renders, sheet_path, gif_path))
    from .io.atomic import sweep_temporary_files  # what a killed run left in these output folders

    removed = sweep_temporary_files(sorted({path.parent for path in owners}))
    if removed:
        notes.append(f"removed {len(removed)} temporary file(s) left by an interrupted run")
    if not quiet:
        for note in notes:
            click.echo(f"ganedit: {note}", err=True)

    renderer: rr.Rerenderer | None = None
    entries: list[dict[str, Any]] = []
    for source, renders, sheet_path, gif_path in plan:
        extras = [p for p in (sheet_path, gif_path) if p is not None]
        todo = [p for p in [*renders, *extras] if overwrite or not p.exists()]
        entry: dict[str, Any] = {"input": str(source), "status": "skipped", "outputs": [], "existing": []}
        entry["existing"] = [str(p) for p in [*renders, *extras] if p not in todo]
        entries.append(entry)
        if not todo:
            continue
        try:
            with capture_warnings() as caught:  # Pillow's warnings: reported with the file, not raw
                picture = read_picture(source)
            entry["warnings"] = caught
            for text in caught if not quiet else ():
                click.echo(f"ganedit: warning: {source}: {text}", err=True)
            if renderer is None:
                renderer = rr.Rerenderer.open(
                    resolved.path,
                    name=name,
                    sha256=resolved.sha256,
                    device=device,
                    refine_steps=steps,
                )
            inferred = renderer.infer_tags(picture.pixels)
            entry["inferred"] = inferred
            need_all = any(p in todo for p in extras)
            wanted = [i for i, p in enumerate(renders) if need_all or p in todo]
            images = dict(
                zip(
                    wanted,
                    renderer.render(picture.pixels, [sweep[i] for i in wanted], inferred=inferred),
                    strict=True,
                )
            )
            for i in wanted:
                if renders[i] in todo:
                    rr.write_png(renders[i], images[i])
                    entry["outputs"].append(str(renders[i]))
            frames = [images[i] for i in range(len(renders))] if need_all else []
            if sheet_path is not None and sheet_path in todo:
                grid = rr.contact_sheet(frames, columns, background=config.background)
                rr.write_png(sheet_path, grid)
                entry["outputs"].append(str(sheet_path))
            if gif_path is not None and gif_path in todo:
                rr.write_gif(gif_path, frames, gif_ms)
                entry["outputs"].append(str(gif_path))
            entry["status"] = "ok"
        except ImageError as error:
            entry["status"] = "failed"
            entry["error"] = str(error)
            if not quiet:
                click.echo(f"ganedit: failed: {error}", err=True)

    counts = {s: sum(e["status"] == s for e in entries) for s in ("ok", "skipped", "failed")}
    seconds = time.monotonic() - started
    if as_json:
        report = {
            "task": "rerender",
            "model": name,
            "sha256": resolved.sha256,
            "device": str(renderer.device) if renderer is not None else None,
            "refine_steps": steps,
            "sweep": sweep,
            "counts": counts,
            "seconds": round(seconds, 3),
            "entries": entries,
        }
        click.echo(json.dumps(report, indent=2))
    if not quiet or counts["failed"]:
        where = f" with {name} on {renderer.device}" if renderer is not None else ""
        click.echo(
            f"ganedit rerender: {counts['ok']} done, {counts['skipped']} skipped (outputs exist), "
            f"{counts['failed']} failed in {seconds:.1f} s{where}",
            err=True,
        )
    if counts["failed"]:
        click.echo("failed files:", err=True)
        for e in entries:
            if e["status"] == "failed":
                click.echo(f"  {e['error']}", err=True)
        sys.exit(1)


# --------------------------------------------------------------------------------------------- report


@main.group("report", cls=_Group, context_settings=CONTEXT)
def report_group() -> None:
    """Combine the --json reports of a run split over several machines."""


@report_group.command("merge", context_settings=CONTEXT)
@click.argument("files", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print the merged report as JSON on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No summary on stderr (failures are still listed).")
def report_merge(files: tuple[str, ...], as_json: bool, quiet: bool) -> None:
    """Merge the --json reports of the shards of one run into one report.

    \b
    Exit 0 when every file was done or skipped; 1 when some file failed, a shard was interrupted or a
    shard has no report; 2 when a report file is unreadable, not an editing report, or from another
    run (other model, two reports of one shard, another shard count).
    \b
    Examples:
      ganedit report merge reports/shard-*.json
      ganedit report merge reports/shard-*.json --json > report.json
    """
    if as_json:
        _need_stream("stdout", "--json prints on stdout")
    from .reports import merge_reports, read_report

    merged = merge_reports([(name, read_report(name)) for name in files])
    if as_json:
        click.echo(json.dumps(merged.to_dict(), indent=2))
    info = merged.merged or {}
    count = info.get("shard_count")
    ok, skipped, failed = merged.count("ok"), merged.count("skipped"), merged.count("failed")
    if not quiet or merged.exit_code:
        shards = f", {len(info.get('reports', []))} of {count} shards" if count else ""
        where = f" with {merged.model}" if merged.model else ""
        click.echo(
            f"ganedit report merge: {len(files)} report{'s' if len(files) != 1 else ''}{shards}: {ok} done, "
            f"{_skipped_text(skipped, merged.stale)}, {failed} failed{where}",
            err=True,
        )
    if info.get("missing_shards"):
        missing = ", ".join(str(i) for i in info["missing_shards"])
        click.echo(f"missing shards (no report; re-run those tasks): {missing} of {count}", err=True)
    interrupted = [p["file"] for p in info.get("reports", []) if p.get("interrupted")]
    if interrupted:
        click.echo(f"interrupted: {', '.join(interrupted)} (re-run those tasks to finish)", err=True)
    if failed:
        click.echo("failed files:", err=True)
        for entry in merged.failed:
            click.echo(f"  {entry.error}", err=True)
    if merged.exit_code:
        sys.exit(merged.exit_code)


# ------------------------------------------------------------------------------------- models / weights


@main.group(cls=_Group, context_settings=CONTEXT)
def models() -> None:
    """List and inspect the models weights.toml offers."""


def _human_size(size: int | None) -> str:
    if size is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024  # type: ignore[assignment]
    return "?"


@models.command("list", context_settings=CONTEXT)
@click.option("--task", type=click.Choice(list(TASKS)), help="Only models for this task.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@registry_option
def models_list(task: str | None, as_json: bool, registry: tuple[str, ...]) -> None:
    """Every registered model: task, default, size, sha256, and whether it is available offline.

    \b
    Examples:
      ganedit models list
      ganedit models list --task derain --json
    """
    from . import api

    rows = api.list_models(task=task, registry_files=_registry_files(registry), hub=_hub_options(False))
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "name": r.spec.name,
                        "task": r.spec.task,
                        "arch": r.spec.arch,
                        "default": r.spec.default,
                        "size": r.spec.size,
                        "sha256": r.spec.sha256,
                        "bundled": r.bundled,
                        "cached": r.cached,
                        "repo_id": r.spec.repo_id,
                        "revision": r.spec.revision,
                        "license": r.spec.license,
                        "card": r.spec.card,
                    }
                    for r in rows
                ],
                indent=2,
            )
        )
        return
    if not rows:
        click.echo("no models registered" + (f" for {task}" if task else ""), err=True)
        return
    header = ("name", "task", "default", "size", "sha256", "available")
    table_rows = []
    for r in rows:
        local = "bundled" if r.spec.origin is None else "local file"
        where = local if r.bundled else "cached" if r.cached else "not cached (ganedit weights pull)"
        default = "yes" if r.spec.default else "no"
        table_rows.append(
            (r.spec.name, r.spec.task, default, _human_size(r.spec.size), r.spec.sha256[:12], where)
        )
    _need_stream("stdout", "models list prints on stdout")
    if not sys.stdout.isatty():  # piped or redirected: plain columns, nothing cut to a terminal's width
        widths = [max(len(row[i]) for row in [header, *table_rows]) for i in range(len(header))]
        for row in [header, *table_rows]:
            click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(*header)
    for row in table_rows:
        table.add_row(*row)
    table.columns[0].no_wrap = True
    table.columns[0].overflow = "fold"
    Console().print(table)


@models.command("show", context_settings=CONTEXT)
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@registry_option
def models_show(name: str, as_json: bool, registry: tuple[str, ...]) -> None:
    """Everything about one model: registry entry and, when available locally, its checkpoint metadata.

    \b
    Examples:
      ganedit models show pan-derain
    """
    _need_stream("stdout", "models show prints on stdout")
    from dataclasses import asdict

    from .hub import bundled_path, cached_path
    from .registry import load_registry

    spec = load_registry(_registry_files(registry)).get(name)
    info: dict[str, Any] = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(spec).items()}
    info["card"] = _card_location(spec)
    local = bundled_path(spec) or cached_path(spec, _hub_options(False))
    info["local_path"] = str(local) if local else None
    if local is not None:
        from .checkpoint import read_info

        ckpt = read_info(local)
        info["checkpoint"] = {"arch": ckpt.arch, "task": ckpt.task, "arch_config": ckpt.arch_config}
        info["checkpoint_metadata"] = ckpt.metadata
        if ckpt.arch == "tdgan":
            from .rerender import read_config

            info["tags"] = {tag: list(values) for tag, values in read_config(local).tags}
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    if info["local_path"] is None:
        info["local_path"] = f"not here (ganedit weights pull {spec.name})"
    for key, value in info.items():
        if key == "checkpoint_metadata" or value is None:  # unset keys are left out, not shown as None
            continue
        if key == "tags":
            click.echo(f"{key:>12}:")
            for tag, values in value.items():
                click.echo(f"{'':>14}{tag}: {', '.join(values)}")
            continue
        shown = ("yes" if value else "no") if isinstance(value, bool) else value
        click.echo(f"{key:>12}: {json.dumps(shown) if isinstance(shown, dict) else shown}")


def _card_location(spec: Any) -> str | None:
    """Where a model's card can be read: a URL as it is; a relative path resolved against the folder of
    the registry that names it (the bundled cards are installed inside the package); None when there is
    no such file here (a path into a source tree this installation does not have)."""
    card = spec.card
    if card is None or "://" in card:
        return card
    from .registry import bundled_registry_path

    base = (spec.origin or bundled_registry_path()).parent
    path = Path(card) if Path(card).is_absolute() else base / card
    return str(path) if path.is_file() else None


@main.group(cls=_Group, context_settings=CONTEXT)
def weights() -> None:
    """Fetch and check weights files (for offline machines)."""


@weights.command("pull", context_settings=CONTEXT)
@click.argument("names", nargs=-1)
@registry_option
def weights_pull(names: tuple[str, ...], registry: tuple[str, ...]) -> None:
    """Download (or find) and verify models' weights; with no NAME, all registered models.

    \b
    Examples:
      ganedit weights pull pan-derain
      HF_ENDPOINT=https://my-mirror ganedit weights pull
    """
    _need_stream("stdout", "weights pull prints on stdout")
    from . import api

    hub = _hub_options(False)
    for name, resolved in api.pull(list(names), registry_files=_registry_files(registry), hub=hub):
        click.echo(f"{name}: {resolved.path} ({resolved.source}, sha256 ok)")


@weights.command("verify", context_settings=CONTEXT)
@click.argument("names", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@registry_option
def weights_verify(names: tuple[str, ...], as_json: bool, registry: tuple[str, ...]) -> None:
    """Check the sha256 of local copies (bundled or cached) without downloading.

    Exit 1 if a local copy does not match; 3 if a model you named has no local copy.
    """
    _need_stream("stdout", "weights verify prints on stdout")
    from . import api

    results = api.verify(list(names), registry_files=_registry_files(registry), hub=_hub_options(False))
    if as_json:
        click.echo(json.dumps([r.__dict__ for r in results], indent=2))
    else:
        for r in results:
            where = f" ({r.source})" if r.source else ""
            click.echo(f"{r.name}: {r.status}" + (f"{where} {r.detail}" if r.detail else ""))
    if any(r.status == "mismatch" for r in results):
        sys.exit(1)
    if names and any(r.status == "missing" for r in results):
        sys.exit(3)


# ------------------------------------------------------------------------------------- train / eval


@main.group(cls=_Group, context_settings=CONTEXT)
def train() -> None:
    """Train models (PAN) or fine-tune them on your own photos.

    Training code lives in ganedit.train; nothing in the editing commands imports it.
    """


def _training_logger(quiet: bool) -> tuple[Callable[[dict[str, Any]], None], Callable[[], None]]:
    """A progress bar over steps plus the latest losses, on stderr."""
    if quiet:
        return (lambda record: None), (lambda: None)
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    progress = Progress(
        TextColumn("[bold]train"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[losses]}"),
        console=console,
        disable=not console.is_terminal,
    )
    state: dict[str, Any] = {"task": None}

    def on_log(record: dict[str, Any]) -> None:
        step, total = record.get("step"), record.get("steps")
        losses = "  ".join(
            f"{k}={v:.4g}" for k, v in record.items() if isinstance(v, float) and k not in {"step", "steps"}
        )
        if not console.is_terminal:
            line = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items())
            console.print(line, highlight=False)
            return
        if state["task"] is None and isinstance(total, int):
            progress.start()
            state["task"] = progress.add_task("train", total=total, completed=step or 0, losses="")
        if state["task"] is not None and isinstance(step, int):
            progress.update(state["task"], completed=step, losses=losses[:80])
        elif record.get("event") not in (None, "step"):
            console.print(" ".join(f"{k}={v}" for k, v in record.items()), highlight=False)

    return on_log, progress.stop


def _train_run_options(device_help: str, *own: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """The options `train pan` and `train tdgan` share, with the command's `own` options (those listed
    between --steps and --device) in their place."""
    options = [
        click.option(
            "--out",
            type=click.Path(file_okay=False),
            help="Run folder: config, resumable state, samples, model.",
        ),
        click.option(
            "--config", "config_file", type=click.Path(exists=True, dir_okay=False), help="TOML config file."
        ),
        click.option(
            "--set",
            "overrides",
            multiple=True,
            metavar="KEY=VALUE",
            help="Override a config value (repeatable).",
        ),
        click.option("--steps", type=click.IntRange(min=1), help="Total optimisation steps."),
        *own,
        click.option("--device", help=device_help),
        click.option(
            "--resume",
            "resume_dir",
            type=click.Path(exists=True, file_okay=False),
            help="Continue the run in this folder where it stopped (its config.toml is reused).",
        ),
        click.option("-q", "--quiet", is_flag=True, help="No progress output."),
    ]

    def decorate(command: Any) -> Any:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def _run_training(
    quiet: bool,
    resume_dir: str | None,
    config_file: str | None,
    required: dict[str, str | None],
    run: Callable[[Callable[[dict[str, Any]], None]], Path],
) -> None:
    """Check that a fresh run (no --resume, no --config) has the `required` options, run `run(on_log)` under
    a progress display, and print the checkpoint path it returns."""
    if resume_dir is None and config_file is None and None in required.values():
        names = [f"--{name}" for name in required]
        given = ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]
        raise UsageError(f"give {given} (or --config FILE, or --resume RUN_DIR)")
    on_log, stop = _training_logger(quiet)
    try:
        path = run(on_log)
    finally:
        stop()
    click.echo(str(path))


@train.command("pan", context_settings=CONTEXT)
@click.option(
    "--task", type=click.Choice([t.name for t in TASKS.values() if t.arch == "pan"]), help="What to learn."
)
@click.option(
    "--data",
    type=click.Path(exists=True, file_okay=False),
    help="Clean photos (pairs synthesised on the fly), or a paired folder (input/ + target/, or A|B images).",
)
@click.option("--val", type=click.Path(exists=True, file_okay=False), help="Held-out photos for validation.")
@_train_run_options(
    "auto, cpu, cuda, cuda:N (under torchrun: one GPU per rank).",
    click.option("--seed", type=int, help="Seed for weights, data order and synthesis."),
)
def train_pan(
    task: str | None,
    data: str | None,
    val: str | None,
    out: str | None,
    config_file: str | None,
    overrides: tuple[str, ...],
    steps: int | None,
    seed: int | None,
    device: str | None,
    resume_dir: str | None,
    quiet: bool,
) -> None:
    """Train a PAN generator (perceptual adversarial loss, Wang et al. 2017) and export a checkpoint.

    \b
    Examples:
      ganedit train pan --task derain --data data/photos/train --out runs/derain
      ganedit train pan --config configs/pan-derain.toml --out runs/derain --set batch_size=8
      ganedit train pan --resume runs/derain                  # continue after an interruption
      torchrun --nproc_per_node=4 -m ganedit train pan --task derain --data photos/ --out runs/d
      ganedit derain rainy/ -o clean/ --weights runs/derain/model.safetensors
    """
    from .train import pan as pan_training

    def run(on_log: Callable[[dict[str, Any]], None]) -> Path:
        if resume_dir is not None:
            config = pan_training.resume_config(Path(resume_dir), overrides, steps=steps, device=device)
            return pan_training.train(config, resume=True, on_log=on_log)
        given = {"data": data, "val": val, "out": out, "steps": steps, "seed": seed, "device": device}
        values = {k: v for k, v in given.items() if v is not None}
        name = task or pan_training.config_file_task(Path(config_file))  # type: ignore[arg-type]
        config = pan_training.load_config(
            name, Path(config_file) if config_file else None, overrides, **values
        )
        return pan_training.train(config, resume=False, on_log=on_log)

    _run_training(quiet, resume_dir, config_file, {"task": task, "data": data, "out": out}, run)


@train.command("tdgan", context_settings=CONTEXT)
@click.option(
    "--data",
    type=click.Path(exists=True, file_okay=False),
    help="A rendered chairs dataset (ganedit train render-chairs) or another folder with tags.json.",
)
@_train_run_options("auto, cpu, cuda, cuda:N.")
def train_tdgan(
    data: str | None,
    out: str | None,
    config_file: str | None,
    overrides: tuple[str, ...],
    steps: int | None,
    device: str | None,
    resume_dir: str | None,
    quiet: bool,
) -> None:
    """Train TDGAN (R, g, G and D trained alternately, Wang et al. IJCAI 2017) and export a checkpoint.

    \b
    Examples:
      ganedit train tdgan --data data/chairs --out runs/tdgan
      ganedit train tdgan --data data/chairs --out runs/semi --set tag_fraction=0.5
      ganedit train tdgan --resume runs/tdgan --steps 40000
      ganedit rerender chair.png --weights runs/tdgan/model.safetensors --tag azimuth=all -o turn/
    """
    from .train import tdgan as tdgan_training

    cli_values = {"data": data, "steps": steps, "device": device}

    def run(on_log: Callable[[dict[str, Any]], None]) -> Path:
        if resume_dir is not None:
            config = tdgan_training.resume_config(Path(resume_dir), overrides, **cli_values)
            return tdgan_training.train(config, resume=True, on_log=on_log)
        config = tdgan_training.load_config(
            Path(config_file) if config_file else None, overrides, out=out, **cli_values
        )
        return tdgan_training.train(config, on_log=on_log)

    _run_training(quiet, resume_dir, config_file, {"data": data, "out": out}, run)


@train.command("export", context_settings=CONTEXT)
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False), help="Checkpoint path [RUN_DIR/model.safetensors]."
)
def train_export(run_dir: str, output: str | None) -> None:
    """Export a checkpoint from a run's latest saved state (e.g. of an interrupted run): a PAN run or a
    TDGAN run, told apart by its config.toml."""
    import tomllib

    from .train import pan as pan_training
    from .train import tdgan as tdgan_training

    run = Path(run_dir)
    try:
        config = tomllib.loads((run / "config.toml").read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise UsageError(f"{run} is not a training run folder (config.toml: {e})") from None
    trainer = tdgan_training if "tags" in config and "task" not in config else pan_training
    click.echo(str(trainer.export(run, Path(output) if output else None)))


@train.command("render-chairs", context_settings=CONTEXT)
@click.argument("source", type=click.Path(exists=True, file_okay=False))
@click.argument("out", type=click.Path(file_okay=False))
@click.option(
    "--size", "sizes", type=click.IntRange(min=16), multiple=True, help="Image size in px [64 and 128]."
)
@click.option(
    "--split",
    type=click.Choice(["all", "train", "eval"]),
    default="all",
    show_default=True,
    help="train: sweethome3d-furniture seats; eval: the sweethome3d default catalogue's (held out).",
)
@click.option("--limit", type=click.IntRange(min=1), help="At most this many seats per split.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True, help="Processes.")
@click.option("--with-sofas", is_flag=True, help="Add sofas and benches to chairs, armchairs and stools.")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
def train_render_chairs(
    source: str,
    out: str,
    sizes: tuple[int, ...],
    split: str,
    limit: int | None,
    workers: int,
    with_sofas: bool,
    quiet: bool,
) -> None:
    """Render the tagged chairs dataset for TDGAN (31 azimuths x 2 elevations x 4 lights per seat).

    SOURCE is the folder the Debian packages sweethome3d and sweethome3d-furniture were unpacked into
    (python scripts/fetch_chairs.py makes data/chairs-src). Deterministic and resumable: images that
    exist are skipped. OUT gets SIZE/SPLIT/IDENTITY/azAA_elEE_LIGHT.png, tags.json and ATTRIBUTION.md.

    \b
    Examples:
      ganedit train render-chairs data/chairs-src data/chairs
      ganedit train render-chairs data/chairs-src data/chairs --size 64 --split train --workers 2
    """
    from rich.console import Console

    from .train import chairs

    console = Console(stderr=True, quiet=quiet)

    def progress(done: int, total: int, identity: str) -> None:
        console.print(f"{done}/{total} images  {identity}", highlight=False)

    report = chairs.render_chairs(
        Path(source),
        Path(out),
        sizes=sizes or (64, 128),
        split=split,
        limit=limit,
        workers=workers,
        kinds=chairs.ALL_KINDS if with_sofas else chairs.DEFAULT_KINDS,
        on_progress=progress,
    )
    for identity, reason in report.failed:
        click.echo(f"ganedit: {identity}: {reason}", err=True)
    console.print(
        f"{report.identities} seats, {report.written} images written, {report.skipped} already there, "
        f"{len(report.failed)} failed ({report.seconds:.0f} s)",
        highlight=False,
    )
    if not report.ok:
        sys.exit(1)


@main.command("eval", context_settings=CONTEXT)
@click.argument("model", required=False)
@click.option(
    "--data",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="Clean photos (degradation synthesised with a fixed seed), or a paired folder (input/ + target/, "
    "or rain/ + clean/).",
)
@click.option(
    "--weights", type=click.Path(exists=True, dir_okay=False), help="A checkpoint file instead of MODEL."
)
@click.option(
    "--task",
    type=click.Choice([t.name for t in TASKS.values() if t.arch == "pan"]),
    help="Evaluate the task's default model (when no MODEL or --weights).",
)
@click.option("--limit", type=click.IntRange(min=1), help="Use at most this many images.")
@click.option(
    "--size",
    type=click.IntRange(min=32),
    default=512,
    show_default=True,
    help="Photos are downscaled so the short side is SIZE, then centre-cropped.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the synthesised degradation.")
@click.option("--device", default="auto", show_default=True)
@click.option("--precision", type=click.Choice(PRECISIONS), default="auto", show_default=True)
@flip_average_option
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON on stdout.")
@click.option(
    "--rain",
    type=click.Choice(["classic", "streaks"]),
    default="classic",
    show_default=True,
    help="derain on clean photos: the rain synthesised, the first synthesiser's or streak rain.",
)
@click.option(
    "--identity",
    is_flag=True,
    help="derain: DATA holds rain-free photos; measure how much the model changes them (output vs input: "
    "PSNR, SSIM, worst PSNR, largest colour shift).",
)
@click.option(
    "--classifier",
    type=click.Path(exists=True, dir_okay=False),
    help="Rerender models: the tag classifier judging the re-renders (default: DATA/classifier-SIZE-"
    "STEPSsteps.safetensors, trained on DATA's train split when missing).",
)
@refine_option("Rerender models: steps")
@registry_option
@offline_option
def eval_command(
    model: str | None,
    data: str,
    weights: str | None,
    task: str | None,
    limit: int | None,
    size: int,
    seed: int,
    device: str,
    precision: str,
    flip_average: bool,
    as_json: bool,
    rain: str,
    identity: bool,
    classifier: str | None,
    refine_steps: int | None,
    registry: tuple[str, ...],
    offline: bool,
) -> None:
    """PSNR and SSIM against ground truth, next to a baseline on the same images.

    \b
    Baselines: derain - the rainy input unchanged (whole image); inpaint - a smooth (harmonic) fill of
    the hole (measured inside the hole); sketch2photo, labels2photo - the mean colour of each photo
    (whole image), with colour statistics (mean chroma, colour histogram distance) for both.
    labels2photo DATA may be a folder of side-by-side 'photo | label map' pairs (the CMP facades).
    \b
    derain also reports PSNR/SSIM on the Y channel of BT.601 (psnr_y, ssim_y), as de-raining papers do.
    \b
    Examples:
      ganedit eval pan-derain --data data/photos/holdout
      ganedit eval pan-derain --data ../shared/datasets/derain/rain12      # rain/ + clean/ pairs
      ganedit eval pan-derain --identity --data dry-photos/                # rain-free photos untouched?
      ganedit eval --weights runs/derain/model.safetensors --data testset/ --json
    \b
    Rerender (TDGAN) models: DATA is a tagged image set (tags.json); held-out identities are re-rendered
    to every azimuth and light and compared with their true renders (baseline: the input unchanged), at
    the model's image size (--size is not used); --limit counts identities.
    """
    _need_stream("stdout", "eval prints on stdout")
    from . import api
    from .eval.pan import evaluate

    if model and weights:
        raise UsageError("give MODEL or --weights, not both")
    if not (model or weights or task):
        raise UsageError("name a MODEL, or give --weights PATH or --task")
    if task is None:
        from .checkpoint import read_info

        name, located, _ = api.locate(
            weights or model, registry_files=_registry_files(registry), hub=_hub_options(offline)
        )
        if read_info(located.path).task == "rerender":
            _eval_rerender(
                name,
                located.path,
                located.sha256,
                Path(data),
                classifier,
                device,
                seed,
                limit,
                as_json,
                refine_steps,
            )
            return
    editor = api.load(
        weights or model,
        task=task,
        device=device,
        precision=precision,
        flip_average=flip_average,
        registry_files=_registry_files(registry),
        hub=_hub_options(offline),
    )
    result = evaluate(editor, Path(data), seed=seed, limit=limit, size=size, identity=identity, rain=rain)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, allow_nan=False))
        return
    click.echo(f"{result.model} ({result.task}) on {result.images} images of {data}")
    click.echo(f"  protocol: {result.protocol}")
    click.echo(f"  baseline: {result.baseline}")
    click.echo(f"  inference: {result.precision}, flip averaging {'on' if result.flip_average else 'off'}")
    for key, value in result.metrics.items():
        click.echo(f"  {key:>16}: {value:.4f}")


def _eval_rerender(
    name: str,
    path: Path,
    sha256: str | None,
    data: Path,
    classifier_path: str | None,
    device: str,
    seed: int,
    limit: int | None,
    as_json: bool,
    refine_steps: int | None,
) -> None:
    """``ganedit eval`` on a rerender (TDGAN) checkpoint: `evaluate_rerender`, printed."""
    from .eval.tdgan import (
        CLASSIFIER_STEPS,
        evaluate_rerender,
        load_classifier,
        save_classifier,
        train_classifier,
    )
    from .rerender import REFINE_STEPS, Rerenderer

    if not (data / "tags.json").is_file():
        raise UsageError(
            f"{name} is a rerender (tdgan) checkpoint: --data must be a tagged image set (DATA/tags.json, "
            f"as `ganedit train render-chairs` writes); {data} has no tags.json"
        )
    steps = REFINE_STEPS if refine_steps is None else refine_steps
    rr = Rerenderer.open(path, name=name, sha256=sha256, device=device, refine_steps=steps)
    size = rr.config.image_size
    if classifier_path is not None:
        judge = load_classifier(Path(classifier_path))
    else:
        cache = data / f"classifier-{size}-{CLASSIFIER_STEPS}steps.safetensors"
        if cache.is_file():
            click.echo(f"using the tag classifier {cache}", err=True)
            judge = load_classifier(cache)
        else:
            click.echo(
                f"no --classifier: training a tag classifier on the train split of {data} "
                f"({size} px), cached to {cache}",
                err=True,
            )
            judge = train_classifier(data, size, split="train", seed=0)
            save_classifier(cache, judge)
    result = evaluate_rerender(rr, data, classifier=judge, size=size, seed=seed, limit=limit)
    if as_json:
        click.echo(json.dumps(result, indent=2, allow_nan=False))
        return

    def f(value: float | None, digits: int = 2) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    o = result["overall"]
    click.echo(
        f"{result['model']} (rerender) on {result['identities']} held-out identities of {data}: "
        f"{result['sources']} source views, {result['renders']} re-renders"
    )
    click.echo(f"  protocol: {result['protocol']}")
    click.echo(f"  baseline: {result['baseline']}")
    refine = result["refine"]
    click.echo(f"  identity refinement: {refine['steps']} steps (Adam, step size {refine['lr']:g})")
    click.echo(
        f"  azimuth sweep (offset != 0, {o['count']}): PSNR {f(o['psnr'])} dB "
        f"(baseline {f(o['baseline_psnr'])})"
        f", SSIM {f(o['ssim'], 4)} (baseline {f(o['baseline_ssim'], 4)})"
    )
    lt = result["light"]
    if lt["count"]:
        click.echo(
            f"  light sweep (other light, {lt['count']}): PSNR {f(lt['psnr'])} dB (baseline "
            f"{f(lt['baseline_psnr'])}), SSIM {f(lt['ssim'], 4)} (baseline {f(lt['baseline_ssim'], 4)})"
        )
    click.echo("  offset  degrees   psnr  base_psnr    ssim  base_ssim")
    for row in result["per_offset"]:
        degrees = "-" if row["degrees"] is None else f"{row['degrees']:.0f}"
        click.echo(
            f"  {row['offset']:>6} {degrees:>8} {f(row['psnr']):>6} {f(row['baseline_psnr']):>10} "
            f"{f(row['ssim'], 4):>7} {f(row['baseline_ssim'], 4):>10}"
        )
    accuracy = ", ".join(f"{k} {v:.3f}" for k, v in result["tag_accuracy"].items()) or "-"
    click.echo(f"  tag accuracy of the re-renders (classifier): {accuracy}")
    judge_acc = result["classifier"]["on_true_renders"]
    own = ", ".join(f"{k} {v:.3f}" for k, v in judge_acc.items() if k != "images") or "-"
    click.echo(f"  classifier's own accuracy on the {judge_acc['images']} true target renders: {own}")
