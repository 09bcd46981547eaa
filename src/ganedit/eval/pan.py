"""`ganedit eval`: PSNR and SSIM of a PAN model against ground truth, next to a baseline on the same images.

The protocol is fixed so that figures in the model cards can be reproduced exactly:

* **Images.** A folder of clean photos (the degradation is synthesised) or a paired folder
  (``input/`` + ``target/`` matched by file stem, plus ``mask/`` for inpainting); for labels2photo also a
  folder of pix2pix's side-by-side pairs ``photo | label map`` (the CMP facades' own format). Files are
  taken in sorted order (``--limit`` keeps the first N). Each image is reduced (Lanczos, never enlarged;
  nearest-neighbour for label maps) so that its short side is at most ``size`` and centre-cropped to at
  most ``size x size``; a pair gets the same geometry.
* **Degradation** (clean photos only), drawn per image from a generator seeded by the seed and the file's
  relative path, so adding a file does not change the others: rain from `sample_rain_params` with a
  strength log-uniform in [0.5, 1.5] (the training range), a free-form mask covering 5-50 % of the image,
  or an XDoG drawing from `sample_sketch_params`: the same *distributions* as training, never the same
  samples (training draws from its own seed stream, and the held-out photos are never trained on).
* **Metrics** (`ganedit.metrics`, on 8-bit RGB in [0, 1]): derain, sketch2photo and labels2photo over
  the whole image; inpaint inside the hole only (outside it the output *is* the input). The colour tasks
  (sketch2photo, labels2photo) add the mean CIELAB chroma of output, truth and baseline, and the colour
  histogram distance to the truth (`colour_histogram_distance`): PSNR and SSIM alone reward a grey average.
* **Baselines**: derain - the rainy input unchanged; inpaint - the harmonic (Laplace) fill of the hole
  from its boundary, the smoothest interpolation there is and a strong PSNR baseline; sketch2photo and
  labels2photo - the photo's own mean colour everywhere (an oracle colour the model does not get).
  Inpainting also reports the texture ratio in the hole (`gradient_energy` of the fill over the truth's:
  1 = as much detail as the photo, 0 = a blur) for the model and the harmonic fill, and OpenCV's Telea
  inpainting as a second baseline when opencv-python-headless is installed (``pip install
  "ganedit[eval]"``; it is not a runtime dependency).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .editor import Editor
from .errors import UsageError
from .images import discover, read_mask, read_picture, rgb8
from .metrics import (
    SSIM_WINDOW,
    bt601_luma,
    colour_histogram_distance,
    gradient_energy,
    mean_chroma,
    psnr,
    ssim,
)

__all__ = ["EvalResult", "ImageScore", "evaluate", "harmonic_fill", "load_pairs", "telea_fill"]

RAIN_STRENGTH = (0.5, 1.5)
INPUT_DIRS = ("input", "rain")  # paired folders: input/ + target/, or rain/ + clean/ as the derain sets have
TARGET_DIRS = ("target", "clean")
MASK_COVERAGE = (0.05, 0.5)
BASELINES = {
    "derain": "the rainy input unchanged",
    "inpaint": "harmonic (Laplace) fill of the hole from its boundary, measured inside the hole",
    "sketch2photo": "the photo's mean colour everywhere",
    "labels2photo": "the photo's mean colour everywhere",
}
COLOUR_TASKS = ("sketch2photo", "labels2photo")  # scored on colour statistics too


@dataclass(frozen=True)
class ImageScore:
    name: str
    psnr: float
    ssim: float
    baseline_psnr: float
    baseline_ssim: float
    # colour tasks only (COLOUR_TASKS): mean CIELAB chroma, and the colour histogram distance to the truth
    chroma: float | None = None
    target_chroma: float | None = None
    baseline_chroma: float | None = None
    histogram_distance: float | None = None
    baseline_histogram_distance: float | None = None
    # derain only: PSNR / SSIM on the Y channel of BT.601, the de-raining papers' protocol
    psnr_y: float | None = None
    ssim_y: float | None = None
    baseline_psnr_y: float | None = None
    baseline_ssim_y: float | None = None
    # identity runs only: the largest per-channel change of the mean, in 8-bit levels (a colour cast)
    channel_shift: float | None = None
    # inpaint only: texture ratio in the hole (the fill's gradient energy / the truth's), and OpenCV Telea
    texture_ratio: float | None = None
    baseline_texture_ratio: float | None = None
    telea_psnr: float | None = None
    telea_ssim: float | None = None
    telea_texture_ratio: float | None = None


_LUMA_FIELDS = ("psnr_y", "ssim_y", "baseline_psnr_y", "baseline_ssim_y")
_INPAINT_FIELDS = (
    "texture_ratio",
    "baseline_texture_ratio",
    "telea_psnr",
    "telea_ssim",
    "telea_texture_ratio",
)
_COLOUR_FIELDS = (
    "chroma",
    "target_chroma",
    "baseline_chroma",
    "histogram_distance",
    "baseline_histogram_distance",
)


@dataclass
class EvalResult:
    model: str
    task: str
    sha256: str | None
    images: int
    protocol: str
    baseline: str
    seconds: float
    precision: str | None = None
    flip_average: bool | None = None
    identity: bool = False  # clean photos in, the ideal output is the input itself
    per_image: list[ImageScore] = field(default_factory=list)

    @property
    def metrics(self) -> dict[str, float]:
        def mean(key: str) -> float:
            return float(np.mean([getattr(s, key) for s in self.per_image]))

        if self.identity:  # against the input itself: no baseline, no gain
            out = {k: mean(k) for k in ("psnr", "ssim")}
        else:
            out = {k: mean(k) for k in ("psnr", "ssim", "baseline_psnr", "baseline_ssim")}
            out["psnr_gain"] = out["psnr"] - out["baseline_psnr"]
            out["ssim_gain"] = out["ssim"] - out["baseline_ssim"]
            out["better_psnr_fraction"] = float(np.mean([s.psnr > s.baseline_psnr for s in self.per_image]))
        out["worst_psnr"] = float(min(s.psnr for s in self.per_image))
        if self.per_image and self.per_image[0].psnr_y is not None:
            out.update({k: mean(k) for k in _LUMA_FIELDS if not (self.identity and k.startswith("baseline"))})
            if not self.identity:
                out["psnr_y_gain"] = out["psnr_y"] - out["baseline_psnr_y"]
        for key in _INPAINT_FIELDS:
            values = [getattr(s, key) for s in self.per_image if getattr(s, key) is not None]
            if values and len(values) == len(self.per_image):
                out[key] = float(np.mean(values))
        if self.identity:
            out["max_channel_shift"] = float(max(s.channel_shift or 0.0 for s in self.per_image))
        if self.per_image and self.per_image[0].chroma is not None:
            out.update({k: mean(k) for k in _COLOUR_FIELDS})
            out["chroma_ratio"] = out["chroma"] / out["target_chroma"] if out["target_chroma"] else math.nan
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; a PSNR of identical images (infinite) becomes null, so the JSON stays strict."""

        def num(value: float) -> float | None:
            return round(value, 4) if math.isfinite(value) else None

        return {
            "model": self.model,
            "task": self.task,
            "sha256": self.sha256,
            "images": self.images,
            "protocol": self.protocol,
            "baseline": self.baseline,
            "precision": self.precision,
            "flip_average": self.flip_average,
            "identity": self.identity,
            "seconds": round(self.seconds, 2),
            "metrics": {k: num(v) for k, v in self.metrics.items()},
            "per_image": [
                {
                    "name": s.name,
                    "psnr": num(s.psnr),
                    "ssim": num(s.ssim),
                    "baseline_psnr": num(s.baseline_psnr),
                    "baseline_ssim": num(s.baseline_ssim),
                    **{
                        k: num(getattr(s, k))
                        for k in (*_LUMA_FIELDS, *_COLOUR_FIELDS, *_INPAINT_FIELDS, "channel_shift")
                        if getattr(s, k) is not None
                    },
                }
                for s in self.per_image
            ],
        }


