"""Cut the photo halves out of the CMP facades pairs: ``photo | label map`` -> ``photo``.

sketch2photo learns from clean photos (the line drawings are synthesised from them on the fly), so the
facades domain needs the photos alone::

    python scripts/facades_photos.py ../shared/datasets/facades data/facades-photos
    # -> data/facades-photos/train/*.png (400), data/facades-photos/test/*.png (106)

PNG, so the photos are not compressed a second time. The data stay outside git (data/ is ignored).

De-raining trains on them beside the wallpaper photos, as clean content full of bright vertical lines that
are not rain (window columns, pilasters). The trainer shrinks every photo of a folder 2-4x, which would
leave a 256 px facade at 64-128 px; ``--upscale 2`` writes them enlarged (Lanczos) so that they come back
at about their own resolution, and ``--splits train`` keeps the test photos out::

    python scripts/facades_photos.py ../shared/datasets/facades data/derain-train/facades \
        --splits train --upscale 2 --flat
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PIL import Image


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("facades", type=Path, help="folder with train/ and test/ of photo | label map files")
    parser.add_argument("out", type=Path, help="where train/ and test/ photo folders are written")
    parser.add_argument("--splits", nargs="+", default=["train", "test"], choices=["train", "test"])
    parser.add_argument("--upscale", type=int, default=1, help="enlarge the photos this many times (Lanczos)")
    parser.add_argument("--flat", action="store_true", help="write into OUT itself, not OUT/<split>/")
    args = parser.parse_args(argv)
    if args.upscale < 1:
        parser.error("--upscale must be at least 1")
    count = 0
    for split in args.splits:
        files = sorted((args.facades / split).glob("*.jpg"))
        if not files:
            print(f"no .jpg files in {args.facades / split}", file=sys.stderr)
            return 2
        folder = args.out if args.flat else args.out / split
        folder.mkdir(parents=True, exist_ok=True)
        for path in files:
            with Image.open(path) as pair:
                width, height = pair.size
                photo = pair.convert("RGB").crop((0, 0, width // 2, height))
                if args.upscale > 1:
                    size = (photo.width * args.upscale, photo.height * args.upscale)
                    photo = photo.resize(size, Image.Resampling.LANCZOS)
                photo.save(folder / f"{path.stem}.png")
            count += 1
    print(f"{count} photos written under {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
