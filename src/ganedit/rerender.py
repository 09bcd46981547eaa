"""Moved, re-exported for one release: the `Rerenderer` to `ganedit.runtime.rerenderer`, tag parsing to
`ganedit.runtime.tags`, output names and contact sheets to `ganedit.batch.sweep`, PNG and GIF encoding
to `ganedit.io.encode`. ``Rerenderer.load`` is gone: ``ganedit.load(name_or_path)`` returns a
`Rerenderer` for a rerender model."""

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .batch.sweep import contact_sheet, name_widths, output_name, sheet_columns
from .io.encode import encode_gif, encode_png
from .runtime.rerenderer import REFINE_LR, REFINE_STEPS, Rerenderer, prepare, read_config
from .runtime.tags import CIRCULAR_TAGS, TAG_ALIASES, parse_tag_options


def write_gif(path: Path, frames: Sequence[np.ndarray], duration_ms: int = 120) -> None:
    """`encode_gif`, written atomically (nothing in ganedit uses it any more; kept for one release)."""
    from .io.atomic import write_atomic

    write_atomic(Path(path), encode_gif(frames, duration_ms))


__all__ = [
    "CIRCULAR_TAGS",
    "REFINE_LR",
    "REFINE_STEPS",
    "TAG_ALIASES",
    "Rerenderer",
    "contact_sheet",
    "encode_gif",
    "encode_png",
    "name_widths",
    "output_name",
    "parse_tag_options",
    "prepare",
    "read_config",
    "sheet_columns",
    "write_gif",
]
