"""How well a TDGAN model reconstructs seats it was trained on versus held-out seats: a one-off analysis
behind the `tdgan-chairs` model card.

    python scripts/tdgan_generalisation.py --weights src/ganedit/weights/tdgan-chairs.safetensors

For 8 random identities of each split of a rendered set (``ganedit train render-chairs``), 6 random views
each, the model re-renders every view at its own tags (R then G: the best a re-render can be) and the
PSNR against the view itself is averaged; next to it, the same after refitting each colour channel of
the output to the view (gain and offset: an oracle), to tell colour errors from shape errors. A large gap
between the splits means the model draws a held-out seat like the training seats it resembles: re-renders
at nearby poses then lose to the input unchanged, whatever the pose accuracy.

Not part of the tool: it needs the rendered chairs of data.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ganedit.eval.metrics import psnr as _psnr
from ganedit.eval.tdgan import PSNR_CAP, TaggedSet
from ganedit.runtime.rerenderer import Rerenderer


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR of two 0-255 images, capped as `ganedit eval` caps it."""
    return min(_psnr(a, b, data_range=255.0), PSNR_CAP)


def channel_refit(output: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """The output with each channel's gain and offset least-squares fitted to the truth (an oracle)."""
    out = output.reshape(-1, 3).astype(np.float64)
    tru = truth.reshape(-1, 3).astype(np.float64)
    fitted = np.empty_like(out)
    for c in range(3):
        design = np.stack([out[:, c], np.ones(len(out))], axis=1)
        coef, *_ = np.linalg.lstsq(design, tru[:, c], rcond=None)
        fitted[:, c] = design @ coef
    return np.clip(fitted, 0, 255).reshape(output.shape)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", type=Path, required=True, help="a rerender checkpoint")
    parser.add_argument("--data", type=Path, default=Path("data/chairs"), help="a rendered, tagged set")
    parser.add_argument("--identities", type=int, default=8, help="per split")
    parser.add_argument("--views", type=int, default=6, help="per identity")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--refine-steps", type=int, default=0, help="identity refinement (default 0: R then G, as documented)"
    )
    args = parser.parse_args()

    model = Rerenderer.open(args.weights, device="cpu", refine_steps=args.refine_steps)
    names = list(model.config.tag_names)
    rng = np.random.default_rng(args.seed)
    print(f"{'split':6} {'views':>5} {'PSNR':>7} {'PSNR, channels refitted':>24}")
    for split in ("train", "eval"):
        data = TaggedSet(args.data, model.config.image_size, split)
        groups = data.by_identity()
        identities = list(groups)
        rng.shuffle(identities)
        plain: list[float] = []
        refitted: list[float] = []
        for identity in identities[: args.identities]:
            entries = groups[identity]
            for k in rng.choice(len(entries), min(args.views, len(entries)), replace=False):
                entry = entries[int(k)]
                view = data.image(entry)
                own = {t: data.vocabulary[t][data.tag_index(entry, t)] for t in names}
                output = model.render(view, [own], inferred=own)[0]
                plain.append(psnr(output, view))
                refitted.append(psnr(channel_refit(output, view), view))
        print(f"{split:6} {len(plain):5d} {np.mean(plain):7.2f} {np.mean(refitted):24.2f}")


if __name__ == "__main__":
    main()
