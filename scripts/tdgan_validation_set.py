"""Make a validation set of seats a TDGAN checkpoint never saw, for choosing inference settings.

    python scripts/tdgan_validation_set.py data/chairs-sofas data/val-sofas --exclude data/chairs

The training identities of SRC (a tagged set, ``ganedit train render-chairs``) that are NOT identities of
any EXCLUDE set become the ``eval`` split of OUT; OUT's images are SRC's, reached through a symlink per
size, so nothing is copied. With the command above: the 27 sofas and benches that ``--with-sofas`` adds to
the training seats, which the tdgan-chairs checkpoint (trained on data/chairs) never saw, and which are not
its 5 held-out test seats either. ``ganedit eval MODEL --data OUT --classifier SRC/classifier-...`` then
measures on them (the judge of SRC was trained on those seats' true renders, which a judge may be).

An analysis script, not part of the tool.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ganedit.data.tagset import INDEX_NAME, read_document
from ganedit.train.chairs import FORMAT


def _index(root: Path) -> dict[str, Any]:
    document = read_document(root / INDEX_NAME, FORMAT)
    if document is None:
        raise SystemExit(f"{root} holds no {INDEX_NAME} of a rendered set (ganedit train render-chairs)")
    return document


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("src", type=Path, help="tagged set whose training seats are drawn from")
    parser.add_argument("out", type=Path, help="folder to create")
    parser.add_argument("--exclude", type=Path, nargs="+", default=[], help="tagged sets to leave out")
    args = parser.parse_args()

    if args.out.resolve() == args.src.resolve():
        raise SystemExit("OUT must be another folder than SRC (it gets its own tags.json)")
    index = _index(args.src)
    excluded: set[str] = set()
    for other in args.exclude:
        excluded |= set(_index(other)["identities"])
    keep = {k for k, v in index["identities"].items() if v["split"] == "train" and k not in excluded}
    if not keep:
        raise SystemExit(f"no training identity of {args.src} is left once {args.exclude} are excluded")
    index["identities"] = {k: {**v, "split": "eval"} for k, v in index["identities"].items() if k in keep}
    index["images"] = [{**e, "split": "eval"} for e in index["images"] if e["identity"] in keep]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "tags.json").write_text(json.dumps(index))
    for size in index["sizes"]:
        link = args.out / str(size)
        if not link.exists():
            link.symlink_to((args.src / str(size)).resolve())
    print(f"{args.out}: {len(keep)} identities, {len(index['images'])} images (split eval)")


if __name__ == "__main__":
    main()
