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
    try:
        cfg = entry.config(**config)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"bad {arch} config: {e}") from None
    return entry.model(cfg)


__all__ = ["ARCHS", "ArchEntry", "build", "config_to_dict"]
