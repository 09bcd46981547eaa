"""Evaluating TDGAN re-rendering (``ganedit eval`` on a rerender checkpoint) against true renders.

Protocol, on a tagged image set (``DATA/tags.json`` + ``DATA/<size>/<split>/<identity>/...png``, the
chairs layout): for each held-out identity (split ``eval``), a seeded choice of source views is
re-rendered

- to every azimuth, keeping the source's other tags (the azimuth sweep), and
- to every light, keeping the source's pose (the light sweep),

and each re-render is compared with the TRUE render of that identity at the target tags (PSNR and SSIM
over the whole image, in [0, 1]), next to the baseline "the input unchanged" (the source view against the
same truth). Figures are aggregated per target azimuth offset (circular, in vocabulary steps) and overall;
the overall figures leave out offset 0 (where the baseline is the truth itself), the light figures leave out
the source's own light.

Whether a re-render shows the requested tags is judged by a small `TagClassifier` trained on real renders
of the training identities: azimuth accuracy counts a prediction within one step (circular) of the
requested azimuth, light accuracy an exact match. The classifier's own accuracy on the true renders of the
held-out identities is reported next to it, so that the judge can be judged.

Per-image PSNR is capped at `PSNR_CAP` dB (identical images would give infinity); the result is JSON-ready.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from ..data.tagset import INDEX_NAME, read_image, read_index
from ..errors import CheckpointError, UsageError
from ..io.atomic import atomic_write_named
from .metrics import psnr, ssim

if TYPE_CHECKING:
    from ..archs.tdgan import TDGANConfig
    from ..runtime.rerenderer import Rerenderer

__all__ = [
    "PSNR_CAP",
    "TagClassifier",
    "TaggedSet",
    "classifier_accuracy",
    "evaluate_rerender",
    "load_classifier",
    "save_classifier",
    "train_classifier",
]

PSNR_CAP = 100.0
DEFAULT_TAGS = ("azimuth", "elevation", "light")
CLASSIFIER_STEPS = 2000
"""Training steps of the default judge: light is learnt far later than pose, and a short run misjudges it
(docs/models/tdgan-chairs.md gives the judge's accuracy)."""
_META_KEY = "ganedit.classifier"


# --------------------------------------------------------------------------------------------------------
# The tagged image set


class TaggedSet:
    """The index of a tagged image set: vocabulary (values as the checkpoints name them) and the entries of
    one split, with their tag indices. Images are decoded on demand and cached."""

    def __init__(self, root: Path, size: int, split: str) -> None:
        self.root = Path(root)
        self.size = size
        self.split = split
        tag_index = read_index(root, size)
        index_path, index = tag_index.path, tag_index.index
        self.vocabulary: dict[str, tuple[str, ...]] = tag_index.vocabulary
        self.entries: list[dict[str, Any]] = []
        try:
            for entry in index["images"]:
                if str(entry.get("split", "train")) == split:
                    self.entries.append(entry)
        except (AttributeError, TypeError) as e:
            raise UsageError(f"{index_path}: malformed image entry ({e!r})") from None
        if not self.entries:
            raise UsageError(f"{index_path} has no image in split {split!r}")
        self._cache: dict[str, np.ndarray] = {}

    def tag_index(self, entry: dict[str, Any], tag: str) -> int:
        try:
            i = int(entry[tag])
        except (KeyError, TypeError, ValueError):
            raise UsageError(f"{self.root / INDEX_NAME}: {entry.get('file')} has no {tag} index") from None
        if not 0 <= i < len(self.vocabulary[tag]):
            raise UsageError(
                f"{self.root / INDEX_NAME}: {entry.get('file')} has {tag} index {i} out of range"
            )
        return i

    def image(self, entry: dict[str, Any]) -> np.ndarray:
        """The entry's render as size x size x 3 uint8."""
        name = str(entry["file"])
        cached = self._cache.get(name)
        if cached is not None:
            return cached
        rgb = read_image(self.root, self.size, name)
        self._cache[name] = rgb
        return rgb

    def by_identity(self) -> dict[str, list[dict[str, Any]]]:
        groups: dict[str, list[dict[str, Any]]] = {}
        for entry in self.entries:
            groups.setdefault(str(entry["identity"]), []).append(entry)
        return {k: groups[k] for k in sorted(groups)}


# --------------------------------------------------------------------------------------------------------
# The tag classifier (the judge)


class TagClassifier(nn.Module):
    """image (N x 3 x S x S in [-1, 1]) -> one logit vector per tag type.

    Stride-2 convolutions (batch norm, ReLU) down to 4 x 4, then one linear head per tag type.
    """

    def __init__(
        self, vocabulary: Sequence[tuple[str, Sequence[str]]], size: int = 64, width: int = 32
    ) -> None:
        super().__init__()
        if size < 8 or size & (size - 1):
            raise ValueError(f"classifier size must be a power of two >= 8, got {size}")
        self.vocabulary: tuple[tuple[str, tuple[str, ...]], ...] = tuple(
            (str(n), tuple(str(v) for v in values)) for n, values in vocabulary
        )
        self.size = size
        self.width = width
        layers: list[nn.Module] = []
        c_in = 3
        for i in range(int(math.log2(size)) - 2):
            c_out = width * min(2**i, 4)
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(True)]
            c_in = c_out
        self.body = nn.Sequential(*layers)
        self.heads = nn.ModuleList(nn.Linear(c_in * 16, len(values)) for _, values in self.vocabulary)

    @property
    def tag_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.vocabulary)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = self.body(x).flatten(1)
        return [head(features) for head in self.heads]

    def to_tensor(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """H x W x 3 uint8 images -> N x 3 x size x size in [-1, 1] (resized when needed)."""
        batch = []
        for im in images:
            a = np.asarray(im)[:, :, :3]
            if a.shape[:2] != (self.size, self.size):
                a = np.asarray(Image.fromarray(a).resize((self.size, self.size), Image.Resampling.LANCZOS))
            batch.append(a)
        x = torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
        return x.to(next(self.parameters()).device)

    @torch.no_grad()
    def predict(self, images: Sequence[np.ndarray], batch_size: int = 256) -> dict[str, np.ndarray]:
        """Predicted value index per tag type, for each image."""
        was_training = self.training
        self.eval()
        out: dict[str, list[np.ndarray]] = {name: [] for name in self.tag_names}
        for start in range(0, len(images), batch_size):
            logits = self(self.to_tensor(images[start : start + batch_size]))
            for name, lg in zip(self.tag_names, logits, strict=True):
                out[name].append(lg.argmax(1).cpu().numpy())
        self.train(was_training)
        return {k: np.concatenate(v) if v else np.zeros(0, np.int64) for k, v in out.items()}


def _classifier_tags(data: TaggedSet, tags: Sequence[str] | None) -> list[str]:
    if tags is None:
        tags = [t for t in DEFAULT_TAGS if t in data.vocabulary] or list(data.vocabulary)
    unknown = [t for t in tags if t not in data.vocabulary]
    if unknown:
        raise UsageError(f"tag type(s) {unknown} are not in {data.root / INDEX_NAME}")
    return list(tags)


def shift_and_blur(x: torch.Tensor, rng: np.random.Generator, size: int, shift: int = 3) -> torch.Tensor:
    """A judge's training batch (N x C x size x size) shifted by up to `shift` px (edges replicated), the
    first half slightly blurred as re-renders tend to be: so that a judge reads tags or people, not the
    exact pixel grid of the real images."""
    n = x.shape[0]
    padded = F.pad(x, (shift,) * 4, mode="replicate")
    offsets = rng.integers(0, 2 * shift + 1, (n, 2))
    x = torch.stack([padded[i, :, dy : dy + size, dx : dx + size] for i, (dy, dx) in enumerate(offsets)])
    half = n // 2
    return torch.cat([F.avg_pool2d(x[:half], 3, 1, 1, count_include_pad=False), x[half:]])


def train_classifier(
    data_dir: Path,
    size: int = 64,
    *,
    split: str = "train",
    steps: int = CLASSIFIER_STEPS,
    seed: int = 0,
    batch_size: int = 64,
    lr: float = 1e-3,
    tags: Sequence[str] | None = None,
    device: str | torch.device = "cpu",
) -> TagClassifier:
    """A `TagClassifier` trained on the real renders of `split` (Adam with a one-cycle learning rate,
    cross-entropy summed over the tag types). Returned in eval mode.

    Augmented so that it judges tags, not the few training identities: colour channels shuffled and 30 %
    turned grey (colour belongs to the identity), shifted by up to 3 px, and half of each batch slightly
    blurred, as re-renders tend to be: each makes the judge more accurate on held-out identities, whose
    true renders it is scored on (`classifier_accuracy`; the figures are in the model card)."""
    data = TaggedSet(Path(data_dir), size, split)
    names = _classifier_tags(data, tags)
    labels = np.array([[data.tag_index(e, t) for t in names] for e in data.entries], dtype=np.int64)
    torch.manual_seed(seed)
    model = TagClassifier([(t, data.vocabulary[t]) for t in names], size=size).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2 * lr, total_steps=steps)
    rng = np.random.default_rng((seed, 0xC1A5))
    model.train()
    for _ in range(steps):
        pick = rng.integers(0, len(data.entries), batch_size)
        x = model.to_tensor([data.image(data.entries[i]) for i in pick])
        n = x.shape[0]
        order = torch.from_numpy(np.argsort(rng.random((n, 3)), axis=1)).to(x.device)
        x = torch.gather(x, 1, order[:, :, None, None].expand_as(x))
        grey = torch.from_numpy(rng.random(n) < 0.3).to(x.device)
        x = torch.where(grey[:, None, None, None], x.mean(1, keepdim=True).expand_as(x), x)
        x = shift_and_blur(x, rng, size)
        y = torch.from_numpy(labels[pick]).to(x.device)
        logits = model(x)
        loss = sum(F.cross_entropy(lg, y[:, j]) for j, lg in enumerate(logits))
        opt.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[union-attr]
        opt.step()
        schedule.step()
    return model.eval()


