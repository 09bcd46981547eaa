"""Make the before/after gallery in docs/gallery/ by running the ganedit CLI itself on samples/.

    python scripts/make_gallery.py            # uses the default (shipped) model of each task
    python scripts/make_gallery.py facades    # some: derain derain_real inpaint removal sketch2photo facades
                                              # rerender faces

Each picture is input | ganedit's output (| the clean original, where data/photos/eval has it: the
samples are made from scikit-image's photos by scripts/make_samples.py). The outputs are exactly what
`ganedit derain samples/rain -o out/` and friends write; this script only lays them side by side.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from ganedit.data.synth import make_sketch, sample_sketch_params

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
ORIGINALS = ROOT / "data" / "photos" / "eval" / "python3-skimage"
CHAIRS = ROOT / "data" / "chairs" / "128" / "eval"  # true renders of the held-out chairs, when rendered
GALLERY = ROOT / "docs" / "gallery"
FACADES = ROOT.parent / "shared" / "datasets" / "facades" / "test"  # CMP facades: photo | label map
FACADE_PICKS = ("1.jpg", "5.jpg", "17.jpg", "42.jpg")  # test pairs shown (never trained on)
YALEB = ROOT.parent / "shared" / "datasets" / "yaleb"  # Extended Yale B crops (faces)
FACE_PERSON = "yaleB30"  # held out of tdgan-faces' training (scripts/yaleb_tagset.py: the last 6 people)
FACE_INPUTS = ("A+000E+00", "A+050E+00")  # a frontal light and a side light
FACE_SWEEP = (-120, -95, -70, -50, -25, -10, 0, 10, 25, 50, 70, 95, 120)  # every azimuth shot at elevation 0
LIGHTS = ("front", "left", "right", "top")  # the chairs' light vocabulary, in order
HEIGHT = 320  # px per panel in the gallery
GAP = 6


def ganedit(*args: str) -> bool:
    """Run the CLI; False when the task has no model yet (exit 3), so its pictures are skipped."""
    done = subprocess.run([sys.executable, "-m", "ganedit", *args, "-q", "--overwrite"], check=False)
    if done.returncode == 3:
        print(f"skipped ganedit {args[0]}: no model for it yet", file=sys.stderr)
        return False
    done.check_returncode()
    return True


def panel(path: Path, label: str) -> Image.Image:
    with Image.open(path) as source:
        rgb = source.convert("RGB")
    im = rgb.resize((round(rgb.width * HEIGHT / rgb.height), HEIGHT), Image.Resampling.LANCZOS)
    draw = ImageDraw.Draw(im)
    draw.rectangle((0, 0, 8 + 7 * len(label), 16), fill=(0, 0, 0))
    draw.text((4, 2), label, fill=(255, 255, 255))
    return im


def strip(panels: list[Image.Image], out: Path) -> None:
    width = sum(p.width for p in panels) + GAP * (len(panels) - 1)
    sheet = Image.new("RGB", (width, HEIGHT), (255, 255, 255))
    x = 0
    for p in panels:
        sheet.paste(p, (x, 0))
        x += p.width + GAP
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, quality=90)
    print(out.relative_to(ROOT))


def original(stem: str) -> Path | None:
    for suffix in (".png", ".jpg"):
        if (ORIGINALS / f"{stem}{suffix}").is_file():
            return ORIGINALS / f"{stem}{suffix}"
    return None


def masked_view(image: Path, mask: Path, out: Path) -> Path:
    with Image.open(image) as source, Image.open(mask) as m:
        rgb = source.convert("RGB")
        hole = m.convert("L").point(lambda v: 255 if v > 127 else 0)
    rgb.paste((255, 255, 255), mask=hole)
    rgb.save(out)
    return out


def main() -> None:
    sections = {
        "derain": derain_gallery,
        "derain_real": derain_real_gallery,
        "inpaint": inpaint_gallery,
        "removal": removal_gallery,
        "sketch2photo": sketch_gallery,
        "facades": facades_gallery,
        "rerender": rerender_gallery,
        "faces": faces_gallery,
    }
    chosen = sys.argv[1:] or list(sections)
    unknown = [name for name in chosen if name not in sections]
    if unknown:
        raise SystemExit(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(sections)}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in chosen:
            sections[name](Path(tmp) / name)


def derain_gallery(out: Path) -> None:
    rain = ganedit("derain", str(SAMPLES / "rain"), "-o", str(out))
    for src in sorted((SAMPLES / "rain").iterdir()) if rain else ():
        panels = [panel(src, "input"), panel(out / src.name, "output")]
        clean = original(src.stem.removesuffix("_rain"))
        if clean is not None:
            panels.append(panel(clean, "original"))
        strip(panels, GALLERY / f"derain_{src.stem}.jpg")


REAL_RAIN = ROOT.parent / "shared" / "datasets" / "derain" / "real"
REAL_PICKS = ("12.jpg", "24.jpg", "60.jpg", "96.jpg")  # real rainy photos: visual checks and gallery only


def derain_real_gallery(out: Path) -> None:
    """Real rainy photographs (no ground truth) through `ganedit derain`, input | output."""
    if not REAL_RAIN.is_dir():
        print(f"skipped the real-rain pictures: {REAL_RAIN} is missing", file=sys.stderr)
        return
    inputs = out / "in"
    inputs.mkdir(parents=True, exist_ok=True)
    for name in REAL_PICKS:
        (inputs / name).write_bytes((REAL_RAIN / name).read_bytes())
    if ganedit("derain", str(inputs), "-o", str(out / "out")):
        for name in REAL_PICKS:
            panels = [panel(inputs / name, "real rain"), panel(out / "out" / name, "ganedit derain")]
            strip(panels, GALLERY / f"derain_real_{Path(name).stem}.jpg")


def inpaint_gallery(out: Path) -> None:
    masks = SAMPLES / "inpaint" / "masks"
    inputs = SAMPLES / "inpaint"
    filled = ganedit("inpaint", str(inputs), "--mask", str(masks), "-o", str(out))
    for src in sorted(p for p in (SAMPLES / "inpaint").iterdir() if p.is_file()) if filled else ():
        out.mkdir(parents=True, exist_ok=True)
        holed = masked_view(src, masks / src.name, out / f"holed_{src.name}")
        panels = [
            panel(holed, "input+mask"),
            panel(out / src.name, "output"),
            panel(src, "original"),
        ]
        strip(panels, GALLERY / f"inpaint_{src.stem}.jpg")


# Object removal on evaluation-only photos (data/photos/eval: never trained or tuned on): the object's
# outline drawn by hand as a polygon (x, y in the photo's pixels), grown by REMOVAL_MARGIN px as a user's
# brush would be. No ground truth exists: these pictures are for looking.
REMOVAL = {
    "astronaut": (  # the space-shuttle model on the right
        "python3-skimage/astronaut.png",
        [(352, 0), (468, 0), (468, 240), (478, 288), (348, 288), (352, 240)],
    ),
    "rocket": (  # the lightning tower right of the rocket
        "python3-skimage/rocket.jpg",
        [(432, 118), (476, 118), (478, 392), (430, 392)],
    ),
    "coffee": (  # the spoon on the saucer
        "python3-skimage/coffee.png",
        [
            (405, 62),
            (428, 70),
            (400, 200),
            (394, 238),
            (410, 262),
            (410, 310),
            (386, 332),
            (340, 332),
            (318, 302),
            (322, 258),
            (346, 238),
            (372, 228),
            (384, 194),
        ],
    ),
}
REMOVAL_MARGIN = 6


def removal_gallery(out: Path) -> None:
    """Object removal: `ganedit inpaint` with a hand-drawn mask over an object, input | mask | output."""
    from PIL import ImageFilter

    inputs, masks = out / "in", out / "masks"
    inputs.mkdir(parents=True, exist_ok=True)
    masks.mkdir(parents=True, exist_ok=True)
    picked = {}
    for stem, (relative, polygon) in REMOVAL.items():
        source = ROOT / "data" / "photos" / "eval" / relative
        if not source.is_file():
            print(
                f"skipped removal {stem}: {source} is missing (scripts/fetch_training_data.py)",
                file=sys.stderr,
            )
            continue
        with Image.open(source) as im:
            rgb = im.convert("RGB")
        rgb.save(inputs / f"{stem}.png")
        mask = Image.new("L", rgb.size, 0)
        ImageDraw.Draw(mask).polygon(polygon, fill=255)
        mask.filter(ImageFilter.MaxFilter(2 * REMOVAL_MARGIN + 1)).save(masks / f"{stem}.png")
        picked[stem] = inputs / f"{stem}.png"
    if picked and ganedit("inpaint", str(inputs), "--mask", str(masks), "-o", str(out / "out")):
        for stem, src in picked.items():
            holed = masked_view(src, masks / f"{stem}.png", out / f"holed_{stem}.png")
            panels = [
                panel(src, "photo"),
                panel(holed, "mask"),
                panel(out / "out" / f"{stem}.png", "ganedit inpaint"),
            ]
            strip(panels, GALLERY / f"removal_{stem}.jpg")


def sketch_gallery(out: Path) -> None:
    # the sample is a drawing of a photo of anything: the general model (the default knows facades)
    drawn = ganedit("sketch2photo", str(SAMPLES / "sketch"), "--model", "pan-sketch2photo", "-o", str(out))
    for src in sorted((SAMPLES / "sketch").iterdir()) if drawn else ():
        panels = [panel(src, "input"), panel(out / src.name, "output")]
        clean = original(src.stem.removesuffix("_sketch"))
        if clean is not None:
            panels.append(panel(clean, "original"))
        strip(panels, GALLERY / f"sketch2photo_{src.stem}.jpg")


def facades_gallery(out: Path) -> None:
    """CMP facades test pairs: label map -> `ganedit labels2photo`, and an XDoG drawing of the photo ->
    `ganedit sketch2photo --model pan-sketch2photo-facades`, each next to the true photo; plus the drawn
    label map of samples/labels/."""
    if not FACADES.is_dir():
        print(f"skipped the facades pictures: {FACADES} is missing", file=sys.stderr)
        return
    labels, photos, sketches = out / "labels", out / "photos", out / "sketches"
    for folder in (labels, photos, sketches):
        folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(FACADE_PICKS):
        with Image.open(FACADES / name) as pair:
            half = pair.width // 2
            photo = pair.convert("RGB").crop((0, 0, half, pair.height))
            pair.convert("RGB").crop((half, 0, 2 * half, pair.height)).save(labels / f"{Path(name).stem}.png")
        photo.save(photos / f"{Path(name).stem}.png")
        x = torch.from_numpy(np.array(photo)).permute(2, 0, 1).float() / 255.0
        drawing = make_sketch(x, params=sample_sketch_params(1000 + i))  # the eval protocol's distribution
        array = (drawing.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
        Image.fromarray(array).save(sketches / f"{Path(name).stem}.png")
    perceptual = ("--model", "pan-facades-perceptual")
    if ganedit("labels2photo", str(labels), "-o", str(out / "labels_out")) and ganedit(
        "labels2photo", str(labels), *perceptual, "-o", str(out / "perceptual_out")
    ):
        for name in FACADE_PICKS:
            stem = Path(name).stem
            panels = [
                panel(labels / f"{stem}.png", "label map"),
                panel(out / "labels_out" / f"{stem}.png", "pan-facades (default)"),
                panel(out / "perceptual_out" / f"{stem}.png", "pan-facades-perceptual"),
                panel(photos / f"{stem}.png", "true photo"),
            ]
            strip(panels, GALLERY / f"labels2photo_facade_{stem}.jpg")
        drawn = SAMPLES / "labels"
        if ganedit("labels2photo", str(drawn), "-o", str(out / "drawn_out")):
            for src in sorted(drawn.iterdir()):
                strip(
                    [
                        panel(src, "drawn label map"),
                        panel(out / "drawn_out" / src.name, "ganedit labels2photo"),
                    ],
                    GALLERY / f"labels2photo_{src.stem}.jpg",
                )
    args = (
        "sketch2photo",
        str(sketches),
        "--model",
        "pan-sketch2photo-facades",
        "-o",
        str(out / "sketch_out"),
    )
    if ganedit(*args):
        for name in FACADE_PICKS:
            stem = Path(name).stem
            panels = [
                panel(sketches / f"{stem}.png", "drawing (XDoG)"),
                panel(out / "sketch_out" / f"{stem}.png", "ganedit sketch2photo"),
                panel(photos / f"{stem}.png", "true photo"),
            ]
            strip(panels, GALLERY / f"sketch2photo_facade_{stem}.jpg")


def true_turntable(stem: str, out: Path) -> Path | None:
    """The real renders of a held-out chair at every azimuth (same elevation and light), as one row."""
    identity = {"eteks-chair": "eteks--chair"}.get(stem.split("_", maxsplit=1)[0])
    folder = CHAIRS / identity if identity else None
    if folder is None or not folder.is_dir():
        return None
    size = 64  # the model's size
    frames = [
        Image.open(p).convert("RGB").resize((size, size), Image.Resampling.LANCZOS)
        for p in sorted(folder.glob("az*_el20_front.png"))
    ]
    row = Image.new("RGB", (size * len(frames), size), (240, 240, 240))
    for i, frame in enumerate(frames):
        row.paste(frame, (i * size, 0))
    row.save(out)
    return out


def rerender_gallery(out: Path) -> None:
    """A turntable of a held-out chair: `ganedit rerender CHAIR --tag azimuth=all --sheet --gif`."""
    chairs = SAMPLES / "chair"
    if not ganedit("rerender", str(chairs), "--tag", "azimuth=all", "--sheet", "--gif", "-o", str(out)):
        return
    for src in sorted(chairs.iterdir()):
        sheet, gif = out / f"{src.stem}_sheet.png", out / f"{src.stem}.gif"
        strip(
            [panel(src, "input"), panel(sheet, "ganedit rerender --tag azimuth=all --sheet")],
            GALLERY / f"rerender_{src.stem}.jpg",
        )
        GALLERY.mkdir(parents=True, exist_ok=True)
        (GALLERY / f"rerender_{src.stem}.gif").write_bytes(gif.read_bytes())
        print((GALLERY / f"rerender_{src.stem}.gif").relative_to(ROOT))
        truth = true_turntable(src.stem, GALLERY / f"rerender_{src.stem}_truth.png")
        if truth is not None:
            print(truth.relative_to(ROOT))

    # the light tag: `ganedit rerender CHAIR --tag light=all --sheet`, next to the true renders
    if not ganedit("rerender", str(chairs), "--tag", "light=all", "--sheet", "-o", str(out / "light")):
        return
    for src in sorted(chairs.iterdir()):
        sheet = out / "light" / f"{src.stem}_sheet.png"
        panels = [panel(src, "input"), panel(sheet, "--tag light=all --sheet")]
        truth = true_lights(src.stem, out / f"{src.stem}_lights_truth.png")
        if truth is not None:
            panels.append(panel(truth, "true renders"))
        strip(panels, GALLERY / f"rerender_{src.stem}_light.jpg")


def true_lights(stem: str, out: Path) -> Path | None:
    """The real renders of a held-out chair at the sample's pose under every light, as one row."""
    # the sample samples/chair/eteks-chair_az046_el20_front.png is the render az04_el20_front of eteks--chair
    identity, pose = {"eteks-chair_az046_el20_front": ("eteks--chair", "az04_el20")}.get(stem, ("", ""))
    folder = CHAIRS / identity
    if not identity or not folder.is_dir():
        return None
    frames = [Image.open(folder / f"{pose}_{light}.png").convert("RGB") for light in LIGHTS]
    size = frames[0].height
    row = Image.new("RGB", (size * len(frames), size), (240, 240, 240))
    for i, frame in enumerate(frames):
        row.paste(frame, (i * size, 0))
    row.save(out)
    return out


