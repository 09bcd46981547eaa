"""Where a de-raining model's remaining error is: a one-off analysis behind the `pan-derain` model card.

    python scripts/derain_error_analysis.py --weights src/ganedit/weights/pan-derain.safetensors

On `ganedit eval`'s protocol (the holdout photos, rain synthesised with seed 0, 512 px), it reports:

1. the output PSNR with the rain as evaluated, with the veil (haze) removed from the same rain, and with
   the streaks at half their opacity: if the output PSNR hardly moves when the veil goes, the veil is not
   what limits the model;
2. the output error split into low (Gaussian sigma 4 px) and high frequencies;
3. what refitting the output per colour channel to the truth (gain and offset: an oracle) would add, and
   what the same refit predicted from the rainy input's statistics (ridge regression fitted on the
   training photos) adds: a measure of whether a global colour/veil correction is learnable from the
   input alone.

Not part of the tool: it patches the synthesiser's sampler for (1) and needs the photos of data.md.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

import ganedit.eval.pan as ev
from ganedit.checkpoint import load_checkpoint
from ganedit.train import synth

QUANTILES = torch.tensor([0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99])


def to_tensor(pixels: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(pixels.copy()).permute(2, 0, 1).float() / 255


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1 / ((a - b) ** 2).mean()))


def statistics(x: torch.Tensor) -> np.ndarray:
    """Scale-free statistics of an image: per-channel quantiles, mean and spread; dark/bright channels."""
    f = x.flatten(1)
    dark, bright = f.min(0).values, f.max(0).values
    parts = [
        torch.quantile(f, QUANTILES, dim=1).flatten(),
        torch.quantile(dark, QUANTILES[:5]),
        torch.quantile(bright, QUANTILES[4:]),
        f.mean(1),
        f.std(1),
    ]
    return torch.cat(parts).numpy()


def channel_fit(y: torch.Tensor, c: torch.Tensor) -> list[float]:
    """Least-squares gain - 1 and offset per channel mapping y to c."""
    out = []
    for ch in range(3):
        a = torch.stack([y[ch].flatten(), torch.ones(y[ch].numel())], 1)
        gain, offset = torch.linalg.lstsq(a, c[ch].flatten()[:, None]).solution.flatten().tolist()
        out += [gain - 1, offset]
    return out


def apply_fit(y: torch.Tensor, t: np.ndarray | list[float]) -> torch.Tensor:
    return torch.stack([(1 + t[2 * k]) * y[k] + t[2 * k + 1] for k in range(3)]).clamp(0, 1)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--holdout", type=Path, default=Path("data/photos/holdout"))
    parser.add_argument("--train", type=Path, default=Path("data/photos/train"))
    parser.add_argument("--size", type=int, default=512)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model, _ = load_checkpoint(args.weights, task="derain")
    m = model.pad_multiple  # type: ignore[attr-defined]

    def run(pairs: list[ev.Pair]) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        out = []
        for p in pairs:
            x, c = to_tensor(p.input), to_tensor(p.target)
            h, w = x.shape[1] // m * m, x.shape[2] // m * m
            x, c = x[:, :h, :w], c[:, :h, :w]
            with torch.no_grad():
                y = ((model(x[None] * 2 - 1)[0] + 1) / 2).clamp(0, 1).mul(255).round().div(255)
            out.append((x, y, c))
        return out

    original = synth.sample_rain_params
    variants: dict[str, Callable[[synth.RainParams], synth.RainParams]] = {
        "rain as evaluated": lambda p: p,
        "same rain, no veil": lambda p: dataclasses.replace(p, haze=0.0),
        "same rain, streaks at half opacity": lambda p: dataclasses.replace(
            p, layers=tuple(dataclasses.replace(s, brightness=s.brightness / 2) for s in p.layers)
        ),
    }
    results = {}
    for name, change in variants.items():
        synth.sample_rain_params = lambda g, *, scale=1.0, change=change: change(original(g, scale=scale))  # type: ignore[misc]
        pairs, _ = ev.load_pairs("derain", args.holdout, seed=0, size=args.size, limit=None)
        results[name] = run(pairs)
        synth.sample_rain_params = original
        rows = results[name]
        before = np.mean([psnr(x, c) for x, _, c in rows])
        after = np.mean([psnr(y, c) for _, y, c in rows])
        print(f"{name:>36}: input {before:.2f} dB, output {after:.2f} dB ({after - before:+.2f})")

    rows = results["rain as evaluated"]
    low = high = 0.0
    for _, y, c in rows:
        err = (y - c)[None]
        smooth = synth.gaussian_blur(err, 4.0)
        low += float((smooth**2).mean()) / len(rows)
        high += float(((err - smooth) ** 2).mean()) / len(rows)
    print(f"output mean squared error: low frequencies {low:.5f}, high frequencies {high:.5f}")

    train_pairs = []
    for seed in (1, 2, 3):
        train_pairs += ev.load_pairs("derain", args.train, seed=seed, size=256, limit=None)[0]
    train_rows = run(train_pairs)
    features = np.array([statistics(x) for x, _, _ in train_rows])
    targets = np.array([channel_fit(y, c) for _, y, c in train_rows])
    mean, spread = features.mean(0), features.std(0) + 1e-6
    design = np.c_[(features - mean) / spread, np.ones(len(features))]
    test = np.c_[(np.array([statistics(x) for x, _, _ in rows]) - mean) / spread, np.ones(len(rows))]
    output = np.mean([psnr(y, c) for _, y, c in rows])
    oracle = np.mean([psnr(apply_fit(y, channel_fit(y, c)), c) for _, y, c in rows])
    print(f"per-channel gain/offset refit to the truth (oracle): {oracle - output:+.2f} dB")
    for ridge in (1.0, 100.0):
        weights = np.linalg.solve(design.T @ design + ridge * np.eye(design.shape[1]), design.T @ targets)
        predicted = np.mean(
            [psnr(apply_fit(y, t), c) for (_, y, c), t in zip(rows, test @ weights, strict=True)]
        )
        print(
            f"the same refit predicted from the input's statistics (ridge {ridge:g}): "
            f"{predicted - output:+.2f} dB"
        )


if __name__ == "__main__":
    main()
