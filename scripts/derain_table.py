"""The de-raining table of the pan-derain card: public benchmark sets, own holdout, rain-free photos.

    python scripts/derain_table.py                                 # the default (shipped) model
    python scripts/derain_table.py --weights runs/x/model.safetensors --json out.json

Runs `ganedit eval` (the tool's defaults: flip averaging, automatic precision) on
  * ../shared/datasets/derain/{rain12,rain100l-10,sirr-20} (rain/ + clean/; evaluation only), Y-channel
    PSNR / SSIM of BT.601 as the papers report them, with the rainy input as the baseline;
  * data/photos/holdout with synthesised rain (ganedit eval's seeded protocol): classic, streak,
    fine, faint and long rain;
  * data/photos/holdout again with ``--identity``: the photos without rain, how much the model changes them
    (ideal: not at all); and the same for the public sets' clean images, rain-free photos of other kinds
    (a city, buildings, people) than our training photos.
and prints one markdown table. Missing folders are skipped with a note.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETS = ROOT.parent / "shared" / "datasets" / "derain"
HOLDOUT = ROOT / "data" / "photos" / "holdout"
# The paired sets in SETS (evaluation only).
PUBLIC = ("rain12", "rain100l-10", "sirr-20")


def run_eval(model: list[str], data: Path, *extra: str) -> dict:
    command = [sys.executable, "-m", "ganedit", "eval", *model, "--data", str(data), "--json", *extra]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout)


def identity_row(what: str, report: dict) -> str:
    """A table row for an ``--identity`` report: how much the model changed rain-free photos."""
    m, images = report["metrics"], report["images"]
    unchanged = round(m["unchanged_fraction"] * images)
    mean = "inf (some came back unchanged)" if m["psnr"] is None else f"{m['psnr']:.2f} dB"
    changed = "" if m["changed_psnr"] is None else f", changed ones {m['changed_psnr']:.2f} dB"
    # Name the worst photo: a mean hides the one picture a model spoils (a zebra's stripes, a facade).
    scored = [r for r in report["per_image"] if r["psnr"] is not None]
    worst = f" ({min(scored, key=lambda r: r['psnr'])['name']})" if scored else ""
    return (
        f"| {what}, output vs input (RGB) | {images} | ideal: unchanged | "
        f"mean {mean}, worst {m['worst_psnr']:.2f} dB{worst}, largest colour shift "
        f"{m['max_channel_shift']:.1f} levels; {unchanged} of {images} unchanged{changed} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", help="a checkpoint instead of the default pan-derain")
    parser.add_argument("--json", type=Path, help="also write every eval report into this file")
    args = parser.parse_args()
    model = ["--weights", args.weights] if args.weights else ["pan-derain"]
    rows, reports = [], {}
    for name in PUBLIC:
        if not (SETS / name).is_dir():
            print(f"skipped {name}: {SETS / name} is missing", file=sys.stderr)
            continue
        r = reports[name] = run_eval(model, SETS / name)
        m = r["metrics"]
        rows.append(
            f"| {name} (Y) | {r['images']} | {m['baseline_psnr_y']:.2f} / {m['baseline_ssim_y']:.3f} | "
            f"{m['psnr_y']:.2f} / {m['ssim_y']:.3f} |"
        )
    if HOLDOUT.is_dir():
        r = reports["holdout"] = run_eval(model, HOLDOUT)
        m = r["metrics"]
        rows.append(
            f"| own holdout, synthetic rain (RGB) | {r['images']} | {m['baseline_psnr']:.2f} / "
            f"{m['baseline_ssim']:.3f} | {m['psnr']:.2f} / {m['ssim']:.3f} |"
        )
        for rain in ("streaks", "fine", "faint", "long"):
            r = reports[f"holdout_{rain}"] = run_eval(model, HOLDOUT, "--rain", rain)
            m = r["metrics"]
            rows.append(
                f"| own holdout, synthetic {rain} rain (RGB) | {r['images']} | {m['baseline_psnr']:.2f} / "
                f"{m['baseline_ssim']:.3f} | {m['psnr']:.2f} / {m['ssim']:.3f} |"
            )
        r = reports["identity"] = run_eval(model, HOLDOUT, "--identity")
        rows.append(identity_row("rain-free holdout photos", r))
    else:
        print(
            f"skipped the holdout rows: {HOLDOUT} is missing (scripts/fetch_training_data.py)",
            file=sys.stderr,
        )
    for name in PUBLIC:
        # the public sets' clean images: rain-free photos of other kinds than our training photos
        if (SETS / name / "clean").is_dir():
            r = reports[f"{name}_identity"] = run_eval(model, SETS / name / "clean", "--identity")
            rows.append(identity_row(f"{name} clean images (rain-free)", r))
    print("| set | images | input PSNR / SSIM | output PSNR / SSIM |")
    print("|---|---:|---:|---:|")
    print("\n".join(rows))
    if args.json:
        args.json.write_text(json.dumps(reports, indent=2))


if __name__ == "__main__":
    main()
