"""``ganedit train``: train PAN and TDGAN models, export checkpoints, render the chairs dataset.

Training code lives in ganedit.train and is imported inside the commands (nothing at import time)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ..errors import UsageError
from ..tasks import TASKS
from .boundary import CONTEXT, Group
from .options import apply
from .progress import training_logger


@click.group(cls=Group, context_settings=CONTEXT)
def train() -> None:
    """Train models (PAN) or fine-tune them on your own photos.

    Training code lives in ganedit.train; nothing in the editing commands imports it.
    """


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
    return apply(options)


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
    on_log, stop = training_logger(quiet)
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
    multiple=True,
    help="Clean photos (pairs synthesised on the fly), or a paired folder (input/ + target/, or A|B images). "
    "Repeat it to train on several folders of one layout.",
)
@click.option("--val", type=click.Path(exists=True, file_okay=False), help="Held-out photos for validation.")
@_train_run_options(
    "auto, cpu, cuda, cuda:N (under torchrun: one GPU per rank).",
    click.option("--seed", type=int, help="Seed for weights, data order and synthesis."),
)
def train_pan(
    task: str | None,
    data: tuple[str, ...],
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
      ganedit train pan --task derain --data data/photos/train --data data/facades --out runs/d2
      ganedit train pan --config configs/pan-derain.toml --out runs/derain --set batch_size=8
      ganedit train pan --resume runs/derain                  # continue after an interruption
      torchrun --nproc_per_node=4 -m ganedit train pan --task derain --data photos/ --out runs/d
      ganedit derain rainy/ -o clean/ --weights runs/derain/model.safetensors
    """
    from ..train import pan as pan_training

    folders = os.pathsep.join(data) if data else None  # the config's one string (train.data.data_folders)

    def run(on_log: Callable[[dict[str, Any]], None]) -> Path:
        if resume_dir is not None:
            # --data / --val on a resume point at moved folders; the data digest still has to match
            moved = {"data": folders, "val": val, "steps": steps, "device": device}
            config = pan_training.resume_config(
                Path(resume_dir), overrides, **{k: v for k, v in moved.items() if v is not None}
            )
            return pan_training.train(config, resume=True, on_log=on_log)
        given = {"data": folders, "val": val, "out": out, "steps": steps, "seed": seed, "device": device}
        values = {k: v for k, v in given.items() if v is not None}
        name = task or pan_training.config_file_task(Path(config_file))  # type: ignore[arg-type]
        config = pan_training.load_config(
            name, Path(config_file) if config_file else None, overrides, **values
        )
        return pan_training.train(config, resume=False, on_log=on_log)

    _run_training(
        quiet, resume_dir, config_file, {"task": task, "data": data[0] if data else None, "out": out}, run
    )


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
    from ..train import tdgan as tdgan_training

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
    from ..train import pan as pan_training
    from ..train import tdgan as tdgan_training
    from ..train.config import CONFIG_NAME, read_toml

    run = Path(run_dir)
    try:
        config = read_toml(run / CONFIG_NAME)
    except UsageError as e:
        raise UsageError(f"{run} is not a training run folder ({e})") from None
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

    from ..train import chairs

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
