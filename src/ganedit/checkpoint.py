"""Generator checkpoints: a safetensors file holding the state dict, described by its own metadata.

Why safetensors and never ``torch.load``: weights may come from a hub, and unpickling runs arbitrary
code. A safetensors file is a JSON header plus raw tensor bytes; the header's ``__metadata__`` carries
everything needed to rebuild the module without guessing:

    ganedit.format_version   "1" (this module's FORMAT_VERSION); anything else is refused
    ganedit.arch             architecture family, a key of ganedit.archs.ARCHS ("pan", later "tdgan")
    ganedit.arch_config      JSON of the generator's frozen config dataclass
    ganedit.task             the task it was trained for ("derain", "inpaint", ...)
    ganedit.flip_average     optional, "false": the model is run without flip averaging unless asked
                             (a generator trained to paint texture: averaging two mirrored fills halves
                             the texture's energy)
    ...                      extra strings (e.g. ganedit.tags, TDGAN's tag vocabulary; training notes)

Loading is strict: every tensor the rebuilt module expects must be present with the right shape, and
nothing else may be there, so a truncated or mislabelled file fails here rather than producing noise.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from .archs import ARCHS, build, config_to_dict
from .errors import CheckpointError
from .io.atomic import atomic_write_named
from .tasks import TASKS

FORMAT_VERSION = "1"
KEY_VERSION = "ganedit.format_version"
KEY_ARCH = "ganedit.arch"
KEY_CONFIG = "ganedit.arch_config"
KEY_TASK = "ganedit.task"
KEY_FLIP_AVERAGE = "ganedit.flip_average"
RESERVED_KEYS = frozenset({KEY_VERSION, KEY_ARCH, KEY_CONFIG, KEY_TASK})  # written by save_checkpoint itself


@dataclass(frozen=True)
class CheckpointInfo:
    """What a checkpoint's metadata says: enough to rebuild and to check it against a task."""

    arch: str
    arch_config: dict[str, Any]
    task: str
    metadata: dict[str, str]  # the whole ``__metadata__`` table, ganedit.* keys included

    @property
    def flip_average(self) -> bool:
        """Whether the model is run with flip averaging when the caller does not say (`KEY_FLIP_AVERAGE`)."""
        return self.metadata.get(KEY_FLIP_AVERAGE, "true") != "false"


def save_checkpoint(
    path: Path, model: nn.Module, *, task: str, extra: Mapping[str, str] | None = None
) -> None:
    """Write `model`'s weights and description to `path` atomically (`ganedit.io.atomic`).

    `model` must be a generator from ganedit.archs (it has ``.arch`` and a dataclass ``.config``). A
    reader never sees a half-written file, and an interrupted save leaves the old file in place.
    """
    path = Path(path)
    arch = getattr(model, "arch", None)
    if not isinstance(arch, str) or arch not in ARCHS or not isinstance(model, ARCHS[arch].model):
        raise CheckpointError(f"cannot save {type(model).__name__}: not a generator from ganedit.archs")
    if task not in TASKS:
        raise CheckpointError(f"cannot save {path}: unknown task {task!r}; valid tasks: {', '.join(TASKS)}")
    if TASKS[task].arch != arch:
        raise CheckpointError(
            f"cannot save {path}: task {task!r} uses arch {TASKS[task].arch!r}, the model is {arch!r}"
        )
    metadata = {
        KEY_VERSION: FORMAT_VERSION,
        KEY_ARCH: arch,
        KEY_CONFIG: json.dumps(config_to_dict(model.config), sort_keys=True),
        KEY_TASK: task,
    }
    for key, value in (extra or {}).items():
        if key in RESERVED_KEYS:
            raise CheckpointError(f"extra metadata may not override {key!r}")
        if not isinstance(key, str) or not isinstance(value, str):
            raise CheckpointError(f"extra metadata must map str to str, got {key!r}: {type(value).__name__}")
        metadata[key] = value
    # clone(): state_dict tensors can share storage (tied weights, views), which safetensors refuses.
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}

    # safetensors writes by file name: the temporary file gets the usual permissions, like any output
    atomic_write_named(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))


