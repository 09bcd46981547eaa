"""What texture costs in a filled hole: PSNR / SSIM of a fill with the photo's own detail added.

    python scripts/texture_bound.py --data data/photos/holdout                  # the default pan-inpaint
    python scripts/texture_bound.py --data data/photos/holdout --weights runs/x/model.safetensors

Issue 17 asks for three things at once in the hole: a texture ratio of 0.6-1.3 (the fill's gradient energy
over the truth's), SSIM above OpenCV Telea's, and PSNR no more than 0.3 dB below the harmonic fill's.
Any generator paints *plausible* detail, not the detail that was there: its texture is not aligned with the
truth pixel for pixel. This script measures what such detail costs, with the best detail there can be:
the true photo's own high-frequency band (photo minus its Gaussian blur of ``sigma`` px), moved by
``shift`` px (so it has exactly the right statistics for that place, and is no longer aligned), added to
the model's fill inside the hole. ``shift`` 0 is the aligned oracle (the truth's own detail in place).

The pairs, the model run and the metrics are `ganedit eval`'s (same masks, seed 0, 512 px), so the first
row is the model's figure in its card. Prints one markdown table.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ganedit.api import load_editor
from ganedit.eval.baselines import harmonic_fill, telea_fill
from ganedit.eval.metrics import gradient_energy, psnr, ssim
from ganedit.eval.pan import load_pairs


def detail(pixels: np.ndarray, sigma: float) -> np.ndarray:
    """The high-frequency band of H x W x 3 uint8 `pixels`: the image minus its Gaussian blur (float32)."""
    x = torch.tensor(pixels, dtype=torch.float32).permute(2, 0, 1)[None]
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-(t**2) / (2 * sigma**2))
    kernel = (kernel / kernel.sum()).repeat(3, 1, 1, 1)
    row, column = kernel.view(3, 1, 1, -1), kernel.view(3, 1, -1, 1)
    across = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="replicate"), row, groups=3)
    blurred = F.conv2d(F.pad(across, (0, 0, radius, radius), mode="replicate"), column, groups=3)
    return (x - blurred)[0].permute(1, 2, 0).numpy()


def scores(out: np.ndarray, truth: np.ndarray, hole: np.ndarray) -> tuple[float, float, float]:
    o, y = out.astype(np.float64) / 255, truth.astype(np.float64) / 255
    return psnr(o, y, mask=hole), ssim(o, y, mask=hole), gradient_energy(o, hole) / gradient_energy(y, hole)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="clean photos (eval's masks are drawn)")
    parser.add_argument("--weights", help="a checkpoint instead of the default pan-inpaint")
    parser.add_argument("--shift", type=int, nargs="+", default=[0, 9, 17, 33], help="px; 0 = aligned")
    parser.add_argument("--sigma", type=float, nargs="+", default=[1.0, 2.0], help="px of the blur")
    parser.add_argument("--limit", type=int)
    args = parser.parse_args()
    editor = load_editor(args.weights or "pan-inpaint", device="cpu")
    pairs, _ = load_pairs("inpaint", args.data, seed=0, size=512, limit=args.limit)
    rows: dict[str, list[tuple[float, float, float]]] = {}
    for pair in pairs:
        assert pair.mask is not None
        hole, truth = pair.mask, pair.target
        fill = editor.edit(pair.input, hole)
        rows.setdefault("harmonic fill", []).append(scores(harmonic_fill(pair.input, hole), truth, hole))
        telea = telea_fill(pair.input, hole)
        if telea is not None:
            rows.setdefault("OpenCV Telea", []).append(scores(telea, truth, hole))
        rows.setdefault("model", []).append(scores(fill, truth, hole))
        for sigma in args.sigma:
            band = detail(truth, sigma)
            for shift in args.shift:
                moved = np.roll(band, (shift, shift), axis=(0, 1))
                added = np.where(hole[:, :, None], fill + moved, fill).round().clip(0, 255).astype(np.uint8)
                where = "aligned" if shift == 0 else f"moved {shift} px"
                name = f"model + truth's detail (sigma {sigma:g} px) {where}"
                rows.setdefault(name, []).append(scores(added, truth, hole))
    print(f"{len(pairs)} photos of {args.data}, ganedit eval's masks (seed 0, 512 px); in the hole:\n")
    print("| fill | PSNR | SSIM | texture ratio |\n|---|---:|---:|---:|")
    for name, values in rows.items():
        p, s, t = np.mean(values, axis=0)
        print(f"| {name} | {p:.2f} | {s:.4f} | {t:.3f} |")


if __name__ == "__main__":
    main()
