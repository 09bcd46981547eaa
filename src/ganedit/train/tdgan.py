"""Train TDGAN re-rendering models on a tagged image set (``ganedit train render-chairs``): config, loop,
resume, export.

The objective follows the paper (Wang et al., IJCAI 2017; design.md §5). Each step takes a batch of pairs
(x_a, x_b): two images of the SAME training identity with (when possible) different tags t_a, t_b. With
R's codes ``id_a, c_a = R(x_a)``, ``id_b, c_b = R(x_b)`` and the tag-mapped codes ``g(t)``:

- f1/f2, tag-code consistency (``w_consistency``): ``|c - g(t)|`` (L1, or L2 with
  ``consistency_loss = "l2"``; mean over code entries, tag types and x_a, x_b), tagged images only. It
  ties R's tag codes and g's codes to one space, which is what lets g(target tags) stand in for R's
  codes at re-rendering time.
- f3, rendering, L1 in pixel space ([-1, 1] scale):
  ``w_reconstruction``  |G(id_a, g(t_a)) - x_a|   (tagged only: g's codes must render the image);
  ``w_rerender``        |G(id_a, g(t_b)) - x_b|   (the task itself: same object, other tags); for untagged
                        pairs R's codes of x_b stand in for g(t_b), so the pair still teaches G to take
                        the pose from the tag codes and the object from the identity code;
  ``w_code_reconstruction`` |G(id_a, c_a) - x_a| (R's own codes, every image: an autoencoder path).
- identity consistency (``w_identity``): the within-pair distance of id_a, id_b divided by the batch's
  variance of identity codes. Same object, so the same code; the normalisation makes collapsing the codes
  to a point useless (it would raise the ratio), which a plain distance would reward.
- f4, adversarial (``w_adversarial``): D sees real (x_a, x_b) against the re-renders and the
  R-code reconstructions (non-saturating BCE); R, g and G are trained to fool it.

Semi-supervised (``tag_fraction < 1``): a seeded fraction of the training identities keep their tags;
the others use only R's codes and the reconstruction / re-rendering (with R's codes) / adversarial terms.

Each step: D is updated on the detached outputs, then R, g and G together (one Adam) through the updated
D, whose weights are frozen for that pass.

A run lives in one folder (``out``)::

    RUN_DIR/config.toml                 the complete config (``--resume RUN_DIR`` needs nothing else)
    RUN_DIR/state/step-*.safetensors    resumable state: R, g, G, D, both optimizers, step, RNG (no pickle)
    RUN_DIR/samples/step-*.png          per fixed eval identity: input | re-renders at target azimuths,
                                        and below it the genuine images at those tags where they exist
    RUN_DIR/log.jsonl                   one JSON object per log interval / sample
    RUN_DIR/model.safetensors           the exported TDGAN (R + g + G, task "rerender")

Determinism: step k's pairs are a pure function of (seed, k) (`TaggedPairs.batch`), read in the main
process, so a resumed run sees the same batches as an uninterrupted one; with models, optimizer moments and
RNG state restored, CPU runs resume bit for bit (tests/test_train_tdgan.py checks it). Single process
(no DDP): the networks are small.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from PIL import Image
from torch import Tensor, nn
from torch.nn import functional as F

from ..archs import config_to_dict
from ..archs.tdgan import TDGAN, TDGANConfig
from ..checkpoint import load_checkpoint, save_checkpoint
from ..errors import CheckpointError, UsageError
from ..io.atomic import write_atomic
from ..runtime.devices import set_threads
from . import config as cfgload
from . import state as st
from .common import MODEL_NAME, Dist, TrainingRun, pick_device, requires_grad
from .config import CONFIG_NAME
from .discriminators import Discriminator
from .tdgan_data import TaggedPairs

__all__ = [
    "TDGANTrainConfig",
    "TaggedPairs",
    "config_to_toml",
    "export",
    "load_config",
    "resume_config",
    "train",
]

CONSISTENCY_LOSSES = ("l1", "l2")


@dataclass(frozen=True, kw_only=True)
class TDGANTrainConfig:
    """Everything a TDGAN training run depends on. Written to RUN_DIR/config.toml (`ganedit.train.config`)."""

    TOML_HEADER: ClassVar[str] = (
        "# ganedit TDGAN training run (written by ganedit; `ganedit train tdgan --resume RUN_DIR`)"
    )

    data: str  # a tagged image set: DATA/tags.json + DATA/<size>/<file> (ganedit train render-chairs)
    out: str  # the run folder
    size: int = 64  # which rendered size to train on (a power of two >= 16)
    tags: tuple[str, ...] = field(  # tag types modelled (tags.json vocabulary)
        default=("azimuth", "elevation", "light"),
        metadata={"expected": 'a list of tag names (e.g. ["azimuth", "light"])'},
    )
    seed: int = 0
    steps: int = 20000
    batch_size: int = 16  # pairs per step (2 x batch_size images)
    lr: float = 2e-4
    lr_decay_steps: int = 0  # the last N steps decay lr linearly to 0 (pix2pix's n_epochs_decay)
    beta1: float = 0.5
    beta2: float = 0.999
    consistency_loss: str = "l1"  # "l1" | "l2": f1/f2 between R's tag codes and g(tags)
    w_consistency: float = 1.0
    w_reconstruction: float = 1.0  # |G(id_a, g(t_a)) - x_a|
    w_rerender: float = 1.0  # |G(id_a, g(t_b)) - x_b|
    w_code_reconstruction: float = 1.0  # |G(id_a, c_a) - x_a|, R's own tag codes
    w_identity: float = 0.1  # id_a ~ id_b, relative to the batch's identity-code variance
    w_adversarial: float = 0.01  # the pixel L1 terms lead (as pix2pix's lambda = 100 vs 1)
    identity_dim: int = 128
    tag_dim: int = 16
    ngf: int = 32
    ndf: int = 32
    tag_fraction: float = 1.0  # < 1: semi-supervised, that fraction of training identities keep their tags
    init: str = ""  # fine-tune: start R, g and G from this rerender checkpoint ("" = from scratch)
    save_every: int = 500
    sample_every: int = 500
    log_every: int = 50
    keep_states: int = 2
    sample_identities: int = 4  # rows of the sample grids (fixed eval-split identities)
    sample_targets: int = 6  # target azimuths per row
    threads: int = 0  # torch intra-op threads; 0 = all CPU cores
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps

    def validate(self) -> None:
        """UsageError for settings that cannot work (`validate`)."""
        validate(self)


# Fields a resumed run may change (the rest would change the run it continues).
RESUME_MUTABLE = frozenset(
    {
        "steps",
        "lr_decay_steps",
        "save_every",
        "sample_every",
        "log_every",
        "keep_states",
        "threads",
        "device",
        "data",
        "out",
    }
)


# --------------------------------------------------------------------------------------------- config


def load_config(
    config_file: Path | None, overrides: Sequence[str] = (), **cli_values: Any
) -> TDGANTrainConfig:
    """Merge, in increasing precedence: the defaults < `config_file` (TOML) < `cli_values` (options with
    dedicated CLI flags: data, out, steps, ...; None = not given) < ``--set KEY=VALUE`` `overrides`
    (`ganedit.train.config.load`). Unknown keys anywhere raise UsageError naming the key and where it
    came from."""
    return cfgload.load(TDGANTrainConfig, config_file, overrides, **cli_values)


def resume_config(run_dir: Path, overrides: Sequence[str] = (), **cli_values: Any) -> TDGANTrainConfig:
    """The config of the run in `run_dir` (its config.toml) with command-line values and ``--set``
    overrides applied: what ``--resume RUN_DIR`` passes to ``train(..., resume=True)``. Only the fields
    in RESUME_MUTABLE may differ from the saved ones."""
    return cfgload.resume(TDGANTrainConfig, run_dir, overrides, mutable=RESUME_MUTABLE, **cli_values)


def validate(config: TDGANTrainConfig) -> None:
    """Reject settings that cannot work, with the setting named (UsageError)."""
    for name in ("steps", "batch_size", "identity_dim", "tag_dim", "ngf", "ndf", "log_every", "keep_states"):
        if getattr(config, name) < 1:
            raise UsageError(f"{name} must be at least 1, got {getattr(config, name)}")
    for name in (
        "save_every",
        "sample_every",
        "threads",
        "sample_identities",
        "sample_targets",
        "lr_decay_steps",
    ):
        if getattr(config, name) < 0:
            raise UsageError(f"{name} must be 0 or more, got {getattr(config, name)}")
    if config.size < 16 or config.size & (config.size - 1):
        raise UsageError(f"size must be a power of two >= 16, got {config.size}")
    if not config.tags or len(set(config.tags)) != len(config.tags):
        raise UsageError(f"tags must name at least one tag type, each once, got {list(config.tags)}")
    if not (config.lr > 0 and 0 <= config.beta1 < 1 and 0 <= config.beta2 < 1):
        raise UsageError("lr must be > 0 and beta1, beta2 in [0, 1)")
    weights = [f.name for f in dataclasses.fields(config) if f.name.startswith("w_")]
    for name in weights:
        value = getattr(config, name)
        if not (math.isfinite(value) and value >= 0):
            raise UsageError(f"{name} must be a finite number >= 0, got {value}")
    if not 0 < config.tag_fraction <= 1:
        raise UsageError(f"tag_fraction must be in (0, 1], got {config.tag_fraction}")
    if config.consistency_loss not in CONSISTENCY_LOSSES:
        raise UsageError(
            f"consistency_loss must be one of {', '.join(CONSISTENCY_LOSSES)}, "
            f"not {config.consistency_loss!r}"
        )


def config_to_toml(config: TDGANTrainConfig) -> str:
    """The config as TOML that `load_config` / `resume_config` read back to an equal config."""
    return cfgload.to_toml(config)


# ----------------------------------------------------------------------------------------------- data


# ----------------------------------------------------------------------------------------------- loop

_LOSS_NAMES = (
    "loss_d",
    "loss_g",
    "consistency",
    "reconstruction",
    "rerender",
    "code_reconstruction",
    "identity",
    "adversarial",
    "d_real_prob",
    "d_fake_prob",
)


def _masked_mean(per_image: Tensor, mask: Tensor) -> Tensor:
    return (per_image * mask).sum() / mask.sum().clamp_min(1)


def init_model(path: Path, wanted: TDGANConfig) -> TDGAN:
    """R, g and G of a rerender checkpoint, to fine-tune (on more identities, say: `init`). Its
    architecture and tag vocabulary must be the run's; the discriminator starts fresh (none is shipped)."""
    model, _ = load_checkpoint(path, task="rerender", arch="tdgan")
    assert isinstance(model, TDGAN)
    if model.config != wanted:
        differing = [
            f.name
            for f in dataclasses.fields(wanted)
            if getattr(model.config, f.name) != getattr(wanted, f.name)
        ]
        raise UsageError(
            f"init {path}: its {', '.join(differing)} differ from this run's (data {wanted.image_size} px, "
            "tags of tags.json, identity_dim, tag_dim, ngf, ndf); fine-tuning keeps the architecture"
        )
    return model.train()