def save_classifier(path: Path, model: TagClassifier) -> None:
    """Weights as safetensors; vocabulary, size and width as JSON metadata (no pickle)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "vocabulary": [[n, list(v)] for n, v in model.vocabulary],
        "size": model.size,
        "width": model.width,
    }
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    atomic_write_named(path, lambda tmp: save_file(tensors, str(tmp), metadata={_META_KEY: json.dumps(meta)}))


def load_classifier(path: Path, device: str | torch.device = "cpu") -> TagClassifier:
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
        meta = json.loads(metadata[_META_KEY])
        model = TagClassifier(meta["vocabulary"], size=int(meta["size"]), width=int(meta["width"]))
        model.load_state_dict(load_file(str(path)), strict=True)
    except (SafetensorError, OSError, KeyError, TypeError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path}: not a tag classifier ({e})") from None
    return model.to(device).eval()


def classifier_accuracy(
    classifier: TagClassifier,
    data_dir: Path,
    size: int = 64,
    *,
    split: str = "eval",
    limit: int | None = None,
) -> dict[str, float]:
    """The classifier's accuracy on the real renders of `split`: exact per tag type, and ``azimuth_within_1``
    (circular, one step either way) when it has an azimuth head. `limit` takes every k-th image."""
    data = TaggedSet(Path(data_dir), size, split)
    entries = data.entries
    if limit is not None and len(entries) > limit:
        entries = entries[:: math.ceil(len(entries) / limit)]
    predicted = classifier.predict([data.image(e) for e in entries])
    result: dict[str, float] = {"images": float(len(entries))}
    for name, values in classifier.vocabulary:
        truth = np.array([data.tag_index(e, name) for e in entries])
        result[name] = float(np.mean(predicted[name] == truth))
        if name == "azimuth":
            result["azimuth_within_1"] = float(np.mean(_circular(predicted[name] - truth, len(values)) <= 1))
    return result


def _circular(delta: np.ndarray | int, n: int) -> np.ndarray:
    d = np.mod(delta, n)
    return np.minimum(d, n - d)


# --------------------------------------------------------------------------------------------------------
# Evaluation


def _mean(values: list[float]) -> float | None:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else None


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "count": len(rows),
        "psnr": _mean([r["psnr"] for r in rows]),
        "ssim": _mean([r["ssim"] for r in rows]),
        "baseline_psnr": _mean([r["baseline_psnr"] for r in rows]),
        "baseline_ssim": _mean([r["baseline_ssim"] for r in rows]),
    }


def _score(output: np.ndarray, source: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    a, s, t = (im.astype(np.float32) / 255.0 for im in (output, source, truth))
    return {
        "psnr": min(psnr(a, t), PSNR_CAP),
        "ssim": ssim(a, t),
        "baseline_psnr": min(psnr(s, t), PSNR_CAP),
        "baseline_ssim": ssim(s, t),
    }


def _fit(pixels: np.ndarray, size: int) -> np.ndarray:
    if pixels.shape[:2] == (size, size):
        return pixels
    return np.asarray(Image.fromarray(pixels).resize((size, size), Image.Resampling.LANCZOS))


def _check_tags(data: TaggedSet, config: TDGANConfig) -> None:
    """The model and the data must share the azimuth tag and every value of the model's tags."""
    if "azimuth" not in dict(config.tags) or "azimuth" not in data.vocabulary:
        raise UsageError("re-rendering evaluation needs an 'azimuth' tag in both the model and the data")
    for name, values in config.tags:
        if name not in data.vocabulary:
            raise UsageError(f"the model's tag {name!r} is not in {data.root / INDEX_NAME}")
        missing = [v for v in data.vocabulary[name] if v not in values]
        if missing:
            raise UsageError(f"values {missing} of tag {name!r} in the data are unknown to the model")


