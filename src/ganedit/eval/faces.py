"""Evaluating face re-lighting (a rerender checkpoint with ``light_azimuth`` and ``light_elevation`` tags,
such as ``tdgan-faces``) on held-out people.

Protocol, on a tagged face set (``scripts/yaleb_tagset.py`` makes one from Extended Yale B): for every
identity of the ``eval`` split (people the model never saw), a seeded choice of source photos is re-lit
to every other light that person was photographed under, and each re-lit face is compared with the TRUE
photo at that light (PSNR and SSIM of the whole image, in [0, 1]) next to two baselines:

- the input unchanged, and
- the input with its brightness matched to the target (scaled so its mean equals the true photo's mean: an
  oracle for the overall exposure, which is what a brightness slider could do; it cannot move shadows).

Two judges, trained here on real photos of the TRAINING people only (seeded, the same every run):

- light: a `TagClassifier` with one head per light tag; a re-lit face counts as right when both the
  azimuth and the elevation it reads are within one grid step of the requested ones;
- identity: a classifier of the training people whose penultimate features are the embedding; a re-lit
  face counts as kept when its nearest held-out person (cosine distance to each person's mean embedding
  over all their real photos) is the person it came from.

Each judge is also run on the true photos, so the judges can be judged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import UsageError
from .metrics import psnr, ssim
from .tdgan import PSNR_CAP, TagClassifier, TaggedSet, shift_and_blur, train_classifier

if TYPE_CHECKING:
    from ..runtime.rerenderer import Rerenderer

__all__ = ["LIGHT_TAGS", "evaluate_relighting", "train_identity_embedding"]

LIGHT_TAGS = ("light_azimuth", "light_elevation")
IDENTITY_STEPS = 1500


def person(identity: str) -> str:
    """The person an identity shows: a mirrored training identity (``yaleB01m``) is the same person."""
    return identity[:-1] if identity.endswith("m") else identity


def train_identity_embedding(
    data_dir: Path, size: int, *, steps: int = IDENTITY_STEPS, seed: int = 0, batch_size: int = 64
) -> TagClassifier:
    """A classifier of the training split's people (mirrors folded in); its body is the embedding.

    Augmented with shifts and brightness changes so that it keys on the face, not on the light."""
    data = TaggedSet(Path(data_dir), size, "train")
    people = sorted({person(str(e["identity"])) for e in data.entries})
    label_of = {p: i for i, p in enumerate(people)}
    labels = np.array([label_of[person(str(e["identity"]))] for e in data.entries], dtype=np.int64)
    torch.manual_seed(seed)
    model = TagClassifier([("person", people)], size=size)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    rng = np.random.default_rng((seed, 0x1D))
    model.train()
    for _ in range(steps):
        pick = rng.integers(0, len(data.entries), batch_size)
        x = model.to_tensor([data.image(data.entries[i]) for i in pick])
        n = x.shape[0]
        gain = torch.from_numpy(rng.uniform(0.6, 1.4, (n, 1, 1, 1)).astype(np.float32))
        x = ((x + 1) * gain - 1).clamp(-1, 1)
        x = shift_and_blur(x, rng, size)
        loss = F.cross_entropy(model(x)[0], torch.from_numpy(labels[pick]))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        schedule.step()
    return model.eval()


@torch.no_grad()
def _embed(model: TagClassifier, images: Sequence[np.ndarray], batch_size: int = 256) -> np.ndarray:
    out = []
    for start in range(0, len(images), batch_size):
        features = model.body(model.to_tensor(images[start : start + batch_size])).flatten(1)
        out.append(F.normalize(features, dim=1).numpy())
    return np.concatenate(out) if out else np.zeros((0, 1), np.float32)


def _brightness_matched(source: np.ndarray, truth: np.ndarray) -> np.ndarray:
    s = source.astype(np.float32)
    gain = float(truth.astype(np.float32).mean()) / max(float(s.mean()), 1e-3)
    return np.clip(np.rint(s * gain), 0, 255).astype(np.uint8)


def _scores(output: np.ndarray, source: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    matched = _brightness_matched(source, truth)
    t = truth.astype(np.float32) / 255.0
    result: dict[str, float] = {}
    for key, image in (("relit", output), ("unchanged", source), ("matched", matched)):
        a = image.astype(np.float32) / 255.0
        result[f"{key}_psnr"] = min(psnr(a, t), PSNR_CAP)
        result[f"{key}_ssim"] = ssim(a, t)
    return result


def _mean(values: Sequence[float]) -> float | None:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else None


def _check(rerenderer: Rerenderer, data: TaggedSet) -> None:
    model_tags = dict(rerenderer.config.tags)
    for name in LIGHT_TAGS:
        if name not in model_tags or name not in data.vocabulary:
            raise UsageError(f"face re-lighting evaluation needs a {name!r} tag in the model and the data")
        missing = [v for v in data.vocabulary[name] if v not in model_tags[name]]
        if missing:
            raise UsageError(f"values {missing} of tag {name!r} in the data are unknown to the model")


def evaluate_relighting(
    rerenderer: Rerenderer,
    data_dir: Path,
    *,
    size: int | None = None,
    seed: int = 0,
    sources_per_identity: int = 4,
    light_judge: TagClassifier | None = None,
    identity_judge: TagClassifier | None = None,
) -> dict[str, Any]:
    """Re-light held-out people and compare with their true photos (see the module docstring).

    `size`: the data's image size to read (default: the model's). Judges are trained when not given."""
    config = rerenderer.config
    size = size or config.image_size
    data = TaggedSet(Path(data_dir), size, "eval")
    _check(rerenderer, data)
    if light_judge is None:
        light_judge = train_classifier(Path(data_dir), size, tags=list(LIGHT_TAGS), seed=seed)
    if identity_judge is None:
        identity_judge = train_identity_embedding(Path(data_dir), size, seed=seed)
    groups = data.by_identity()
    cases, relit = _relight(rerenderer, data, groups, seed, sources_per_identity)
    if not cases:
        raise UsageError(f"no held-out person in {data_dir} has two or more photos")
    by_file = {str(e["file"]): e for e in data.entries}
    truths = [data.image(by_file[c["target"]]) for c in cases]
    keys = ("relit_psnr", "relit_ssim", "unchanged_psnr", "unchanged_ssim", "matched_psnr", "matched_ssim")
    return {
        "model": rerenderer.name,
        "task": "rerender",
        "evaluation": "relighting",
        "data": str(data_dir),
        "split": "eval",
        "size": config.image_size,
        "seed": seed,
        "identities": len(groups),
        "renders": len(cases),
        "protocol": (
            f"{sources_per_identity} seeded source photos per held-out person, each re-lit to every other "
            "light of that person; whole-image PSNR/SSIM against the true photo at the target light "
            f"(PSNR capped at {PSNR_CAP:g} dB); baselines: the input unchanged, and the input scaled to the "
            "true photo's mean brightness"
        ),
        "refine": {"steps": rerenderer.refine_steps, "lr": rerenderer.refine_lr},
        "keep_detail": rerenderer.keep_detail,
        "overall": {key: _mean([c[key] for c in cases]) for key in keys},
        "light_accuracy": _light_accuracy(light_judge, cases, relit, truths),
        "identity_accuracy": _identity_accuracy(identity_judge, data, groups, cases, relit, truths),
    }


def _relight(
    rerenderer: Rerenderer,
    data: TaggedSet,
    groups: dict[str, list[dict[str, Any]]],
    seed: int,
    sources_per_identity: int,
) -> tuple[list[dict[str, Any]], list[np.ndarray]]:
    """Each person's seeded source photos re-lit to every other light of theirs: one case per re-light."""
    names = list(rerenderer.config.tag_names)
    rng = np.random.default_rng((seed, 0xFACE))
    cases: list[dict[str, Any]] = []
    relit: list[np.ndarray] = []
    for identity, entries in groups.items():
        picks = rng.choice(len(entries), min(sources_per_identity, len(entries)), replace=False)
        for k in sorted(int(c) for c in picks):
            source = entries[k]
            src = data.image(source)
            targets = [e for e in entries if e is not source]
            wanted = [{n: data.vocabulary[n][data.tag_index(e, n)] for n in names} for e in targets]
            for entry, rendered in zip(targets, rerenderer.render(src, wanted), strict=True):
                output = _at_size(rendered, src.shape[0])
                cases.append(
                    {
                        "identity": identity,
                        "source": str(source["file"]),
                        "target": str(entry["file"]),
                        **{f"target_{n}": data.tag_index(entry, n) for n in LIGHT_TAGS},
                        **_scores(output, src, data.image(entry)),
                    }
                )
                relit.append(output)
    return cases, relit


