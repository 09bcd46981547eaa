"""Moved to `ganedit.runtime.editor` (tiling: `ganedit.runtime.tiling`); re-exported for one release."""

from .runtime.devices import PRECISIONS, cpu_bf16_native, cpu_thread_count, select_device
from .runtime.editor import Editor, fold_batchnorm
from .runtime.tiling import tile_starts

__all__ = [
    "PRECISIONS",
    "Editor",
    "cpu_bf16_native",
    "cpu_thread_count",
    "fold_batchnorm",
    "select_device",
    "tile_starts",
]
