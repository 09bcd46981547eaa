"""Train PAN generators (de-raining, inpainting, sketch -> photo): config, loop, resume, export.

The objective is the paper's (see `ganedit.train.losses` and design.md §4): the GAN loss plus the
perceptual adversarial loss Σ λ_j P_j over the discriminator's hidden layers H1..H4, with D's hinge
[m - Σ λ_j P_j]^+; λ = (5, 1.5, 1.5, 1), m = 3, Adam(2e-4, β1 = 0.5), batch 4, real label 0.9.

A run lives in one folder (``out``)::

    RUN_DIR/config.toml          the complete config (so ``--resume RUN_DIR`` needs nothing else)
    RUN_DIR/state/step-*.safetensors   resumable state: models, optimizers, step, data position (no pickle)
    RUN_DIR/samples/step-*.png   input | output | target grids of the fixed validation samples
    RUN_DIR/log.jsonl            one JSON object per log interval / validation
    RUN_DIR/model.safetensors    the exported generator (ganedit.checkpoint format); with ``ema``, the
                                 moving average of its weights

Determinism: every training sample is a pure function of (seed, sample index) and step k uses the samples
``k * batch ...`` (`ganedit.train.data`), so a resumed run sees the same batches in the same order as an
uninterrupted one; with the models, optimizer moments and RNG state restored from the state file, CPU
runs resume bit for bit (tests/test_train_pan.py checks it). Each step's batch is hashed into a running
digest (``data_digest`` in the log), which proves it.

Distributed: under ``torchrun --nproc_per_node=N -m ganedit train pan ...`` the loop runs as
DistributedDataParallel (gloo on CPU, nccl on CUDA); ``batch_size`` is per process and rank r takes the
r-th shard of every global step's samples. Only rank 0 writes files.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..archs import build, config_to_dict
from ..archs.pan import PANGenerator, PANGeneratorConfig
from ..checkpoint import load_checkpoint, save_checkpoint
from ..errors import CheckpointError, UsageError
from ..io.atomic import write_atomic
from ..runtime.devices import resolve_precision, set_threads
from . import state as st
from .common import MODEL_NAME, Dist, TrainingRun, pick_device, requires_grad, scheduled_lr
from .config import CONFIG_NAME
from .data import TrainingData, open_training_data
from .discriminators import PANDiscriminator, PANDiscriminatorConfig
from .generators import grow
from .grid import write_grid
from .losses import (
    DiscriminatorLoss,
    GeneratorLoss,
    discriminator_loss,
    generator_loss,
    perceptual_discrepancies,
    pixel_loss,
    split_taps,
)
from .pan_config import (  # the config's names, importable from here as before
    NEW_RUN,
    PAN_TASKS,
    RESUME_MUTABLE,
    PANTrainConfig,
    config_file_task,
    config_to_toml,
    load_config,
    resume_config,
    validate,
)

__all__ = [
    "PAN_TASKS",
    "PANTrainConfig",
    "config_file_task",
    "config_to_toml",
    "export",
    "load_config",
    "resume_config",
    "scheduled_lr",
    "train",
]

# ---------------------------------------------------------------------------------------------- setup


def _psnr(a: Tensor, b: Tensor) -> Tensor:
    """Per-image PSNR in dB of N x C x H x W tensors in [-1, 1] (peak 1 on the [0, 1] scale)."""
    mse = ((a.float().clamp(-1, 1) - b.float().clamp(-1, 1)) / 2).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(1.0 / mse.clamp_min(1e-10))


_LOSS_NAMES = (
    "loss_d",
    "d_real",
    "d_fake",
    "hinge",
    "perceptual_d",
    "loss_g",
    "gan_g",
    "perceptual_g",
    "pixel_l1",
    "gate",
    "P1",
    "P2",
    "P3",
    "P4",
    "d_real_prob",
    "d_fake_prob",
)


def _judged(images: Tensor, cond: Tensor | None) -> Tensor:
    """What D sees: the images, or (conditional D) the images with their inputs as extra channels."""
    return images if cond is None else torch.cat([cond.to(images.dtype), images], dim=1)


# ----------------------------------------------------------------------------------------------- loop


class _Run(TrainingRun):
    """A PAN run: generator T and the discriminator D with its taps H1..H4, under DDP when distributed."""

    loss_names = _LOSS_NAMES
    fingerprint_keys = ("index", "input", "target", "mask")
    config: PANTrainConfig

    def __init__(
        self, config: PANTrainConfig, dist: Dist, resume: bool, on_log: Callable[[dict], None] | None
    ) -> None:
        super().__init__(config, dist, on_log)
        self.device = pick_device(config.device, dist)
        dist.init(self.device)
        self.threads = set_threads(config.threads, device=self.device, processes=dist.local_world_size)
        self.amp = resolve_precision(config.precision, self.device, training=True)[1]
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed crop size: pick the fastest kernels once
        self._find_state(resume, PANTrainConfig, RESUME_MUTABLE, NEW_RUN)
        if dist.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            write_atomic(self.run_dir / CONFIG_NAME, config_to_toml(config).encode())

        # Models: seeded so that every rank (and every rerun) starts from the same weights.
        torch.manual_seed(config.seed)
        self.generator: PANGenerator = self._first_generator(config)
        if config.crop % self.generator.pad_multiple:
            raise UsageError(f"crop {config.crop} must be a multiple of {self.generator.pad_multiple}")
        d_channels = self.generator.out_channels + (self.generator.in_channels if config.conditional else 0)
        self.discriminator = PANDiscriminator(PANDiscriminatorConfig(in_channels=d_channels, ndf=config.ndf))
        self.generator.to(self.device)
        self.discriminator.to(self.device)
        # Polyak averaging: fine-tuning runs of the de-raining net ended wherever the last few hundred
        # batches pulled them (towards dry photos or towards rain, run to run), and the average of two
        # such ends was about as good as the better one on the public sets and between them on dry photos
        # (docs/models/pan-derain.md, soup-a). The average of the trajectory is that, built in.
        self.generator_ema: PANGenerator | None = None
        if config.ema:
            self.generator_ema = copy.deepcopy(self.generator).eval()
            requires_grad(self.generator_ema, False)
        betas = (config.beta1, config.beta2)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=config.lr, betas=betas)
        self._strengths = self._watch_gate()
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=config.lr, betas=betas)

        self.saved_description: dict[str, Any] = {}
        if self.state_file is not None:
            self.saved_description = dict(self._restore(self.state_file).get("data", {}))
        # DDP after restoring (it broadcasts rank 0's weights at construction)
        self.g_train: nn.Module = self.generator
        self.d_train: nn.Module = self.discriminator
        if dist.active:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.g_train = DDP(self.generator, device_ids=ids)
            self.d_train = DDP(self.discriminator, device_ids=ids)

        self.data: TrainingData = open_training_data(
            config.data,
            Path(config.val) if config.val else None,
            config.data_options(),
            seed=config.seed,
            threads=min(4, self.threads + 1),
        )
        if resume and self.saved_description.get("digest") not in (None, self.data.description["digest"]):
            raise UsageError(
                f"the training data in {config.data} differs from the data the run in {self.run_dir} "
                "started with (other files or sizes); the batches could not be the same"
            )
        self.val_batch = self.data.val_batch() if dist.main else None

    def _first_generator(self, config: PANTrainConfig) -> PANGenerator:
        """T as the run starts: the resumed state's architecture, the `init` model (grown as asked) or new."""
        if self.state_file is not None:
            # A resumed run rebuilds the generator its state was saved with (then `_restore` loads the
            # weights): `init` only seeds a new run, so a moved or reshipped init file cannot change it.
            saved = build("pan", st.read_state_meta(self.state_file)["generator_config"])
            assert isinstance(saved, PANGenerator)
            return saved.train()
        elif config.init:
            gen, info = load_checkpoint(Path(config.init), task=config.task, arch="pan")
            assert isinstance(gen, PANGenerator)
            if config.generator:
                # Settings other than the init model's may only add blocks that start as the identity.
                try:
                    wanted = PANGeneratorConfig(**{**info.arch_config, **config.generator})
                    if wanted != gen.config:
                        gen = grow(gen, wanted)
                except (TypeError, ValueError) as e:
                    raise UsageError(f"init {config.init}: {e}") from None
            return gen.train()
        else:
            return PANGenerator(config.generator_config())

    # ------------------------------------------------------------------------------------- state

    def networks(self) -> dict[str, nn.Module]:
        ema = {} if self.generator_ema is None else {"G_ema": self.generator_ema}
        return {"G": self.generator, "D": self.discriminator, **ema}

    def state_meta(self) -> dict[str, Any]:
        return {
            "task": self.config.task,
            "generator_config": config_to_dict(self.generator.config),
            "discriminator_config": dataclasses.asdict(self.discriminator.config),
            "world_size": self.dist.world_size,
        }

    def export_model(self, path: Path) -> Path:
        return export(self.run_dir, path)

    def start_details(self) -> dict[str, Any]:
        return {
            "precision": str(self.amp).replace("torch.", "") if self.amp else "fp32",
            "threads": self.threads,
            "world_size": self.dist.world_size,
            **({"discriminator": "idle (pixel loss only)"} if self.pixel_only else {}),
        }

    @property
    def pixel_only(self) -> bool:
        """No adversarial and no perceptual weight: T's loss does not involve D, so D is not run at all
        (a pixel-loss phase of the de-raining net on 256 px crops: 1.35 instead of 0.34 steps/s on one CPU
        thread; D's loss fields are logged as 0)."""
        return self.config.gan_weight == 0 and not any(self.config.lambdas)

    # ------------------------------------------------------------------------------------- step

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.amp is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp)

    def train_step(self, batch: Mapping[str, Tensor]) -> Tensor:
        """One D update then one T update on the same pair (then the moving average's, with ``ema``);
        returns the losses as one tensor."""
        x = batch["input"].to(self.device, non_blocking=True)
        y = batch["target"].to(self.device, non_blocking=True)
        mask = batch["mask"].to(self.device, non_blocking=True) if "mask" in batch else None

        self._strengths.clear()
        with self._autocast():
            fake = self.g_train(x, mask)
        gate = self._gate_loss(x, y)

        if self.pixel_only:
            losses = self._pixel_step(fake, y, gate)
        else:
            losses = self._adversarial_step(x, y, mask, fake, gate)
        self._update_ema()
        return losses

    def _adversarial_step(
        self, x: Tensor, y: Tensor, mask: Tensor | None, fake: Tensor, gate: Tensor
    ) -> Tensor:
        """D's update then T's on the GAN, perceptual and pixel losses; returns the losses as one tensor."""
        n = x.shape[0]
        # A conditional D sees the input beside each image (with the mask channel for inpainting, as T does).
        cond = None
        if self.config.conditional:
            cond = torch.cat([x, mask], dim=1) if mask is not None else x
            cond = torch.cat([cond, cond])
        d = self._discriminator_step(y, fake, cond)
        g, discrepancies, logits = self._generator_step(y, fake, cond, gate)
        with torch.no_grad():
            probs = torch.sigmoid(logits.float().detach())
            return torch.stack(
                [
                    d.total.detach(),
                    d.real.detach(),
                    d.fake.detach(),
                    d.hinge.detach(),
                    d.perceptual.detach(),
                    g.total.detach(),
                    g.gan.detach(),
                    g.perceptual.detach(),
                    g.pixel.detach(),
                    gate.detach().to(g.total.dtype),
                    *(p.detach() for p in discrepancies),
                    probs[:n].mean(),
                    probs[n:].mean(),
                ]
            ).float()

    @torch.no_grad()
    def _update_ema(self) -> None:
        """Move the average towards T after its update: weights and batch-norm statistics alike (the
        average runs with its own statistics); integer counters are copied."""
        if self.generator_ema is None:
            return
        weight = 1.0 - self.config.ema
        pairs = zip(
            self.generator_ema.state_dict().values(), self.generator.state_dict().values(), strict=True
        )
        for average, current in pairs:
            if average.is_floating_point():
                average.lerp_(current, weight)
            else:
                average.copy_(current)

    def _watch_gate(self) -> list[Tensor]:
        """With ``gate_weight``: a list that receives the residual gate's strengths at every forward."""
        strengths: list[Tensor] = []
        if self.config.gate_weight:
            gate = getattr(self.generator.net, "gate", None)
            if gate is None:
                raise UsageError("gate_weight trains the residual gate: set generator.residual_gate = true")
            gate.register_forward_hook(lambda _module, _inputs, out: strengths.append(out))
        return strengths

    def _gate_loss(self, x: Tensor, y: Tensor) -> Tensor:
        """``gate_weight`` x mean |strength - rain| over the batch, rain = 0 for a dry pair (input == target,
        as `clean_fraction` makes them) and 1 otherwise; 0 without a gate loss."""
        if not self._strengths:
            return torch.zeros((), device=self.device)
        strength = self._strengths[-1].float().flatten()
        rain = (x != y).flatten(1).any(dim=1).float()
        return self.config.gate_weight * (strength - rain).abs().mean()

    def _pixel_step(self, fake: Tensor, y: Tensor, gate: Tensor) -> Tensor:
        """T's update on the pixel loss (and the gate's) alone (`pixel_only`); D's loss fields stay 0."""
        cfg = self.config
        total, pixel = pixel_loss(fake, y, pixel_l1=cfg.pixel_l1, pixel_l2=cfg.pixel_l2, pool=cfg.pixel_pool)
        self.opt_g.zero_grad(set_to_none=True)
        (total + gate).backward()
        self.opt_g.step()
        losses = torch.zeros(len(_LOSS_NAMES), device=self.device)
        losses[_LOSS_NAMES.index("loss_g")] = total.detach()
        losses[_LOSS_NAMES.index("pixel_l1")] = pixel.detach()
        losses[_LOSS_NAMES.index("gate")] = gate.detach()
        return losses

    def _discriminator_step(self, y: Tensor, fake: Tensor, cond: Tensor | None) -> DiscriminatorLoss:
        """D's update: real vs generated in one batch (shared batch-norm statistics: the taps compare the
        two in one feature space); T(x) detached, D's loss does not train T."""
        cfg, n = self.config, y.shape[0]
        requires_grad(self.discriminator, True)
        with self._autocast():
            logits, taps = self.d_train(_judged(torch.cat([y, fake.detach()]), cond))
        real_taps, fake_taps = split_taps(taps, n)
        d = discriminator_loss(
            logits[:n],
            logits[n:],
            perceptual_discrepancies(real_taps, fake_taps),
            lambdas=cfg.lambdas,
            margin=cfg.margin,
            real_label=cfg.real_label,
        )
        self.opt_d.zero_grad(set_to_none=True)
        d.total.backward()
        self.opt_d.step()
        return d

    def _generator_step(
        self, y: Tensor, fake: Tensor, cond: Tensor | None, gate: Tensor
    ) -> tuple[GeneratorLoss, list[Tensor], Tensor]:
        """T's update through the updated D, whose parameters are frozen (no weight gradients to compute)
        but whose hidden layers stay connected to T(x): the perceptual gradient reaches T. The plain
        module, not the DDP wrapper: D's parameters get no gradient here, which DDP's reducer would wait
        for. Returns T's losses, the discrepancies P1..P4 and D's logits on (y, T(x))."""
        cfg, n = self.config, y.shape[0]
        requires_grad(self.discriminator, False)
        with self._autocast():
            logits, taps = self.discriminator(_judged(torch.cat([y, fake]), cond))
        real_taps, fake_taps = split_taps(taps, n)
        discrepancies = perceptual_discrepancies([t.detach() for t in real_taps], fake_taps)
        g = generator_loss(
            logits[n:],
            discrepancies,
            lambdas=cfg.lambdas,
            fake=fake,
            target=y,
            pixel_l1=cfg.pixel_l1,
            pixel_l2=cfg.pixel_l2,
            gan_weight=cfg.gan_weight,
            form=cfg.gan_form,
            pixel_pool=cfg.pixel_pool,
        )
        self.opt_g.zero_grad(set_to_none=True)
        (g.total + gate).backward()
        self.opt_g.step()
        requires_grad(self.discriminator, True)
        return g, discrepancies, logits

    # ------------------------------------------------------------------------------- validation

    @torch.no_grad()
    def sample(self) -> dict[str, Any] | None:
        """PSNR of T(x) and of x against y on the fixed validation samples; writes the sample grid."""
        if self.val_batch is None:
            return None
        gen = self.generator if self.generator_ema is None else self.generator_ema
        was_training = gen.training
        gen.eval()
        try:
            x, y = self.val_batch["input"], self.val_batch["target"]
            mask = self.val_batch.get("mask")
            outs = []
            for i in range(0, x.shape[0], self.config.batch_size):
                xb = x[i : i + self.config.batch_size].to(self.device)
                mb = mask[i : i + self.config.batch_size].to(self.device) if mask is not None else None
                with self._autocast():
                    outs.append(gen(xb, mb).float().cpu())
            out = torch.cat(outs).clamp(-1, 1)
        finally:
            gen.train(was_training)
        record = {
            "event": "val",
            "step": self.step,
            "val_psnr": round(float(_psnr(out, y).mean()), 4),
            "val_psnr_input": round(float(_psnr(x if mask is None else x * (1 - mask), y).mean()), 4),
            "val_l1": round(float((out - y).abs().mean() / 2), 6),
        }
        rows = min(4, x.shape[0])
        grid = write_grid(
            self.run_dir / "samples" / f"step-{self.step:08d}.png",
            x[:rows],
            out[:rows],
            y[:rows],
            None if mask is None else mask[:rows],
        )
        record["grid"] = str(grid)
        self._emit(record)
        return record

    # -------------------------------------------------------------------------------------- run

    def batches(self) -> Iterator[dict[str, Tensor]]:
        """A data-loader iterator from `step` on: rank r's shard of every step's samples."""
        loader = self.data.loader(
            self.config.batch_size,
            start_step=self.step,
            rank=self.dist.rank,
            world_size=self.dist.world_size,
            workers=self.config.workers,
            pin=self.device.type == "cuda",
        )
        return iter(loader)


