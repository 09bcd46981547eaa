"""Options and option parsing shared by several commands.

Cheap at import (click only): ``ganedit --help`` builds every command's options without torch.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..errors import GaneditError

if TYPE_CHECKING:
    from ..hub import HubOptions

Decorator = Callable[[Any], Any]

PRECISIONS = ("auto", "fp32", "fp16", "bf16")
FORMATS = ("keep", "png", "jpg", "jpeg", "webp", "tiff", "tif")


def apply(options: Sequence[Decorator]) -> Decorator:
    """One decorator applying ``options`` so that --help lists them in the order given."""

    def decorate(command: Any) -> Any:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def hub_options(offline: bool) -> HubOptions:
    """Hub settings from the environment, read now rather than when huggingface-hub was imported."""
    from ..hub import HubOptions

    # huggingface-hub otherwise pings its default host (not HF_ENDPOINT) once a day from every download
    # call, even for users of a private mirror. A CLI of ours does not phone home unasked.
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

    cache = os.environ.get("HF_HUB_CACHE")
    return HubOptions(
        cache_dir=Path(cache) if cache else None,
        endpoint=os.environ.get("HF_ENDPOINT") or None,
        offline=True if offline else None,
    )


def registry_files(registry: tuple[str, ...]) -> list[Path]:
    return [Path(r) for r in registry]


def registered_names(task: str) -> str:
    """For --help: the models weights.toml offers for a task (cheap: a TOML parse, no torch)."""
    try:
        from ..registry import load_registry

        names = [s.name + (" (default)" if s.default else "") for s in load_registry().for_task(task)]
    except GaneditError:
        return "unreadable registry"
    return ", ".join(names) or "none registered yet"


registry_option = click.option(
    "--registry",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Extra weights registry file(s) (TOML, like weights.toml). Also read from $GANEDIT_REGISTRY.",
)

offline_option = click.option(
    "--offline",
    is_flag=True,
    help="Never touch the network (like HF_HUB_OFFLINE=1): bundled or cached weights only.",
)

flip_average_option = click.option(
    "--flip-average/--no-flip-average",
    default=None,
    help="Also run each image's mirror image and average the two results: a little cleaner, twice "
    "the model time. Default: the model's choice (on, except for models trained to paint texture, "
    "which averaging would soften; `ganedit models show` says).",
)

weights_option = click.option(
    "--weights",
    type=click.Path(exists=True, dir_okay=False),
    help="A local .safetensors checkpoint instead of a registered model.",
)

device_option = click.option(
    "--device",
    default="auto",
    show_default=True,
    help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps.",
)

overwrite_option = click.option(
    "--overwrite", is_flag=True, help="Replace outputs that exist (default: skip them)."
)

json_option = click.option("--json", "as_json", is_flag=True, help="Print a JSON report on stdout.")

recursive_option = click.option(
    "-r", "--recursive", is_flag=True, help="Search folders recursively; mirror the tree under -o."
)

dry_run_option = click.option(
    "--dry-run",
    is_flag=True,
    help="Print what would be written, skipped or would fail, and exit; loads no model, writes "
    "nothing (with --json: the plan as JSON).",
)

shard_options = [
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
]


def model_option(task: str) -> Decorator:
    """``--model NAME``, its help naming the models registered for ``task``."""
    return click.option(
        "--model", "model", metavar="NAME", help=f"Registered model to use. [{registered_names(task)}]"
    )


def refine_option(lead: str) -> Decorator:
    """``--refine-steps`` of rerender and eval (default None: ganedit.runtime.rerenderer.REFINE_STEPS,
    which the help states without importing the module)."""
    return click.option(
        "--refine-steps",
        type=click.IntRange(min=0),
        default=None,
        help=f"{lead} refining each input's identity code so the model redraws the input before "
        "turning it (test-time inversion); 0 = R's code as it is (the paper).  [default: 5]",
    )


def shard_spec(shard: str | None, shard_count: int | None) -> Any:
    """The `batch.Shard` this process takes: ``--shard`` wins over the environment (a scheduler's index,
    torchrun's RANK), which is then not read; None for the whole run."""
    from ..batch import Shard

    return Shard.parse(shard, count=shard_count) if shard else Shard.from_env(count=shard_count)
