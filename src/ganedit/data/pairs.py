"""Paired folders: the one place that matches inputs to their ground truth, for training
(`ganedit.train.data`) and for evaluation (`ganedit.eval.pan`).

Two layouts hold pairs:

* **Paired folders**: ``DIR/target/`` (or ``DIR/clean/``, as the published de-raining sets name it) next to
  ``DIR/input/`` (or ``DIR/rain/``) and, for inpainting, ``DIR/mask/`` (white = hole). Files are matched
  by their path relative to the folder without its extension (``rain/0001.jpg`` ↔ ``clean/0001.png``), so
  inputs and targets may be saved in different formats.
* **Side by side**: pix2pix's "aligned" files, each image the pair A|B; which half is the target is the
  caller's (the CMP facades are ``photo | label map``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from ..errors import UsageError
from ..io.discover import discover

__all__ = [
    "INPUT_DIRS",
    "MASK_DIR",
    "TARGET_DIRS",
    "MaskPolicy",
    "PairedFiles",
    "PairedFolder",
    "find_dir",
    "is_paired",
    "match_pairs",
    "split_side_by_side",
]

INPUT_DIRS = ("input", "rain")  # the first that exists is the input folder
TARGET_DIRS = ("target", "clean")
MASK_DIR = "mask"

MaskPolicy = Literal["ignore", "optional", "required"]


@dataclass(frozen=True)
class PairedFiles:
    """One pair found in a paired folder, not yet decoded."""

    name: str  # the matching key: path relative to its folder, POSIX, without extension
    target: Path
    input: Path | None = None
    mask: Path | None = None


@dataclass(frozen=True)
class PairedFolder:
    """The pairs of a paired folder (sorted by name) and the folder names that were used."""

    root: Path
    target_dir: str
    input_dir: str | None
    mask_dir: str | None
    pairs: tuple[PairedFiles, ...]


def find_dir(root: Path, names: Sequence[str]) -> str | None:
    """The first of `names` that is a folder inside `root`."""
    return next((name for name in names if (Path(root) / name).is_dir()), None)


def is_paired(root: Path) -> bool:
    """Whether `root` is a paired folder: a target folder next to an input or a mask folder."""
    if find_dir(root, TARGET_DIRS) is None:
        return False
    return find_dir(root, (*INPUT_DIRS, MASK_DIR)) is not None


def _by_stem(folder: Path) -> dict[str, Path]:
    return {f.rel.with_suffix("").as_posix(): f.path for f in discover([folder], recursive=True).files}


def match_pairs(
    root: Path, *, needs_input: bool = True, masks: MaskPolicy = "ignore", strict: bool = True
) -> PairedFolder:
    """Match the files of the paired folder `root` by stem (see the module docstring).

    `needs_input`: every target needs an input (inpainting does without: the model blanks the holes).
    `masks`: ``"ignore"`` the mask folder, use it when it is there (``"optional"``; then every target needs
    a mask), or insist on it (``"required"``). `strict`: an input without a target is an error too (a
    training set should not silently drop files; an evaluation set may hold extra inputs).
    UsageError names the first file without its partner.
    """
    root = Path(root)
    target_dir = find_dir(root, TARGET_DIRS)
    if target_dir is None:
        raise UsageError(
            f"{root}: a paired folder needs a {' or '.join(f'{n}/' for n in TARGET_DIRS)} folder "
            "(and its inputs matched by stem)"
        )
    targets = _by_stem(root / target_dir)
    input_dir = find_dir(root, INPUT_DIRS)
    inputs = _by_stem(root / input_dir) if input_dir is not None else {}
    if needs_input and not inputs:
        raise UsageError(f"{root}: a paired folder needs an {INPUT_DIRS[0]}/ folder next to {target_dir}/")
    mask_dir = MASK_DIR if masks != "ignore" and (root / MASK_DIR).is_dir() else None
    if masks == "required" and mask_dir is None:
        raise UsageError(f"{root}: a paired folder for inpainting needs {MASK_DIR}/ next to {target_dir}/")
    found = _by_stem(root / mask_dir) if mask_dir is not None else {}
    pairs = []
    for stem in sorted(targets):
        inp = inputs.get(stem)
        if needs_input and inp is None:
            raise UsageError(
                f"{root}: {target_dir}/{stem}.* has no {input_dir}/{stem}.* (pairs are matched by stem)"
            )
        mask = found.get(stem)
        if mask_dir is not None and (found or masks == "required") and mask is None:
            raise UsageError(f"{root}: {target_dir}/{stem}.* has no {mask_dir}/{stem}.*")
        pairs.append(PairedFiles(stem, targets[stem], inp if needs_input else None, mask))
    if strict and needs_input:
        orphans = sorted(set(inputs) - set(targets))
        if orphans:
            raise UsageError(f"{root}: {input_dir}/{orphans[0]}.* has no {target_dir}/{orphans[0]}.*")
    return PairedFolder(root, target_dir, input_dir if needs_input else None, mask_dir, tuple(pairs))


def split_side_by_side(pixels: np.ndarray, target: Literal["left", "right"]) -> tuple[np.ndarray, np.ndarray]:
    """(input, target) halves of a side-by-side A|B image (H x W x C); an odd last column is dropped.
    The caller checks that the halves are wide enough for its use."""
    half = pixels.shape[1] // 2
    left, right = pixels[:, :half], pixels[:, half : 2 * half]
    inp, tgt = (left, right) if target == "right" else (right, left)
    return np.ascontiguousarray(inp), np.ascontiguousarray(tgt)
