"""PAN training data: clean photos with pairs synthesised on the fly, or real paired folders.

Layouts of ``--data DIR`` (``layout = "auto"`` picks the first that fits):

* ``pairs``: a paired folder (`ganedit.data.pairs`): ``DIR/input/`` and ``DIR/target/`` (or ``DIR/rain/``
  and ``DIR/clean/``) holding images matched by file stem (``rain/0001.jpg`` ↔ ``clean/0001.png``), the
  same size per pair. For inpainting the holes come from ``DIR/mask/`` (matched by stem, white = hole)
  when it exists, else they are synthesised; ``input/`` is then optional and unused (the generator blanks
  the holes itself).
* ``side-by-side``: pix2pix's "aligned" datasets, every image the pair A|B side by side; ``direction``
  says which half is the input (``AtoB``: the left one). Never picked by ``auto``: a wide panorama looks
  the same. Ask for it with ``layout = "side-by-side"``.
* ``photos``: any other folder; every image in it (recursively) is a clean target and the input is made
  from it per sample: rain (`synth.add_rain`), holes (`synth.make_mask`) or a line drawing
  (`synth.make_sketch`).

Samples: the photo is downscaled (``downscale``: 2-4x for big photos, where at full size a 128 px crop
shows a featureless patch of sky; pairs default to 1x), a random square region is cut and resized to
``crop`` px, flipped left-right half of the time and (``quarter_turn``, photos layout) turned 90 degrees.
Every sample is a pure function of ``(seed, index)``: a fresh ``torch.Generator`` is seeded from both, so
the stream does not depend on the number of data-loader workers, on their scheduling or on where a run was
interrupted, and a resumed run sees exactly the batches an uninterrupted one would. `StepBatchSampler`
hands step k of rank r the sample indices ``(k * world + r) * batch + 0..batch-1``.

Images are decoded once, downscaled, and kept in memory as uint8 arrays (about 225 MB for the 300
megapixels of the training photos at 1/2 scale); forked data-loader workers share them copy-on-write.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import signal
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from ..data import synth
from ..data.pairs import is_paired, match_pairs, split_side_by_side
from ..errors import ImageError, UsageError
from ..io.decode import read_picture
from ..io.discover import discover
from ..io.masks import read_mask
from ..io.picture import rgb8
from ..tasks import TASKS

__all__ = [
    "DIRECTIONS",
    "LAYOUTS",
    "DataOptions",
    "PairDataset",
    "Source",
    "StepBatchSampler",
    "TrainingData",
    "data_folders",
    "detect_layout",
    "open_training_data",
    "rain_mix",
    "sample_seed",
]

LAYOUTS = ("auto", "photos", "pairs", "side-by-side")
# The `rain` option: a synthesiser of synth.RAIN_SAMPLERS by its name, or several joined by "+" (one drawn
# per sample, with equal odds, in the order named). Two mixes have names of their own: "mixed" (the recipe of
# the weights shipped on 2026-12-06) and "all", which is the three synthesisers that existed when runs were
# recorded with it, not every one there is now, so that those runs' commands still give the same pairs.
RAIN_MIXES = {"mixed": ("streaks", "classic"), "all": ("classic", "streaks", "fine")}
RAIN_MODELS = (*synth.RAIN_SAMPLERS, *RAIN_MIXES)


def rain_mix(rain: str) -> tuple[str, ...]:
    """The synthesisers a `rain` option draws from, in order; a UsageError for an unknown name."""
    names = RAIN_MIXES.get(rain) or tuple(rain.split("+"))
    unknown = [name for name in names if name not in synth.RAIN_SAMPLERS]
    if unknown:  # "" and "fine+" name an empty synthesiser, which is unknown too
        raise UsageError(
            f"rain must be one of {', '.join(RAIN_MODELS)} or several synthesisers joined by '+' "
            f"(such as classic+faint), not {rain!r}"
        )
    return names


DIRECTIONS = ("AtoB", "BtoA")
PAN_TASKS = tuple(t.name for t in TASKS.values() if t.arch == "pan")  # one list: ganedit.tasks


@dataclass(frozen=True)
class DataOptions:
    """The data-related part of a training config (see `ganedit.train.pan.PANTrainConfig`)."""

    task: str
    crop: int
    layout: str = "auto"
    direction: str = "AtoB"
    downscale: tuple[float, float] = (2.0, 4.0)  # photos layout: the range the photo is shrunk by
    paired_downscale: tuple[float, float] = (1.0, 1.0)  # pairs / side-by-side layouts
    flip: bool = True
    synth_scale: tuple[float, float] = (0.5, 1.5)  # rain streak / sketch line size multiplier
    mask_coverage: tuple[float, float] = (0.05, 0.5)  # inpainting: fraction of the crop that is a hole
    mask_blobs: float = 0.0  # inpainting: probability of an object-shaped blob among the hole shapes
    rain: str = "classic"  # derain, photos layout: a synthesiser, a named mix or A+B (rain_mix)
    clean_fraction: float = 0.0  # derain, photos layout: pairs left dry (input = target), to learn restraint
    # derain, photos layout: rainy pairs whose streaks are added to the scene (synth blend "add", O = B + S,
    # the benchmark sets' model: streaks keep the scene's hue) instead of the synthesiser's own blend
    additive_fraction: float = 0.0
    # derain, photos layout, training crops: a striped surface (zebra, awning, blinds) painted into the
    # scene before the rain, so bright hue-neutral bands that belong to it are seen and kept
    # (synth.paint_stripes)
    stripe_fraction: float = 0.0
    grey_fraction: float = 0.0  # derain, photos layout: pairs made black-and-white, rain included
    quarter_turn: float = 0.0  # photos layout: crops turned 90 degrees before the input is made from them
    val_fraction: float = 0.05  # of the files, when no separate val folder is given
    val_samples: int = 16

    def __post_init__(self) -> None:
        if self.task not in PAN_TASKS:
            raise UsageError(f"unknown PAN task {self.task!r}; PAN tasks: {', '.join(PAN_TASKS)}")
        if self.layout not in LAYOUTS:
            raise UsageError(f"layout must be one of {', '.join(LAYOUTS)}, not {self.layout!r}")
        if self.direction not in DIRECTIONS:
            raise UsageError(f"direction must be one of {', '.join(DIRECTIONS)}, not {self.direction!r}")
        if self.crop < 8:
            raise UsageError(f"crop must be at least 8 px, got {self.crop}")
        for name in ("downscale", "paired_downscale", "synth_scale"):
            low, high = getattr(self, name)
            if not 0 < low <= high:
                raise UsageError(f"{name} must be [low, high] with 0 < low <= high, got [{low}, {high}]")
        low, high = self.mask_coverage
        if not 0 < low < high <= 1:
            raise UsageError(f"mask_coverage must be [low, high] with 0 < low < high <= 1, got {low}, {high}")
        if not 0.0 <= self.mask_blobs <= 1.0:
            raise UsageError(f"mask_blobs must be a probability in [0, 1], got {self.mask_blobs}")
        rain_mix(self.rain)
        if not 0 <= self.clean_fraction < 1:
            raise UsageError(f"clean_fraction must be in [0, 1), got {self.clean_fraction}")
        if not 0 <= self.additive_fraction <= 1:
            raise UsageError(f"additive_fraction must be in [0, 1], got {self.additive_fraction}")
        if not 0 <= self.stripe_fraction <= 1:
            raise UsageError(f"stripe_fraction must be in [0, 1], got {self.stripe_fraction}")
        if not 0 <= self.grey_fraction <= 1:
            raise UsageError(f"grey_fraction must be in [0, 1], got {self.grey_fraction}")
        if not 0 <= self.quarter_turn <= 1:
            raise UsageError(f"quarter_turn must be in [0, 1], got {self.quarter_turn}")
        if not 0 <= self.val_fraction < 1:
            raise UsageError(f"val_fraction must be in [0, 1), got {self.val_fraction}")


@dataclass
class Source:
    """One training image (or pair), decoded and downscaled by ``base_scale``, as uint8 H x W x 3 arrays."""

    name: str  # path relative to its data folder (pair name), ``N//`` before it from the N-th extra folder
    target: np.ndarray
    input: np.ndarray | None = None  # paired layouts
    mask: np.ndarray | None = None  # inpainting pairs with a mask/ folder: H x W uint8 (255 = hole)
    base_scale: float = 1.0

    @property
    def area(self) -> int:
        return int(self.target.shape[0] * self.target.shape[1])


@dataclass(frozen=True)
class _Entry:
    """A file (or pair of files) found in a data folder, not yet decoded."""

    name: str
    target: Path
    input: Path | None = None
    mask: Path | None = None
    split: str | None = None  # side-by-side: which half is the target ("left" | "right")


# ----------------------------------------------------------------------------------------- discovery


def _images(folder: Path) -> list[tuple[Path, PurePath]]:
    found = discover([folder], recursive=True)
    return [(f.path, f.rel) for f in found.files]


def detect_layout(root: Path, layout: str = "auto") -> str:
    """The layout of a data folder: ``pairs`` when it is a paired folder (`ganedit.data.pairs.is_paired`:
    ``target/`` or ``clean/`` next to ``input/``, ``rain/`` or ``mask/``)."""
    if layout != "auto":
        return layout
    return "pairs" if is_paired(root) else "photos"


def _scan(root: Path, options: DataOptions) -> tuple[str, list[_Entry]]:
    if not root.exists():
        raise UsageError(f"data folder {root} does not exist")
    if not root.is_dir():
        raise UsageError(f"--data {root} is not a folder")
    layout = detect_layout(root, options.layout)
    entries: list[_Entry] = []
    if layout == "pairs":
        inpaint = options.task == "inpaint"
        folder = match_pairs(root, needs_input=not inpaint, masks="optional" if inpaint else "ignore")
        entries = [_Entry(name=p.name, target=p.target, input=p.input, mask=p.mask) for p in folder.pairs]
    elif layout == "side-by-side":
        target_half = "right" if options.direction == "AtoB" else "left"
        entries = [
            _Entry(name=rel.as_posix(), target=path, input=path, split=target_half)
            for path, rel in _images(root)
        ]
    else:
        entries = [_Entry(name=rel.as_posix(), target=path) for path, rel in _images(root)]
    if not entries:
        raise UsageError(f"{root}: no training images found (layout {layout})")
    return layout, entries


# ------------------------------------------------------------------------------------------ decoding


def _shrink(pixels: np.ndarray, factor: float, resample: Image.Resampling) -> np.ndarray:
    if factor <= 1.0:
        return pixels
    height, width = pixels.shape[:2]
    size = (max(1, round(width / factor)), max(1, round(height / factor)))
    image = Image.fromarray(pixels)
    if float(factor).is_integer() and resample != Image.Resampling.NEAREST:
        return np.asarray(image.reduce(int(factor)))  # box filter: fast and alias-free
    return np.asarray(image.resize(size, resample))


def _decode(entry: _Entry, base_scale: float) -> Source:
    target = rgb8(read_picture(entry.target).pixels)
    inp = None
    if entry.split is not None:  # side-by-side A|B
        if target.shape[1] < 2:
            raise ImageError(f"{entry.target}: too narrow for an A|B pair")
        inp, target = split_side_by_side(target, "right" if entry.split == "right" else "left")
    elif entry.input is not None:
        inp = rgb8(read_picture(entry.input).pixels)
        if inp.shape[:2] != target.shape[:2]:
            raise ImageError(
                f"{entry.input}: {inp.shape[1]} x {inp.shape[0]} differs from its target "
                f"{entry.target} ({target.shape[1]} x {target.shape[0]}); pairs must be the same size"
            )
    mask = None
    if entry.mask is not None:
        hole, _warning = read_mask(entry.mask, (target.shape[1], target.shape[0]))
        mask = hole.astype(np.uint8) * 255
    return Source(
        name=entry.name,
        target=_shrink(target, base_scale, Image.Resampling.LANCZOS),
        input=None if inp is None else _shrink(inp, base_scale, Image.Resampling.LANCZOS),
        mask=None if mask is None else _shrink(mask, base_scale, Image.Resampling.NEAREST),
        base_scale=base_scale,
    )


def _load(entries: Sequence[_Entry], base_scale: float, threads: int) -> list[Source]:
    # PIL releases the GIL while decoding and resizing: threads overlap the big JPEGs.
    if threads <= 1 or len(entries) <= 1:
        return [_decode(e, base_scale) for e in entries]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(lambda e: _decode(e, base_scale), entries))


# ----------------------------------------------------------------------------------------- sampling


def sample_seed(seed: int, stream: str, index: int) -> int:
    """A 63-bit generator seed for sample `index` of `stream` ("train", "val") of a run seeded `seed`.

    A hash, not ``seed + index``: neighbouring runs (seed 0 and seed 1) must not share shifted streams.
    """
    digest = hashlib.sha256(f"ganedit-pan/{seed}/{stream}/{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def _uniform(g: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=g))


def _log_uniform(g: torch.Generator, low: float, high: float) -> float:
    return math.exp(_uniform(g, math.log(low), math.log(high)))


def _to_tensor(pixels: np.ndarray) -> Tensor:
    """H x W x C uint8 -> C x H x W float32 in [0, 1]."""
    return torch.from_numpy(np.array(pixels)).permute(2, 0, 1).float().div_(255.0)  # a writable copy


class PairDataset(torch.utils.data.Dataset):
    """Training (or validation) pairs: ``dataset[i]`` is a pure function of (seed, stream, i).

    Items are dicts of ``input`` and ``target`` (3 x crop x crop, float32 in [-1, 1]), ``mask``
    (1 x crop x crop in {0, 1}; inpainting only) and ``index``.
    """

    def __init__(
        self,
        sources: Sequence[Source],
        options: DataOptions,
        *,
        seed: int,
        stream: str,
        scale_range: tuple,
        layout: str,
    ) -> None:
        if not sources:
            raise UsageError("no images to sample from")
        self.sources = list(sources)
        self.options = options
        self.seed = seed
        self.stream = stream
        self.scale_range = scale_range  # the range of total downscale factors (file -> crop scale)
        # Each pixel equally likely: bigger photos give proportionally more crops.
        areas = torch.tensor([float(s.area) for s in self.sources], dtype=torch.float64)
        self.cumulative = (areas.cumsum(0) / areas.sum()).tolist()
        self.augment = stream == "train"
        # only clean photos, whose inputs are made per sample, may be turned (`quarter_turn`)
        self.turnable = self.augment and layout == "photos"

    def __len__(self) -> int:
        # Sampling is with replacement from an unbounded stream; a length is only needed by tools that
        # ask. The step sampler, not this, decides how many samples a run uses.
        return 2**62

    def _choose(self, g: torch.Generator) -> Source:
        u = float(torch.rand((), generator=g, dtype=torch.float64))
        lo, hi = 0, len(self.cumulative) - 1
        while lo < hi:
            mid = (lo + hi) // 2
            if self.cumulative[mid] < u:
                lo = mid + 1
            else:
                hi = mid
        return self.sources[lo]

    def __getitem__(self, index: int) -> dict[str, Any]:
        opts = self.options
        g = torch.Generator()
        g.manual_seed(sample_seed(self.seed, self.stream, int(index)))
        source = self._choose(g)
        crop = opts.crop
        height, width = source.target.shape[:2]
        # relative factor between the stored (already shrunk by base_scale) photo and the crop
        low, high = self.scale_range
        rel = _log_uniform(g, low, high) / source.base_scale if high > low else low / source.base_scale
        rel = max(min(rel, min(height, width) / crop), 1e-6)  # the region must fit in the photo
        side = max(1, min(round(crop * rel), height, width))
        top = int(torch.randint(0, height - side + 1, (), generator=g))
        left = int(torch.randint(0, width - side + 1, (), generator=g))
        flip = self.augment and opts.flip and bool(torch.rand((), generator=g) < 0.5)
        # A quarter turn makes the photos' horizontal lines (floors, sills, horizons) vertical. Landscapes
        # have few bright vertical lines that are not rain, so a de-raining net learned to dim every one
        # (a building's window columns, white siding: docs/models/pan-derain.md). Turned before the input is
        # synthesised from the crop, so the rain keeps its own angle; never for stored pairs, whose rain
        # would turn with the photo. Drawn only when asked: old runs keep their pairs.
        turn = self.turnable and opts.quarter_turn > 0 and _uniform(g, 0.0, 1.0) < opts.quarter_turn

        def cut(pixels: np.ndarray, resample: Image.Resampling) -> np.ndarray:
            region = pixels[top : top + side, left : left + side]
            if side != crop:
                region = np.asarray(Image.fromarray(region).resize((crop, crop), resample))
            if region.ndim == 2:
                region = region[:, :, None]
            region = region[:, ::-1] if flip else region
            return region.transpose(1, 0, 2) if turn else region

        target = _to_tensor(cut(source.target, Image.Resampling.BICUBIC))
        item: dict[str, Any] = {"index": int(index)}
        if source.input is not None:
            inp = _to_tensor(cut(source.input, Image.Resampling.BICUBIC))
        elif opts.task == "derain":
            # Part of the scene, in target and input alike; training crops only (validation stays comparable
            # across runs) and drawn only when asked for, so runs without it keep their pairs.
            if self.augment and opts.stripe_fraction > 0 and _uniform(g, 0.0, 1.0) < opts.stripe_fraction:
                target = synth.paint_stripes(target, g)
            inp = _rainy(target, g, opts)
            # Black-and-white rain photos are common and all our training photos are in colour: a model (or
            # its residual gate) that only knows colour photos took one for dry (docs/models/pan-derain.md).
            # Greyed after the rain, as a monochrome camera or conversion would, so the rain is grey too.
            if opts.grey_fraction > 0 and _uniform(g, 0.0, 1.0) < opts.grey_fraction:
                inp, target = _grey(inp), _grey(target)
        elif opts.task == "sketch2photo":
            strength = _log_uniform(g, *opts.synth_scale)
            inp = synth.make_sketch(target, params=synth.sample_sketch_params(g, scale=strength))
        else:
            inp = target
        if opts.task == "inpaint":
            if source.mask is not None:
                mask = (_to_tensor(cut(source.mask, Image.Resampling.NEAREST)) > 0.5).float()
            else:
                mask = synth.make_mask(crop, crop, g, coverage=opts.mask_coverage, blobs=opts.mask_blobs)
            item["mask"] = mask
        item["input"] = inp.mul(2.0).sub(1.0).clamp_(-1.0, 1.0)
        item["target"] = target.mul(2.0).sub(1.0)
        return item


def _grey(rgb: Tensor) -> Tensor:
    """A 3 x H x W image in black and white: its Rec. 601 luma in all three channels."""
    return synth.rec601_luma(rgb).expand(3, -1, -1).clone()


def _rainy(target: Tensor, g: torch.Generator, opts: DataOptions) -> Tensor:
    """The rainy input for a clean crop: one of the rain models, or (``clean_fraction``) the crop itself.

    A sample stays a function of its seed; with the defaults (classic rain, no dry pairs) nothing extra is
    drawn from `g`, so the pairs are exactly those of runs made before these settings existed.
    """
    if opts.clean_fraction > 0 and _uniform(g, 0.0, 1.0) < opts.clean_fraction:
        return target.clone()
    names = rain_mix(opts.rain)
    model = names[0]
    if len(names) > 1:  # a single synthesiser draws nothing here, as before mixes existed
        model = names[min(len(names) - 1, int(_uniform(g, 0.0, len(names))))]
    strength = _log_uniform(g, *opts.synth_scale)
    params = synth.RAIN_SAMPLERS[model](g, scale=strength)
    # Drawn only when asked for, so runs without it keep their pairs.
    if opts.additive_fraction > 0 and _uniform(g, 0.0, 1.0) < opts.additive_fraction:
        params = dataclasses.replace(params, blend="add")
    return synth.add_rain(target, g, params=params)


class StepBatchSampler(torch.utils.data.Sampler):
    """Endless batches of sample indices: step k of rank r gets ``(k * world + r) * batch + 0..batch-1``.

    Starting at ``start_step`` (a resumed run) yields exactly the batches the uninterrupted run had from
    there; the ranks of a distributed run see disjoint shards of one global stream.
    """

    def __init__(self, batch_size: int, *, start_step: int = 0, rank: int = 0, world_size: int = 1) -> None:
        self.batch_size = batch_size
        self.start_step = start_step
        self.rank = rank
        self.world_size = world_size

    def indices(self, step: int) -> list[int]:
        first = (step * self.world_size + self.rank) * self.batch_size
        return list(range(first, first + self.batch_size))

    def __iter__(self) -> Iterator[list[int]]:
        step = self.start_step
        while True:
            yield self.indices(step)
            step += 1


def _worker_init(_worker_id: int) -> None:
    # Synthesis is many small tensor ops: more intra-op threads only contend with training (synth.py).
    torch.set_num_threads(1)
    # Ctrl-C reaches the whole process group (and a scheduler's SIGTERM often does): a worker must survive
    # it, so that the main process can finish its step and save its state; the main process stops the
    # workers on its way out (and a worker whose parent has died exits by itself: torch's watchdog).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


# ------------------------------------------------------------------------------------------ assembly


@dataclass
class TrainingData:
    """Everything the loop needs about its data, plus a description for the checkpoint's metadata."""

    train: PairDataset
    val: PairDataset | None
    layout: str
    description: dict[str, Any]

    def loader(
        self, batch_size: int, *, start_step: int, rank: int, world_size: int, workers: int, pin: bool
    ) -> torch.utils.data.DataLoader:
        sampler = StepBatchSampler(batch_size, start_step=start_step, rank=rank, world_size=world_size)
        # Its own generator: the loader draws its workers' base seed from it, which would otherwise come
        # from (and advance) torch's global RNG, part of the state a resumed run must reproduce. The
        # samples themselves never use it (each seeds its own generator from its index).
        generator = torch.Generator()
        generator.manual_seed(start_step)
        return torch.utils.data.DataLoader(
            self.train,
            batch_sampler=sampler,
            num_workers=workers,
            persistent_workers=workers > 0,
            worker_init_fn=_worker_init if workers > 0 else None,
            prefetch_factor=2 if workers > 0 else None,
            pin_memory=pin,
            generator=generator,
        )

    def val_batch(self) -> dict[str, Tensor] | None:
        """The fixed validation samples, stacked (computed in this process; they are few)."""
        if self.val is None or self.description.get("val_samples", 0) == 0:
            return None
        items = [self.val[i] for i in range(self.description["val_samples"])]
        return torch.utils.data.default_collate(items)


