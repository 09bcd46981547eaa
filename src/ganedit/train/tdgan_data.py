"""TDGAN training data: pairs of views of one identity from a tagged image set (`ganedit.data.tagset`),
and the fixed views of the sample grids."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..archs.tdgan import FITS
from ..data.tagset import read_image, read_index
from ..errors import UsageError

__all__ = ["TaggedPairs"]


class TaggedPairs:
    """The training pairs and the fixed sample views of a tagged image set (the chairs layout).

    The index is read once; images are decoded on demand (a rendered set can hold hundreds of thousands).
    Step k's pairs are drawn from ``numpy.random.default_rng((seed, k))``: a pure function of the step,
    so resuming or reading differently cannot change them.
    """

    def __init__(self, root: Path, size: int, tags: Sequence[str], seed: int, tag_fraction: float) -> None:
        self.root = Path(root)
        self.size = size
        self.seed = seed
        tag_index = read_index(
            root,
            size,
            missing_hint="; make one with ganedit train render-chairs",
            size_hint="; set size to one of them",
        )
        index_path, index = tag_index.path, tag_index.index
        unknown = [t for t in tags if t not in tag_index.vocabulary]
        if unknown:
            raise UsageError(
                f"tag type(s) {', '.join(map(repr, unknown))} are not in {index_path}; "
                f"its tag types: {', '.join(tag_index.vocabulary)}"
            )
        self.vocabulary: tuple[tuple[str, tuple[str, ...]], ...] = tuple(
            (t, tag_index.vocabulary[t]) for t in tags
        )
        for name, values in self.vocabulary:
            if len(set(values)) != len(values):
                raise UsageError(f"tag {name!r}: values {list(values)} are not distinct once rounded")
        raw = index.get("renderer")
        renderer: dict[str, Any] = raw if isinstance(raw, dict) else {}
        background = renderer.get("background", (240, 240, 240))
        self.background = tuple(int(c) for c in background)
        # how a user's non-square input becomes the model's square: as the set's images were made
        self.fit = str(renderer.get("fit", "pad"))
        if self.fit not in FITS:
            raise UsageError(f"{index_path}: renderer.fit must be one of {', '.join(FITS)}, not {self.fit!r}")

        self.files: list[str] = []
        self.identity_of: list[str] = []
        tag_rows, eval_files = self._read_entries(index_path, index, tags)
        self.tags = np.asarray(tag_rows, dtype=np.int64).reshape(-1, len(tags))
        eval_set = set(eval_files)
        by_identity: dict[str, list[int]] = {}
        for i, identity in enumerate(self.identity_of):
            if i not in eval_set:
                by_identity.setdefault(identity, []).append(i)
        self.train_groups = [by_identity[k] for k in sorted(by_identity) if len(by_identity[k]) >= 2]
        if not self.train_groups:
            raise UsageError(f"{root} has no training identity with 2 or more images (split 'train')")
        # semi-supervised: a seeded choice of identities keep their tags
        n = len(self.train_groups)
        keep = max(1, math.ceil(tag_fraction * n))
        order = np.random.default_rng((seed, 0x7A65)).permutation(n)
        self.group_tagged = np.zeros(n, dtype=bool)
        self.group_tagged[order[:keep]] = True
        eval_ids: dict[str, list[int]] = {}
        for i in eval_files:
            eval_ids.setdefault(self.identity_of[i], []).append(i)
        self.eval_groups = [eval_ids[k] for k in sorted(eval_ids)]
        files_hash = hashlib.blake2b(digest_size=8)
        for group in self.train_groups:
            for i in group:
                files_hash.update(f"{self.files[i]}:{self.tags[i].tolist()}\n".encode())
        self.description = {
            "root": str(self.root),
            "size": size,
            "train_identities": n,
            "tagged_identities": keep,
            "train_images": sum(len(g) for g in self.train_groups),
            "eval_identities": len(self.eval_groups),
            "digest": files_hash.hexdigest(),
        }

    def _read_entries(
        self, index_path: Path, index: dict[str, Any], tags: Sequence[str]
    ) -> tuple[list[list[int]], list[int]]:
        """Fill `files` and `identity_of` with the train and eval images; their tag rows, and which of
        them are eval images."""
        tag_rows: list[list[int]] = []
        eval_files: list[int] = []
        try:
            for entry in index["images"]:
                row = [int(entry[t]) for t in tags]
                for (name, values), i in zip(self.vocabulary, row, strict=True):
                    if not 0 <= i < len(values):
                        raise UsageError(f"{index_path}: {entry['file']} has {name} index {i} out of range")
                if entry.get("split", "train") == "eval":
                    eval_files.append(len(self.files))
                elif entry.get("split", "train") != "train":
                    continue
                self.files.append(str(entry["file"]))
                self.identity_of.append(str(entry["identity"]))
                tag_rows.append(row)
        except (KeyError, TypeError, ValueError) as e:
            raise UsageError(f"{index_path}: malformed image entry ({e!r})") from None
        return tag_rows, eval_files

    def image(self, i: int) -> Tensor:
        """Image `i` as a 3 x size x size tensor in [-1, 1]."""
        rgb = read_image(self.root, self.size, self.files[i], what="training image").astype(np.float32)
        return torch.from_numpy(rgb).permute(2, 0, 1).div(127.5).sub(1)

    def batch(self, step: int, batch_size: int) -> dict[str, Tensor]:
        """Step `step`'s pairs: x_a, x_b (N x 3 x S x S), their tag indices (N x T), ``tagged`` (N bool)
        and ``index`` (N x 2 image numbers)."""
        rng = np.random.default_rng((self.seed, step))
        a_idx, b_idx, tagged = [], [], []
        for _ in range(batch_size):
            g = int(rng.integers(len(self.train_groups)))
            group = self.train_groups[g]
            a = group[int(rng.integers(len(group)))]
            b = a
            for _attempt in range(8):  # prefer other tags; an identity may have few views
                b = group[int(rng.integers(len(group)))]
                if b != a and not np.array_equal(self.tags[a], self.tags[b]):
                    break
            a_idx.append(a)
            b_idx.append(b)
            tagged.append(bool(self.group_tagged[g]))
        return {
            "x_a": torch.stack([self.image(i) for i in a_idx]),
            "x_b": torch.stack([self.image(i) for i in b_idx]),
            "t_a": torch.from_numpy(self.tags[a_idx]),
            "t_b": torch.from_numpy(self.tags[b_idx]),
            "tagged": torch.tensor(tagged),
            "index": torch.tensor([a_idx, b_idx]).T.contiguous(),
        }

    def sample_views(self, identities: int, targets: int) -> dict[str, Any] | None:
        """Fixed views for the sample grids: per eval identity (train ones when there is no eval split)
        its first image as input, and `targets` target tag rows that change only the azimuth (the first
        modelled tag type when azimuth is not modelled), each with the genuine image where it exists."""
        groups = self.eval_groups or self.train_groups
        groups = groups[:identities]
        if not groups or targets < 1:
            return None
        names = [name for name, _ in self.vocabulary]
        column = names.index("azimuth") if "azimuth" in names else 0
        n_values = len(self.vocabulary[column][1])
        picks = sorted({round(k * n_values / targets) % n_values for k in range(targets)})
        inputs, target_rows, truths = [], [], []
        for group in groups:
            first = group[0]
            lookup = {tuple(self.tags[i].tolist()): i for i in group}
            inputs.append(first)
            rows = []
            for value in picks:
                row = self.tags[first].copy()
                row[column] = value
                rows.append(row)
                truths.append(lookup.get(tuple(row.tolist())))
            target_rows.append(np.stack(rows))
        return {
            "x": torch.stack([self.image(i) for i in inputs]),
            "targets": torch.from_numpy(np.stack(target_rows)),  # identities x targets x T
            "truth": [None if i is None else self.image(i) for i in truths],  # row-major
        }
