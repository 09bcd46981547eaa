"""Time and peak memory of one 6000x4000 (24 MP) photo through `ganedit TASK`, as a user runs it.

    python benchmarks/big_image.py --random-init derain
    python benchmarks/big_image.py --weights src/ganedit/weights/pan-derain.safetensors --size 4000x3000

The CLI runs in a child process, so the peak resident memory (ru_maxrss of the child) is the whole
command's: interpreter, torch, the decoded image, the tiles and the encoder. Target on CPU: < 3 GB.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import add_weights_arguments, photo_like, weights_path
from PIL import Image


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_weights_arguments(parser)
    parser.add_argument("--size", default="6000x4000", help="WIDTHxHEIGHT")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("extra", nargs="*", help="extra ganedit options after --, e.g. -- --tile 1024")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))

    work = Path(tempfile.mkdtemp(prefix="ganedit-big-"))
    try:
        src = work / "big.jpg"
        Image.fromarray(photo_like(width, height, 0)).save(src, quality=92)
        weights = weights_path(args, work)
        from ganedit.checkpoint import read_info

        task = read_info(weights).task
        extra = list(args.extra)
        if task == "inpaint":  # a 10 % box mask, white = fill
            mask = np.zeros((height, width), np.uint8)
            mask[height // 3 : height // 3 + height // 4, width // 3 : width // 3 + width // 3] = 255
            Image.fromarray(mask).save(work / "mask.png")
            extra += ["--mask", str(work / "mask.png")]
        cmd = [sys.executable, "-m", "ganedit", task, str(src), "-o", str(work / "out.jpg"),
               "--weights", str(weights), "--device", args.device, "-q", *extra]  # fmt: skip
        start = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            sys.exit(f"ganedit failed ({done.returncode}): {done.stderr}")
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
        figures = {
            "size": f"{width}x{height}",
            "megapixels": round(width * height / 1e6, 1),
            "seconds_end_to_end": round(seconds, 2),
            "peak_rss_gib": round(peak_kib / 2**20, 3),
            "command": " ".join(cmd[2:]),
        }
        if args.json:
            print(json.dumps(figures, indent=2))
        else:
            for key, value in figures.items():
                print(f"{key:>20}: {value}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