def _at_size(image: np.ndarray, size: int) -> np.ndarray:
    """A re-lit face at the data's size: the model's S x S output enlarged (bicubic) as a user would, or
    a `keep_detail` output already at the input's size."""
    if image.shape[0] == size:
        return image
    return np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BICUBIC))


def _within(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    return np.abs(got.astype(np.int64) - want.astype(np.int64)) <= 1


def _light_accuracy(
    judge: TagClassifier,
    cases: list[dict[str, Any]],
    relit: list[np.ndarray],
    truths: list[np.ndarray],
) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for label, images in (("relit", relit), ("true_photos", truths)):
        predicted = judge.predict(images)
        both = np.ones(len(cases), dtype=bool)
        row: dict[str, float] = {}
        for name in LIGHT_TAGS:
            want = np.array([c[f"target_{name}"] for c in cases])
            ok = _within(predicted[name], want)
            row[f"{name}_within_1"] = float(ok.mean())
            row[f"{name}_exact"] = float(np.mean(predicted[name] == want))
            both &= ok
        row["both_within_1"] = float(both.mean())
        result[label] = row
    return result


def _identity_accuracy(
    judge: TagClassifier,
    data: TaggedSet,
    groups: dict[str, list[dict[str, Any]]],
    cases: list[dict[str, Any]],
    relit: list[np.ndarray],
    truths: list[np.ndarray],
) -> dict[str, Any]:
    people = list(groups)
    centroids = np.stack([_embed(judge, [data.image(e) for e in groups[p]]).mean(axis=0) for p in people])
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True) + 1e-8
    want = np.array([people.index(c["identity"]) for c in cases])
    sources = [
        data.image(next(e for e in groups[c["identity"]] if str(e["file"]) == c["source"])) for c in cases
    ]
    matched = [_brightness_matched(s, t) for s, t in zip(sources, truths, strict=True)]
    result: dict[str, float] = {"people": float(len(people))}
    for label, images in (("relit", relit), ("matched", matched), ("true_photos", truths)):
        nearest = (_embed(judge, images) @ centroids.T).argmax(axis=1)
        result[label] = float(np.mean(nearest == want))
    return result
