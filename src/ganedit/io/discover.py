"""Finding the input images: files and folders given on the command line, walked, filtered, noted.

Nothing is skipped silently: every file or folder entry that is not taken becomes a note (hidden
files, non-images, HEIC/AVIF, broken links, FIFOs, unreadable folders...), summarised when there are
many, for the command line to print.
"""

from __future__ import annotations

import errno
import os
import stat
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath

from ..errors import UsageError
from .picture import IMAGE_SUFFIXES


@dataclass(frozen=True)
class Found:
    """An input image: ``path`` to read, ``rel`` its place under the input folder (mirrored on output)."""

    path: Path
    rel: PurePath


@dataclass
class Discovery:
    files: list[Found]
    notes: list[str]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _is_hidden(entry: os.DirEntry[str]) -> bool:
    if entry.name.startswith("."):
        return True
    if os.name != "nt":
        return False
    attributes = getattr(entry.stat(follow_symlinks=False), "st_file_attributes", 0)
    return bool(attributes & getattr(stat, "FILE_ATTRIBUTE_HIDDEN", 0))


_HEIF_SUFFIXES = frozenset({".heic", ".heif", ".hif", ".avif"})


def _odd_kind(entry: os.DirEntry[str], error: OSError | None) -> str:
    """What a folder entry that is neither a folder nor a regular file is, for a note."""
    if error is not None:
        if error.errno == errno.ELOOP:
            return "a symlink loop"
        return f"cannot read ({error.strerror or error})"
    try:
        info = entry.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a symlink loop"
        return "a broken link" if entry.is_symlink() else f"cannot read ({exc.strerror or exc})"
    for test, kind in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device"),
                       (stat.S_ISBLK, "a device")):  # fmt: skip
        if test(info.st_mode):
            return f"not a regular file ({kind})"
    return "not a regular file"


def discover(inputs: Sequence[Path], *, recursive: bool) -> Discovery:
    """Find the images among ``inputs`` (files and folders).

    Folders are searched for files with an image suffix (any case); with ``recursive`` their subfolders
    too (symlinked folders are not followed, to avoid loops). Hidden files and folders (dot names) and
    files without an image suffix are skipped with a note (HEIC/AVIF ones say they are not supported), and
    so are broken links, symlink loops, FIFOs and the like. A file reached twice (given twice, or given
    and also inside a given folder) is listed once, at its first occurrence. Files are sorted by their
    relative path. A missing input raises `UsageError`.
    """
    walk = _Walk(recursive)
    for given in inputs:
        path = Path(given)
        if path.is_dir():
            walk.folder(path, PurePath())
        elif path.is_file():
            walk.add(path, PurePath(path.name))
        elif os.path.lexists(path):
            raise UsageError(f"{path}: not a file or folder (or a broken link)")
        else:
            raise UsageError(f"{path}: no such file or folder")
    walk.found.sort(key=lambda f: (f.rel.as_posix(), str(f.path)))
    return Discovery(files=walk.found, notes=walk.notes())


@dataclass
class _Walk:
    """One discovery: the images found so far, and the count of everything skipped, for the notes."""

    recursive: bool
    found: list[Found] = field(default_factory=list)
    seen: set[tuple[int, int] | str] = field(default_factory=set)
    hidden_files: int = 0
    hidden_dirs: int = 0
    unsearched: int = 0
    symlinked: int = 0
    duplicates: int = 0
    not_images: list[PurePath] = field(default_factory=list)
    unsupported: list[PurePath] = field(default_factory=list)  # HEIC/AVIF: images, but not ones we read
    odd: list[tuple[PurePath, str]] = field(default_factory=list)  # broken links, FIFOs...: always noted
    unreadable: list[str] = field(default_factory=list)

    def add(self, path: Path, rel: PurePath) -> None:
        if path.suffix.lower() in _HEIF_SUFFIXES:
            self.unsupported.append(rel)
            return
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            self.not_images.append(rel)
            return
        try:
            info = path.stat()
            key: tuple[int, int] | str = (info.st_dev, info.st_ino) if info.st_ino else os.path.realpath(path)
        except OSError:
            key = os.path.realpath(path)
        if key in self.seen:
            self.duplicates += 1
            return
        self.seen.add(key)
        self.found.append(Found(path=path, rel=rel))

    def folder(self, folder: Path, rel: PurePath) -> None:
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError as exc:
            if not rel.parts:
                raise UsageError(f"{folder}: cannot read folder ({exc.strerror or exc})") from exc
            self.unreadable.append(str(folder))
            return
        for entry in entries:
            self.entry(entry, rel)

    def entry(self, entry: os.DirEntry[str], rel: PurePath) -> None:
        try:
            is_dir = entry.is_dir()
            hidden = _is_hidden(entry)
        except OSError as exc:
            if not entry.name.startswith("."):
                self.odd.append((rel / entry.name, _odd_kind(entry, exc)))
            return
        if hidden:
            if not is_dir:
                self.hidden_files += 1
            elif self.recursive:  # without -r no subfolder is searched anyway
                self.hidden_dirs += 1
        elif is_dir:
            if not self.recursive:
                self.unsearched += 1
            elif entry.is_symlink():
                self.symlinked += 1
            else:
                self.folder(Path(entry.path), rel / entry.name)
        elif entry.is_file():
            self.add(Path(entry.path), rel / entry.name)
        else:
            self.odd.append((rel / entry.name, _odd_kind(entry, None)))

    def notes(self) -> list[str]:
        """One line per kind of skipped entry (each entry named while there are at most five)."""
        notes: list[str] = []
        if self.hidden_files:
            notes.append(f"skipped {_plural(self.hidden_files, 'hidden file')}")
        if self.hidden_dirs:
            notes.append(f"skipped {_plural(self.hidden_dirs, 'hidden folder')}")
        heif = "HEIC/AVIF not supported (convert to JPEG, PNG or TIFF)"
        if len(self.unsupported) <= 5:
            notes.extend(f"skipped {rel.as_posix()}: {heif}" for rel in self.unsupported)
        else:
            notes.append(f"skipped {len(self.unsupported)} HEIC/AVIF files: {heif}")
        if len(self.odd) <= 5:
            notes.extend(f"skipped {rel.as_posix()}: {kind}" for rel, kind in self.odd)
        else:
            kinds = Counter(kind for _, kind in self.odd)
            summary = ", ".join(f"{count} x {kind}" for kind, count in kinds.most_common())
            notes.append(f"skipped {len(self.odd)} entries that are not image files ({summary})")
        if len(self.not_images) <= 5:
            notes.extend(f"skipped {rel.as_posix()}: not an image" for rel in self.not_images)
        else:
            suffixes = Counter(rel.suffix.lower() or "no suffix" for rel in self.not_images)
            summary = ", ".join(f"{count} {kind}" for kind, count in suffixes.most_common(5))
            notes.append(f"skipped {len(self.not_images)} files that are not images ({summary})")
        if self.unsearched:
            notes.append(f"{_plural(self.unsearched, 'subfolder')} not searched (use -r)")
        if self.symlinked:
            notes.append(f"skipped {_plural(self.symlinked, 'symlinked folder')} (not followed)")
        notes.extend(f"skipped {folder}: cannot read folder" for folder in self.unreadable)
        if self.duplicates:
            notes.append(f"{_plural(self.duplicates, 'file')} given more than once, used once")
        return notes