@dataclass(frozen=True)
class Pair:
    """One evaluation item: the model's input, the ground truth and (inpainting) the hole; uint8 RGB."""

    name: str
    input: np.ndarray
    target: np.ndarray
    mask: np.ndarray | None = None  # H x W bool, True = hole


# ----------------------------------------------------------------------------------------- geometry


def _fit(pixels: np.ndarray, size: int, resample: Image.Resampling) -> np.ndarray:
    """Reduce so the short side is at most `size` (never enlarge), then centre-crop to at most size^2."""
    height, width = pixels.shape[:2]
    short = min(height, width)
    if short > size:
        scale = size / short
        new = (max(size, round(width * scale)), max(size, round(height * scale)))
        squeeze = pixels[:, :, 0] if pixels.shape[2] == 1 else pixels
        pixels = np.asarray(Image.fromarray(squeeze).resize(new, resample))
        if pixels.ndim == 2:
            pixels = pixels[:, :, None]
        height, width = pixels.shape[:2]
    top, left = (height - min(height, size)) // 2, (width - min(width, size)) // 2
    return np.ascontiguousarray(pixels[top : top + min(height, size), left : left + min(width, size)])


def _generator(seed: int, name: str) -> torch.Generator:
    digest = hashlib.sha256(f"ganedit-eval/{seed}/{name}".encode()).digest()
    g = torch.Generator()
    g.manual_seed(int.from_bytes(digest[:8], "little") >> 1)
    return g


