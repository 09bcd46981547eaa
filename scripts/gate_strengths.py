"""What a de-raining model's residual gate (`generator.residual_gate`) decides, set by set.

    python scripts/gate_strengths.py runs/x/model.safetensors           # strengths per set
    python scripts/gate_strengths.py runs/x/model.safetensors --body    # also: with the gate held at 1

The gate scales each image's whole predicted residual by one strength in (0, 2). This prints, for rain-free
holdout photos, the holdout with each synthetic rain, the public paired sets (../shared/datasets/derain,
evaluation only) and the real rainy photos of derain/real, the mean / lowest / highest strength the editor's
model computes (the tool's defaults: flip averaging, so two forwards per image; their mean counts). A gate
that generalises is near 0 on the first row and near 1 on every other. ``--body`` then evaluates the model
with the gate forced open (strength 1) on the public sets and the rain-free photos: what the body learned.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from derain_table import HOLDOUT, PUBLIC, SETS  # scripts/, next to this one: the same folders
from PIL import Image

from ganedit.api import load_editor
from ganedit.data import synth
from ganedit.eval.pan import evaluate, load_pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", help="a derain checkpoint with generator.residual_gate")
    parser.add_argument("--body", action="store_true", help="also evaluate with the gate held at 1")
    args = parser.parse_args()
    editor = load_editor(args.weights, device="cpu")
    gate = getattr(editor.model.net, "gate", None)
    if gate is None:
        parser.error(f"{args.weights} has no residual gate (generator.residual_gate)")
    seen: list[float] = []
    gate.register_forward_hook(lambda _module, _inputs, out: seen.extend(out.float().flatten().tolist()))

    def strengths(name: str, images: list[np.ndarray], names: list[str] | None = None) -> None:
        means = []
        for image in images:
            seen.clear()
            editor.edit(image)
            means.append(float(np.mean(seen)))
        values = np.array(means)
        print(
            f"| {name} | {len(values)} | {values.mean():.3f} | {values.min():.3f} | {values.max():.3f} | "
            f"{int((values < 0.1).sum())} |",
            flush=True,
        )
        if names:
            shut = [n for n, v in zip(names, values, strict=True) if v < 0.1]
            print(f"|   shut: {', '.join(shut) or 'none'} | | | | | |", flush=True)

    print("| images | n | mean strength | lowest | highest | shut (< 0.1) |")
    print("|---|---:|---:|---:|---:|---:|")
    clean = load_pairs("derain", HOLDOUT, seed=0, size=512, limit=None)[0]
    strengths("rain-free holdout photos", [pair.target for pair in clean])
    for rain in synth.RAIN_SAMPLERS:
        pairs = load_pairs("derain", HOLDOUT, seed=0, size=512, limit=None, rain=rain)[0]
        strengths(f"holdout, {rain} rain", [pair.input for pair in pairs])
    for name in PUBLIC:
        pairs = load_pairs("derain", SETS / name, seed=0, size=512, limit=None)[0]
        strengths(name, [pair.input for pair in pairs])
    real = sorted(p for p in (SETS / "real").iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    strengths("derain/real", [np.asarray(Image.open(p).convert("RGB")) for p in real], [p.name for p in real])

    if args.body:
        gate.forward = lambda h: torch.ones(h.shape[0], 1, 1, 1, dtype=h.dtype, device=h.device)
        figures = [f"{name} {evaluate(editor, SETS / name).metrics['psnr_y']:.2f}" for name in PUBLIC]
        dry = evaluate(editor, HOLDOUT, identity=True).metrics
        figures.append(f"rain-free mean {dry['psnr']:.2f} / worst {dry['worst_psnr']:.2f} dB")
        print("gate held at 1:", ", ".join(figures))


if __name__ == "__main__":
    main()