def read_info(path: Path) -> CheckpointInfo:
    """The checkpoint's description, read from the header only (no tensor is loaded)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata()
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a safetensors checkpoint ({e})") from None
    if not metadata or KEY_VERSION not in metadata:
        raise CheckpointError(f"{path}: not a ganedit checkpoint (no {KEY_VERSION} in its metadata)")
    version = metadata[KEY_VERSION]
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {version!r} is not supported (this ganedit reads "
            f"version {FORMAT_VERSION!r}); a newer ganedit may read it"
        )
    missing = [k for k in (KEY_ARCH, KEY_CONFIG, KEY_TASK) if not metadata.get(k)]
    if missing:
        raise CheckpointError(f"{path}: ganedit checkpoint metadata lacks {', '.join(missing)}")
    try:
        config = json.loads(metadata[KEY_CONFIG])
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: {KEY_CONFIG} is not valid JSON ({e})") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: {KEY_CONFIG} must be a JSON object")
    return CheckpointInfo(
        arch=metadata[KEY_ARCH], arch_config=config, task=metadata[KEY_TASK], metadata=metadata
    )


def load_checkpoint(
    path: Path,
    *,
    task: str | None = None,
    arch: str | None = None,
    device: str | torch.device = "cpu",
) -> tuple[nn.Module, CheckpointInfo]:
    """Rebuild the generator stored in `path`, in eval mode on `device`.

    `task` / `arch`, when given, must match the checkpoint's: a de-raining model is refused for
    inpainting by name rather than failing later on a channel count.
    """
    path = Path(path)
    info = read_info(path)
    if task is not None and info.task != task:
        raise CheckpointError(f"{path} is a checkpoint of the {info.task!r} task, not of {task!r}")
    if arch is not None and info.arch != arch:
        raise CheckpointError(f"{path} holds a {info.arch!r} model, not the {arch!r} architecture asked for")
    try:
        # The config's types and sizes are checked (build -> check_config), then the shapes it implies are
        # compared with the file's, all before a real module is built or a tensor read: a crafted header
        # must not make us allocate gigabytes.
        _check_shapes(path, info.arch, _expected_shapes(info.arch, info.arch_config))
        model = build(info.arch, info.arch_config)
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}" if not str(e).startswith(str(path)) else str(e)) from None
    try:
        state = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: cannot read tensors ({e})") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        # torch lists every missing/unexpected/mis-shaped key; keep its first lines readable
        detail = " ".join(str(e).split())
        if len(detail) > 400:
            detail = detail[:400] + "..."
        raise CheckpointError(f"{path}: weights do not match its {info.arch} config ({detail})") from None
    return model.to(device).eval(), info


def _expected_shapes(arch: str, config: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """The tensor shapes a generator of this config has, from a build on the meta device (no memory)."""
    with torch.device("meta"):
        model = build(arch, config)
    return {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}


def _check_shapes(path: Path, arch: str, expected: Mapping[str, tuple[int, ...]]) -> None:
    """The file's tensors (names and shapes, from its header) must be exactly those the config implies."""
    try:
        with safe_open(str(path), framework="pt") as f:
            found = {name: tuple(f.get_slice(name).get_shape()) for name in f.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: cannot read tensors ({e})") from None
    problems = [
        f"{name} is {list(found[name])} in the file but the config implies {list(shape)}"
        for name, shape in expected.items()
        if name in found and found[name] != shape
    ]
    problems += [f"{name} is missing" for name in expected if name not in found]
    problems += [f"{name} is not part of the model" for name in found if name not in expected]
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise CheckpointError(
            f"{path}: weights do not match its {arch} config: {'; '.join(problems[:3])}{more}"
        )


__all__ = ["FORMAT_VERSION", "CheckpointInfo", "load_checkpoint", "read_info", "save_checkpoint"]
