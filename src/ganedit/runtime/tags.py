"""Target tags of a rerender model: ``--tag NAME=VALUE[,VALUE...]`` options -> a sweep.

    sweep = parse_tag_options(["azimuth=0,90", "light=all"], rerenderer.config, snap=False)
    images = rerenderer.render(pixels, sweep)   # one image per {tag: value} in the sweep

A sweep names values for some tags only; every other tag keeps the value the model reads off the input.
Shared by the command line (``ganedit rerender``) and library users, and by `Rerenderer.render`'s error
messages. No torch: the CLI parses tags before any model loads.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import UsageError

if TYPE_CHECKING:
    from ..archs.tdgan import TDGANConfig

CIRCULAR_TAGS = frozenset({"azimuth", "yaw", "heading"})  # --snap wraps these at 360 (350 -> 0)
TAG_ALIASES = {"pose": "azimuth"}


def is_light_tag(name: str) -> bool:
    """Tags that change the lighting only (the pixels stay where they are): ``light``, ``light_*``."""
    return name == "light" or name.startswith("light_")


def relights_only(config: TDGANConfig) -> bool:
    """Whether every tag of the model is a light tag: a re-lighting model (faces), whose re-renders keep
    the input's detail by default (`Rerenderer` ``keep_detail``)."""
    return all(is_light_tag(name) for name in config.tag_names)


"""Other names accepted by `--tag` for a model's tag types, when the model has no tag of that name."""

__all__ = ["CIRCULAR_TAGS", "TAG_ALIASES", "is_light_tag", "parse_tag_options", "relights_only", "valid_tags"]


def valid_tags(config: TDGANConfig) -> str:
    """The model's tags and their values, for error messages: ``azimuth (0, 90); light (front, left)``."""
    return "; ".join(f"{name} ({', '.join(values)})" for name, values in config.tags)


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _match_value(
    tag: str, text: str, values: tuple[str, ...], *, snap: bool, given: str | None = None
) -> str:
    """``given``: the name the user typed when it is an alias of ``tag`` (``pose`` for ``azimuth``)."""
    if text in values:
        return text
    number = _number(text)
    numeric = [(_number(v), v) for v in values]
    if number is not None:
        for value_number, value in numeric:
            if value_number is not None and value_number == number:  # "35.0" means "35"
                return value
    if snap and number is not None and all(n is not None for n, _ in numeric):
        circular = tag.lower() in CIRCULAR_TAGS

        def distance(n: float) -> float:
            d = abs(n - number)
            return min(d % 360, 360 - d % 360) if circular else d

        return min(numeric, key=lambda nv: distance(nv[0]))[1]  # type: ignore[arg-type]
    hint = ""
    if number is not None and not snap and all(n is not None for n, _ in numeric):
        hint = " (--snap rounds a number to the nearest value)"
    alias = f"{given} means {tag} for this model; " if given and given != tag else ""
    raise UsageError(
        f"--tag {given or tag}={text}: unknown value {text!r}; {alias}valid values of {tag}: "
        f"{', '.join(values)}{hint}"
    )


def parse_tag_options(options: Sequence[str], config: TDGANConfig, *, snap: bool) -> list[dict[str, str]]:
    """``--tag NAME=VALUE[,VALUE...]`` / ``NAME=all`` options -> the sweep: every combination of the given
    values, as ``{tag: value}`` dicts with tags in vocabulary order (the last tag varies fastest).

    Tags not given are absent from the dicts (the input's own value is kept). A tag given twice has its
    values merged. No option gives ``[{}]``. Unknown names and values raise `UsageError` naming the
    valid ones; with ``snap``, a number is rounded to the nearest numeric value of its tag.
    """
    vocabulary = dict(config.tags)
    chosen: dict[str, list[str]] = {}
    for option in options:
        name, eq, spec = option.partition("=")
        name, spec = name.strip(), spec.strip()
        if not eq or not name or not spec:
            raise UsageError(
                f"--tag {option!r}: expected NAME=VALUE[,VALUE...] or NAME=all; tags: {valid_tags(config)}"
            )
        given = name
        if name not in vocabulary and TAG_ALIASES.get(name) in vocabulary:
            name = TAG_ALIASES[name]  # `--tag pose=30`, as users say it, is the azimuth of the chairs models
        if name not in vocabulary:
            raise UsageError(f"--tag {option!r}: unknown tag {name!r}; valid tags: {valid_tags(config)}")
        values = vocabulary[name]
        if spec.lower() == "all" and "all" not in values:
            picked = list(values)
        else:
            parts = [p.strip() for p in spec.split(",")]
            if any(not p for p in parts):
                alias = f"{given} means {name} for this model; " if given != name else ""
                raise UsageError(
                    f"--tag {option!r}: empty value; {alias}valid values of {name}: {', '.join(values)}"
                )
            picked = [_match_value(name, p, values, snap=snap, given=given) for p in parts]
        merged = chosen.setdefault(name, [])
        merged.extend(v for v in picked if v not in merged)
    names = [name for name in config.tag_names if name in chosen]
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*(chosen[n] for n in names))]
