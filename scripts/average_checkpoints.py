"""Average the weights of checkpoints of one generator shape: a "model soup" (Wortsman et al. 2022).

    python scripts/average_checkpoints.py A.safetensors B.safetensors -o soup.safetensors
    python scripts/average_checkpoints.py A.safetensors B.safetensors --weights 0.7 0.3 -o soup.safetensors

Why: fine-tuning runs of the de-raining net that start from one model end in one basin, each where its
last batches pulled it (towards dry photos or towards rain, run to run); the average of two such ends was
about as good as the better one on the public sets and between them on dry photos
(docs/models/pan-derain.md, 2026-12-07, soup-a). The trainer's ``ema`` setting does the same along one
run; this averages finished runs.

Floating-point tensors (weights and batch-norm statistics) are averaged in float64 and stored as float32;
integer ones (batch-norm counters) are taken from the first file. Every file must hold the same
architecture and task. The output's metadata lists the inputs by name, sha256 and weight
(``ganedit.soup``) and keeps no training metadata of any one input. Checkpoints are read as safetensors
only (`ganedit.checkpoint`), never unpickled.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from ganedit.checkpoint import KEY_FLIP_AVERAGE, load_checkpoint, save_checkpoint
from ganedit.errors import GaneditError
from ganedit.hub import sha256_file


def average(paths: list[Path], weights: list[float], out: Path) -> None:
    """Write the weighted average of the checkpoints `paths` to `out` (GaneditError if they differ)."""
    models = [load_checkpoint(path) for path in paths]
    first, info = models[0]
    for path, (model, other) in zip(paths[1:], models[1:], strict=True):
        # the built configs, not the stored dicts: a file written before a setting existed lacks its key
        # (its default) and is still the same shape
        if (other.arch, model.config, other.task) != (info.arch, first.config, info.task):
            raise GaneditError(f"{path} is not the same model shape and task as {paths[0]}")
    total = sum(weights)
    states = [model.state_dict() for model, _ in models]
    averaged = {}
    for name, value in states[0].items():
        if value.is_floating_point():
            mixed = sum(w / total * state[name].double() for w, state in zip(weights, states, strict=True))
            averaged[name] = torch.as_tensor(mixed).to(value.dtype)
        else:
            averaged[name] = value.clone()
    first.load_state_dict(averaged, strict=True)
    soup = [
        {"file": path.name, "sha256": sha256_file(path), "weight": w / total}
        for path, w in zip(paths, weights, strict=True)
    ]
    extra = {"ganedit.soup": json.dumps(soup)}
    flips = {other.metadata.get(KEY_FLIP_AVERAGE) for _, other in models}
    if len(flips) == 1 and None not in flips:
        extra[KEY_FLIP_AVERAGE] = flips.pop()  # type: ignore[assignment]
    save_checkpoint(out, first, task=info.task, extra=extra)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", type=Path, nargs="+", help="ganedit .safetensors checkpoints")
    parser.add_argument("-o", "--output", type=Path, required=True, help="the averaged checkpoint")
    parser.add_argument("--weights", type=float, nargs="+", help="one per checkpoint (default: equal)")
    args = parser.parse_args(argv)
    weights = args.weights or [1.0] * len(args.checkpoints)
    if len(args.checkpoints) < 2:
        parser.error("give at least two checkpoints")
    if len(weights) != len(args.checkpoints) or min(weights) < 0 or sum(weights) <= 0:
        parser.error("--weights: one non-negative weight per checkpoint, not all zero")
    try:
        average(args.checkpoints, weights, args.output)
    except GaneditError as e:
        print(f"average_checkpoints: {e}", file=sys.stderr)
        return 1
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