class _Cases:
    """The re-renders of an evaluation: one record per (source view, target tags), with the images."""

    def __init__(self, rerenderer: Rerenderer, data: TaggedSet, lights: bool) -> None:
        self.rerenderer = rerenderer
        self.data = data
        self.tag_names = list(rerenderer.config.tag_names)
        self.n_az = len(data.vocabulary["azimuth"])
        self.n_lights = len(data.vocabulary["light"]) if lights else 0
        self.records: list[dict[str, Any]] = []
        self.renders: list[np.ndarray] = []
        self.truths: list[np.ndarray] = []
        self.sources = 0

    def add_source(self, identity: str, source: dict[str, Any], lookup: dict[tuple[int, ...], Any]) -> None:
        """Re-render `source` to every azimuth (its other tags kept) and every light (its pose kept), where
        the identity has a true render at the target tags (`lookup`)."""
        data, names, image_size = self.data, self.tag_names, self.rerenderer.config.image_size
        src_idx = {t: data.tag_index(source, t) for t in names}
        src_pixels = _fit(data.image(source), image_size)
        targets = [("azimuth", {**src_idx, "azimuth": a}) for a in range(self.n_az)]
        targets += [("light", {**src_idx, "light": light}) for light in range(self.n_lights)]
        present = [(sweep, t) for sweep, t in targets if tuple(t[n] for n in names) in lookup]
        if not present:
            return
        self.sources += 1
        # every target names every tag; the input's own tags are left to the model to read (as
        # `ganedit rerender` does): the identity refinement fits G to the input at them
        outputs = self.rerenderer.render(
            src_pixels, [{n: data.vocabulary[n][t[n]] for n in names} for _, t in present]
        )
        for (sweep, target), output in zip(present, outputs, strict=True):
            truth_entry = lookup[tuple(target[n] for n in names)]
            truth = _fit(data.image(truth_entry), image_size)
            case: dict[str, Any] = {
                "identity": identity,
                "source": str(source["file"]),
                "target": str(truth_entry["file"]),
                "sweep": sweep,
                "offset": int(np.mod(target["azimuth"] - src_idx["azimuth"], self.n_az)),
                "target_azimuth": target["azimuth"],
                "changed": target != src_idx,
                **_score(output, src_pixels, truth),
            }
            if self.n_lights:
                case["target_light"] = target["light"]
            self.records.append(case)
            self.renders.append(output)
            self.truths.append(truth)


