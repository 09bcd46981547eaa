"""How long the training-pair synthesisers take per sample, next to one training step's forward pass.

    python benchmarks/synth_speed.py            # 96 and 256 px crops, one thread
    python benchmarks/synth_speed.py --json

Pairs are synthesised on the fly in data-loader workers (one thread each), so a synthesiser must stay
well below the time of a training step or the generator waits for data. Reported as the ratio of the
synthesis time to the forward + backward of a freshly initialised generator of the de-raining shape
(fp32) on a batch of 4 crops of the same size, measured in the same run (the machines are noisy: no
absolute figure is asserted anywhere).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import torch

from ganedit.archs.pan import PANGenerator, preset
from ganedit.train.synth import add_rain, make_mask, make_sketch, sample_sketch_params


def best_of(repeats: int, fn: Callable[[], None]) -> float:
    fn()  # warm up (first calls build kernels)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[96, 256])
    parser.add_argument("--samples", type=int, default=20, help="samples per timed round")
    parser.add_argument("--repeats", type=int, default=3, help="take the best of this many rounds")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)

    rows = []
    model = PANGenerator(preset("derain"))
    for size in args.sizes:
        clean = torch.rand(3, size, size, generator=torch.Generator().manual_seed(0))

        def rain(clean: torch.Tensor = clean) -> None:
            for seed in range(args.samples):
                add_rain(clean, seed)

        def masks(size: int = size) -> None:
            for seed in range(args.samples):
                make_mask(size, size, seed)

        def sketches(clean: torch.Tensor = clean) -> None:
            for seed in range(args.samples):
                make_sketch(clean, params=sample_sketch_params(seed))

        batch = torch.rand(4, 3, size, size) * 2 - 1

        def step(batch: torch.Tensor = batch) -> None:
            model(batch).abs().mean().backward()

        t_step = best_of(args.repeats, step)
        for name, fn in (("rain", rain), ("mask", masks), ("sketch", sketches)):
            per_sample = best_of(args.repeats, fn) / args.samples
            rows.append(
                {
                    "synthesiser": name,
                    "size": size,
                    "ms_per_sample": round(per_sample * 1000, 2),
                    "ms_per_training_step": round(t_step * 1000, 1),
                    "ratio_4_samples_to_step": round(4 * per_sample / t_step, 3),
                }
            )
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    for r in rows:
        print(
            f"{r['synthesiser']:>6} {r['size']:>4} px: {r['ms_per_sample']:7.2f} ms/sample; a batch of 4 "
            f"is {r['ratio_4_samples_to_step']:.2f} x one derain training step "
            f"({r['ms_per_training_step']} ms)"
        )


if __name__ == "__main__":
    main()
