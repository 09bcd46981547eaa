"""Tiny seeded PAN generators, checkpoints and editors for tests (CPU, milliseconds per image).

Freshly initialised generators are almost constant (pix2pix init draws weights from N(0, 0.02)) and a
residual_output model starts as the identity, which would let tiling or checkpoint bugs pass unseen. So
the tiny models here get weights scaled to keep activations O(1) and batch-norm running statistics
that are not the identity: their outputs depend on every input pixel within the receptive field.

Usage from any test (``tests/`` is on sys.path under pytest's default import mode)::

    from tinymodels import make_checkpoint, make_editor, make_model
    path = make_checkpoint(tmp_path / "derain.safetensors", "derain", seed=1)
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganedit.archs.pan import PANGenerator, PANGeneratorConfig
from ganedit.checkpoint import CheckpointInfo, save_checkpoint
from ganedit.runtime.editor import Editor
from ganedit.tasks import get_task

# Small but structurally complete: every kind, the mask channel, several stride-2 levels.
TINY_CONFIGS: dict[str, dict[str, Any]] = {
    "derain": {"kind": "residual", "ngf": 4, "depth": 2, "blocks": 1, "residual_output": True},
    "inpaint": {"kind": "unet", "in_channels": 4, "ngf": 4, "depth": 3, "residual_output": False},
    "sketch2photo": {"kind": "unet", "ngf": 4, "depth": 3, "residual_output": False},
    "labels2photo": {"kind": "unet", "ngf": 4, "depth": 3, "residual_output": False},
}


def tiny_config(task: str, **overrides: Any) -> PANGeneratorConfig:
    """The tiny generator config for a PAN task, with any field overridden."""
    return PANGeneratorConfig(**{**TINY_CONFIGS[task], **overrides})


def make_model(task: str, *, seed: int = 0, **config_overrides: Any) -> PANGenerator:
    """A tiny generator with seeded, non-trivial weights, in eval mode. The global RNG is untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = PANGenerator(tiny_config(task, **config_overrides))
        for m in model.modules():
            if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
                fan_in = m.weight[0].numel() if isinstance(m, nn.Conv2d) else m.weight[:, 0].numel()
                nn.init.normal_(m.weight, 0.0, 1.0 / fan_in**0.5)
                if m.bias is not None:
                    nn.init.normal_(m.bias, 0.0, 0.1)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.normal_(m.weight, 1.0, 0.2)
                nn.init.normal_(m.bias, 0.0, 0.1)
                m.running_mean.normal_(0.0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return model.eval()


def make_checkpoint(path: Path, task: str, *, seed: int = 0, **config_overrides: Any) -> Path:
    """Save a tiny seeded generator for `task` as a ganedit checkpoint at `path`; returns `path`."""
    path = Path(path)
    save_checkpoint(path, make_model(task, seed=seed, **config_overrides), task=task)
    return path


def make_info(model: PANGenerator, task: str) -> CheckpointInfo:
    """The CheckpointInfo a saved-and-loaded `model` would have (for editors built without a file)."""
    return CheckpointInfo(
        arch=model.arch, arch_config=dataclasses.asdict(model.config), task=task, metadata={}
    )


def record_forwards(editor: Editor, monkeypatch: Any) -> list[tuple[int, ...]]:
    """Spy on `editor`'s forward passes (pytest's monkeypatch): the list fills with the shape of every
    batch that goes through the model (N x H x W x C), in order."""
    shapes: list[tuple[int, ...]] = []
    run = editor._run

    def spy(rgb: Any, mask: Any, scale: float) -> torch.Tensor:
        shapes.append(rgb.shape)
        return run(rgb, mask, scale)

    monkeypatch.setattr(editor, "_run", spy)
    return shapes


def make_editor(
    task: str, *, seed: int = 0, config: dict[str, Any] | None = None, **editor_kwargs: Any
) -> Editor:
    """An Editor on the CPU around a tiny model (editor_kwargs: tile, overlap, batch_size, precision)."""
    model = make_model(task, seed=seed, **(config or {}))
    return Editor(
        model,
        task=get_task(task),
        info=make_info(model, task),
        name=f"tiny-{task}",
        sha256=None,
        device=torch.device("cpu"),
        **editor_kwargs,
    )