def _split(entries: list[_Entry], fraction: float, seed: int) -> tuple[list[_Entry], list[_Entry]]:
    """Hold out about `fraction` of the files (whole files: crops of one photo never straddle the split)."""
    if fraction <= 0 or len(entries) < 2:
        return entries, []
    count = min(len(entries) - 1, max(1, round(fraction * len(entries))))
    ranked = sorted(entries, key=lambda e: hashlib.sha256(f"{seed}/{e.name}".encode()).hexdigest())
    held = {e.name for e in ranked[:count]}
    return [e for e in entries if e.name not in held], [e for e in entries if e.name in held]


def data_folders(data: str | Path) -> list[Path]:
    """The folders of a ``data`` setting: one folder, or several joined by ``os.pathsep`` (``:``; ``;`` on
    Windows), as PATH lists them. An existing folder is one folder even with the separator in its name
    (``runs/2026-12-07T10:00``). Refuses a folder listed twice or inside another listed one: its photos
    would be drawn twice as often, silently."""
    if Path(data).is_dir():
        return [Path(data)]
    folders = [Path(part) for part in str(data).split(os.pathsep) if part]
    if not folders:
        raise UsageError("no data folder given")
    resolved = [folder.resolve() for folder in folders]
    for i, inner in enumerate(resolved):
        for j, outer in enumerate(resolved):
            if i != j and inner.is_relative_to(outer) and (inner != outer or i > j):
                how = "is listed twice" if inner == outer else f"is inside {folders[j]}"
                raise UsageError(f"data folder {folders[i]} {how}; each photo must be listed once")
    return folders


