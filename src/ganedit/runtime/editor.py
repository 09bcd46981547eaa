"""Editor: a loaded generator on a device, applied to whole photographs of any size.

The generators are fully convolutional but want H and W divisible by ``model.pad_multiple`` and, on a
24-megapixel photo, far more activation memory than a laptop has. So the editor pads to the multiple and,
for large images, runs equal overlapping tiles blended over their overlap (`ganedit.runtime.tiling`). It:

- runs its own copy of the model with batch norm folded into the convolutions, under
  ``torch.inference_mode()`` with channels-last tensors (faster convolutions on CPUs, and what tensor
  cores want), under bf16/fp16 autocast on CUDA and bf16 on CPUs with native bf16 arithmetic
  (AVX512-BF16 or AMX; elsewhere bf16 is emulated and slower), re-running a batch in fp32 if its output
  is not finite;
- averages, by default, the model's output on the image and on its mirror image (flip averaging, the
  cheapest of the "self-ensembles" of Timofte et al. 2016 and EDSR): the two passes make independent
  small mistakes, so their mean is a little closer to the truth (the gain is in the model cards).

Pixels are H x W x C arrays (C = 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA; uint8 or uint16), scaled to
[-1, 1] for the model. Alpha is carried through untouched; grayscale stays grayscale when the task says
so. No file I/O here: see the io package and the batch package.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import nn
from torch.nn import functional as F

from ..checkpoint import CheckpointInfo, load_checkpoint
from ..errors import CheckpointError, UsageError
from ..io.picture import REC601_LUMA
from ..palette import check_label_map
from ..tasks import TASKS, Task, get_task
from .devices import limit_threads, resolve_precision, select_device
from .regions import Region, plan_regions
from .tiling import TilePlan, auto_tile, blend_tiles, pad, pad_amount, plan_tiles

# CPU: at most this many pixels go through the model in one batch (untiled small images, edit_many).
CPU_BATCH_PIXELS = 1 << 20
# CUDA: use at most this fraction of the free memory for one batch.
CUDA_MEMORY_FRACTION = 0.5
# Rec. 601 luma, as Pillow's convert("L") uses: gray output of a gray input stays consistent with PIL.
_LUMA = np.array(REC601_LUMA, dtype=np.float32)


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


# ---------------------------------------------------------------------------------------------------------
# Editor


class Editor:
    """A generator loaded on a device, ready to edit images of any size (see the module docstring).

    tile: None = decide by image size and device memory; 0 = never tile; N = tiles of N px (rounded up
    to the model's multiple). overlap: px shared by neighbouring tiles (None: tile / 16 within 32..128 px),
    rounded so that tiles stay on the model's grid (the real overlap can be larger).
    flip_average: also run the mirror image and average the two outputs (twice the model time); None =
    the model's own choice (`CheckpointInfo.flip_average`: on, unless the checkpoint says otherwise).
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
        flip_average: bool | None = None,
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
        self.multiple: int = int(model.pad_multiple)  # type: ignore[arg-type]  # every ganedit generator has it
        self.tile = None if tile is None else (0 if tile == 0 else -(-tile // self.multiple) * self.multiple)
        self.overlap = overlap
        self.batch_size = batch_size
        self.flip_average: bool = info.flip_average if flip_average is None else bool(flip_average)
        if self.device.type == "cpu":
            limit_threads()
        # The editor's own copy, so that folding batch norm never alters the caller's (trainable) model.
        model = fold_batchnorm(copy.deepcopy(model).eval()).to(self.device)
        if self.device.type in ("cpu", "cuda"):
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self._cuda_bytes_per_pixel: float | None = None
        self._feather = True  # tests switch blending off to show that it is what hides the seams

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        name: str | None = None,
        sha256: str | None = None,
        task: str | None = None,
        device: str = "auto",
        precision: str = "auto",
        tile: int | None = None,
        batch_size: int = 4,
        flip_average: bool | None = None,
        strength: float = 1.0,
    ) -> Editor:
        """Load a PAN checkpoint file (already located and verified: `ganedit.api.locate`) onto a device.

        `task`: the task the file must be for (None: the one it says). `name`: for reports (default: the
        file's name); `sha256`: the file's, for provenance records.
        """
        dev = select_device(device)
        model, info = load_checkpoint(Path(path), task=task, arch="pan", device=dev)
        return cls(
            model,
            task=get_task(info.task),
            info=info,
            name=name or Path(path).name,
            sha256=sha256,
            device=dev,
            precision=precision,
            tile=tile,
            batch_size=batch_size,
            flip_average=flip_average,
            strength=strength,
        )

    # -- configuration -----------------------------------------------------------------------------------

    def _plan(self, h: int, w: int) -> TilePlan | None:
        """How to tile a padded h x w image, or None to run it whole."""
        tile = self.tile
        if tile is None and self.device.type == "cuda":
            budget, bpp = self._cuda_budget(), self._bytes_per_pixel()
            tile = auto_tile(
                "cuda", h, w, self.multiple, budget=budget, bytes_per_pixel=bpp, batch_size=self.batch_size
            )
        elif tile is None:
            tile = auto_tile(self.device.type, h, w, self.multiple)
        return plan_tiles(h, w, tile, self.overlap, self.multiple)

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
        ph, pw = pad_amount(h, self.multiple), pad_amount(w, self.multiple)
        rgb = pad(color, ph, pw)
        if gray:
            rgb = np.repeat(rgb, 3, axis=2)
        return _Prepared(
            rgb=rgb,
            mask=None if mask is None else pad(mask, ph, pw),
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
        self, prep: _Prepared, plan: TilePlan, tick: Callable[[], None] = lambda: None
    ) -> torch.Tensor:
        """Run one padded image tile by tile and blend: H_pad x W_pad x 3 float32 on the CPU."""
        return blend_tiles(
            prep.rgb,
            prep.mask,
            plan,
            lambda rgb, mask: self._run(rgb, mask, prep.scale),  # looked up per call: tests spy on _run
            batch=self._batch_limit(plan.height, plan.width),
            feather=self._feather,
            tick=tick,
        )

    def _steps(
        self, pixels: np.ndarray, mask: np.ndarray | None
    ) -> tuple[TilePlan | list[Region] | None, int]:
        """How an image will run: whole (None), in tiles (a TilePlan) or, inpainting a large photo, hole
        by hole (its regions, runtime.regions); and its number of forwards."""
        h, w = pixels.shape[:2]
        plan = self._plan(h + pad_amount(h, self.multiple), w + pad_amount(w, self.multiple))
        if plan is None:
            return None, 1
        if mask is not None:
            regions = plan_regions(np.asarray(mask) != 0, self.multiple)
            return regions, len(regions)
        step = self._batch_limit(plan.height, plan.width)
        return plan, -(-len(plan.ys) * len(plan.xs) // step)

    def _regions(self, prep: _Prepared, regions: list[Region], tick: Callable[[], None]) -> torch.Tensor:
        """Inpaint a padded image region by region: H_pad x W_pad x 3 float32 on the CPU, the model's
        fill in the holes and the input elsewhere (which `_finish` replaces by the exact input anyway)."""
        assert prep.mask is not None  # regions are planned for inpainting only
        out = torch.from_numpy(prep.rgb.astype(np.float32)).mul_(2.0 / prep.scale).sub_(1.0)
        for r in regions:
            crop = prep.rgb[r.top : r.top + r.height, r.left : r.left + r.width]
            hole = prep.mask[r.top : r.top + r.height, r.left : r.left + r.width]
            rgb, run_hole = crop, hole
            if r.scaled:  # area-average down; a cell with any hole pixel is hole
                size = (r.run_height, r.run_width)
                x = torch.from_numpy(crop.astype(np.float32)).permute(2, 0, 1)[None]
                rgb = F.interpolate(x, size=size, mode="area")[0].permute(1, 2, 0).numpy()
                m = torch.from_numpy(hole)[None, None].float()
                run_hole = F.interpolate(m, size=size, mode="area")[0, 0].numpy() > 0
            ph, pw = pad_amount(r.run_height, self.multiple), pad_amount(r.run_width, self.multiple)
            padded = pad(np.ascontiguousarray(rgb), ph, pw)[None].copy()
            y = self._run(padded, pad(run_hole, ph, pw)[None], prep.scale)[0][: r.run_height, : r.run_width]
            if r.scaled:
                y = y.permute(2, 0, 1)[None]
                y = F.interpolate(y, size=(r.height, r.width), mode="bicubic", align_corners=False)
                y = y[0].permute(1, 2, 0).clamp_(-1.0, 1.0)
            holes = torch.from_numpy(np.ascontiguousarray(hole))
            window = out[r.top : r.top + r.height, r.left : r.left + r.width]
            window[holes] = y[holes]
            tick()
        return out

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
            steps.append(self._steps(pixels, mask))
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
                elif isinstance(plan, list):
                    out = self._regions(prep, plan, tick)
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
    bias: one full pass over every activation saved, a noticeable share of a small net's CPU time.
    Modifies `model` in place (the editor folds its own copy) and returns it.
    """
    for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        for i in range(len(seq) - 1):
            conv, bn = seq[i], seq[i + 1]
            if not (isinstance(conv, nn.Conv2d | nn.ConvTranspose2d) and isinstance(bn, nn.BatchNorm2d)):
                continue
            if conv.groups != 1 or bn.running_var is None or bn.running_mean is None:
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


__all__ = ["Editor", "fold_batchnorm"]
