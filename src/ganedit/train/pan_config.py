"""The config of a PAN training run (`PANTrainConfig`, written to RUN_DIR/config.toml): its fields, the
task presets, the checks, and the entry points over the one loader (`ganedit.train.config`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ..archs.pan import PANGeneratorConfig
from ..errors import UsageError
from . import config as cfgload
from .data import DIRECTIONS, LAYOUTS, PAN_TASKS, DataOptions
from .generators import preset
from .losses import GAN_FORMS

__all__ = [
    "PAN_TASKS",
    "RESUME_MUTABLE",
    "TASK_DEFAULTS",
    "PANTrainConfig",
    "config_file_task",
    "config_to_toml",
    "load_config",
    "resume_config",
    "validate",
]

PRECISIONS = ("auto", "fp32", "bf16")


@dataclass(frozen=True, kw_only=True)
class PANTrainConfig:
    """Everything a PAN training run depends on. Written to RUN_DIR/config.toml (`ganedit.train.config`)."""

    TOML_HEADER: ClassVar[str] = (
        "# ganedit PAN training run (written by ganedit; `ganedit train pan --resume RUN_DIR`)"
    )

    task: str
    # folder of photos (pairs synthesised) or of pairs (input/ + target/, or A|B images); several folders of
    # one layout joined by os.pathsep (train.data.data_folders)
    data: str
    val: str | None = None  # validation folder; None: hold out val_fraction of data's files
    out: str  # the run folder
    seed: int = 0
    steps: int = 20000
    batch_size: int = 4  # per process
    crop: int = 96  # px; a multiple of the generator's 2**depth
    lr: float = 2e-4
    lr_decay_steps: int = 0  # the last N steps decay lr linearly to 0 (pix2pix's n_epochs_decay)
    beta1: float = 0.5
    beta2: float = 0.999
    lambdas: tuple[float, float, float, float] = (5.0, 1.5, 1.5, 1.0)
    margin: float = 3.0
    real_label: float = 0.9
    gan_form: str = "non_saturating"  # or "minimax": the paper's log(1 - D(T(x)))
    gan_weight: float = 1.0
    pixel_l1: float = 0.0
    pixel_l2: float = 0.0  # weight of mean (T(x) - y)^2 (logged: pixel_l1 stays mean |T(x) - y|)
    pixel_pool: int = 1  # pixel terms on pool x pool block means: anchor colour, leave detail to D's terms
    # derain with generator.residual_gate: weight of mean |strength - rain| (rain = 1 unless input == target),
    # which teaches the gate to close on dry pairs instead of the body learning to hold back
    gate_weight: float = 0.0
    # decay of an exponential moving average of T's weights (0: none); with one, the average is what the
    # samples show and what is exported: it holds the last ~1 / (1 - ema) steps, not the last batch's pull
    ema: float = 0.0
    ndf: int = 32  # D width; the paper's is 64 (4x the FLOPs)
    # D judges (input, output) pairs, pix2pix's conditional GAN, instead of the output alone as in PAN
    conditional: bool = False
    generator: dict[str, Any] = field(  # overrides of preset(task)
        default_factory=dict,
        metadata={
            "table": PANGeneratorConfig,
            "comment": "overrides of ganedit.train.generators.preset(task)",
        },
    )
    init: str | None = None  # fine-tune: start the generator from this checkpoint
    save_every: int = 500
    sample_every: int = 500  # also computes the validation PSNR
    log_every: int = 50
    keep_states: int = 2
    workers: int = 1  # data-loader processes (1 thread each)
    threads: int = 0  # torch intra-op threads per process; 0 = CPU cores / processes on this machine
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    precision: str = "auto"  # auto (bf16 on CUDA and on CPUs with native bf16) | fp32 | bf16
    # data (see ganedit.train.data)
    layout: str = "auto"  # auto | photos | pairs | side-by-side
    direction: str = "AtoB"  # side-by-side: which half is the input
    downscale: tuple[float, float] = (2.0, 4.0)
    paired_downscale: tuple[float, float] = (1.0, 1.0)
    flip: bool = True
    synth_scale: tuple[float, float] = (0.5, 1.5)
    mask_coverage: tuple[float, float] = (0.05, 0.5)
    mask_blobs: float = 0.0  # inpaint: probability that a hole shape is an object-shaped blob
    rain: str = "classic"  # derain: a synthesiser, mixed, all, or names joined by "+" (train.data.rain_mix)
    clean_fraction: float = 0.0  # derain: share of dry pairs (input = target)
    additive_fraction: float = 0.0  # derain: share of rainy pairs whose streaks are added, O = B + S
    stripe_fraction: float = 0.0  # derain: share of training crops given a striped surface (zebra, awning)
    grey_fraction: float = 0.0  # derain: share of pairs made black-and-white, rain included
    quarter_turn: float = 0.0  # photos layout: share of crops turned 90 degrees before the input is made
    val_fraction: float = 0.05
    val_samples: int = 8

    def data_options(self) -> DataOptions:
        return DataOptions(
            task=self.task,
            crop=self.crop,
            layout=self.layout,
            direction=self.direction,
            downscale=self.downscale,
            paired_downscale=self.paired_downscale,
            flip=self.flip,
            synth_scale=self.synth_scale,
            mask_coverage=self.mask_coverage,
            mask_blobs=self.mask_blobs,
            rain=self.rain,
            clean_fraction=self.clean_fraction,
            additive_fraction=self.additive_fraction,
            stripe_fraction=self.stripe_fraction,
            grey_fraction=self.grey_fraction,
            quarter_turn=self.quarter_turn,
            val_fraction=self.val_fraction,
            val_samples=self.val_samples,
        )

    def validate(self) -> None:
        """UsageError for settings that cannot work (`validate`)."""
        validate(self)

    def generator_config(self) -> PANGeneratorConfig:
        """The generator's shape: the task's preset with the ``generator`` overrides applied."""
        try:
            return PANGeneratorConfig(**{**dataclasses.asdict(preset(self.task)), **self.generator})
        except (TypeError, ValueError) as e:
            raise UsageError(f"bad generator setting: {e}") from None


# Task presets: the defaults that differ per task (below the config file in precedence).
TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    "derain": {"crop": 96},
    # 2**7 = 128: the inpainting U-Net's 7 levels need crops that are multiples of 128
    "inpaint": {"crop": 128},
    "sketch2photo": {"crop": 128},
    # CMP facades as pix2pix packs them: photo | label map, the label map (B, right) is the input
    "labels2photo": {"crop": 128, "layout": "side-by-side", "direction": "BtoA"},
}

NEW_RUN = "start a new run (optionally with init = its model.safetensors)"  # instead of changing one
# Fields a resumed run may change (the rest would change the run it continues).
RESUME_MUTABLE = frozenset(
    {
        "steps",
        "lr_decay_steps",
        "save_every",
        "sample_every",
        "log_every",
        "keep_states",
        "workers",
        "threads",
        "device",
        "data",
        "val",
        "out",
    }
)


# --------------------------------------------------------------------------------------------- config


def load_config(
    task: str, config_file: Path | None, overrides: Sequence[str] = (), **cli_values: Any
) -> PANTrainConfig:
    """Merge, in increasing precedence: the task's preset defaults < `config_file` < `cli_values`
    (options the CLI has dedicated flags for: data, out, steps, ...; None = not given) < ``--set``
    `overrides` (``KEY=VALUE``, dotted keys for the generator: ``generator.ngf=16``); see
    `ganedit.train.config.load`. Unknown keys anywhere raise UsageError naming the key and where it came from.
    """
    if task not in PAN_TASKS:
        raise UsageError(f"unknown PAN task {task!r}; PAN tasks: {', '.join(PAN_TASKS)}")
    defaults = {"task": task, **TASK_DEFAULTS[task]}
    return cfgload.load(
        PANTrainConfig, config_file, overrides, defaults=defaults, pinned={"task": task}, **cli_values
    )


def config_file_task(path: Path) -> str:
    """The ``task`` a config file names (for ``--config FILE`` without ``--task``)."""
    task = cfgload.file_value(path, "task")
    if not isinstance(task, str):
        raise UsageError(f"{path} names no task; give --task ({', '.join(PAN_TASKS)})")
    return task


def resume_config(run_dir: Path, overrides: Sequence[str] = (), **cli_values: Any) -> PANTrainConfig:
    """The config of the run in `run_dir` (its config.toml), with command-line values and ``--set``
    overrides applied: what ``ganedit train pan --resume RUN_DIR`` passes to ``train(..., resume=True)``.
    Only the fields in RESUME_MUTABLE (steps, intervals, workers, device, data paths) may differ."""
    return cfgload.resume(
        PANTrainConfig, run_dir, overrides, mutable=RESUME_MUTABLE, hint=NEW_RUN, **cli_values
    )


def validate(config: PANTrainConfig) -> None:
    """Reject settings that cannot work, with the setting named (UsageError)."""
    if config.task not in PAN_TASKS:
        raise UsageError(f"unknown PAN task {config.task!r}; PAN tasks: {', '.join(PAN_TASKS)}")
    positive = ("steps", "batch_size", "crop", "ndf", "log_every", "keep_states")
    for name in positive:
        if getattr(config, name) < 1:
            raise UsageError(f"{name} must be at least 1, got {getattr(config, name)}")
    for name in ("save_every", "sample_every", "workers", "threads", "val_samples", "lr_decay_steps"):
        if getattr(config, name) < 0:
            raise UsageError(f"{name} must be 0 or more, got {getattr(config, name)}")
    decays = (config.beta1, config.beta2, config.ema)  # Adam's and the moving average's
    if not (config.lr > 0 and all(0 <= decay < 1 for decay in decays)):
        raise UsageError("lr must be > 0 and beta1, beta2, ema in [0, 1)")
    pixels = (config.pixel_l1, config.pixel_l2)
    if any(lam < 0 for lam in config.lambdas) or min(config.margin, *pixels, config.gate_weight) < 0:
        raise UsageError("lambdas, margin, pixel_l1, pixel_l2 and gate_weight must be >= 0")
    if config.gan_weight == 0 and not any(config.lambdas) and not any(pixels):
        raise UsageError("nothing to train: gan_weight, lambdas, pixel_l1 and pixel_l2 are all 0")
    if config.pixel_pool < 1 or config.crop % config.pixel_pool:
        raise UsageError(
            f"pixel_pool must be at least 1 and divide crop {config.crop}, got {config.pixel_pool}"
        )
    if not 0 < config.real_label <= 1:
        raise UsageError(f"real_label must be in (0, 1], got {config.real_label}")
    choices = {"gan_form": GAN_FORMS, "precision": PRECISIONS, "layout": LAYOUTS, "direction": DIRECTIONS}
    for name, allowed in choices.items():
        value = getattr(config, name)
        if value not in allowed:
            raise UsageError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
    if config.init is None:
        _check_generator(config)
    if config.crop < 32:
        raise UsageError(
            f"crop must be at least 32 px (the discriminator halves it 5 times), got {config.crop}"
        )
    config.data_options()  # raises UsageError for bad data settings


def _check_generator(config: PANTrainConfig) -> None:
    """A new generator (not `init`) must fit the task's inputs and the crop."""
    gen = config.generator_config()
    if gen.takes_mask != (config.task == "inpaint"):
        raise UsageError(
            f"generator.in_channels={gen.in_channels}: {config.task} needs "
            + ("image + mask channels" if config.task == "inpaint" else "no mask channel")
        )
    multiple = 2**gen.depth
    if config.crop % multiple:
        raise UsageError(
            f"crop {config.crop} must be a multiple of {multiple} (the generator has "
            f"{gen.depth} stride-2 levels); e.g. crop={max(multiple, config.crop // multiple * multiple)}"
        )


def config_to_toml(config: PANTrainConfig) -> str:
    """The config as TOML that `load_config` / `resume_config` read back to an equal config."""
    return cfgload.to_toml(config)