def _scan_all(folders: Sequence[Path], options: DataOptions) -> tuple[str, list[_Entry]]:
    """`_scan` of each folder, in the order given. Entries of the second and later folders get the
    folder's index as a prefix, ``N//name`` (``//`` never occurs in a relative path or a pair's name), so that
    two folders' ``a.jpg`` stay apart; the first folder's names are as before, so an older run's data digest
    is unchanged."""
    layout, entries = _scan(folders[0], options)
    for index, folder in enumerate(folders[1:], start=1):
        other, more = _scan(folder, options)
        if other != layout:
            raise UsageError(
                f"data folders must share one layout: {folders[0]} is {layout}, {folder} is {other}"
            )
        entries += [dataclasses.replace(e, name=f"{index}//{e.name}") for e in more]
    return layout, entries


def _digest(entries: Sequence[_Entry]) -> str:
    h = hashlib.sha256()
    for e in entries:
        h.update(f"{e.name}\t{e.target.stat().st_size}\n".encode())
    return h.hexdigest()[:16]


def open_training_data(
    data: str | Path, val: Path | None, options: DataOptions, *, seed: int, threads: int = 2
) -> TrainingData:
    """Scan, split, decode and wrap the data folder(s) (`data_folders`) and the validation folder, if any.

    Raises UsageError for a missing/empty folder, unmatched pairs or folders of different layouts,
    ImageError for an unreadable image.
    """
    layout, entries = _scan_all(data_folders(data), options)
    paired = layout != "photos"
    scale_range = options.paired_downscale if paired else options.downscale
    base_scale = scale_range[0]
    if val is not None:
        val_layout, val_entries = _scan(Path(val), options)
        train_entries = entries
    else:
        val_layout = layout
        train_entries, val_entries = _split(entries, options.val_fraction, seed)
    val_scale = options.paired_downscale if val_layout != "photos" else options.downscale
    train_sources = _load(train_entries, base_scale, threads)
    val_sources = _load(val_entries, val_scale[0], threads)
    train = PairDataset(
        train_sources, options, seed=seed, stream="train", scale_range=scale_range, layout=layout
    )
    val_set = (
        PairDataset(val_sources, options, seed=seed, stream="val", scale_range=val_scale, layout=val_layout)
        if val_sources
        else None
    )
    description = {
        "data": str(data),  # as given: one folder, or several joined by os.pathsep
        "layout": layout,
        "files": len(train_entries),
        "megapixels_at_base_scale": round(sum(s.area for s in train_sources) / 1e6, 2),
        "base_scale": base_scale,
        "digest": _digest(train_entries),
        "val": str(val)
        if val is not None
        else (f"{len(val_entries)} held-out files" if val_entries else None),
        "val_files": len(val_entries),
        "val_samples": options.val_samples if val_sources else 0,
        "task": options.task,
    }
    if layout == "side-by-side":
        description["direction"] = options.direction
    return TrainingData(train=train, val=val_set, layout=layout, description=description)