RAIN_SAMPLERS = {"classic": "sample_rain_params", "streaks": "sample_streak_rain_params"}


def _synthesise(task: str, clean: np.ndarray, name: str, seed: int, rain: str = "classic") -> Pair:
    from .train import synth

    g = _generator(seed, name)
    x = torch.from_numpy(clean.copy()).permute(2, 0, 1).float().div(255.0)
    mask = None
    if task == "derain":
        low, high = RAIN_STRENGTH
        strength = math.exp(
            math.log(low) + (math.log(high) - math.log(low)) * float(torch.rand((), generator=g))
        )
        sampler = getattr(synth, RAIN_SAMPLERS[rain])
        degraded = synth.add_rain(x, g, params=sampler(g, scale=strength))
    elif task == "sketch2photo":
        degraded = synth.make_sketch(x, params=synth.sample_sketch_params(g))
    elif task == "inpaint":
        hole = synth.make_mask(x.shape[1], x.shape[2], g, coverage=MASK_COVERAGE)
        mask = hole[0].numpy() > 0.5
        degraded = x * (1 - hole)
    else:
        raise UsageError(f"ganedit eval does not know how to degrade photos for the {task!r} task")
    pixels = degraded.clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return Pair(name=name, input=np.ascontiguousarray(pixels), target=clean, mask=mask)


