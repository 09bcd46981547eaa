"""One markdown table from several `ganedit eval --json` reports (the model cards' comparison tables).

    python scripts/eval_table.py pan=runs/a.json pix2pix=runs/b.json --baseline "mean colour"

Each argument is LABEL=REPORT.json. The first report's baseline figures make the first row (they are the
same in every report of one protocol: the script checks). Columns: PSNR, SSIM and, for the colour tasks
(sketch2photo, labels2photo), the mean chroma with its ratio to the truth's and the colour histogram
distance to the truth.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", help="LABEL=REPORT.json")
    parser.add_argument("--baseline", default="baseline", help="label of the baseline row")
    args = parser.parse_args()
    loaded = []
    for item in args.reports:
        label, _, path = item.rpartition("=")
        loaded.append((label, json.loads(Path(path).read_text())))
    first = loaded[0][1]["metrics"]
    for label, report in loaded[1:]:
        m = report["metrics"]
        for key in ("baseline_psnr", "baseline_ssim"):
            if abs(m[key] - first[key]) > 1e-6:
                raise SystemExit(f"{label}: {key} differs from the first report's: not the same protocol")
    colour = "chroma" in first
    header = ["model", "PSNR", "SSIM"]
    if colour:
        header += ["mean chroma (ratio to the truth)", "colour histogram distance"]
    print("| " + " | ".join(header) + " |")
    print("|---|" + "---:|" * (len(header) - 1))

    def row(label: str, psnr: float, ssim: float, chroma: float | None, hist: float | None) -> str:
        cells = [label, f"{psnr:.2f}", f"{ssim:.4f}"]
        if colour:
            truth = first["target_chroma"]
            cells += [f"{chroma:.2f} ({chroma / truth:.2f})", f"{hist:.4f}"]
        return "| " + " | ".join(cells) + " |"

    if colour:
        print(f"| true photos | | | {first['target_chroma']:.2f} (1.00) | 0 |")
    print(
        row(
            args.baseline,
            first["baseline_psnr"],
            first["baseline_ssim"],
            first.get("baseline_chroma"),
            first.get("baseline_histogram_distance"),
        )
    )
    for label, report in loaded:
        m = report["metrics"]
        print(row(label, m["psnr"], m["ssim"], m.get("chroma"), m.get("histogram_distance")))


if __name__ == "__main__":
    main()
