"""One record per editing task. A task has one name everywhere: CLI subcommand, weights.toml, code.

A task says what a model of that task consumes and produces, so that the editor, the folder runner and
the CLI need no per-task branches beyond reading these fields.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import UsageError


@dataclass(frozen=True)
class Task:
    name: str
    summary: str
    arch: str  # the architecture family whose checkpoints serve this task ("pan", "tdgan")
    needs_mask: bool = False  # inpaint: the model input is image + mask (4 channels)
    keeps_grayscale: bool = True  # gray in -> gray out; sketch2photo colourises, so it does not
    strength: bool = False  # derain: --strength blends the result with the input (as denoisers offer)
    label_palette: bool = False  # labels2photo: inputs are label maps painted in the CMP palette (palette.py)
    examples: tuple[str, ...] = ()


TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        Task(
            name="derain",
            summary="Remove rain streaks from photos (PAN).",
            arch="pan",
            strength=True,
            examples=(
                "ganedit derain photo.jpg -o clean.jpg",
                "ganedit derain photos/ -r -o clean/",
                "cat in.jpg | ganedit derain - -o - > out.jpg",
            ),
        ),
        Task(
            name="inpaint",
            summary="Fill the white areas of a mask with plausible content (PAN).",
            arch="pan",
            needs_mask=True,
            examples=(
                "ganedit inpaint photo.jpg --mask photo_mask.png -o filled.png",
                "ganedit inpaint photos/ --mask masks/ -o filled/",
            ),
        ),
        Task(
            name="sketch2photo",
            summary="Turn a line drawing or edge map into a photo-like image (PAN).",
            arch="pan",
            keeps_grayscale=False,
            examples=("ganedit sketch2photo sketches/ -o photos/",),
        ),
        Task(
            name="labels2photo",
            summary="Turn a CMP-facades label map into a facade photo (PAN, the paper's facades task).",
            arch="pan",
            keeps_grayscale=False,
            label_palette=True,
            examples=(
                "ganedit labels2photo labels/ -o facades/",
                "ganedit labels2photo label_map.png -o facade.jpg",
            ),
        ),
        Task(
            name="rerender",
            summary="Re-render an object at other tags such as pose or lighting (TDGAN).",
            arch="tdgan",
            keeps_grayscale=False,
            examples=("ganedit rerender chair.png --tag pose=30 --tag light=left -o out/",),
        ),
    )
}


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise UsageError(f"unknown task {name!r}; valid tasks: {', '.join(TASKS)}") from None