def load_pairs(
    task: str, data: Path, *, seed: int, size: int, limit: int | None, rain: str = "classic"
) -> tuple[list[Pair], str]:
    """The evaluation items of `data` and a one-line description of how they were made."""
    data = Path(data)
    if not data.is_dir():
        raise UsageError(f"--data {data} is not a folder")
    if rain not in RAIN_SAMPLERS:
        raise UsageError(f"rain must be one of {', '.join(RAIN_SAMPLERS)}, not {rain!r}")
    target_dir = next((name for name in TARGET_DIRS if (data / name).is_dir()), None)
    input_dir = next((name for name in (*INPUT_DIRS, "mask") if (data / name).is_dir()), None)
    paired = target_dir is not None and input_dir is not None
    pairs: list[Pair] = []
    empty_masks = 0
    if paired:
        assert target_dir is not None
        targets = {
            f.rel.with_suffix("").as_posix(): f.path
            for f in discover([data / target_dir], recursive=True).files
        }
        kind = "mask" if task == "inpaint" else next((n for n in INPUT_DIRS if (data / n).is_dir()), "input")
        if not (data / kind).is_dir():
            raise UsageError(f"{data}: a paired folder for {task!r} needs {kind}/ next to {target_dir}/")
        others = {
            f.rel.with_suffix("").as_posix(): f.path for f in discover([data / kind], recursive=True).files
        }
        stems = sorted(targets)
        missing = [s for s in stems if s not in others]
        if missing:
            raise UsageError(
                f"{data}: {target_dir}/{missing[0]}.* has no {kind}/{missing[0]}.* (matched by stem)"
            )
        for stem in stems:
            if limit is not None and len(pairs) >= limit:
                break
            target = _fit(rgb8(read_picture(targets[stem]).pixels), size, Image.Resampling.LANCZOS)
            if task == "inpaint":
                full = read_picture(targets[stem]).pixels
                hole, _ = read_mask(others[stem], (full.shape[1], full.shape[0]))
                m = (
                    _fit(hole.astype(np.uint8)[:, :, None] * 255, size, Image.Resampling.NEAREST)[:, :, 0]
                    > 127
                )
                if not m.any():
                    empty_masks += 1
                    continue  # nothing to fill, nothing to measure
                pairs.append(Pair(stem, np.where(m[:, :, None], 0, target).astype(np.uint8), target, m))
            else:
                source = rgb8(read_picture(others[stem]).pixels)
                if source.shape[:2] != read_picture(targets[stem]).pixels.shape[:2]:
                    raise UsageError(f"{data}: {kind}/{stem} and {target_dir}/{stem} differ in size")
                pairs.append(Pair(stem, _fit(source, size, Image.Resampling.LANCZOS), target))
        protocol = (
            f"paired folder ({kind}/ + {target_dir}/), short side <= {size} px, centre crop <= {size}^2"
        )
        if empty_masks:
            protocol += f"; {empty_masks} pair(s) with an empty mask skipped"
    elif task == "labels2photo":
        for found in discover([data], recursive=True).files[:limit]:
            both = rgb8(read_picture(found.path).pixels)
            half = both.shape[1] // 2
            if half < SSIM_WINDOW:
                raise UsageError(f"{found.path}: too narrow for a photo | label map pair")
            photo, labels = both[:, :half], both[:, half : 2 * half]
            # NEAREST for the label map: a resampling filter would blend class colours into new ones
            pairs.append(
                Pair(
                    found.rel.as_posix(),
                    _fit(labels, size, Image.Resampling.NEAREST),
                    _fit(photo, size, Image.Resampling.LANCZOS),
                )
            )
        protocol = f"side-by-side pairs (photo | label map), short side <= {size} px, centre crop <= {size}^2"
    else:
        files = discover([data], recursive=True).files
        for found in files[:limit]:
            clean = _fit(rgb8(read_picture(found.path).pixels), size, Image.Resampling.LANCZOS)
            pairs.append(_synthesise(task, clean, found.rel.as_posix(), seed, rain))
        what = {
            "derain": f"rain ({RAIN_SAMPLERS[rain]}, strength log-uniform {RAIN_STRENGTH})",
            "inpaint": f"free-form masks (make_mask, coverage {MASK_COVERAGE})",
            "sketch2photo": "XDoG drawings (sample_sketch_params)",
        }[task]
        protocol = f"clean photos, {what} synthesised with seed {seed}; short side <= {size} px, centre crop"
    if not pairs:
        why = "every mask is empty" if empty_masks else "no evaluation images found"
        raise UsageError(f"{data}: {why}")
    for pair in pairs:
        if min(pair.target.shape[:2]) < SSIM_WINDOW:
            height, width = pair.target.shape[:2]
            raise UsageError(
                f"{data}: {pair.name} is {width} x {height} px, smaller than the "
                f"{SSIM_WINDOW} x {SSIM_WINDOW} SSIM window; remove it or use larger images"
            )
    return pairs, protocol


