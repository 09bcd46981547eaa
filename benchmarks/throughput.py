"""End-to-end images/s of `ganedit derain` on a folder of JPEGs vs the model-only forward, in one run.

    python benchmarks/throughput.py --random-init derain            # before trained weights exist
    python benchmarks/throughput.py --weights src/ganedit/weights/pan-derain.safetensors

End-to-end = decode + model + encode + atomic write, with I/O overlapped on worker threads (the folder
runner as the CLI uses it). Model-only = the same images, already decoded and on the device, through
`Editor.forward`, one image per forward as the folder runner does (`Editor.edit_many` never batches
images together, so that a file's pixels do not depend on the files beside it). Their ratio says how much
the I/O costs; target >= 0.85 on CPU.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import add_weights_arguments, weights_path, write_photos
from PIL import Image

from ganedit import api


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_weights_arguments(parser)
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=4, help="tiles per forward (large images)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--repeats", type=int, default=2, help="take the best of this many timed runs")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="ganedit-bench-"))
    try:
        photos = write_photos(work / "in", args.images, args.size, args.size)
        editor = api.load_editor(
            weights_path(args, work), device=args.device, precision=args.precision, batch_size=args.batch_size
        )
        # Model only: the decoded images as one device tensor, through the forward one image at a time,
        # as the folder runner runs them (batches of 4 ran at 5.8 images/s against 7.4 one at a time, 512 px,
        # 2-core CPU, bf16, 2026-12-08: comparing the runner with them made I/O look free).
        batch = torch.stack(
            [torch.from_numpy(np.array(Image.open(p).convert("RGB"))).permute(2, 0, 1) for p in photos]
        )
        x = (batch.float() / 127.5 - 1).to(editor.device)

        def model_only() -> None:
            for i in range(len(x)):
                editor.forward(x[i : i + 1])
            if editor.device.type == "cuda":
                torch.cuda.synchronize()

        def end_to_end() -> None:
            out = work / "out"
            shutil.rmtree(out, ignore_errors=True)
            report = api.edit_folder([work / "in"], out, editor=editor)
            assert report.count("ok") == len(photos), report.to_dict()

        model_only()  # warm-up (allocator, kernels, autotuning)
        end_to_end()
        timings: dict[str, float] = {}
        for name, fn in (("model_only", model_only), ("end_to_end", end_to_end)):
            best = float("inf")
            for _ in range(args.repeats):
                start = time.perf_counter()
                fn()
                best = min(best, time.perf_counter() - start)
            timings[name] = len(photos) / best
        figures = {
            "device": str(editor.device),
            "precision": editor.precision,
            "torch_threads": torch.get_num_threads(),
            "images": len(photos),
            "size": args.size,
            "batch_size": args.batch_size,
            "model_only_images_per_s": round(timings["model_only"], 3),
            "end_to_end_images_per_s": round(timings["end_to_end"], 3),
            "ratio": round(timings["end_to_end"] / timings["model_only"], 3),
        }
        if args.json:
            print(json.dumps(figures, indent=2))
        else:
            for key, value in figures.items():
                print(f"{key:>26}: {value}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
