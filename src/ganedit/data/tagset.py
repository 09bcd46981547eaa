"""The index of a tagged image set (``tags.json``, as ``ganedit train render-chairs`` writes it): the one
reader of it, for TDGAN training (`ganedit.train.tdgan`), its evaluation (`ganedit.eval.tdgan`) and the
renderer resuming into its own folder (`ganedit.train.chairs`, `read_document`).

Layout: ``ROOT/tags.json`` with a ``vocabulary`` (tag type -> its values), an ``images`` list (file, split,
identity and one value index per tag type) and optionally ``sizes`` and ``renderer``; the images live in
``ROOT/<size>/<file>``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..errors import UsageError

__all__ = ["INDEX_NAME", "TagIndex", "read_document", "read_image", "read_index", "value_name"]

INDEX_NAME = "tags.json"


def value_name(value: Any) -> str:
    """A vocabulary value as the checkpoint stores it: degrees rounded to integer strings ("0", "12"),
    names as they are. What users type after ``--tag azimuth=``."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return str(round(value))
    return str(value)


class TagIndex:
    """A parsed ``tags.json``: its path, the raw index, and the vocabulary with values as `value_name`s."""

    def __init__(self, path: Path, index: dict[str, Any]) -> None:
        self.path = path
        self.index = index
        self.vocabulary: dict[str, tuple[str, ...]] = {
            str(k): tuple(value_name(v) for v in values)
            for k, values in index["vocabulary"].items()
            if isinstance(values, list)
        }


def read_index(root: Path, size: int, *, missing_hint: str = "", size_hint: str = "") -> TagIndex:
    """Read and check ``root/tags.json`` for images of `size` px; UsageError otherwise (the hints are
    appended to the messages for a folder without an index and for a size that was not rendered)."""
    root = Path(root)
    path = root / INDEX_NAME
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{root} is not a tagged image set (no {INDEX_NAME}){missing_hint}") from None
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot read {path}: {e}") from None
    vocabulary = index.get("vocabulary") if isinstance(index, dict) else None
    if not isinstance(vocabulary, dict) or not isinstance(index.get("images"), list):
        raise UsageError(f"{path} has no vocabulary and images lists")
    sizes = index.get("sizes")
    if isinstance(sizes, list) and size not in sizes:
        raise UsageError(f"{root} holds images of size(s) {sizes}, not {size}{size_hint}")
    return TagIndex(path, index)


def read_document(path: Path, format: str) -> dict[str, Any] | None:
    """The index at `path` as it was written, when it is one of `format` (its ``format`` field); None when
    it is missing, unreadable or of another format. For a writer that extends its own index on resuming:
    anything else is not its to extend, so it starts afresh."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(document, dict) or document.get("format") != format:
        return None
    return document


def read_image(root: Path, size: int, file: str, *, what: str = "") -> np.ndarray:
    """The set's image ``ROOT/<size>/<file>`` as size x size x 3 uint8 RGB; UsageError when it cannot be
    read or has another size. `what` names it in the message ("training image")."""
    path = Path(root) / str(size) / file
    label = f"{what} {path}" if what else str(path)
    try:
        with Image.open(path) as im:
            rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot read {label}: {e}") from None
    if rgb.shape[:2] != (size, size):
        raise UsageError(f"{path} is {rgb.shape[1]} x {rgb.shape[0]} px, not {size} x {size}")
    return rgb
