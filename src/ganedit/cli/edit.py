"""The PAN editing commands (derain, inpaint, sketch2photo, labels2photo), all built by one factory
(`edit_command`) from their `Task` record, so that they share their options and behaviour."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import click

from ..errors import UsageError
from ..tasks import TASKS, Task
from .boundary import CONTEXT, need_stream
from .options import (
    FORMATS,
    PRECISIONS,
    device_option,
    dry_run_option,
    flip_average_option,
    hub_options,
    json_option,
    model_option,
    offline_option,
    overwrite_option,
    recursive_option,
    registry_files,
    registry_option,
    shard_options,
    shard_spec,
    weights_option,
)
from .reporting import RunDisplay, finish, print_plan


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


def _mask_option(task: Task) -> list[Callable[[Any], Any]]:
    if not task.needs_mask:
        return []
    return [
        click.option(
            "--mask",
            required=True,
            type=click.Path(exists=True),
            help="Mask file for all inputs, or a folder of masks matched by file stem "
            "(NAME.*, NAME_mask.*). White = fill.",
        )
    ]


def _edit_options(task: Task) -> list[Callable[[Any], Any]]:
    """The options of one editing command, in --help order (a declarative table)."""
    return [
        click.argument("inputs", nargs=-1, required=True, type=click.Path(allow_dash=True)),
        click.option(
            "-o",
            "--output",
            required=True,
            type=click.Path(allow_dash=True),
            help="Output folder, output file (single input), or '-' for stdout.",
        ),
        recursive_option,
        *_mask_option(task),
        model_option(task.name),
        weights_option,
        registry_option,
        offline_option,
        device_option,
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
        overwrite_option,
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
        dry_run_option,
        *shard_options,
        json_option,
        click.option(
            "-q", "--quiet", is_flag=True, help="No progress bar or notes (errors still go to stderr)."
        ),
    ]


def edit_command(task: Task) -> click.Command:
    """Build the subcommand for one task. Every editing command is made here."""

    def command(**kwargs: Any) -> None:
        _run_edit(task, **kwargs)

    command.__doc__ = task.summary
    for option in reversed(_edit_options(task)):
        command = option(command)
    epilog = "\b\nExamples:\n" + "\n".join(f"  {line}" for line in task.examples)
    return click.command(name=task.name, context_settings=CONTEXT, epilog=epilog, help=task.summary)(command)


def _check_usage(
    inputs: tuple[str, ...], output: str, options: dict[str, Any], *, as_json: bool, dry_run: bool
) -> None:
    """The usage errors a run would meet only later (or never, with a closed stream), found now."""
    from ..batch import STDIO

    if options["model"] and options["weights"]:
        raise UsageError("give --model or --weights, not both")
    if as_json and output == STDIO and not dry_run:
        raise UsageError("--json prints the report on stdout, which -o - already uses for the image")
    if options["no_tile"] and options["tile"] is not None:
        raise UsageError("give --tile N or --no-tile, not both")
    if STDIO in inputs:
        need_stream("stdin", "'-' reads the image from stdin")
    if output == STDIO and not dry_run:
        need_stream("stdout", "-o - writes the image to stdout")
    if as_json or dry_run:
        need_stream("stdout", f"{'--dry-run' if dry_run else '--json'} prints on stdout")


def _rank_device(device: str, shard: str | None, spec: Any) -> str:
    """Under torchrun (sharded from the environment, LOCAL_RANK set), ``auto`` is one GPU per rank."""
    if device != "auto" or shard is not None or spec is None or "LOCAL_RANK" not in os.environ:
        return device
    local_rank = os.environ["LOCAL_RANK"]
    if not local_rank.strip().isdigit():
        raise UsageError(f"LOCAL_RANK={local_rank!r} is not a whole number >= 0")
    import torch

    if torch.cuda.is_available():
        return f"cuda:{int(local_rank) % torch.cuda.device_count()}"
    return device


def _run_edit(
    task: Task,
    *,
    inputs: tuple[str, ...],
    output: str,
    as_json: bool,
    quiet: bool,
    dry_run: bool = False,
    **given: Any,
) -> None:
    from .. import api
    from ..batch import STDIO

    _check_usage(inputs, output, given, as_json=as_json, dry_run=dry_run)
    spec = shard_spec(given["shard"], given["shard_count"])
    device = _rank_device(given["device"], given["shard"], spec)
    options: dict[str, Any] = dict(
        model=given["weights"] or given["model"],
        task=task.name,
        recursive=given["recursive"],
        mask=given.get("mask"),
        fmt=given["fmt"].lower(),
        quality=given["quality"],
        suffix=given["suffix"],
        overwrite=given["overwrite"],
        shard=spec,
        stdin=sys.stdin.buffer if STDIO in inputs else None,
        compare=given["compare"],
        precision=given["precision"],
        flip_average=given["flip_average"],
        strength=given.get("strength", 1.0),
        registry_files=registry_files(given["registry"]),
        hub=hub_options(given["offline"]),
    )
    if dry_run:
        plan = api.plan_edits(list(inputs), output, **options)
        print_plan(task.name, plan, as_json=as_json, quiet=quiet)
        return
    display = RunDisplay(task.name, quiet=quiet)
    try:
        report = api.edit_folder(
            list(inputs),
            output,
            on_plan=display.on_plan,
            on_entry=display.on_entry,
            on_progress=display.progress.model_progress,
            stdout=sys.stdout.buffer if output == STDIO else None,
            device=device,
            tile=0 if given["no_tile"] else given["tile"],
            batch_size=given["batch_size"],
            **options,
        )
    except KeyboardInterrupt as interrupt:
        display.interrupted(interrupt, as_json=as_json)
        raise
    finally:
        display.progress.stop()
    report.task = report.task or task.name  # also when nothing ran (no model was loaded to say it)
    finish(task.name, report, as_json=as_json, quiet=quiet)


def commands() -> list[click.Command]:
    """One command per PAN task (rerender has its own module: it adds --tag options)."""
    return [edit_command(task) for task in TASKS.values() if task.arch == "pan"]