def _per_offset(az_cases: list[dict[str, Any]], azimuths: Sequence[str]) -> list[dict[str, Any]]:
    """The azimuth sweep's figures per signed offset (in vocabulary steps; degrees when the azimuths are
    numbers spread over the circle)."""
    n_az = len(azimuths)
    numeric = all(v.replace(".", "", 1).lstrip("-").isdigit() for v in azimuths)
    step_degrees = 360.0 / n_az if numeric and n_az > 1 else None
    rows_out = []
    for offset in range(n_az):
        rows = [c for c in az_cases if c["offset"] == offset]
        if rows:
            signed = offset if offset <= n_az // 2 else offset - n_az
            degrees = round(signed * step_degrees, 2) if step_degrees is not None else None
            rows_out.append({"offset": signed, "degrees": degrees, **_summary(rows)})
    return sorted(rows_out, key=lambda r: r["offset"])


def _tag_accuracy(
    cases: list[dict[str, Any]],
    classifier: TagClassifier,
    renders: dict[str, np.ndarray],
    truths: dict[str, np.ndarray],
    n_az: int,
    lights: bool,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """How often the judge reads the requested tags on the re-renders, and on the true renders."""
    accuracy: dict[str, Any] = {}
    judge: dict[str, Any] = {"images": len(cases)}
    if "azimuth" in classifier.tag_names:
        rows = [i for i, c in enumerate(cases) if c["sweep"] == "azimuth"]
        want = np.array([cases[i]["target_azimuth"] for i in rows])
        for out, predicted in ((accuracy, renders), (judge, truths)):
            got = predicted["azimuth"][rows]
            out["azimuth_within_1"] = float(np.mean(_circular(got - want, n_az) <= 1))
            out["azimuth_exact"] = float(np.mean(got == want))
    light_rows = [i for i, c in enumerate(cases) if c["sweep"] == "light"]
    if lights and "light" in classifier.tag_names and light_rows:
        want_l = np.array([cases[i]["target_light"] for i in light_rows])
        accuracy["light"] = float(np.mean(renders["light"][light_rows] == want_l))
        judge["light"] = float(np.mean(truths["light"][light_rows] == want_l))
    return accuracy, judge


def evaluate_rerender(
    rerenderer: Rerenderer,
    data_dir: Path,
    *,
    classifier: TagClassifier,
    size: int = 64,
    split: str = "eval",
    seed: int = 0,
    limit: int | None = None,
    sources_per_identity: int = 4,
    details: bool = False,
) -> dict[str, Any]:
    """Re-render held-out identities and compare with their true renders (see the module docstring).

    `limit`: at most that many identities (the first, by name). `details`: add ``cases``, one record per
    re-render (identity, source and target files, sweep, offset, scores, predicted tags).
    """
    data = TaggedSet(Path(data_dir), size, split)
    config = rerenderer.config
    _check_tags(data, config)
    lights = "light" in dict(config.tags) and "light" in data.vocabulary
    found = _Cases(rerenderer, data, lights)
    groups = data.by_identity()
    identities = list(groups)[:limit] if limit is not None else list(groups)
    rng = np.random.default_rng((seed, 0xE7A1))
    for identity in identities:
        entries = groups[identity]
        lookup = {tuple(data.tag_index(e, t) for t in found.tag_names): e for e in entries}
        chosen = rng.choice(len(entries), size=min(sources_per_identity, len(entries)), replace=False)
        for k in sorted(int(c) for c in chosen):
            found.add_source(identity, entries[k], lookup)
    cases = found.records
    if not cases:
        raise UsageError(f"no source view with a true render at its targets in split {split!r} of {data_dir}")
    predicted = classifier.predict(found.renders)
    for i, case in enumerate(cases):
        for name in classifier.tag_names:
            case[f"predicted_{name}"] = int(predicted[name][i])
    tag_accuracy, judge = _tag_accuracy(
        cases, classifier, predicted, classifier.predict(found.truths), found.n_az, lights
    )
    az_cases = [c for c in cases if c["sweep"] == "azimuth"]
    result: dict[str, Any] = {
        "model": rerenderer.name,
        "task": "rerender",
        "data": str(data_dir),
        "split": split,
        "size": config.image_size,
        "seed": seed,
        "identities": len(identities),
        "sources": found.sources,
        "renders": len(cases),
        "protocol": (
            f"{sources_per_identity} seeded source views per held-out identity, re-rendered to every azimuth "
            "(other tags kept) and every light (pose kept); PSNR/SSIM of the whole image against the true "
            f"render at the target tags (PSNR capped at {PSNR_CAP:g} dB); overall leaves out offset 0; the "
            "input's own tags are the model's reading of it"
        ),
        "refine": {"steps": rerenderer.refine_steps, "lr": rerenderer.refine_lr},
        "baseline": "the input unchanged",
        "overall": _summary([c for c in az_cases if c["offset"] != 0]),
        "per_offset": _per_offset(az_cases, data.vocabulary["azimuth"]),
        "light": _summary([c for c in cases if c["sweep"] == "light" and c["changed"]]),
        "tag_accuracy": tag_accuracy,
        "classifier": {"tags": list(classifier.tag_names), "size": classifier.size, "on_true_renders": judge},
    }
    if details:
        result["cases"] = cases
    return result
