"""Masks in planning (inpaint's ``--mask``): which mask goes with which input, and which files found
among the inputs are masks (a mask is never an input, nor an output target)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path, PurePath

from ..io import IMAGE_SUFFIXES, Found


def is_within(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


class MaskFinder:
    """Masks for inputs: one file for all, or a folder matched by relative path and file stem."""

    SUFFIXES = ("", "_mask", ".mask", "-mask")

    def __init__(
        self, mask: Path | None, *, exclude: frozenset[Path] = frozenset(), outside: Path | None = None
    ):
        """``exclude``: resolved paths never taken as masks (the inputs: an input is never its own mask);
        ``outside``: a folder under the mask folder whose files are not masks (an output folder there)."""
        self.mask = mask
        self.by_stem: dict[str, list[Path]] = {}
        if mask is not None and mask.is_dir():
            for path in sorted(mask.rglob("*")):
                if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith("."):
                    if path.resolve() in exclude or (outside is not None and is_within(path, outside)):
                        continue
                    rel = path.relative_to(mask).with_suffix("").as_posix()
                    self.by_stem.setdefault(rel, []).append(path)
                    self.by_stem.setdefault(path.stem, []).append(path)

    def find(self, rel: PurePath) -> tuple[Path | None, str | None]:
        if self.mask is None:
            return None, None
        if self.mask.is_file():
            return self.mask, None
        base = rel.with_suffix("").as_posix()
        for key in (base, rel.stem):
            for extra in self.SUFFIXES:
                found = self.by_stem.get(key + extra)
                if found:
                    return found[0], None
        return (
            None,
            f"no mask for {rel.as_posix()} in {self.mask} (looked for {rel.stem}.*, {rel.stem}_mask.*)",
        )


def leave_out_masks(
    files: list[Found], mask: Path | None, inputs: Sequence[str]
) -> tuple[list[Found], list[str]]:
    """A mask is never an input: the ``--mask`` file, the files of a ``--mask`` folder found inside an
    input folder (``photos/ -r --mask photos/masks/``), and, in a ``--mask`` folder that is an input
    folder (or holds one), the masks of other inputs (``x_mask.png`` beside ``x.png``) are left out of
    the inputs, with a note."""
    if mask is None:
        return files, []
    if mask.is_file():
        target = mask.resolve()
        kept = [f for f in files if f.path.resolve() != target]
        return kept, [f"left out {mask} from the inputs: it is the --mask"] if len(kept) < len(files) else []
    if not mask.is_dir():
        return files, []
    stems = {f.path.stem for f in files}
    extras = MaskFinder.SUFFIXES[1:]
    named = {Path(i).resolve() for i in inputs if Path(i).is_file()}
    # The mask folder is a subfolder of an input folder: everything found in it is a mask.
    nested = any(
        is_within(mask, Path(i)) and not is_within(Path(i), mask) for i in inputs if Path(i).is_dir()
    )

    def is_mask(f: Found) -> bool:
        if not is_within(f.path, mask):
            return False
        if nested and f.path.resolve() not in named:
            return True
        stem = f.path.stem
        return any(stem.endswith(extra) and stem[: -len(extra)] in stems for extra in extras)

    left_out = [f for f in files if is_mask(f)]
    if not left_out:
        return files, []
    names = ", ".join(str(f.path) for f in left_out[:5]) + (", ..." if len(left_out) > 5 else "")
    where = "is inside an input folder" if nested else "is also an input folder"
    note = (
        f"left out {len(left_out)} mask{'s' if len(left_out) > 1 else ''} from the inputs ({names}): "
        f"the --mask folder {mask} {where}"
    )
    return [f for f in files if not is_mask(f)], [note]
