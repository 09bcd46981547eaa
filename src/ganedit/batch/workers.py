"""What each command does with one decoded input (a `run.Worker`): `EditWorker` runs a PAN editor and
writes one image in the input's format; `RerenderWorker` re-renders a TDGAN sweep and writes one PNG per
tag combination, with a contact sheet and a GIF when asked."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..io import capture_warnings, encode_gif, encode_picture, encode_png, output_format
from .plan import Namer
from .read import Loaded
from .report import Report
from .run import Encoded, Progress
from .sweep import contact_sheet, output_name, sheet_columns

if TYPE_CHECKING:
    from ..runtime.editor import Editor
    from ..runtime.rerenderer import Rerenderer


def side_by_side(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """``--compare``: the input left of the output, in the output's layout (a gray input beside a
    colourised output is shown in RGB; alpha stays alpha)."""
    if before.shape[:2] != after.shape[:2] or before.dtype != after.dtype:
        raise ValueError("before and after must have one size and dtype")
    channels = after.shape[2]
    if before.shape[2] != channels:
        color = before[:, :, :1]
        color = np.repeat(color, 3, axis=2) if channels in (3, 4) else color
        alpha = [before[:, :, -1:]] if before.shape[2] in (2, 4) else []
        if channels in (2, 4) and not alpha:
            alpha = [np.full_like(before[:, :, :1], np.iinfo(before.dtype).max)]
        before = np.concatenate([color, *alpha], axis=2) if channels in (2, 4) else color
    return np.concatenate([before, after], axis=1)


class EditWorker:
    """A PAN editor over each input: one output, in the input's format (or the one asked for), with its
    EXIF, ICC profile, alpha and bit depth."""

    def __init__(self, editor: Editor, *, quality: int = 95, compare: bool = False) -> None:
        self.editor, self.quality, self.compare = editor, quality, compare

    def describe(self, report: Report) -> None:
        editor = self.editor
        report.task = editor.task.name
        report.model, report.sha256 = editor.name, editor.sha256
        report.device, report.precision = str(editor.device), editor.precision
        report.flip_average = editor.flip_average
        report.strength = editor.strength

    def inspect(self, loaded: Loaded) -> list[str]:
        assert loaded.picture is not None
        return self.editor.inspect(loaded.picture.pixels)

    def process(self, loaded: Loaded, progress: Progress) -> Any:
        assert loaded.picture is not None
        (result,) = self.editor.edit_many([(loaded.picture.pixels, loaded.mask)], progress=progress)
        return result

    def encode(self, loaded: Loaded, result: Any) -> Encoded:
        job, picture = loaded.job, loaded.picture
        assert picture is not None
        pixels = side_by_side(picture.pixels, result) if self.compare else result
        out = replace(picture, pixels=pixels)
        if picture.channels in (1, 2) and pixels.shape[2] in (3, 4):
            out = replace(out, icc_profile=None)  # a gray ICC profile would mislabel colour output
        fmt = output_format(picture.format, "keep")[0] if job.fmt == "keep" else job.fmt
        with capture_warnings() as caught:
            data = encode_picture(out, fmt, quality=self.quality, name=job.display)
        return Encoded([(job.output, data, fmt)], warnings=list(caught))


def rerender_names(
    sweep: Sequence[dict[str, str]], widths: dict[str, int], *, sheet: bool, gif: bool
) -> Namer:
    """rerender's outputs of one input: ``STEM_TAG-VALUE_....png`` per combination of the sweep (in
    order), then ``STEM_sheet.png`` and ``STEM.gif`` when asked."""

    def names(name: str) -> list[str]:
        stem = Path(name).stem
        renders = [output_name(stem, target, widths=widths) for target in sweep]
        extras = [output_name(f"{stem}_sheet", {})] if sheet else []
        return renders + extras + ([output_name(stem, {}, ".gif")] if gif else [])

    return names


class RerenderWorker:
    """A TDGAN re-rendering of each input at every target of a sweep. Only the outputs the job still
    needs are rendered and written (all of them when the sheet or the GIF is among them)."""

    def __init__(
        self,
        renderer: Rerenderer,
        sweep: Sequence[dict[str, str]],
        *,
        sheet: bool = False,
        gif: bool = False,
        gif_ms: int = 120,
    ) -> None:
        self.renderer, self.sweep = renderer, list(sweep)
        self.sheet, self.gif, self.gif_ms = sheet, gif, gif_ms
        self.columns = sheet_columns(self.sweep)

    def describe(self, report: Report) -> None:
        report.task = "rerender"
        report.model, report.sha256 = self.renderer.name, self.renderer.sha256
        report.device = str(self.renderer.device)
        report.options = {
            "refine_steps": self.renderer.refine_steps,
            "keep_detail": self.renderer.keep_detail,
            "sweep": self.sweep,
            "sheet": self.sheet,
            "gif": self.gif,
        }

    def inspect(self, loaded: Loaded) -> list[str]:
        return []

    def _wanted(self, loaded: Loaded) -> list[int]:
        """Which renders to make: those still to write, or all when a sheet or GIF is to be written."""
        todo = set(loaded.job.todo)
        renders = loaded.job.outputs[: len(self.sweep)]
        need_all = any(path in todo for path in loaded.job.outputs[len(self.sweep) :])
        return [i for i, path in enumerate(renders) if need_all or path in todo]

    def process(self, loaded: Loaded, progress: Progress) -> Any:
        assert loaded.picture is not None
        pixels = loaded.picture.pixels
        inferred = self.renderer.infer_tags(pixels)
        wanted = self._wanted(loaded)
        images = self.renderer.render(pixels, [self.sweep[i] for i in wanted], inferred=inferred)
        return inferred, dict(zip(wanted, images, strict=True))

    def encode(self, loaded: Loaded, result: Any) -> Encoded:
        inferred, images = result
        job, todo = loaded.job, set(loaded.job.todo)
        outputs = list(job.outputs)
        files: list[tuple[Path | None, bytes, str]] = [
            (path, encode_png(images[i]), "png")
            for i, path in enumerate(outputs[: len(self.sweep)])
            if path in todo
        ]
        extras = iter(outputs[len(self.sweep) :])
        frames = [images[i] for i in sorted(images)] if len(images) == len(self.sweep) else []
        if self.sheet and (path := next(extras)) in todo:
            grid = contact_sheet(frames, self.columns, background=self.renderer.config.background)
            files.append((path, encode_png(grid), "png"))
        if self.gif and (path := next(extras)) in todo:
            files.append((path, encode_gif(frames, self.gif_ms), "gif"))
        return Encoded(files, details={"inferred": inferred})
