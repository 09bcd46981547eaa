"""ganedit: edit photos with generative adversarial networks.

Library use (load once, apply many times)::

    import ganedit
    editor = ganedit.load("pan-derain")          # or a task name, or a path to a .safetensors checkpoint
    clean = editor(PIL.Image.open("rainy.jpg"))  # PIL in, PIL out (upright: EXIF orientation applied)
    ganedit.edit_file("rainy.jpg", "clean.jpg", editor=editor)  # a file, its EXIF and ICC profile kept

Importing this package does not import torch: the heavy parts load on first use.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:  # the version is written once, in pyproject.toml; installed metadata carries it here
    __version__ = version("ganedit")
except PackageNotFoundError:  # a source tree on sys.path without an install
    __version__ = "0+unknown"

__all__ = ["__version__", "edit_file", "edit_folder", "list_models", "load"]

if TYPE_CHECKING:
    from .api import edit_file, edit_folder, list_models, load


def __getattr__(name: str) -> Any:
    # Lazy re-export so that `import ganedit` (and `ganedit --help`) stays free of torch.
    if name in {"load", "list_models", "edit_folder", "edit_file"}:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'ganedit' has no attribute {name!r}")
