"""Architecture families, by the name a checkpoint records in its ``ganedit.arch`` metadata.

An explicit table rather than registration by import side effect: what ``build("pan", ...)`` can make is
visible here, and importing one family never depends on another having been imported first.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from torch import nn

from ..errors import CheckpointError
from .pan import PANGenerator, PANGeneratorConfig
from .tdgan import TDGAN, TDGANConfig


@dataclass(frozen=True)
class ArchEntry:
    """How to rebuild a generator: its frozen config dataclass and the module class taking it."""

    config: type
    model: type[nn.Module]


ARCHS: Mapping[str, ArchEntry] = MappingProxyType(
    {
        "pan": ArchEntry(config=PANGeneratorConfig, model=PANGenerator),
        "tdgan": ArchEntry(config=TDGANConfig, model=TDGAN),
    }
)


# What a config read from a checkpoint may say, checked before any module is built: a crafted or corrupt
# header must not make ganedit allocate gigabytes (ngf 3000), pad images to 2**24 pixels (depth 24) or die
# in a constructor (a float width). Limits are generous: the shipped models are far inside them.
_INT = "int"
_LIMITS: dict[str, dict[str, tuple[str, int, int] | tuple[str]]] = {
    "pan": {
        "kind": ("str",),
        "norm": ("str",),
        "residual_output": ("bool",),
        "prefill": ("bool",),
        "upsample": ("str",),
        "in_channels": (_INT, 1, 5),
        "out_channels": (_INT, 1, 4),
        "ngf": (_INT, 1, 512),
        "depth": (_INT, 1, 10),  # the model needs sides divisible by 2**depth
        "blocks": (_INT, 0, 64),
        "full_res_blocks": (_INT, 0, 64),
        "context_blocks": (_INT, 0, 64),
        "line_blocks": (_INT, 0, 64),
        "max_mult": (_INT, 1, 64),
    },
    "tdgan": {
        "tags": ("tags",),
        "background": ("rgb",),
        "fit": ("str",),
        "image_size": (_INT, 16, 1024),
        "channels": (_INT, 1, 4),
        "identity_dim": (_INT, 1, 4096),
        "tag_dim": (_INT, 1, 1024),
        "ngf": (_INT, 1, 512),
        "ndf": (_INT, 1, 512),
        "max_mult": (_INT, 1, 64),
    },
}
MAX_WIDTH = 4096  # channels of the widest layer a checkpoint may ask for
_MAX_TAGS, _MAX_TAG_VALUES = 64, 1024


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_config(arch: str, config: Mapping[str, Any]) -> None:
    """Refuse (CheckpointError) a config of the wrong types or beyond sane sizes, before anything is built.

    Types are JSON's: whole numbers for sizes (not 4.5, not "4"), true/false for switches; sizes within
    generous limits (e.g. PAN depth 1..10, ngf 1..512, no layer wider than `MAX_WIDTH` channels).
    """
    limits = _LIMITS.get(arch, {})
    for name, value in config.items():
        rule = limits.get(name)
        if rule is None:
            continue
        kind = rule[0]
        if kind == _INT:
            if not _is_int(value):
                raise CheckpointError(f"bad {arch} config: {name} must be a whole number, not {value!r}")
            low, high = rule[1], rule[2]  # type: ignore[misc]
            if not low <= value <= high:
                raise CheckpointError(f"bad {arch} config: {name}={value} is outside {low}..{high}")
        elif kind == "str" and not isinstance(value, str):
            raise CheckpointError(f"bad {arch} config: {name} must be a string, not {value!r}")
        elif kind == "bool" and not isinstance(value, bool):
            raise CheckpointError(f"bad {arch} config: {name} must be true or false, not {value!r}")
        elif kind == "rgb" and not (
            isinstance(value, list | tuple) and len(value) == 3 and all(_is_int(c) for c in value)
        ):
            raise CheckpointError(f"bad {arch} config: {name} must be 3 whole numbers (RGB), not {value!r}")
        elif kind == "tags":
            _check_tags(arch, value)
    entry = ARCHS.get(arch)
    if entry is None:
        return
    defaults = {f.name: f.default for f in dataclasses.fields(entry.config)}
    get = lambda name: config.get(name, defaults.get(name))  # noqa: E731
    if arch == "pan":
        widths = {"ngf": get("ngf") * min(2 ** get("depth"), get("max_mult"))}
    else:
        levels = max(get("image_size").bit_length() - 3, 0)
        widths = {key: get(key) * min(2**levels, get("max_mult")) for key in ("ngf", "ndf")}
    for key, width in widths.items():
        if width > MAX_WIDTH:
            raise CheckpointError(
                f"bad {arch} config: {key}={get(key)} makes layers {width} channels wide "
                f"(at most {MAX_WIDTH})"
            )


def _check_tags(arch: str, tags: Any) -> None:
    if not isinstance(tags, list | tuple) or len(tags) > _MAX_TAGS:
        raise CheckpointError(f"bad {arch} config: tags must be a list of at most {_MAX_TAGS} [name, values]")
    for item in tags:
        ok = isinstance(item, list | tuple) and len(item) == 2 and isinstance(item[0], str)
        values = item[1] if ok else None
        if not ok or not isinstance(values, list | tuple) or not all(isinstance(v, str) for v in values):
            raise CheckpointError(f"bad {arch} config: each tag must be [name, [values...]], not {item!r}")
        if len(values) > _MAX_TAG_VALUES:
            raise CheckpointError(
                f"bad {arch} config: tag {item[0]!r} has {len(values)} values (at most {_MAX_TAG_VALUES})"
            )


def config_to_dict(config: Any) -> dict[str, Any]:
    """A generator config as the plain dict stored (as JSON) in checkpoints."""
    return dataclasses.asdict(config)


def build(arch: str, config: Mapping[str, Any]) -> nn.Module:
    """A freshly initialised generator of family `arch` with the given config fields.

    Fields missing from `config` take the dataclass defaults; unknown fields or bad values raise
    CheckpointError, since `config` normally comes from a checkpoint's metadata.
    """
    try:
        entry = ARCHS[arch]
    except KeyError:
        raise CheckpointError(f"unknown architecture {arch!r}; known: {', '.join(ARCHS)}") from None
    known = {f.name for f in dataclasses.fields(entry.config)}
    unknown = sorted(set(config) - known)
    if unknown:
        raise CheckpointError(
            f"unknown {arch} config field(s) {', '.join(unknown)} (known: {', '.join(sorted(known))}); "
            "the checkpoint may be from a newer ganedit"
        )
    check_config(arch, config)
    try:
        cfg = entry.config(**config)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"bad {arch} config: {e}") from None
    return entry.model(cfg)


__all__ = ["ARCHS", "MAX_WIDTH", "ArchEntry", "build", "check_config", "config_to_dict"]