def _l1(a: Tensor, b: Tensor) -> Tensor:
    """Per-image mean absolute difference."""
    return (a - b).abs().flatten(1).mean(1)


def _generator_terms(
    consistency_loss: str,
    codes: tuple[list[Tensor], list[Tensor]],
    mapped: tuple[list[Tensor], list[Tensor]],
    tagged: Tensor,
    real: tuple[Tensor, Tensor],
    outputs: tuple[Tensor, Tensor, Tensor],
    identity: Tensor,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """The non-adversarial terms of R, g and G's loss (module docstring): tag-code consistency,
    reconstruction with g's codes, re-rendering, reconstruction with R's codes, identity consistency."""
    (c_a, c_b), (g_a, g_b), (x_a, x_b) = codes, mapped, real
    rec_g, rerender, rec_r = outputs
    n = x_a.shape[0]
    distance = F.l1_loss if consistency_loss == "l1" else F.mse_loss
    per_image = torch.zeros(n, device=x_a.device)
    for c, g in [*zip(c_a, g_a, strict=True), *zip(c_b, g_b, strict=True)]:
        per_image = per_image + distance(c, g, reduction="none").mean(1)
    consistency = _masked_mean(per_image / (2 * len(c_a)), tagged)  # mean over tag types and a, b
    reconstruction = _masked_mean(_l1(rec_g, x_a), tagged)
    rerender_l1 = _l1(rerender, x_b).mean()
    code_reconstruction = _l1(rec_r, x_a).mean()
    spread = identity.var(0, unbiased=False).mean()
    id_a, id_b = identity[:n], identity[n:]
    identity_loss = (id_a - id_b).pow(2).mean() / (spread + 1e-8)
    return consistency, reconstruction, rerender_l1, code_reconstruction, identity_loss


class _Run(TrainingRun):
    """A TDGAN run: R, g and G in one model (one optimizer) against the discriminator D; one process."""

    loss_names = _LOSS_NAMES
    fingerprint_keys = ("index", "tagged", "t_a", "t_b", "x_a", "x_b")
    config: TDGANTrainConfig
    data: TaggedPairs

    def __init__(self, config: TDGANTrainConfig, resume: bool, on_log: Callable[[dict], None] | None) -> None:
        super().__init__(config, Dist(), on_log)
        self.device = pick_device(config.device, self.dist)
        set_threads(config.threads, device=self.device)
        self._find_state(resume, TDGANTrainConfig, RESUME_MUTABLE, "start a new run")
        self.data = TaggedPairs(Path(config.data), config.size, config.tags, config.seed, config.tag_fraction)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(self.run_dir / CONFIG_NAME, config_to_toml(config).encode())

        torch.manual_seed(config.seed)
        self.model_config = TDGANConfig(
            tags=self.data.vocabulary,
            image_size=config.size,
            identity_dim=config.identity_dim,
            tag_dim=config.tag_dim,
            ngf=config.ngf,
            ndf=config.ndf,
            background=self.data.background,  # type: ignore[arg-type]
            fit=self.data.fit,
        )
        # `init` only seeds a new run: a resumed one gets its weights from its state (`_restore`)
        fine_tune = config.init and self.state_file is None
        self.model = (
            init_model(Path(config.init), self.model_config) if fine_tune else TDGAN(self.model_config)
        )
        self.model.to(self.device)
        self.discriminator = Discriminator(self.model_config).to(self.device)
        betas = (config.beta1, config.beta2)
        self.opt_g = torch.optim.Adam(self.model.parameters(), lr=config.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=config.lr, betas=betas)
        if self.state_file is not None:
            self._restore(self.state_file)
        self.views = self.data.sample_views(config.sample_identities, config.sample_targets)

    # ------------------------------------------------------------------------------------- state

    def check_state(self, meta: Mapping[str, Any]) -> None:
        if meta.get("data", {}).get("digest") not in (None, self.data.description["digest"]):
            raise UsageError(
                f"the training data in {self.config.data} differs from the data the run in {self.run_dir} "
                "started with; the batches could not be the same"
            )

    def networks(self) -> dict[str, nn.Module]:
        return {"M": self.model, "D": self.discriminator}

    def state_meta(self) -> dict[str, Any]:
        return {"task": "rerender", "model_config": config_to_dict(self.model_config)}

    def export_model(self, path: Path) -> Path:
        return export(self.run_dir, path)

    def batches(self) -> Iterator[dict[str, Tensor]]:
        """Step `step`'s pairs, read when the loop asks for them (`TaggedPairs.batch`)."""
        while True:
            yield self.data.batch(self.step, self.config.batch_size)

    # ------------------------------------------------------------------------------------- step

    def train_step(self, batch: Mapping[str, Tensor]) -> Tensor:
        """One D update, then one update of R, g and G together; returns the losses as one tensor."""
        cfg = self.config
        model = self.model
        x_a, x_b = batch["x_a"].to(self.device), batch["x_b"].to(self.device)
        t_a, t_b = batch["t_a"].to(self.device), batch["t_b"].to(self.device)
        tagged = batch["tagged"].to(self.device).float()
        n = x_a.shape[0]
        m = tagged[:, None]

        # R on both images in one batch (shared batch-norm statistics)
        identity, codes = model.disentangler(torch.cat([x_a, x_b]))
        id_a = identity[:n]
        c_a, c_b = [c[:n] for c in codes], [c[n:] for c in codes]
        g_a = model.tag_mapper(model.one_hot(t_a))
        g_b = model.tag_mapper(model.one_hot(t_b))
        # untagged pairs: R's codes stand in for g's (their tag indices are placeholders)
        src_a = [m * g + (1 - m) * c for g, c in zip(g_a, c_a, strict=True)]
        src_b = [m * g + (1 - m) * c for g, c in zip(g_b, c_b, strict=True)]
        out = model.generator(
            torch.cat([id_a, id_a, id_a]),
            [torch.cat(parts) for parts in zip(src_a, src_b, c_a, strict=True)],
        )
        rec_g, rerender, rec_r = out[:n], out[n : 2 * n], out[2 * n :]
        fake = torch.cat([rerender, rec_r])
        real = torch.cat([x_a, x_b])

        # D: real vs generated, one batch
        requires_grad(self.discriminator, True)
        logits = self.discriminator(torch.cat([real, fake.detach()]))
        loss_d = F.binary_cross_entropy_with_logits(
            logits, torch.cat([torch.ones(2 * n), torch.zeros(2 * n)]).to(logits)
        )
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()

        # R, g, G through the updated D (frozen for this pass)
        requires_grad(self.discriminator, False)
        fake_logits = self.discriminator(fake)
        adversarial = F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
        terms = _generator_terms(
            cfg.consistency_loss,
            (c_a, c_b),
            (g_a, g_b),
            tagged,
            (x_a, x_b),
            (rec_g, rerender, rec_r),
            identity,
        )
        consistency, reconstruction, rerender_l1, code_reconstruction, identity_loss = terms
        loss_g = (
            cfg.w_consistency * consistency
            + cfg.w_reconstruction * reconstruction
            + cfg.w_rerender * rerender_l1
            + cfg.w_code_reconstruction * code_reconstruction
            + cfg.w_identity * identity_loss
            + cfg.w_adversarial * adversarial
        )
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        requires_grad(self.discriminator, True)

        with torch.no_grad():
            probs = torch.sigmoid(logits.detach())
            return torch.stack(
                [
                    loss_d.detach(),
                    loss_g.detach(),
                    consistency.detach(),
                    reconstruction.detach(),
                    rerender_l1.detach(),
                    code_reconstruction.detach(),
                    identity_loss.detach(),
                    adversarial.detach(),
                    probs[: 2 * n].mean(),
                    probs[2 * n :].mean(),
                ]
            ).float()

    # ------------------------------------------------------------------------------------ samples

    @torch.no_grad()
    def sample(self) -> dict[str, Any] | None:
        """Re-render the fixed sample views (eval mode); write the grid; L1 against the genuine images."""
        if self.views is None:
            return None
        x, targets, truth = self.views["x"], self.views["targets"], self.views["truth"]
        k, t = targets.shape[0], targets.shape[1]
        self.model.eval()
        try:
            xs = x.repeat_interleave(t, dim=0).to(self.device)
            out = self.model.rerender(xs, targets.reshape(k * t, -1).to(self.device)).float().cpu()
        finally:
            self.model.train()
        out = out.clamp(-1, 1)
        errors = [
            float(_l1(out[i : i + 1], g[None]).item()) / 2 for i, g in enumerate(truth) if g is not None
        ]
        path = self.run_dir / "samples" / f"step-{self.step:08d}.png"
        _write_rerender_grid(path, x, out.reshape(k, t, *out.shape[1:]), truth)
        record: dict[str, Any] = {"event": "sample", "step": self.step, "grid": str(path)}
        if errors:
            record["sample_rerender_l1"] = round(sum(errors) / len(errors), 6)  # on the [0, 1] scale
        self._emit(record)
        return record


def _write_rerender_grid(path: Path, x: Tensor, out: Tensor, truth: Sequence[Tensor | None]) -> Path:
    """Two rows per identity: input | re-renders, then (blank) | the genuine images at those tags (blank
    where the set has none). White gaps, like `ganedit.train.grid`."""
    k, t, _, h, w = out.shape
    gap = 2
    rows, cols = 2 * k, t + 1
    canvas = torch.ones(3, rows * h + (rows - 1) * gap, cols * w + (cols - 1) * gap)

    def put(r: int, c: int, image: Tensor) -> None:
        y0, x0 = r * (h + gap), c * (w + gap)
        canvas[:, y0 : y0 + h, x0 : x0 + w] = image.detach().float().cpu().clamp(-1, 1).add(1).div(2)

    for i in range(k):
        put(2 * i, 0, x[i])
        for j in range(t):
            put(2 * i, j + 1, out[i, j])
            genuine = truth[i * t + j]
            if genuine is not None:
                put(2 * i + 1, j + 1, genuine)
    pixels = canvas.mul(255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    write_atomic(Path(path), buffer.getvalue())
    return Path(path)


def train(
    config: TDGANTrainConfig, *, resume: bool = False, on_log: Callable[[dict], None] | None = None
) -> Path:
    """Train (or with `resume`, continue) the TDGAN run in ``config.out``; returns RUN_DIR/model.safetensors.

    `on_log` receives dicts with an ``event`` key: ``start``, ``log`` (mean losses over the last
    ``log_every`` steps, steps/s, the batch fingerprint and running ``data_digest``), ``sample`` (grid
    path, mean L1 of the re-renders against the genuine images), ``save`` (state path), ``done`` (model
    path). Ctrl-C or SIGTERM finishes the current step, saves the state and the model, and raises
    KeyboardInterrupt.
    """
    validate(config)
    return _Run(config, resume, on_log).run()


def export(run_dir: Path, out: Path | None = None) -> Path:
    """Write the TDGAN (R + g + G) of `run_dir`'s latest state as a ``rerender`` checkpoint (default
    RUN_DIR/model.safetensors); the tag vocabulary is in its config and, as JSON, in ``ganedit.tags``."""
    run_dir = Path(run_dir)
    path = st.latest_state(run_dir / "state")
    if path is None:
        raise UsageError(f"{run_dir} has no saved training state to export (no state/step-*.safetensors)")
    tensors, meta = st.load_state(path)
    try:
        model = TDGAN(TDGANConfig(**meta["model_config"]))
        model.load_state_dict({k[2:]: v for k, v in tensors.items() if k.startswith("M.")}, strict=True)
    except (TypeError, ValueError, RuntimeError, KeyError) as e:
        raise CheckpointError(f"{path}: cannot rebuild the TDGAN ({e})") from None
    out = Path(out) if out is not None else run_dir / MODEL_NAME
    extra = {
        "ganedit.tags": json.dumps({name: list(values) for name, values in model.config.tags}),
        "ganedit.train.framework": "TDGAN (Wang et al. 2017): tag consistency, (re-)rendering L1, "
        "identity consistency, adversarial",
        "ganedit.train.steps": str(meta["step"]),
        "ganedit.train.config": json.dumps(meta.get("config", {}), sort_keys=True),
        "ganedit.train.data": json.dumps(meta.get("data", {}), sort_keys=True),
        "ganedit.train.data_digest": str(meta.get("data_digest", "")),
    }
    save_checkpoint(out, model, task="rerender", extra=extra)
    return out
