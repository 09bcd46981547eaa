"""The one training-config loader: frozen dataclasses read from TOML, ``--set KEY=VALUE`` overrides and
dedicated command-line values, checked against the fields' types, and written back to ``RUN_DIR/config.toml``.

Both trainers' configs (`ganedit.train.pan.PANTrainConfig`, `ganedit.train.tdgan.TDGANTrainConfig`) are
plain frozen, keyword-only dataclasses; what the loader needs to know about them is in their type hints,
their field metadata and three class attributes:

* a field without a default is required (``missing required setting(s): ...``);
* ``bool`` / ``int`` / ``float`` / ``str`` fields are checked (a TOML integer is a fine float; a bool is
  not an int); ``X | None`` also takes ``none`` or an empty string; ``tuple[float, ...]`` of a fixed length
  takes a list of that many numbers; ``tuple[str, ...]`` takes a list of strings or one comma-separated
  string (``--set tags=azimuth,light``);
* a ``dict`` field with ``metadata={"table": SomeDataclass, ...}`` is a TOML table whose keys are that
  dataclass's fields, set one at a time with dotted keys (``generator.ngf=16``) and written as a
  ``[table]`` section;
* ``metadata={"expected": "..."}`` words the type error for a field;
* ``TOML_HEADER`` (the comment on the first line of config.toml) and a ``validate()`` method (UsageError
  for settings that cannot work), called on every loaded config.

Precedence, lowest first: the dataclass defaults < the caller's ``defaults`` (a task's presets) < the
TOML file < the command-line values (None = not given) < ``--set`` overrides. Unknown keys anywhere raise
UsageError naming the key, where it came from and the closest valid key.

Reading uses the standard library's ``tomllib``; writing is `to_toml`, exact for the value types above
(round trip: ``resume(cls, run_dir) == config``), so no TOML-writing dependency is needed.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import tomllib
import typing
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

from ..errors import UsageError

__all__ = [
    "CONFIG_NAME",
    "TrainConfig",
    "check_unchanged",
    "coerce",
    "file_value",
    "load",
    "parse_override",
    "read_toml",
    "resume",
    "to_toml",
    "toml_value",
    "unknown_key",
]

CONFIG_NAME = "config.toml"  # RUN_DIR/config.toml: the complete config of a run


class TrainConfig(Protocol):
    """What the loader asks of a config class (besides being a frozen dataclass)."""

    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]
    TOML_HEADER: ClassVar[str]

    @property
    def out(self) -> str: ...

    def validate(self) -> None: ...


C = TypeVar("C", bound=TrainConfig)


# ------------------------------------------------------------------------------------------ reading


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML file as a dict; UsageError saying what is wrong with it."""
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read config file {path}: {e}") from None
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"config file {path} is not valid TOML: {e}") from None


def file_value(path: Path, key: str) -> Any:
    """One top-level value of a config file (None when it has none): ``--config FILE`` without ``--task``."""
    return read_toml(path).get(key)


