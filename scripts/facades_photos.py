"""Cut the photo halves out of the CMP facades pairs: ``photo | label map`` -> ``photo``.

sketch2photo learns from clean photos (the line drawings are synthesised from them on the fly), so the
facades domain needs the photos alone::

    python scripts/facades_photos.py ../shared/datasets/facades data/facades-photos
    # -> data/facades-photos/train/*.png (400), data/facades-photos/test/*.png (106)

PNG, so the photos are not compressed a second time. The data stay outside git (data/ is ignored).
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
    args = parser.parse_args(argv)
    count = 0
    for split in ("train", "test"):
        files = sorted((args.facades / split).glob("*.jpg"))
        if not files:
            print(f"no .jpg files in {args.facades / split}", file=sys.stderr)
            return 2
        (args.out / split).mkdir(parents=True, exist_ok=True)
        for path in files:
            with Image.open(path) as pair:
                width, height = pair.size
                photo = pair.convert("RGB").crop((0, 0, width // 2, height))
                photo.save(args.out / split / f"{path.stem}.png")
            count += 1
    print(f"{count} photos written under {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