def train(
    config: PANTrainConfig, *, resume: bool = False, on_log: Callable[[dict], None] | None = None
) -> Path:
    """Train (or with `resume`, continue) the PAN run in ``config.out``; returns RUN_DIR/model.safetensors.

    `on_log` receives dicts with an ``event`` key: ``start``, ``log`` (mean losses over the last
    ``log_every`` steps, steps/s, the batch fingerprint and running ``data_digest``), ``val`` (PSNR of
    output and input against the target, grid path), ``save`` (state path), ``done`` (model path).
    Ctrl-C or SIGTERM finishes the current step, saves the state and the model, and raises
    KeyboardInterrupt.
    """
    validate(config)
    dist = Dist.from_env()
    try:
        return _Run(config, dist, resume, on_log).run()
    finally:
        dist.close()


def export(run_dir: Path, out: Path | None = None) -> Path:
    """Write the generator of `run_dir`'s latest state (its moving average, with ``ema``) as a ganedit
    checkpoint (default RUN_DIR/model.safetensors) with the training steps, config and data description
    in its metadata."""
    run_dir = Path(run_dir)
    path = st.latest_state(run_dir / "state")
    if path is None:
        raise UsageError(f"{run_dir} has no saved training state to export (no state/step-*.safetensors)")
    tensors, meta = st.load_state(path)
    # with `ema`, the state holds the moving average beside T: it is the model
    prefix = "G_ema." if any(k.startswith("G_ema.") for k in tensors) else "G."
    try:
        generator = PANGenerator(PANGeneratorConfig(**meta["generator_config"]))
        generator.load_state_dict(
            {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}, strict=True
        )
    except (TypeError, ValueError, RuntimeError, KeyError) as e:
        raise CheckpointError(f"{path}: cannot rebuild the generator ({e})") from None
    out = Path(out) if out is not None else run_dir / MODEL_NAME
    config = meta.get("config", {})
    extra = {
        "ganedit.train.framework": "PAN (Wang et al. 2018): GAN + perceptual adversarial loss, D taps H1..H4",
        "ganedit.train.steps": str(meta["step"]),
        "ganedit.train.config": json.dumps(config, sort_keys=True),
        "ganedit.train.data": json.dumps(meta.get("data", {}), sort_keys=True),
        "ganedit.train.data_digest": str(meta.get("data_digest", "")),
    }
    save_checkpoint(out, generator, task=meta["task"], extra=extra)
    return out
