"""How far a generator looks: the effective receptive field of one output pixel, measured.

    python scripts/receptive_field.py --weights src/ganedit/weights/pan-inpaint.safetensors --size 512

The gradient of the centre output pixel (summed over its channels) with respect to every input pixel,
on a real photo crop (the weights' batch norms folded, as the editor runs them). Prints the radius around
the centre that holds 50 / 90 / 99 % of the gradient's absolute mass, and the largest distance at which
any gradient is non-zero (the theoretical field, clipped by the image). For an inpainting model the
centre is inside a square hole of ``--hole`` px, so the pixels that matter are the hole's surroundings.

Issue 17 asks for an image-wide receptive field; this is how the choice of generator was checked.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ganedit.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def photo_crop(size: int) -> torch.Tensor:
    photos = sorted((ROOT / "data" / "photos" / "holdout").rglob("*.jpg"))
    if photos:
        with Image.open(photos[0]) as source:
            image = source.convert("RGB")
        image.thumbnail((size * 2, size * 2))
        left, top = (image.width - size) // 2, (image.height - size) // 2
        pixels = np.asarray(image.crop((left, top, left + size, top + size)), dtype=np.float32) / 127.5 - 1
        return torch.from_numpy(pixels).permute(2, 0, 1)[None]
    return torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--hole", type=int, default=128, help="inpainting: side of the centred square hole")
    args = parser.parse_args()
    model, _ = load_checkpoint(args.weights)
    model.eval()
    x = photo_crop(args.size).requires_grad_(True)
    c = args.size // 2
    mask = None
    if getattr(model, "takes_mask", False):
        mask = torch.zeros(1, 1, args.size, args.size)
        h = args.hole // 2
        mask[..., c - h : c + h, c - h : c + h] = 1
    out = model(x, mask) if mask is not None else model(x)
    out[0, :, c, c].sum().backward()
    assert x.grad is not None
    grad = x.grad[0].abs().sum(0).numpy()
    yy, xx = np.mgrid[: args.size, : args.size]
    dist = np.maximum(np.abs(yy - c), np.abs(xx - c)).ravel()  # Chebyshev: square rings around the centre
    order = np.argsort(dist)
    mass = np.cumsum(grad.ravel()[order])
    mass /= mass[-1]
    radii = {q: int(dist[order][np.searchsorted(mass, q)]) for q in (0.5, 0.9, 0.99)}
    reach = int(dist[grad.ravel() > 0].max())
    print(
        f"{args.weights.name} at {args.size} px"
        + (f", centred {args.hole} px hole" if mask is not None else "")
        + f": gradient mass within {radii[0.5]} / {radii[0.9]} / {radii[0.99]} px of the centre "
        f"(50 / 90 / 99 %); non-zero up to {reach} px (image half-width {c})"
    )


if __name__ == "__main__":
    main()