def parse_override(text: str) -> tuple[str, Any]:
    """``key=value`` (``--set``): the value is read as TOML (numbers, true/false, [lists], "strings"),
    and taken as a plain string when it is not valid TOML (``data=photos/`` needs no quotes)."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise UsageError(f"--set expects KEY=VALUE (e.g. --set lr=1e-4), got {text!r}")
    raw = raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value


# --------------------------------------------------------------------------------------------- types


def unknown_key(key: str, names: Iterable[str], where: str) -> UsageError:
    """The error for a config key that is not a field, with the closest valid one suggested."""
    names = sorted(names)
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.5)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return UsageError(f"unknown config key {key!r} in {where}{hint}; valid keys: {', '.join(names)}")


def _type_error(key: str, where: str, expected: str, value: Any) -> UsageError:
    return UsageError(f"config key {key!r} in {where} must be {expected}, got {value!r}")


def _scalar(key: str, value: Any, hint: Any, where: str) -> Any:
    """`value` checked against a bool / int / float / str hint (TOML gives ints where a float is meant,
    and bools are ints to Python: both handled)."""
    if hint is bool:
        if not isinstance(value, bool):
            raise _type_error(key, where, "true or false", value)
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _type_error(key, where, "an integer", value)
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _type_error(key, where, "a number", value)
        return float(value)
    if not isinstance(value, str):
        raise _type_error(key, where, "a string", value)
    return value


def _tuple(key: str, value: Any, args: tuple[Any, ...], expected: str | None, where: str) -> tuple[Any, ...]:
    if len(args) == 2 and args[1] is Ellipsis and args[0] is str:
        # a list of names, or one comma-separated string (``--set tags=azimuth,light``)
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise _type_error(key, where, expected or 'a list of names (e.g. ["a", "b"])', value)
        return tuple(value)
    numbers = isinstance(value, list | tuple) and len(value) == len(args)
    if not numbers or any(isinstance(v, bool) or not isinstance(v, int | float) for v in value):
        raise _type_error(key, where, expected or f"a list of {len(args)} numbers", value)
    return tuple(float(v) for v in value)


def _table(field: dataclasses.Field[Any], value: Any, where: str) -> dict[str, Any]:
    """A table field's value: a mapping whose keys are fields of its ``metadata["table"]`` dataclass."""
    name = field.name
    if not isinstance(value, Mapping):
        raise _type_error(name, where, f"a table of {name} settings (e.g. {name}.ngf=16)", value)
    known = {f.name for f in dataclasses.fields(field.metadata["table"])}
    for setting in value:
        if setting not in known:
            raise UsageError(
                f"unknown {name} setting {setting!r} in {where}; valid: {', '.join(sorted(known))}"
            )
    return dict(value)