def _identity_pairs(data: Path, *, size: int, limit: int | None) -> tuple[list[Pair], str]:
    """Every photo of `data` (recursively) as its own input and truth."""
    data = Path(data)
    if not data.is_dir():
        raise UsageError(f"--data {data} is not a folder")
    pairs = []
    for found in discover([data], recursive=True).files[:limit]:
        clean = _fit(rgb8(read_picture(found.path).pixels), size, Image.Resampling.LANCZOS)
        pairs.append(Pair(found.rel.as_posix(), clean, clean))
    if not pairs:
        raise UsageError(f"{data}: no evaluation images found")
    return pairs, f"identity: rain-free photos given as they are, short side <= {size} px, centre crop"


# -------------------------------------------------------------------------------------------- baselines


def harmonic_fill(pixels: np.ndarray, hole: np.ndarray, *, iterations: int = 200) -> np.ndarray:
    """Fill `hole` (H x W bool) of `pixels` (H x W x C uint8) with the solution of Laplace's equation whose
    boundary values are the known pixels: coarse-to-fine (each level starts from the upsampled coarser
    solution, so the low frequencies converge quickly) with Jacobi sweeps at every level."""
    x = torch.from_numpy(pixels).permute(2, 0, 1)[None].double()
    known = torch.from_numpy(~hole)[None, None].double()
    if not bool(known.any()):
        return np.broadcast_to(pixels.reshape(-1, pixels.shape[2]).mean(0), pixels.shape).astype(pixels.dtype)

    def solve(values: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        height, width = values.shape[-2:]
        if min(height, width) > 8:
            # masked average pooling: a coarse pixel is known where any of its 4 children is
            w2 = F.avg_pool2d(weight, 2, ceil_mode=True)
            v2 = F.avg_pool2d(values * weight, 2, ceil_mode=True) / w2.clamp_min(1e-12)
            coarse = solve(v2, (w2 > 0).double())
            start = F.interpolate(coarse, scale_factor=2, mode="bilinear", align_corners=False)
            start = start[..., :height, :width]
        else:
            mean = (values * weight).sum((2, 3), keepdim=True) / weight.sum().clamp_min(1e-12)
            start = mean.expand_as(values)
        known_here = weight > 0
        out = torch.where(known_here, values, start)
        kernel = torch.tensor([[0, 0.25, 0], [0.25, 0, 0.25], [0, 0.25, 0]], dtype=values.dtype)
        kernel = kernel.expand(values.shape[1], 1, 3, 3)
        for _ in range(iterations):
            smooth = F.conv2d(F.pad(out, (1, 1, 1, 1), mode="replicate"), kernel, groups=values.shape[1])
            out = torch.where(known_here, values, smooth)
        return out

    filled = solve(x, known)[0].permute(1, 2, 0).round().clamp(0, 255).numpy().astype(pixels.dtype)
    return np.where(hole[:, :, None], filled, pixels)


def telea_fill(pixels: np.ndarray, hole: np.ndarray) -> np.ndarray | None:
    """OpenCV's Telea inpainting (radius 3) of `hole` in 8-bit RGB `pixels`; None without OpenCV."""
    try:
        import cv2
    except ImportError:
        return None
    bgr = np.ascontiguousarray(pixels[:, :, ::-1])
    filled = cv2.inpaint(bgr, hole.astype(np.uint8) * 255, 3, cv2.INPAINT_TELEA)
    return np.where(hole[:, :, None], filled[:, :, ::-1], pixels).astype(np.uint8)


def _texture_and_telea(pair: Pair, out: np.ndarray, ref: np.ndarray, y: np.ndarray) -> dict[str, float]:
    assert pair.mask is not None
    truth = gradient_energy(y, pair.mask)
    scores = {
        "texture_ratio": gradient_energy(out, pair.mask) / truth if truth > 0 else math.nan,
        "baseline_texture_ratio": gradient_energy(ref, pair.mask) / truth if truth > 0 else math.nan,
    }
    telea = telea_fill(pair.input, pair.mask)
    if telea is not None:
        t = telea.astype(np.float64) / 255.0
        scores["telea_psnr"] = psnr(t, y, mask=pair.mask)
        scores["telea_ssim"] = ssim(t, y, mask=pair.mask)
        scores["telea_texture_ratio"] = gradient_energy(t, pair.mask) / truth if truth > 0 else math.nan
    return scores


def _baseline(task: str, pair: Pair) -> np.ndarray:
    if task == "derain":
        return pair.input
    if task == "inpaint":
        assert pair.mask is not None
        return harmonic_fill(pair.input, pair.mask)
    mean = pair.target.reshape(-1, 3).mean(0)
    return np.broadcast_to(np.round(mean), pair.target.shape).astype(np.uint8)


# -------------------------------------------------------------------------------------------- evaluate


def evaluate(
    editor: Editor,
    data: Path,
    *,
    seed: int = 0,
    limit: int | None = None,
    size: int = 512,
    identity: bool = False,
    rain: str = "classic",
    on_image: Callable[[ImageScore], None] | None = None,
) -> EvalResult:
    """Evaluate `editor` on `data` (see the module docstring for the protocol).

    ``identity``: `data` is a folder of photos that need no edit (rain-free photos for derain); each is
    given to the model as it is and the output is compared with it, so PSNR measures how much the model
    changes a photo it should leave alone (ideal: infinite), ``channel_shift`` any colour cast."""
    task = editor.task.name
    if task not in BASELINES:
        raise UsageError(f"ganedit eval measures PAN tasks ({', '.join(BASELINES)}), not {task!r}")
    if identity and task != "derain":
        raise UsageError("--identity measures derain models on rain-free photos; other tasks always edit")
    start = time.perf_counter()
    if identity:
        pairs, protocol = _identity_pairs(data, size=size, limit=limit)
    else:
        pairs, protocol = load_pairs(task, data, seed=seed, size=size, limit=limit, rain=rain)
    result = EvalResult(
        model=editor.name,
        task=task,
        sha256=editor.sha256,
        images=len(pairs),
        protocol=protocol,
        baseline="none: the ideal output is the input itself" if identity else BASELINES[task],
        seconds=0.0,
        precision=editor.precision,
        flip_average=editor.flip_average,
        identity=identity,
    )
    for pair in pairs:
        output = editor.edit(pair.input, pair.mask)
        base = _baseline(task, pair)
        y = pair.target.astype(np.float64) / 255.0
        out, ref = output.astype(np.float64) / 255.0, base.astype(np.float64) / 255.0
        extra: dict[str, float] = {}  # the task's own figures (Y channel, colour, texture)
        if task == "derain":
            y_out, y_true, y_ref = bt601_luma(out), bt601_luma(y), bt601_luma(ref)
            extra |= {
                "psnr_y": psnr(y_out, y_true),
                "ssim_y": ssim(y_out, y_true),
                "baseline_psnr_y": psnr(y_ref, y_true),
                "baseline_ssim_y": ssim(y_ref, y_true),
            }
        if task == "inpaint":
            extra.update(_texture_and_telea(pair, out, ref, y))
        if identity:
            shift = output.reshape(-1, 3).astype(np.float64).mean(0) - pair.input.reshape(-1, 3).mean(0)
            extra["channel_shift"] = float(np.abs(shift).max())
        if task in COLOUR_TASKS:
            extra.update(
                chroma=mean_chroma(out),
                target_chroma=mean_chroma(y),
                baseline_chroma=mean_chroma(ref),
                histogram_distance=colour_histogram_distance(out, y),
                baseline_histogram_distance=colour_histogram_distance(ref, y),
            )
        score = ImageScore(
            name=pair.name,
            psnr=psnr(out, y, mask=pair.mask),
            ssim=ssim(out, y, mask=pair.mask),
            baseline_psnr=psnr(ref, y, mask=pair.mask),
            baseline_ssim=ssim(ref, y, mask=pair.mask),
            **extra,
        )
        result.per_image.append(score)
        if on_image is not None:
            on_image(score)
    result.seconds = time.perf_counter() - start
    return result
