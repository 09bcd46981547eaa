"""A contact sheet to judge the rain synthesiser by eye, next to real rain and the benchmark sets' rain.

    python scripts/rain_contact_sheet.py --clean data/photos/holdout -o runs/rain_contact_sheet.jpg

Rows: real rainy photographs (../shared/datasets/derain/real), the rainy inputs of the paired benchmark
sets (Rain12, Rain100L, SIRR), then our synthetic rain on clean photos from ``--clean``: the first
synthesiser (``classic``), the streak synthesiser (``streaks``), dense sheets of fine streaks (``fine``) and
faint unequal streaks as in real photos (``faint``) and long lines or soft bands (``long``),
same photos, fixed seeds. The benchmark sets are evaluation only: this sheet is for looking, never for
fitting the synthesiser. Nor for committing: the sheet holds images of those sets, so it is written
under runs/ (ignored by git) unless told otherwise.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from ganedit.data.synth import (
    add_rain,
    sample_faint_rain_params,
    sample_fine_rain_params,
    sample_long_rain_params,
    sample_rain_params,
    sample_streak_rain_params,
)

ROOT = Path(__file__).resolve().parents[1]
DERAIN = ROOT.parent / "shared" / "datasets" / "derain"
CELL = 192
PER_ROW = 6


def square(path: Path) -> Image.Image:
    with Image.open(path) as source:
        image = source.convert("RGB")
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    return image.crop((left, top, left + side, top + side)).resize((CELL, CELL), Image.Resampling.LANCZOS)


def rainy(image: Image.Image, sampler: object, seed: int) -> Image.Image:
    x = torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 255.0
    g = torch.Generator().manual_seed(seed)
    out = add_rain(x, g, params=sampler(g, scale=CELL / 256))  # type: ignore[operator]
    return Image.fromarray((out.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clean", type=Path, required=True, help="folder of clean photos to rain on")
    default = ROOT / "runs" / "rain_contact_sheet.jpg"
    parser.add_argument("-o", "--out", type=Path, default=default)
    args = parser.parse_args()
    real = sorted(p for p in (DERAIN / "real").iterdir() if p.is_file())[::6][:PER_ROW]
    bench = [
        DERAIN / "rain12" / "rain" / "003.png",
        DERAIN / "rain12" / "rain" / "008.png",
        DERAIN / "rain100l-10" / "rain" / "004.png",
        DERAIN / "rain100l-10" / "rain" / "007.png",
        DERAIN / "sirr-20" / "rain" / "002.png",
        DERAIN / "sirr-20" / "rain" / "013.png",
    ]
    clean = [square(p) for p in sorted(p for p in args.clean.rglob("*") if p.is_file())[:PER_ROW]]
    rows = [
        ("real rain (derain/real)", [square(p) for p in real]),
        ("benchmark rain (Rain12, Rain100L, SIRR)", [square(p) for p in bench if p.is_file()]),
        ("ours: classic synthesiser", [rainy(c, sample_rain_params, i) for i, c in enumerate(clean)]),
        ("ours: streak synthesiser", [rainy(c, sample_streak_rain_params, i) for i, c in enumerate(clean)]),
        ("ours: fine synthesiser", [rainy(c, sample_fine_rain_params, i) for i, c in enumerate(clean)]),
        ("ours: faint synthesiser", [rainy(c, sample_faint_rain_params, i) for i, c in enumerate(clean)]),
        ("ours: long synthesiser", [rainy(c, sample_long_rain_params, i) for i, c in enumerate(clean)]),
    ]
    label_h = 18
    sheet = Image.new("RGB", (CELL * PER_ROW, (CELL + label_h) * len(rows)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for r, (label, images) in enumerate(rows):
        y = r * (CELL + label_h)
        draw.text((4, y + 3), label, fill=(0, 0, 0))
        for i, image in enumerate(images):
            sheet.paste(image, (i * CELL, y + label_h))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, quality=88)
    print(args.out)


if __name__ == "__main__":
    main()