def coerce(cls: type[TrainConfig], key: str, value: Any, where: str) -> Any:
    """Check and convert one value of field `key` of `cls` to the field's type; UsageError naming the key
    and `where` the value came from."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if key not in fields:
        raise unknown_key(key, fields, where)
    field = fields[key]
    if "table" in field.metadata:
        return _table(field, value, where)
    hint = typing.get_type_hints(cls)[key]
    args = typing.get_args(hint)
    if type(None) in args:
        if value is None or (isinstance(value, str) and value.lower() in ("", "none")):
            return None
        hint = next(a for a in args if a is not type(None))
        args = typing.get_args(hint)
    if typing.get_origin(hint) is tuple:
        return _tuple(key, value, args, field.metadata.get("expected"), where)
    return _scalar(key, value, hint, where)


# --------------------------------------------------------------------------------------------- merge


def _apply(cls: type[TrainConfig], values: dict[str, Any], key: str, value: Any, where: str) -> None:
    """Set `key` (possibly dotted into a table field, ``generator.ngf``) in `values`, checked."""
    head, _, rest = key.partition(".")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if head not in fields:
        raise unknown_key(key, fields, where)
    is_table = "table" in fields[head].metadata
    if rest and not is_table:
        raise UsageError(f"config key {head!r} in {where} has no sub-keys (got {key!r})")
    if is_table:  # tables merge: the file's [generator] and a later generator.ngf=16 both count
        merged = dict(values.get(head, {}))
        merged.update(coerce(cls, head, {rest: value} if rest else value, where))
        values[head] = merged
    else:
        values[head] = coerce(cls, head, value, where)


def _merge(
    cls: type[TrainConfig], values: dict[str, Any], overrides: Sequence[str], cli_values: Mapping[str, Any]
) -> None:
    """Apply the command-line values (None = not given), then the ``--set`` overrides."""
    for key, value in cli_values.items():
        if value is not None:
            _apply(cls, values, key, value, "the command line")
    for text in overrides:
        key, value = parse_override(text)
        _apply(cls, values, key, value, f"--set {text}")


def _build(cls: type[C], values: Mapping[str, Any]) -> C:
    required = [
        f.name
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    missing = [name for name in required if not values.get(name)]
    if missing:
        raise UsageError(f"missing required setting(s): {', '.join(missing)} (e.g. --data DIR --out RUN_DIR)")
    config = cls(**values)
    config.validate()
    return config


def load(
    cls: type[C],
    path: Path | None,
    overrides: Sequence[str] = (),
    *,
    defaults: Mapping[str, Any] | None = None,
    pinned: Mapping[str, Any] | None = None,
    **cli_values: Any,
) -> C:
    """A new run's config: `defaults` < the TOML file `path` < `cli_values` (None = not given) <
    ``--set`` `overrides` (``KEY=VALUE``, dotted keys into tables). `pinned` values (the task of
    ``ganedit train pan --task``) may be repeated by the file but not contradicted."""
    values: dict[str, Any] = dict(defaults or {})
    for key, value in (pinned or {}).items():
        values[key] = coerce(cls, key, value, "the command line")
    if path is not None:
        for key, value in read_toml(Path(path)).items():
            if pinned and key in pinned and value != pinned[key]:
                raise UsageError(f"config file {path} is for {key} {value!r}, not {pinned[key]!r}")
            _apply(cls, values, key, value, str(path))
    _merge(cls, values, overrides, cli_values)
    return _build(cls, values)


def resume(
    cls: type[C],
    run_dir: Path,
    overrides: Sequence[str] = (),
    *,
    mutable: Iterable[str] | None = None,
    hint: str = "start a new run",
    **cli_values: Any,
) -> C:
    """The config of the run in `run_dir` (its config.toml, with ``out`` = `run_dir`), with command-line
    values and ``--set`` overrides applied. With `mutable`, changing any other field is a UsageError
    (`check_unchanged`; `hint` says what to do instead)."""
    path = Path(run_dir) / CONFIG_NAME
    if not path.is_file():
        raise UsageError(f"{run_dir} is not a training run folder (no {CONFIG_NAME}); nothing to resume")
    values: dict[str, Any] = {}
    for key, value in read_toml(path).items():
        _apply(cls, values, key, value, str(path))
    values["out"] = str(run_dir)
    if mutable is None:
        _merge(cls, values, overrides, cli_values)
        return _build(cls, values)
    saved = _build(cls, values)
    _merge(cls, values, overrides, cli_values)
    config = _build(cls, values)
    check_unchanged(config, saved, mutable, Path(run_dir), hint)
    return config


def check_unchanged(
    config: TrainConfig, saved: TrainConfig, mutable: Iterable[str], run_dir: Path, hint: str
) -> None:
    """UsageError when `config` differs from the `saved` config of the run it resumes in a field outside
    `mutable` (it would change the run it continues rather than continue it)."""
    allowed = set(mutable)
    changed = [
        f.name
        for f in dataclasses.fields(config)
        if f.name not in allowed and getattr(config, f.name) != getattr(saved, f.name)
    ]
    if changed:
        detail = ", ".join(f"{k} ({getattr(saved, k)!r} -> {getattr(config, k)!r})" for k in changed)
        raise UsageError(f"cannot change {detail} when resuming {run_dir}; {hint}")


# --------------------------------------------------------------------------------------------- write


def toml_value(value: Any) -> str:
    """One value as TOML: bool, int, float (nan and inf included), str, and lists / tuples of them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def to_toml(config: TrainConfig) -> str:
    """The config as TOML that `load` / `resume` read back to an equal config: the header comment, the
    plain fields in order (None ones left out: absent means None), then each table field as a section."""
    lines = [config.TOML_HEADER]
    tables = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if "table" in f.metadata:
            tables.append(f)
        elif value is not None:
            lines.append(f"{f.name} = {toml_value(value)}")
    for f in tables:
        comment = f.metadata.get("comment")
        lines.append("")
        lines.append(f"[{f.name}]" + (f"  # {comment}" if comment else ""))
        lines.extend(f"{k} = {toml_value(v)}" for k, v in sorted(getattr(config, f.name).items()))
    return "\n".join(lines) + "\n"
