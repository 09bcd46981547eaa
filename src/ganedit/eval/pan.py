"""`ganedit eval`: PSNR and SSIM of a PAN model against ground truth, next to a baseline on the same images.

The protocol is fixed so that figures in the model cards can be reproduced exactly:

* **Images.** A folder of clean photos (the degradation is synthesised) or a paired folder
  (`ganedit.data.pairs`: ``input/`` + ``target/`` matched by file stem, plus ``mask/`` for inpainting); for
  labels2photo also a folder of pix2pix's side-by-side pairs ``photo | label map`` (the CMP facades' own
  format). Files are taken in sorted order (``--limit`` keeps the first N). Each image is reduced (Lanczos,
  never enlarged; nearest-neighbour for label maps) so that its short side is at most ``size`` and
  centre-cropped to at most ``size x size``; a pair gets the same geometry.
* **Degradation** (clean photos only), drawn per image from a generator seeded by the seed and the file's
  relative path, so adding a file does not change the others: rain from `sample_rain_params` with a strength
  log-uniform in [0.5, 1.5] (the training range), a free-form mask covering 5-50 % of the image, or an XDoG
  drawing from `sample_sketch_params`: the same *distributions* as training, never the same samples
  (training draws from its own seed stream, and the held-out photos are never trained on).
* **Metrics** (`ganedit.eval.metrics`, on 8-bit RGB in [0, 1]): derain, sketch2photo and labels2photo over
  the whole image; inpaint inside the hole only (outside it the output *is* the input). The colour tasks
  (sketch2photo, labels2photo) add the mean CIELAB chroma of output, truth and baseline, and the colour
  histogram distance to the truth (`colour_histogram_distance`): PSNR and SSIM alone reward a grey average.
* **Baselines** (`ganedit.eval.baselines`): derain - the rainy input unchanged; inpaint - the harmonic
  (Laplace) fill of the hole from its boundary, the smoothest interpolation there is and a strong PSNR
  baseline; sketch2photo and labels2photo - the photo's own mean colour everywhere (an oracle colour the
  model does not get). Inpainting also reports the texture ratio in the hole (`gradient_energy` of the fill
  over the truth's: 1 = as much detail as the photo, 0 = a blur) for the model and the harmonic fill, and
  OpenCV's Telea inpainting as a second baseline when opencv-python-headless is installed (``pip install
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
from PIL import Image

from ..data import synth
from ..data.pairs import MaskPolicy, PairedFiles, PairedFolder, is_paired, match_pairs, split_side_by_side
from ..errors import UsageError
from ..io.decode import read_picture
from ..io.discover import discover
from ..io.masks import read_mask
from ..io.picture import rgb8
from ..runtime.editor import Editor
from .baselines import BASELINES, baseline, harmonic_fill, telea_fill
from .metrics import (
    SSIM_WINDOW,
    bt601_luma,
    colour_histogram_distance,
    gradient_energy,
    mean_chroma,
    psnr,
    ssim,
)

__all__ = ["EvalResult", "ImageScore", "Pair", "evaluate", "harmonic_fill", "load_pairs", "telea_fill"]

RAIN_STRENGTH = (0.5, 1.5)
MASK_COVERAGE = (0.05, 0.5)
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
            # A photo given back bit for bit has an infinite PSNR, and so has the mean of any set with one:
            # say how many came back unchanged and how far the others moved.
            changed = [s.psnr for s in self.per_image if math.isfinite(s.psnr)]
            out["unchanged_fraction"] = 1.0 - len(changed) / len(self.per_image)
            out["changed_psnr"] = float(np.mean(changed)) if changed else math.inf
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


def _synthesise(task: str, clean: np.ndarray, name: str, seed: int, rain: str = "classic") -> Pair:
    g = _generator(seed, name)
    x = torch.from_numpy(clean.copy()).permute(2, 0, 1).float().div(255.0)
    mask = None
    if task == "derain":
        low, high = RAIN_STRENGTH
        strength = math.exp(
            math.log(low) + (math.log(high) - math.log(low)) * float(torch.rand((), generator=g))
        )
        sampler = synth.RAIN_SAMPLERS[rain]
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


def _paired_folder(task: str, data: Path, size: int, limit: int | None) -> tuple[list[Pair], str]:
    """The pairs of a paired folder (`ganedit.data.pairs`); inpainting takes its holes from mask/."""
    inpaint = task == "inpaint"
    masks: MaskPolicy = "required" if inpaint else "ignore"
    folder = match_pairs(data, needs_input=not inpaint, masks=masks, strict=False)
    kind = folder.mask_dir if inpaint else folder.input_dir
    pairs: list[Pair] = []
    empty_masks = 0
    for found in folder.pairs:
        if limit is not None and len(pairs) >= limit:
            break
        pair = _inpaint_pair(found, size) if inpaint else _paired(folder, found, size)
        if pair is None:
            empty_masks += 1  # nothing to fill, nothing to measure
            continue
        pairs.append(pair)
    protocol = (
        f"paired folder ({kind}/ + {folder.target_dir}/), short side <= {size} px, centre crop <= {size}^2"
    )
    if empty_masks:
        protocol += f"; {empty_masks} pair(s) with an empty mask skipped"
    if not pairs and empty_masks:
        raise UsageError(f"{data}: every mask is empty")
    return pairs, protocol


def _paired(folder: PairedFolder, found: PairedFiles, size: int) -> Pair:
    assert found.input is not None
    full = rgb8(read_picture(found.target).pixels)
    source = rgb8(read_picture(found.input).pixels)
    if source.shape[:2] != full.shape[:2]:
        where = f"{folder.input_dir}/{found.name} and {folder.target_dir}/{found.name}"
        raise UsageError(f"{folder.root}: {where} differ in size")
    target = _fit(full, size, Image.Resampling.LANCZOS)
    return Pair(found.name, _fit(source, size, Image.Resampling.LANCZOS), target)


def _inpaint_pair(found: PairedFiles, size: int) -> Pair | None:
    """The holed photo, the photo and the hole; None when the mask is empty."""
    assert found.mask is not None
    full = rgb8(read_picture(found.target).pixels)
    target = _fit(full, size, Image.Resampling.LANCZOS)
    hole, _ = read_mask(found.mask, (full.shape[1], full.shape[0]))
    m = _fit(hole.astype(np.uint8)[:, :, None] * 255, size, Image.Resampling.NEAREST)[:, :, 0] > 127
    if not m.any():
        return None
    return Pair(found.name, np.where(m[:, :, None], 0, target).astype(np.uint8), target, m)


def _side_by_side(data: Path, size: int, limit: int | None) -> tuple[list[Pair], str]:
    """pix2pix's ``photo | label map`` files (the CMP facades' own format)."""
    pairs = []
    for found in discover([data], recursive=True).files[:limit]:
        both = rgb8(read_picture(found.path).pixels)
        if both.shape[1] // 2 < SSIM_WINDOW:
            raise UsageError(f"{found.path}: too narrow for a photo | label map pair")
        labels, photo = split_side_by_side(both, target="left")
        # NEAREST for the label map: a resampling filter would blend class colours into new ones
        fitted = _fit(labels, size, Image.Resampling.NEAREST), _fit(photo, size, Image.Resampling.LANCZOS)
        pairs.append(Pair(found.rel.as_posix(), *fitted))
    return pairs, f"side-by-side pairs (photo | label map), short side <= {size} px, centre crop <= {size}^2"


def _synthesised(
    task: str, data: Path, seed: int, size: int, limit: int | None, rain: str
) -> tuple[list[Pair], str]:
    """Clean photos, each degraded by `_synthesise`."""
    pairs = []
    for found in discover([data], recursive=True).files[:limit]:
        clean = _fit(rgb8(read_picture(found.path).pixels), size, Image.Resampling.LANCZOS)
        pairs.append(_synthesise(task, clean, found.rel.as_posix(), seed, rain))
    what = {
        "derain": f"rain ({synth.RAIN_SAMPLERS[rain].__name__}, strength log-uniform {RAIN_STRENGTH})",
        "inpaint": f"free-form masks (make_mask, coverage {MASK_COVERAGE})",
        "sketch2photo": "XDoG drawings (sample_sketch_params)",
    }[task]
    return pairs, f"clean photos, {what} synthesised with seed {seed}; short side <= {size} px, centre crop"


def load_pairs(
    task: str, data: Path, *, seed: int, size: int, limit: int | None, rain: str = "classic"
) -> tuple[list[Pair], str]:
    """The evaluation items of `data` and a one-line description of how they were made."""
    data = Path(data)
    if not data.is_dir():
        raise UsageError(f"--data {data} is not a folder")
    if rain not in synth.RAIN_SAMPLERS:
        raise UsageError(f"rain must be one of {', '.join(synth.RAIN_SAMPLERS)}, not {rain!r}")
    if is_paired(data):
        pairs, protocol = _paired_folder(task, data, size, limit)
    elif task == "labels2photo":
        pairs, protocol = _side_by_side(data, size, limit)
    else:
        pairs, protocol = _synthesised(task, data, seed, size, limit, rain)
    if not pairs:
        raise UsageError(f"{data}: no evaluation images found")
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


# ------------------------------------------------------------------------------------------------ scores


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


# -------------------------------------------------------------------------------------------- evaluate


def _score(task: str, pair: Pair, output: np.ndarray, *, identity: bool) -> ImageScore:
    """The figures of one output (uint8) against its pair's truth, next to the task's baseline."""
    base = baseline(task, pair.input, pair.target, pair.mask)
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
    return ImageScore(
        name=pair.name,
        psnr=psnr(out, y, mask=pair.mask),
        ssim=ssim(out, y, mask=pair.mask),
        baseline_psnr=psnr(ref, y, mask=pair.mask),
        baseline_ssim=ssim(ref, y, mask=pair.mask),
        **extra,
    )


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
        score = _score(task, pair, editor.edit(pair.input, pair.mask), identity=identity)
        result.per_image.append(score)
        if on_image is not None:
            on_image(score)
    result.seconds = time.perf_counter() - start
    return result
