"""Ray Data integration: edit batches of images inside ``ray.data.Dataset.map_batches``.

    import ray
    from ganedit.ray import RayEditor

    ds = ray.data.read_images("photos/", mode="RGB", include_paths=True)
    ds = ds.map_batches(
        RayEditor,
        fn_constructor_kwargs={"model": "pan-derain"},
        concurrency=2,  # two actors, each loads the model once
        batch_size=8,
    )
    ds.write_images("clean/", column="image", file_format="png")

`RayEditor` is a plain callable class: Ray creates one per actor (its constructor loads the model with
`ganedit.load`), then calls it on every batch that actor gets, in Ray's numpy batch format (a dict of
columns). This module does not import ray, so it also works, and is tested, without it; install ray with
``pip install "ganedit[ray]"``.

Ray decodes pixels only: EXIF, ICC profiles and file names are not carried (``write_images`` names the
files itself; keep the ``path`` column with ``include_paths=True``). Where those matter, shard the
``ganedit`` command itself over the machines (docs/cluster.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import UsageError
from .io.picture import REC601_LUMA

if TYPE_CHECKING:
    from .runtime.editor import Editor

_LUMA = np.array(REC601_LUMA)


class RayEditor:
    """Load a model once (per Ray actor) and edit the image column of every batch it is given.

    model: a registered model name or a ``.safetensors`` path (None: the task's default model).
    column: the column of H x W x C uint8 or uint16 images (``read_images`` calls it ``image``); the edited
    images replace it, every other column (``path``...) is passed through. mask_column: for inpainting,
    a column of masks of the images' size (H x W, or H x W x C read as brightness; bright = fill). The
    other options are those of `ganedit.load`. ``offline=True`` never touches the network.
    """

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        task: str | None = None,
        column: str = "image",
        mask_column: str | None = None,
        device: str = "auto",
        precision: str = "auto",
        flip_average: bool | None = None,
        tile: int | None = None,
        batch_size: int = 4,
        registry_files: Sequence[str | Path] = (),
        offline: bool | None = None,
        editor: Editor | None = None,
    ) -> None:
        self.column = column
        self.mask_column = mask_column
        if editor is None:
            from .api import load_editor
            from .hub import HubOptions

            editor = load_editor(
                model,
                task=task,
                device=device,
                precision=precision,
                tile=tile,
                batch_size=batch_size,
                flip_average=flip_average,
                registry_files=[Path(f) for f in registry_files],
                hub=HubOptions(offline=offline),
            )
        self.editor = editor
        if editor.task.needs_mask and mask_column is None:
            raise UsageError(f"model {editor.name} inpaints: give RayEditor(mask_column=...) (white = fill)")
        if not editor.task.needs_mask and mask_column is not None:
            raise UsageError(f"model {editor.name} ({editor.task.name}) takes no mask; drop mask_column")

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        """One batch in Ray's numpy format -> the same batch with the image column edited."""
        images = self._column(batch, self.column)
        masks = self._column(batch, self.mask_column) if self.mask_column is not None else None
        items = []
        for i, image in enumerate(images):
            pixels = np.asarray(image)
            mask = None if masks is None else _mask(np.asarray(masks[i]), pixels.shape[:2], i)
            items.append((pixels, mask))
        edited = self.editor.edit_many(items)
        out = dict(batch)
        out[self.column] = _like(images, edited)
        return out

    @staticmethod
    def _column(batch: dict[str, Any], name: str) -> Any:
        if not isinstance(batch, dict):
            raise UsageError(
                "RayEditor takes Ray's numpy batches (a dict of columns): "
                "map_batches(..., batch_format='numpy')"
            )
        if name not in batch:
            raise UsageError(f"no column {name!r} in the batch; its columns: {', '.join(map(str, batch))}")
        return batch[name]


def _mask(mask: np.ndarray, size: tuple[int, ...], row: int) -> np.ndarray:
    """A mask column's value -> H x W bool (True = fill): brighter than half the dtype's range."""
    if mask.ndim == 3:
        mask = mask[:, :, 0] if mask.shape[2] in (1, 2) else mask[:, :, :3] @ _LUMA
    if mask.shape != size:
        raise UsageError(f"row {row}: the mask is {mask.shape[::-1]} (w x h) but the image is {size[::-1]}")
    if mask.dtype == np.bool_:
        return mask
    top = np.iinfo(mask.dtype).max if np.issubdtype(mask.dtype, np.integer) else 1.0
    return mask > top / 2


def _like(images: Any, edited: list[np.ndarray]) -> np.ndarray:
    """Edited images in the input's container: one stacked array when the input was one (same shapes)."""
    same = all(e.shape == edited[0].shape and e.dtype == edited[0].dtype for e in edited)
    if isinstance(images, np.ndarray) and images.dtype != object and edited and same:
        return np.stack(edited)
    column = np.empty(len(edited), dtype=object)  # variable-sized images: Ray's ragged tensor column
    for i, image in enumerate(edited):
        column[i] = image
    return column
