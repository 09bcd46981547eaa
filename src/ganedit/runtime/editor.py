"""Editor: a loaded generator on a device, applied to whole photographs of any size.

The generators are fully convolutional but want H and W divisible by ``model.pad_multiple`` and, on a
24-megapixel photo, far more activation memory than a laptop has. So the editor:

- pads (reflect, so the borders look like image content) to the multiple and crops back;
- cuts large images into equal-sized overlapping tiles aligned to the multiple (so each tile sees the
  same stride-2 sampling grid as the whole image would), runs them in batches, and blends them with
  linear ramps over the overlap, so that the tile borders, where a convolution sees zero padding
  instead of the neighbouring pixels, get ~zero weight. The full image, the accumulator and the blend
  weights stay on the CPU in float32; only tiles travel to the device;
- runs its own copy of the model with batch norm folded into the convolutions, under
  ``torch.inference_mode()`` with channels-last tensors (about 2x faster convolutions on CPUs, and
  what tensor cores want), under bf16/fp16 autocast on CUDA and bf16 on CPUs with native bf16
  arithmetic (AVX512-BF16 or AMX: another 2x), re-running a batch in fp32 if its output is not finite;
- averages, by default, the model's output on the image and on its mirror image (flip averaging, the
  cheapest of the "self-ensembles" of Timofte et al. 2016 and EDSR): the two passes make independent
  small mistakes, so their mean is a little closer to the truth (+0.2 dB on the de-raining holdout).

Pixels are H x W x C arrays (C = 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA; uint8 or uint16), scaled to
[-1, 1] for the model. Alpha is carried through untouched; grayscale stays grayscale when the task says
so. No file I/O here: see the io package and batch.py.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import nn

from .checkpoint import CheckpointInfo
from .errors import CheckpointError, UsageError
from .palette import check_label_map
from .runtime.devices import (
    PRECISIONS,
    cpu_bf16_native,
    cpu_thread_count,
    limit_threads,
    resolve_precision,
    select_device,
)
from .tasks import TASKS, Task

# CPU: images above this many pixels are tiled. Tiles of ~512 px keep the activations in cache-sized
# pieces (as fast as one big forward on 2 cores) and the peak memory bounded; a 1-megapixel image
# untiled needs only a few hundred MB for the default de-raining net.
CPU_MAX_UNTILED_PIXELS = 1536 * 1024
CPU_TILE = 512
# CPU: at most this many pixels go through the model in one batch (untiled small images, edit_many).
CPU_BATCH_PIXELS = 1 << 20
MPS_MAX_UNTILED_PIXELS = 4 << 20
MPS_TILE = 1024
# CUDA: use at most this fraction of the free memory for one batch; tiles between these sizes.
CUDA_MEMORY_FRACTION = 0.5
CUDA_TILE_RANGE = (256, 4096)
# Rec. 601 luma, as Pillow's convert("L") uses: gray output of a gray input stays consistent with PIL.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)

# ---------------------------------------------------------------------------------------------------------
# Tiling


def tile_starts(size: int, tile: int, stride: int) -> list[int]:
    """Start offsets of tiles of `tile` px covering [0, size): every `stride` px, the last one shifted
    inward to end exactly at `size` so that all tiles have the same size (and batch together)."""
    if size <= tile:
        return [0]
    starts = list(range(0, size - tile, stride))
    starts.append(size - tile)
    return starts


def _ramp(length: int, ramp: int, *, rise: bool, fall: bool) -> torch.Tensor:
    """1-D blend weights of a tile: 1 inside; at a side that overlaps a neighbour (by >= `ramp` px),
    ~0 over the outer quarter of the overlap, a linear rise over its middle half, 1 after.

    The outer pixels of a tile are the least trustworthy (their convolutions saw zero padding instead of
    image) and the neighbour sees them well inside itself, so they are left to the neighbour; the two
    ramps are mirror images, so the weights sum to ~1 across the overlap. Never exactly 0: every pixel
    keeps a positive total weight.
    """
    w = torch.ones(length)
    if ramp > 0:
        d = torch.arange(ramp, dtype=torch.float32) + 0.5  # distance of each pixel centre from the edge
        up = ((d - ramp / 4) / (ramp / 2)).clamp_(1e-3, 1.0)
        if rise:
            w[:ramp] = torch.minimum(w[:ramp], up)
        if fall:
            w[-ramp:] = torch.minimum(w[-ramp:], up.flip(0))
    return w


@dataclass(frozen=True)
class _Prepared:
    """One input image made ready for the model (padded RGB in its own dtype) and what is needed to
    turn the model's output back into pixels like the input's."""

    rgb: np.ndarray  # H_pad x W_pad x 3, uint8 | uint16
    mask: np.ndarray | None  # H_pad x W_pad bool (True = fill)
    height: int
    width: int
    color: np.ndarray  # the input's colour channels (H x W x 1 or 3), for the exact copy of known pixels
    known: np.ndarray | None  # H x W bool: pixels to copy from the input unchanged (inpainting)
    alpha: np.ndarray | None  # H x W x 1
    gray: bool
    squeeze: bool  # the input was a 2-D array: return one too

    @property
    def scale(self) -> float:
        return 65535.0 if self.rgb.dtype == np.uint16 else 255.0


@dataclass(frozen=True)
class _TilePlan:
    """Equal-sized tiles covering a padded image: their size, start offsets and blend-ramp length."""

    height: int
    width: int
    ys: tuple[int, ...]
    xs: tuple[int, ...]
    ramp: int  # = tile - stride: the (smallest) overlap of neighbours, over which weights ramp


def _pad_amount(n: int, multiple: int) -> int:
    return -n % multiple


def _pad(a: np.ndarray, ph: int, pw: int) -> np.ndarray:
    if ph == 0 and pw == 0:
        return a
    # reflect looks like more of the image (no hard edge for the convolutions to react to); it needs
    # the pad to be shorter than the image, so tiny images are padded by repeating their last row/column.
    mode = "reflect" if ph < a.shape[0] and pw < a.shape[1] else "edge"
    widths = ((0, ph), (0, pw)) + ((0, 0),) * (a.ndim - 2)
    return np.pad(a, widths, mode=mode)


# ---------------------------------------------------------------------------------------------------------
# Editor


class Editor:
    """A generator loaded on a device, ready to edit images of any size (see the module docstring).

    tile: None = decide by image size and device memory; 0 = never tile; N = tiles of N px (rounded up
    to the model's multiple). overlap: px shared by neighbouring tiles (None: tile / 16 within 32..128 px),
    rounded so that tiles stay on the model's grid (the real overlap can be larger).
    flip_average: also run the mirror image and average the two outputs (twice the model time).
    strength: 1 = the model's result; s < 1 blends it with the input, s * result + (1 - s) * input, for a
    lighter touch (0 returns the input unchanged). Only for tasks whose output is the input edited
    (derain: `Task.strength`).
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        task: Task,
        info: CheckpointInfo,
        name: str,
        sha256: str | None,
        device: torch.device,
        precision: str = "auto",
        tile: int | None = None,
        overlap: int | None = None,
        batch_size: int = 4,
        flip_average: bool = True,
        strength: float = 1.0,
    ) -> None:
        if info.arch != task.arch or info.task != task.name:
            raise CheckpointError(
                f"model {name!r} is a {info.task!r} ({info.arch}) model; it cannot run the {task.name!r} task"
            )
        takes_mask = bool(getattr(model, "takes_mask", False))
        if takes_mask != task.needs_mask:
            raise CheckpointError(
                f"model {name!r} {'takes' if takes_mask else 'takes no'} mask, but the {task.name!r} task "
                f"{'needs' if task.needs_mask else 'has'} {'one' if task.needs_mask else 'none'}"
            )
        if tile is not None and tile < 0:
            raise UsageError(f"tile must be 0 (no tiling) or a size in pixels, not {tile}")
        if overlap is not None and overlap < 0:
            raise UsageError(f"overlap must be >= 0 pixels, not {overlap}")
        if batch_size < 1:
            raise UsageError(f"batch size must be >= 1, not {batch_size}")
        if not 0.0 <= strength <= 1.0:  # also refuses NaN
            raise UsageError(f"strength must be between 0 and 1, not {strength}")
        if strength != 1.0 and not task.strength:
            strong = ", ".join(t.name for t in TASKS.values() if t.strength)
            raise UsageError(f"strength applies to {strong} only: {task.name} output is not the input edited")
        self.strength = float(strength)
        self.task = task
        self.info = info
        self.name = name
        self.sha256 = sha256
        self.device = torch.device(device)
        self.precision, self._autocast_dtype = resolve_precision(precision, self.device)
        self.multiple: int = int(model.pad_multiple)
        self.tile = None if tile is None else (0 if tile == 0 else -(-tile // self.multiple) * self.multiple)
        self.overlap = overlap
        self.batch_size = batch_size
        self.flip_average = flip_average
        if self.device.type == "cpu":
            limit_threads()
        # The editor's own copy, so that folding batch norm never alters the caller's (trainable) model.
        model = fold_batchnorm(copy.deepcopy(model).eval()).to(self.device)
        if self.device.type in ("cpu", "cuda"):
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self._cuda_bytes_per_pixel: float | None = None
        self._feather = True  # tests switch blending off to show that it is what hides the seams

    # -- configuration -----------------------------------------------------------------------------------

    def _auto_tile(self, h: int, w: int) -> int | None:
        """The tile size for an image of padded size h x w, or None if it fits in one forward."""
        kind = self.device.type
        if kind == "cuda":
            bpp = self._bytes_per_pixel()
            budget = self._cuda_budget()
            if h * w * bpp <= budget:
                return None
            tile = int(math.sqrt(budget / (bpp * self.batch_size)))
            lo, hi = CUDA_TILE_RANGE
            tile = min(max(tile, lo), hi)
        elif kind == "mps":
            if h * w <= MPS_MAX_UNTILED_PIXELS:
                return None
            tile = MPS_TILE
        else:
            if h * w <= CPU_MAX_UNTILED_PIXELS:
                return None
            tile = CPU_TILE
        tile = max(tile // self.multiple, 2) * self.multiple
        return tile

    def _plan(self, h: int, w: int) -> _TilePlan | None:
        """How to tile a padded h x w image, or None to run it whole."""
        tile = self.tile if self.tile is not None else self._auto_tile(h, w)
        if not tile or (h <= tile and w <= tile):
            return None
        overlap = self.overlap if self.overlap is not None else min(128, max(32, tile // 16), tile // 4)
        if 2 * overlap >= tile:
            raise UsageError(f"overlap {overlap} px is too large for {tile} px tiles (must be < tile / 2)")
        # Strides on the model's grid, so that every tile sees the stride-2 sampling of the whole
        # image; the real overlap (tile - stride) is therefore at least the one asked for.
        m = self.multiple
        stride = max(m, (tile - overlap) // m * m)
        th, tw = min(tile, h), min(tile, w)
        return _TilePlan(
            height=th,
            width=tw,
            ys=tuple(tile_starts(h, th, stride)),
            xs=tuple(tile_starts(w, tw, stride)),
            ramp=tile - stride,
        )

    def _batch_limit(self, h: int, w: int) -> int:
        """How many h x w images or tiles may go through the model together (at most batch_size)."""
        if self.device.type == "cuda":
            fit = int(self._cuda_budget() // max(1.0, h * w * self._bytes_per_pixel()))
        else:
            fit = CPU_BATCH_PIXELS // (h * w)
        return max(1, min(self.batch_size, fit))

    def _cuda_budget(self) -> float:
        free, _ = torch.cuda.mem_get_info(self.device)
        cached = torch.cuda.memory_reserved(self.device) - torch.cuda.memory_allocated(self.device)
        return CUDA_MEMORY_FRACTION * (free + cached)

    def _bytes_per_pixel(self) -> float:
        """Peak CUDA memory per input pixel of one forward, measured once on a small probe."""
        if self._cuda_bytes_per_pixel is None:
            side = max(256, 2 * self.multiple)
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            before = torch.cuda.memory_allocated(self.device)
            x = torch.zeros(1, 3, side, side, device=self.device).contiguous(
                memory_format=torch.channels_last
            )
            mask = torch.zeros(1, 1, side, side, device=self.device) if self.task.needs_mask else None
            with torch.inference_mode():
                self._infer(x, mask)
            torch.cuda.synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device) - before
            self._cuda_bytes_per_pixel = 1.25 * peak / (side * side)  # margin for allocator fragmentation
        return self._cuda_bytes_per_pixel

    # -- the model -------------------------------------------------------------------------------------------

    def _call_model(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return self.model(x, mask) if mask is not None else self.model(x)

    def _infer(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """Model output in float32 on the device, averaged with the mirrored pass if flip_average."""
        y = self._infer_once(x, mask)
        if self.flip_average:
            mirrored = self._infer_once(_mirror(x), None if mask is None else _mirror(mask))
            # The mean of two images (each clamped to the valid range), i.e. of the two edits; and
            # (a + a) / 2 == a exactly, so pixels a model copies through (inpainting) stay exact.
            y = y.clamp_(-1.0, 1.0).add_(_mirror(mirrored).clamp_(-1.0, 1.0)).mul_(0.5)
        return y

    def _infer_once(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """Model output in float32 on the device; autocast where configured, fp32 where it overflows."""
        if self._autocast_dtype is None:
            return self._call_model(x, mask).float()
        with torch.autocast(self.device.type, dtype=self._autocast_dtype):
            y = self._call_model(x, mask).float()
        if not bool(torch.isfinite(y).all()):
            y = self._call_model(x, mask).float()  # fp16 overflowed (or bf16 went wrong): pay for fp32
        return y

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The model step alone (for benchmarks; with the precision and flip averaging of the editor):
        N x 3 x H x W in [-1, 1] -> same, on the editor's device."""
        x = x.to(self.device)
        if self.device.type in ("cpu", "cuda"):
            x = x.contiguous(memory_format=torch.channels_last)
        if mask is not None:
            mask = mask.to(self.device, dtype=x.dtype)
        with torch.inference_mode():
            return self._infer(x, mask)

    def _run(self, rgb: np.ndarray, mask: np.ndarray | None, scale: float) -> torch.Tensor:
        """N x h x w x 3 integer pixels (+ N x h x w bool mask) -> N x h x w x 3 float32 CPU in [-1, 1]."""
        # NHWC in memory viewed as NCHW is exactly the channels-last layout the model runs in. 8-bit
        # pixels travel to the device as bytes (a quarter of the traffic) and become floats there.
        x = torch.from_numpy(rgb if rgb.dtype == np.uint8 else rgb.astype(np.float32)).permute(0, 3, 1, 2)
        x = x.to(self.device).float().mul_(2.0 / scale).sub_(1.0)
        m = None
        if mask is not None:
            m = torch.from_numpy(mask).unsqueeze(1).to(self.device).float()
        y = self._infer(x, m).clamp_(-1.0, 1.0)
        return y.permute(0, 2, 3, 1).cpu()

    # -- whole images ------------------------------------------------------------------------------------

    def inspect(self, pixels: np.ndarray) -> list[str]:
        """Warnings about an input this task would edit poorly; raises ImageError for one it cannot use
        (``labels2photo``: an image that is not a label map in the CMP palette). The folder runner calls
        it per file, so a bad file fails alone; `edit` itself does not."""
        if self.task.label_palette:
            return check_label_map(pixels)
        return []

    def _check(self, pixels: np.ndarray, mask: np.ndarray | None) -> None:
        """Raise UsageError unless `pixels` (and `mask`) are something `edit` accepts."""
        if not isinstance(pixels, np.ndarray) or pixels.dtype not in (np.uint8, np.uint16):
            raise UsageError("pixels must be a uint8 or uint16 numpy array (H x W x C)")
        shape = pixels.shape
        if not (
            (pixels.ndim == 2 or (pixels.ndim == 3 and shape[2] in (1, 2, 3, 4))) and shape[0] and shape[1]
        ):
            raise UsageError(f"pixels must be H x W x C with C in 1..4, got shape {shape}")
        if self.task.needs_mask and mask is None:
            raise UsageError(f"the {self.task.name} task needs a mask (white = the area to fill)")
        if not self.task.needs_mask and mask is not None:
            raise UsageError(f"the {self.task.name} task takes no mask")
        if mask is not None and np.shape(mask) != shape[:2]:
            raise UsageError(
                f"the mask is {np.shape(mask)[::-1]} (w x h) but the image is {shape[1::-1]}; they must match"
            )

    def _prepare(self, pixels: np.ndarray, mask: np.ndarray | None) -> _Prepared:
        self._check(pixels, mask)
        squeeze = pixels.ndim == 2
        if squeeze:
            pixels = pixels[:, :, None]
        h, w, c = pixels.shape
        has_alpha = c in (2, 4)
        color = pixels[:, :, : c - 1] if has_alpha else pixels
        alpha = pixels[:, :, c - 1 :] if has_alpha else None
        gray = color.shape[2] == 1
        known = None
        if mask is not None:
            mask = np.asarray(mask)
            mask = mask if mask.dtype == np.bool_ else mask != 0  # any nonzero value means "fill"
            known = ~mask
        ph, pw = _pad_amount(h, self.multiple), _pad_amount(w, self.multiple)
        rgb = _pad(color, ph, pw)
        if gray:
            rgb = np.repeat(rgb, 3, axis=2)
        return _Prepared(
            rgb=rgb,
            mask=None if mask is None else _pad(mask, ph, pw),
            height=h,
            width=w,
            color=color,
            known=known,
            alpha=alpha,
            gray=gray,
            squeeze=squeeze,
        )

    def _finish(self, prep: _Prepared, out: torch.Tensor) -> np.ndarray:
        """H_pad x W_pad x 3 float output in [-1, 1] -> pixels shaped and typed like the input.

        Works in place on `out` (the editor's own scratch: one image of a batch, or a tiled result), so
        that a 24-megapixel image needs no second full-size float buffer.
        """
        y = out[: prep.height, : prep.width].numpy()
        if prep.gray and self.task.keeps_grayscale:
            y = (y @ _LUMA)[:, :, None]
        scale = prep.scale
        y += 1.0
        y *= scale / 2.0
        if self.strength < 1.0:
            src = prep.color if prep.color.shape[2] == y.shape[2] else np.repeat(prep.color, 3, axis=2)
            for top in range(0, y.shape[0], 256):  # in row bands: no second full-size float buffer
                band = y[top : top + 256]
                band *= self.strength
                band += (1.0 - self.strength) * src[top : top + 256].astype(np.float32)
        np.rint(y, out=y)
        np.clip(y, 0.0, scale, out=y)
        pixels = y.astype(prep.rgb.dtype)
        if prep.known is not None:
            # Bit-exact known pixels whatever autocast, blending and rounding did to them.
            src = prep.color if pixels.shape[2] == prep.color.shape[2] else np.repeat(prep.color, 3, axis=2)
            pixels[prep.known] = src[prep.known]
        if prep.alpha is not None:
            pixels = np.concatenate([pixels, prep.alpha], axis=2)
        if prep.squeeze and pixels.shape[2] == 1:
            pixels = pixels[:, :, 0]
        return pixels

    def _tiled(
        self, prep: _Prepared, plan: _TilePlan, tick: Callable[[], None] = lambda: None
    ) -> torch.Tensor:
        """Run one padded image tile by tile and blend: H_pad x W_pad x 3 float32 on the CPU."""
        hp, wp = prep.rgb.shape[:2]
        th, tw = plan.height, plan.width
        ramp = plan.ramp if self._feather else 0
        acc = torch.zeros(hp, wp, 3)
        wsum = torch.zeros(hp, wp, 1)
        boxes = [(y, x) for y in plan.ys for x in plan.xs]
        step = self._batch_limit(th, tw)
        for i in range(0, len(boxes), step):
            chunk = boxes[i : i + step]
            rgb = np.stack([prep.rgb[y : y + th, x : x + tw] for y, x in chunk])
            mask = (
                None if prep.mask is None else np.stack([prep.mask[y : y + th, x : x + tw] for y, x in chunk])
            )
            out = self._run(rgb, mask, prep.scale)
            for (y, x), tile_out in zip(chunk, out, strict=True):
                wy = _ramp(th, ramp, rise=y > 0, fall=y + th < hp)
                wx = _ramp(tw, ramp, rise=x > 0, fall=x + tw < wp)
                weight = (wy[:, None] * wx[None, :]).unsqueeze(2)
                acc[y : y + th, x : x + tw].addcmul_(tile_out, weight)
                wsum[y : y + th, x : x + tw] += weight
            tick()
        return acc.div_(wsum)

    def _steps(self, pixels: np.ndarray) -> tuple[_TilePlan | None, int]:
        """How an image will run: its tile plan (None: whole) and its number of forwards."""
        h, w = pixels.shape[:2]
        plan = self._plan(h + _pad_amount(h, self.multiple), w + _pad_amount(w, self.multiple))
        if plan is None:
            return None, 1
        step = self._batch_limit(plan.height, plan.width)
        return plan, -(-len(plan.ys) * len(plan.xs) // step)

    def edit(self, pixels: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """Edit one image: H x W x C uint8|uint16 (+ H x W bool mask for inpainting) -> same dtype.

        The result has the input's shape, except a gray input gives RGB when the task colourises
        (sketch2photo). Alpha is returned byte-identical; for inpainting, so is every unmasked pixel.
        """
        return self.edit_many([(pixels, mask)])[0]

    def edit_many(
        self,
        items: Sequence[tuple[np.ndarray, np.ndarray | None]],
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[np.ndarray]:
        """Edit several images, each in forwards of its own: an image's result never depends on the
        other images of the call (batched forwards round differently with the batch's size, by a grey
        level here and there in bf16), so a file gives the same pixels whichever files it comes with.
        A large image runs as batches of its tiles (at most ``batch_size`` a forward).

        Every item is checked before any is computed, so a bad one fails the call quickly.
        ``progress(done, total)`` is called after every forward (an image, or a batch of tiles).
        """
        steps = []
        for pixels, mask in items:
            self._check(pixels, mask)
            steps.append(self._steps(pixels))
        total = sum(n for _, n in steps)
        done = 0

        def tick() -> None:
            nonlocal done
            done += 1
            if progress is not None:
                progress(done, total)

        results: list[np.ndarray] = []
        with torch.inference_mode():
            for (pixels, mask), (plan, _) in zip(items, steps, strict=True):
                prep = self._prepare(pixels, mask)
                if plan is None:
                    rgb = prep.rgb[None] if prep.rgb.flags.writeable else prep.rgb[None].copy()
                    masks = None if prep.mask is None else prep.mask[None]
                    out = self._run(rgb, masks, prep.scale)[0]
                    tick()
                else:
                    out = self._tiled(prep, plan, tick)
                results.append(self._finish(prep, out))
        return results

    # -- PIL convenience ---------------------------------------------------------------------------------

    def __call__(self, image: Image.Image, mask: Image.Image | None = None) -> Image.Image:
        """PIL in, PIL out, in the input's mode where it can hold the result (L, LA, RGB, RGBA, I;16).

        The EXIF orientation is applied first, as the command line does: a camera JPEG stored sideways
        comes back upright (so does the mask, by its own orientation). Palette, CMYK and similar modes
        come back as RGB(A); a 16-bit gray input colourised by sketch2photo comes back as 8-bit RGB (PIL
        has no 16-bit RGB mode). The result carries no metadata: ``ganedit.edit_file`` edits a file
        with its EXIF and ICC profile kept. The mask: white (> 50 %) = fill, same size as the image.
        """
        image = _upright(image)
        mask = None if mask is None else _upright(mask)
        pixels = _pil_to_array(image)
        mask_array = None
        if mask is not None:
            if mask.size != image.size:
                (mw, mh), (iw, ih) = mask.size, image.size
                raise UsageError(f"the mask is {mw}x{mh} but the image is {iw}x{ih}; they must match")
            mask_array = np.asarray(mask.convert("L")) >= 128
        return _array_to_pil(self.edit(pixels, mask_array), int_mode=image.mode == "I")


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Fold every eval-mode BatchNorm that directly follows a conv (in an nn.Sequential) into the conv.

    At inference batch norm is a fixed per-channel affine map, so it can live in the conv's weights and
    bias: one full pass over every activation saved (about 15 % of the CPU time of the de-raining net).
    Modifies `model` in place (the editor folds its own copy) and returns it.
    """
    for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        for i in range(len(seq) - 1):
            conv, bn = seq[i], seq[i + 1]
            if not (isinstance(conv, nn.Conv2d | nn.ConvTranspose2d) and isinstance(bn, nn.BatchNorm2d)):
                continue
            if conv.groups != 1 or not bn.track_running_stats or bn.running_var is None:
                continue
            with torch.no_grad():
                scale = bn.running_var.add(bn.eps).rsqrt()
                if bn.affine:
                    scale = scale * bn.weight
                shift = -bn.running_mean * scale + (bn.bias if bn.affine else 0)
                # output channels are dim 0 of a conv weight but dim 1 of a transposed conv's
                shape = (-1, 1, 1, 1) if isinstance(conv, nn.Conv2d) else (1, -1, 1, 1)
                conv.weight.mul_(scale.view(shape))
                bias = conv.bias if conv.bias is not None else torch.zeros_like(scale)
                conv.bias = nn.Parameter(bias * scale + shift)
            seq[i + 1] = nn.Identity()
    return model


def _mirror(x: torch.Tensor) -> torch.Tensor:
    """Left-right mirror image of an N x C x H x W tensor, in the same memory layout."""
    channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    layout = torch.channels_last if channels_last else torch.contiguous_format
    return x.flip(-1).contiguous(memory_format=layout)


def _upright(image: Image.Image) -> Image.Image:
    """The image turned as its EXIF orientation says (itself when it says nothing)."""
    try:
        orientation = int(image.getexif().get(0x0112, 1))
    except (TypeError, ValueError, OSError, SyntaxError):  # an unreadable EXIF block: as stored
        return image
    return image if orientation in (0, 1) else ImageOps.exif_transpose(image)


def _pil_to_array(image: Image.Image) -> np.ndarray:
    mode = image.mode
    if mode in ("L", "LA", "RGB", "RGBA"):
        pass
    elif mode == "1":
        image = image.convert("L")
    elif mode == "La":
        image = image.convert("LA")
    elif mode in ("RGBa", "PA") or (mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
    elif mode.startswith("I;16"):
        return np.asarray(image).astype(np.uint16)[:, :, None]
    elif mode == "I":
        return np.clip(np.asarray(image), 0, 65535).astype(np.uint16)[:, :, None]
    elif mode == "F":
        raise UsageError("32-bit float images (PIL mode F) are not supported; convert to 8 or 16 bits")
    else:  # P, CMYK, YCbCr, LAB, HSV, RGBX...
        image = image.convert("RGB")
    a = np.asarray(image)
    return a[:, :, None] if a.ndim == 2 else a


def _array_to_pil(pixels: np.ndarray, *, int_mode: bool = False) -> Image.Image:
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    c = pixels.shape[2]
    if pixels.dtype == np.uint16:
        if c == 1:
            gray = pixels[:, :, 0]
            return Image.fromarray(gray.astype(np.int32), "I") if int_mode else Image.fromarray(gray)
        pixels = ((pixels.astype(np.uint32) + 128) // 257).astype(np.uint8)  # PIL has no 16-bit colour
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[c]
    return Image.fromarray(pixels[:, :, 0] if c == 1 else pixels, mode)


# PRECISIONS, cpu_bf16_native, cpu_thread_count, select_device: from runtime.devices, kept for old imports
__all__ = [
    "PRECISIONS",
    "Editor",
    "cpu_bf16_native",
    "cpu_thread_count",
    "fold_batchnorm",
    "select_device",
    "tile_starts",
]
