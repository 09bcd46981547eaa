"""Paint a facade label map in the CMP colours, as a user would draw one: samples/labels/drawn_facade.png.

    python scripts/draw_label_map.py              # -> samples/labels/drawn_facade.png (256 x 256)
    python scripts/draw_label_map.py --floors 5 --windows 4 --out my_facade.png

The CMP facades themselves are research data we may not redistribute in the repository, so the sample
for `ganedit labels2photo` is drawn here: rectangles in the class colours of `ganedit.palette`, laid out
like a city facade (a shop floor, rows of windows with sills, cornices between floors, a door).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]

# The class colours as they appear in the CMP label maps (see ganedit.palette.CMP_PALETTE)
BACKGROUND = (0, 0, 222)
FACADE = (0, 48, 255)
WINDOW = (0, 128, 255)
DOOR = (0, 207, 255)
SILL = (34, 254, 225)
BALCONY = (192, 254, 64)
CORNICE = (255, 80, 0)
SHOP = (174, 0, 0)


def draw(size: int = 256, floors: int = 4, windows: int = 4) -> Image.Image:
    image = Image.new("RGB", (size, size), BACKGROUND)
    d = ImageDraw.Draw(image)
    left, right, top = size // 16, size - size // 16, size // 10
    d.rectangle((left, top, right, size - 1), fill=FACADE)
    shop_top = size - size // 5
    d.rectangle((left, shop_top, right, size - 1), fill=SHOP)
    door_w = size // 10
    centre = (left + right) // 2
    d.rectangle((centre - door_w // 2, shop_top + size // 40, centre + door_w // 2, size - 1), fill=DOOR)
    floor_h = (shop_top - top) // floors
    d.rectangle((left, top, right, top + size // 40), fill=CORNICE)
    span = (right - left) / windows
    for f in range(floors):
        y0 = top + f * floor_h
        d.rectangle((left, y0 + floor_h - size // 50, right, y0 + floor_h), fill=CORNICE)
        for w in range(windows):
            x0 = round(left + w * span + span * 0.28)
            x1 = round(left + (w + 1) * span - span * 0.28)
            wy0, wy1 = y0 + floor_h // 4, y0 + floor_h - floor_h // 4
            d.rectangle((x0, wy0, x1, wy1), fill=WINDOW)
            d.rectangle((x0 - 2, wy1, x1 + 2, wy1 + max(2, size // 80)), fill=SILL)
        if f == 1:  # a balcony across the middle windows of the second floor
            x0 = round(left + span * 0.9)
            x1 = round(right - span * 0.9)
            d.rectangle((x0, y0 + floor_h - floor_h // 3, x1, y0 + floor_h - floor_h // 4), fill=BALCONY)
    return image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--floors", type=int, default=4)
    parser.add_argument("--windows", type=int, default=4)
    parser.add_argument("--out", type=Path, default=ROOT / "samples" / "labels" / "drawn_facade.png")
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    draw(args.size, args.floors, args.windows).save(args.out)
    print(args.out)


if __name__ == "__main__":
    main()
