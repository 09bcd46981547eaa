"""Inpainting large photos: hole by hole (mask-aware regions, the default) against blind tiles.

    python scripts/inpaint_regions_vs_tiles.py

Six held-out photos over 2 MP (data/photos/holdout), each with a seeded free-form mask drawn at 1/8 scale
and enlarged (large holes, 6-30 % of the photo); the shipped pan-inpaint run both ways in one process.
Prints per photo and on average: PSNR inside the hole, the texture ratio (gradient energy in the hole
over the truth's) and the editor's seconds.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ganedit import api
from ganedit.data.synth import make_mask
from ganedit.eval.metrics import gradient_energy, psnr
from ganedit.runtime.editor import Editor

HOLDOUT = Path(__file__).resolve().parents[1] / "data" / "photos" / "holdout"


def photos(limit: int = 6, min_pixels: int = 2_000_000) -> list[Path]:
    found = []
    for path in sorted(HOLDOUT.rglob("*.jpg")):
        with Image.open(path) as im:
            if im.width * im.height > min_pixels:
                found.append(path)
    return found[:limit]


def large_holes(h: int, w: int, seed: int) -> np.ndarray:
    small = make_mask(h // 8, w // 8, seed, coverage=(0.05, 0.3))[0].numpy() > 0.5
    mask = np.kron(small, np.ones((8, 8), bool))
    return np.pad(mask, ((0, h - mask.shape[0]), (0, w - mask.shape[1])))


def main() -> None:
    torch.set_num_threads(2)
    editor = api.load_editor("pan-inpaint", device="cpu")
    by_regions = Editor._steps
    # blind tiles: the same editor, told at planning time that there is no mask (it still gets one)
    modes = {"regions": by_regions, "tiles": lambda self, p, m: by_regions(self, p, None)}
    rows: dict[str, list[tuple[float, float, float]]] = {mode: [] for mode in modes}
    for seed, path in enumerate(photos()):
        img = np.asarray(Image.open(path).convert("RGB"))
        mask = large_holes(img.shape[0], img.shape[1], seed)
        truth = img.astype(np.float32) / 255
        for mode, steps in modes.items():
            Editor._steps = steps  # type: ignore[method-assign]
            start = time.time()
            out = editor.edit(img, mask).astype(np.float32) / 255
            seconds = time.time() - start
            texture = gradient_energy(out, mask) / gradient_energy(truth, mask)
            rows[mode].append((psnr(out, truth, mask=mask), texture, seconds))
        shown = {mode: tuple(round(x, 3) for x in r[-1]) for mode, r in rows.items()}
        print(path.name, img.shape, f"hole {mask.mean():.3f}", shown, flush=True)
    Editor._steps = by_regions  # type: ignore[method-assign]
    for mode, r in rows.items():
        a = np.array(r)
        mean_psnr, mean_texture, seconds = a[:, 0].mean(), a[:, 1].mean(), a[:, 2].sum()
        print(f"{mode}: hole PSNR {mean_psnr:.2f}, texture {mean_texture:.3f}, seconds {seconds:.1f}")


if __name__ == "__main__":
    main()
