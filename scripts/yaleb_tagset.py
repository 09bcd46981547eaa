"""Make a tagged image set (``tags.json`` + ``<size>/<file>``, the layout `ganedit train tdgan` reads) from
the cropped Extended Yale Face Database B.

    python scripts/yaleb_tagset.py ../shared/datasets/yaleb data/yaleb --sizes 64 128

Each subject is one identity; each photo is tagged with its light direction, read from the file name
(``yaleB01_P00A+035E+15.png`` = azimuth +35°, elevation +15°). The ambient (no directed light) frames are
left out: they have no light direction to learn.

- The 168 x 192 crops are cut to a square (168 x 168, 12 px off the top and bottom: forehead and chin
  keep what a face crop needs) and resized with Lanczos to each size.
- Split by subject, never by photo: the last ``--eval-subjects`` subjects (sorted by name) are the
  ``eval`` split, so the model is judged on faces it never saw.
- ``--mirror`` (default on) adds each training subject's mirror image as another identity with the
  azimuth negated: a face lit from the left, flipped, is a (slightly different) face lit from the right.
  It doubles the identities the disentangler learns from, which matters with only ~28 people.

Images are stored grey as RGB PNGs (R = G = B): the rerender runtime works on RGB.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from PIL import Image, ImageOps

from ganedit.io.atomic import atomic_write

NAME = re.compile(r"^(yaleB\d+)_P00A([+-]\d+)E([+-]\d+)\.png$")


def square_crop(im: Image.Image) -> Image.Image:
    w, h = im.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    return im.crop((left, top, left + side, top + side))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="the yaleb folder (yaleBNN/ subfolders)")
    parser.add_argument("out", type=Path)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--eval-subjects", type=int, default=6)
    parser.add_argument("--no-mirror", dest="mirror", action="store_false")
    args = parser.parse_args(argv)

    photos: list[tuple[str, int, int, Path]] = []
    for path in sorted(args.source.glob("yaleB*/*.png")):
        m = NAME.match(path.name)
        if m:
            photos.append((m[1], int(m[2]), int(m[3]), path))
    if not photos:
        print(f"no Yale B photos under {args.source}", file=sys.stderr)
        return 2
    subjects = sorted({s for s, *_ in photos})
    eval_subjects = set(subjects[-args.eval_subjects :]) if args.eval_subjects else set()
    azimuths = sorted({a for _, a, _, _ in photos} | {-a for _, a, _, _ in photos})
    elevations = sorted({e for _, _, e, _ in photos})
    az_index = {a: i for i, a in enumerate(azimuths)}
    el_index = {e: i for i, e in enumerate(elevations)}

    images: list[dict[str, object]] = []
    for subject, az, el, path in photos:
        split = "eval" if subject in eval_subjects else "train"
        with Image.open(path) as im:
            face = square_crop(im.convert("L"))
        views = [(subject, az, face)]
        if args.mirror and split == "train":
            views.append((f"{subject}m", -az, ImageOps.mirror(face)))
        for identity, a, picture in views:
            file = f"{split}/{identity}/A{a:+04d}E{el:+03d}.png"
            for size in args.sizes:
                target = args.out / str(size) / file
                target.parent.mkdir(parents=True, exist_ok=True)
                picture.resize((size, size), Image.Resampling.LANCZOS).convert("RGB").save(target)
            images.append(
                {
                    "file": file,
                    "identity": identity,
                    "split": split,
                    "light_azimuth": az_index[a],
                    "light_elevation": el_index[el],
                }
            )
    index = {
        "source": "Extended Yale Face Database B (cropped), scripts/yaleb_tagset.py",
        "sizes": list(args.sizes),
        "renderer": {"background": [0, 0, 0], "fit": "crop"},
        "vocabulary": {"light_azimuth": azimuths, "light_elevation": elevations},
        "identities": {
            identity: {"split": "eval" if identity in eval_subjects else "train"}
            for identity in sorted({str(e["identity"]) for e in images})
        },
        "images": images,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write(args.out / "tags.json", (json.dumps(index, indent=1) + "\n").encode())
    n_eval = sum(1 for e in images if e["split"] == "eval")
    print(
        f"{len(images)} images ({len(images) - n_eval} train, {n_eval} eval), "
        f"{len(subjects) - len(eval_subjects)} train subjects, eval subjects {sorted(eval_subjects)}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
