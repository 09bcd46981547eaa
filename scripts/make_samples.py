"""Make the sample inputs kept in samples/ (rainy photos, a photo with a mask, a sketch), reproducibly.

    python scripts/make_samples.py        # needs data/photos from scripts/fetch_training_data.py

Sources are scikit-image's sample photos, which are evaluation-only for us (never trained or tuned on)
and free to redistribute: astronaut (NASA, public domain), coffee (Rachel Michetti, CC0), rocket
(SpaceX, public domain), chelsea (Stefan van der Walt, CC0). The degradations come from
ganedit.data.synth with fixed seeds, so the files are the same every time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ganedit.data.synth import add_rain, make_mask, make_sketch

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "data" / "photos" / "eval" / "python3-skimage"
SAMPLES = ROOT / "samples"


def _load(name: str) -> torch.Tensor:
    image = np.asarray(Image.open(SOURCE / name).convert("RGB"), dtype=np.float32) / 255
    return torch.from_numpy(image).permute(2, 0, 1).contiguous()


def _save(x: torch.Tensor, path: Path, **options: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    array = (x.clamp(0, 1) * 255 + 0.5).to(torch.uint8)
    array = array.permute(1, 2, 0).squeeze(-1).numpy() if array.shape[0] > 1 else array[0].numpy()
    Image.fromarray(array).save(path, **options)


def main() -> None:
    for seed, name in enumerate(("astronaut.png", "coffee.png", "rocket.jpg")):
        clean = _load(name)
        rainy = add_rain(clean, torch.Generator().manual_seed(100 + seed))
        _save(rainy, SAMPLES / "rain" / f"{Path(name).stem}_rain.jpg", quality=92)
    photo = _load("chelsea.png")
    _save(photo, SAMPLES / "inpaint" / "chelsea.png")
    mask = make_mask(photo.shape[1], photo.shape[2], torch.Generator().manual_seed(7), coverage=(0.08, 0.15))
    _save(mask, SAMPLES / "inpaint" / "masks" / "chelsea.png")
    sketch = make_sketch(_load("coffee.png"), torch.Generator().manual_seed(3), channels=1)
    _save(sketch, SAMPLES / "sketch" / "coffee_sketch.png")


if __name__ == "__main__":
    main()
