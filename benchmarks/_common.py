"""Shared bits of the benchmarks: test photos and a checkpoint to run when no trained one is given."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image


def photo_like(width: int, height: int, seed: int) -> np.ndarray:
    """Smooth colour fields plus fine texture: compresses like a photo (unlike pure noise)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.empty((height, width, 3), np.float32)
    for c in range(3):
        fx, fy, phase = rng.uniform(0.002, 0.02), rng.uniform(0.002, 0.02), rng.uniform(0, 6.28)
        image[..., c] = 127 + 90 * np.sin(fx * x + phase) * np.cos(fy * y + phase / 2)
    image += rng.normal(0, 12, (height, width, 1)).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8)


def write_photos(folder: Path, n: int, width: int, height: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"{i:04d}.jpg"
        if not path.exists():
            Image.fromarray(photo_like(width, height, i)).save(path, quality=92)
        paths.append(path)
    return paths


def add_weights_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--weights", type=Path, help="a ganedit .safetensors checkpoint")
    group.add_argument(
        "--random-init",
        metavar="TASK",
        choices=["derain", "inpaint", "sketch2photo"],
        help="build the task's default PAN generator with random weights (for speed/memory only)",
    )


def weights_path(args: argparse.Namespace, workdir: Path) -> Path:
    if args.weights is not None:
        return args.weights
    import torch

    from ganedit.archs.pan import PANGenerator, preset
    from ganedit.checkpoint import save_checkpoint

    torch.manual_seed(0)
    model = PANGenerator(preset(args.random_init))
    path = workdir / f"random-{args.random_init}.safetensors"
    save_checkpoint(path, model, task=args.random_init)
    return path