def faces_gallery(out: Path) -> None:
    """A held-out face re-lit by `ganedit rerender --model tdgan-faces`: the light swept across the
    azimuths photographed at elevation 0 (--sheet, --gif), next to the true photos at those lights."""
    inputs = out.parent / f"{out.name}-in"  # beside the output folder: files inside it are not inputs
    inputs.mkdir(parents=True)
    for light in FACE_INPUTS:
        source = YALEB / FACE_PERSON / f"{FACE_PERSON}_P00{light}.png"
        if not source.is_file():
            print(f"skipped faces: {source} is not here", file=sys.stderr)
            return
        (inputs / source.name).write_bytes(source.read_bytes())
    azimuths = ",".join(str(a) for a in FACE_SWEEP)
    sweep = ["--tag", f"light_azimuth={azimuths}", "--tag", "light_elevation=0"]
    if not ganedit(
        "rerender", str(inputs), "--model", "tdgan-faces", *sweep, "--sheet", "--gif", "-o", str(out)
    ):
        return
    truth = out / "truth.png"
    frames = []
    for a in FACE_SWEEP:
        with Image.open(YALEB / FACE_PERSON / f"{FACE_PERSON}_P00A{a:+04d}E+00.png") as im:
            grey = im.convert("RGB")
        side = min(grey.size)
        top = (grey.height - side) // 2
        frames.append(grey.crop((0, top, side, top + side)).resize((64, 64), Image.Resampling.LANCZOS))
    row = Image.new("RGB", (64 * len(frames), 64))
    for i, frame in enumerate(frames):
        row.paste(frame, (64 * i, 0))
    row.save(truth)
    GALLERY.mkdir(parents=True, exist_ok=True)
    for src in sorted(inputs.iterdir()):
        sheet = out / f"{src.stem}_sheet.png"
        panels = [panel(src, "input (held-out person)"), panel(sheet, "ganedit rerender, light swept")]
        strip(panels, GALLERY / f"faces_{src.stem}.jpg")
        (GALLERY / f"faces_{src.stem}.gif").write_bytes((out / f"{src.stem}.gif").read_bytes())
        print((GALLERY / f"faces_{src.stem}.gif").relative_to(ROOT))
    strip([panel(truth, "true photos at the same lights")], GALLERY / "faces_truth.jpg")


if __name__ == "__main__":
    main()
