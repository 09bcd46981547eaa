"""The weights registry: ``weights.toml`` files parsed into frozen `ModelSpec` records.

The registry is data, not code, so that adding or re-pinning a model never needs a release of the code
and a user can point ganedit at private checkpoints or a mirror with a file of their own. Everything a
later step relies on is checked here, once, with an error naming the file, the model and the key: the
hub layer can then trust that a revision is an immutable commit (so a cached file never goes stale) and
that every file has a sha256 to verify before it is loaded.

Files are combined in order: the bundled registry, then each file in ``GANEDIT_REGISTRY``
(``os.pathsep``-separated), then explicit extras (``--registry``). A later model replaces an earlier one
of the same name, and a later file's ``default = true`` for a task wins over earlier ones.

No torch here: ``ganedit --help`` and ``ganedit models list`` import this module.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any

from .errors import RegistryError, UsageError, WeightsUnavailableError
from .tasks import TASKS, get_task

ENV_VAR = "GANEDIT_REGISTRY"
BUNDLED_NAME = "weights.toml"

_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_COMMIT = re.compile(r"[0-9a-fA-F]{40}")
# Model names are typed on the command line and used in messages: keep them plain, and free of "/" so
# that they can never be mistaken for a path to a checkpoint.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# huggingface-hub's own rule for repo ids ("name" or "namespace/name"); checked here so that a typo is a
# registry error naming the key instead of a ValueError from deep inside a download.
_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")

_REQUIRED = ("task", "arch", "file", "sha256")
_STRINGS = ("task", "arch", "file", "sha256", "repo_id", "revision", "license", "card", "description")
_KEYS = frozenset((*_STRINGS, "default", "size"))


@dataclass(frozen=True)
class ModelSpec:
    """One registered model: what it does and where its (sha256-pinned) weights file lives."""

    name: str
    task: str
    arch: str
    file: str  # bundled: under src/ganedit/weights/; user registry: relative to the registry's folder
    sha256: str  # lower-case hex
    repo_id: str | None = None
    revision: str | None = None  # lower-case 40-hex commit, set exactly when repo_id is
    default: bool = False
    license: str | None = None
    card: str | None = None
    description: str | None = None
    size: int | None = None  # bytes, when known
    origin: Path | None = None  # the registry file it came from (None for the bundled one)


@dataclass(frozen=True)
class Registry:
    """All known models, by name, in registration order (bundled first)."""

    models: Mapping[str, ModelSpec]

    def get(self, name: str) -> ModelSpec:
        try:
            return self.models[name]
        except KeyError:
            if not self.models:
                raise UsageError(
                    f"unknown model {name!r}: no models are registered; "
                    "pass --weights PATH to use a checkpoint"
                ) from None
            raise UsageError(f"unknown model {name!r}; valid models: {', '.join(self.models)}") from None

    def for_task(self, task: str) -> list[ModelSpec]:
        get_task(task)  # an unknown task is a usage error, not an empty list
        return [spec for spec in self.models.values() if spec.task == task]

    def default_for(self, task: str) -> ModelSpec:
        """The task's default model: the one marked ``default``, else the first registered for it."""
        specs = self.for_task(task)
        if not specs:
            raise WeightsUnavailableError(
                f"no model is registered for task {task!r}: pass --weights PATH with a checkpoint, "
                f"or train one with {_train_hint(task)}"
            )
        return next((spec for spec in specs if spec.default), specs[0])


def _train_hint(task: str) -> str:
    if get_task(task).arch == "tdgan":
        return "`ganedit train tdgan --data DIR --out RUN_DIR`"
    return f"`ganedit train pan --task {task}`"


def bundled_registry_path() -> Path:
    """The registry shipped with ganedit: ``ganedit/weights.toml``, inside the package in the source tree
    and in a wheel alike (the repository's top-level ``weights.toml`` is a symbolic link to it, for
    readers)."""
    return Path(str(importlib.resources.files("ganedit") / BUNDLED_NAME))


def _where(origin: Path | None) -> str:
    return f"the bundled {BUNDLED_NAME}" if origin is None else str(origin)


def parse_registry(text: str, *, origin: Path | None) -> dict[str, ModelSpec]:
    """Parse and validate one registry file's text. ``origin`` is its path (None: the bundled one)."""
    where = _where(origin)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise RegistryError(f"{where}: not valid TOML: {e}") from None
    unknown = sorted(set(data) - {"models"})
    if unknown:
        raise RegistryError(
            f"{where}: unknown top-level key(s) {', '.join(unknown)}; expected [models.NAME] tables"
        )
    models = data.get("models", {})
    if not isinstance(models, dict):
        raise RegistryError(f"{where}: 'models' must be a table of [models.NAME] tables")

    specs: dict[str, ModelSpec] = {}
    defaults: dict[str, str] = {}
    for name, entry in models.items():
        spec = _parse_model(name, entry, origin=origin, where=where)
        if spec.default:
            if spec.task in defaults:
                raise RegistryError(
                    f"{where}: model {name!r}, key 'default': task {spec.task!r} already has default "
                    f"model {defaults[spec.task]!r} in this file (at most one default per task)"
                )
            defaults[spec.task] = name
        specs[name] = spec
    return specs


def _parse_model(name: str, entry: Any, *, origin: Path | None, where: str) -> ModelSpec:
    def fail(key: str, problem: str) -> RegistryError:
        return RegistryError(f"{where}: model {name!r}, key {key!r}: {problem}")

    if not _NAME.fullmatch(name):
        raise RegistryError(
            f"{where}: model name {name!r} must start with a letter or digit and use only letters, digits, "
            "'.', '_' and '-'"
        )
    if name in TASKS:
        raise RegistryError(f"{where}: model name {name!r} is a task name; pick another (e.g. 'pan-{name}')")
    if not isinstance(entry, dict):
        raise RegistryError(f"{where}: model {name!r} must be a table ([models.{name!r}])")

    _check_keys(entry, fail)
    size = entry.get("size")

    task = entry["task"]
    if task not in TASKS:
        raise fail("task", f"unknown task {task!r}; valid tasks: {', '.join(TASKS)}")
    expected_arch = TASKS[task].arch
    if entry["arch"] != expected_arch:
        raise fail("arch", f"task {task!r} is served by arch {expected_arch!r}, not {entry['arch']!r}")
    if not _SHA256.fullmatch(entry["sha256"]):
        raise fail("sha256", f"must be 64 hexadecimal digits, got {entry['sha256']!r}")

    repo_id = entry.get("repo_id")
    revision = entry.get("revision")
    _check_hub_location(repo_id, revision, fail)

    file = entry["file"]
    _check_file(file, origin=origin, remote=repo_id is not None, fail=fail)

    return ModelSpec(
        name=name,
        task=task,
        arch=entry["arch"],
        file=file,
        sha256=entry["sha256"].lower(),
        repo_id=repo_id,
        # huggingface-hub only treats lower-case 40-hex as a commit (an upper-case one would be looked up
        # as a branch, with a request every time), so normalise here.
        revision=revision.lower() if revision is not None else None,
        default=entry.get("default", False),
        license=entry.get("license"),
        card=entry.get("card"),
        description=entry.get("description"),
        size=size,
        origin=origin,
    )


def _check_keys(entry: dict[str, Any], fail: Any) -> None:
    """Known keys, the required ones present, each of its type."""
    unknown = sorted(set(entry) - _KEYS)
    if unknown:
        raise fail(unknown[0], f"unknown key; valid keys: {', '.join(sorted(_KEYS))}")
    for key in _REQUIRED:
        if key not in entry:
            raise fail(key, "missing (task, arch, file and sha256 are required)")
    for key in _STRINGS:
        if key in entry and (not isinstance(entry[key], str) or not entry[key].strip()):
            raise fail(key, f"must be a non-empty string, got {entry[key]!r}")
    if "default" in entry and not isinstance(entry["default"], bool):
        raise fail("default", f"must be true or false, got {entry['default']!r}")
    size = entry.get("size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise fail("size", f"must be a non-negative integer (bytes), got {size!r}")


def _check_hub_location(repo_id: str | None, revision: str | None, fail: Any) -> None:
    """A hub file needs both a repository id and a pinned commit; neither without the other."""
    if repo_id is not None:
        if not _REPO_ID.fullmatch(repo_id) or ".." in repo_id or "--" in repo_id:
            raise fail("repo_id", f"{repo_id!r} is not a hub repository id ('namespace/name')")
        if revision is None:
            raise fail("revision", f"missing: repo_id {repo_id!r} needs a pinned 40-hex commit revision")
    if revision is not None:
        if repo_id is None:
            raise fail("revision", "given without repo_id")
        if not _COMMIT.fullmatch(revision):
            # Branches and tags move: a cached file could silently differ from what was verified.
            raise fail(
                "revision",
                f"must be a 40-hex commit hash (branch and tag names are refused), got {revision!r}",
            )


def _check_file(file: str, *, origin: Path | None, remote: bool, fail: Any) -> None:
    """Bundled files live inside the package and hub files inside a repo: both must be plain relative
    paths. A user's local checkpoint (no repo_id) may be anywhere: relative to its registry or absolute."""
    if origin is not None and not remote:
        return
    posix = PurePosixPath(file)
    if "\\" in file or posix.is_absolute() or ".." in posix.parts or file.endswith("/"):
        place = "a path inside the hub repository" if remote else "a path under src/ganedit/weights/"
        raise fail("file", f"must be {place} without '..', got {file!r}")


def _read(path: Path, *, source: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RegistryError(f"registry file {path} ({source}) does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise RegistryError(f"registry file {path} ({source}) cannot be read: {e}") from None


def _env_paths() -> list[Path]:
    value = os.environ.get(ENV_VAR, "")
    return [Path(part).expanduser() for part in value.split(os.pathsep) if part.strip()]


def load_registry(extra: Sequence[Path] = ()) -> Registry:
    """The bundled registry, then ``GANEDIT_REGISTRY`` files, then ``extra``; later files win."""
    bundled = bundled_registry_path()
    layers = [parse_registry(_read(bundled, source="bundled with ganedit; reinstall ganedit"), origin=None)]
    sources = [(p, f"from {ENV_VAR}") for p in _env_paths()] + [(Path(p), "from --registry") for p in extra]
    for path, source in sources:
        path = path.expanduser().resolve()  # noqa: PLW2901 - relative `file`s resolve against this
        layers.append(parse_registry(_read(path, source=source), origin=path))

    merged: dict[str, ModelSpec] = {}
    for layer in layers:
        new_default_tasks = {spec.task for spec in layer.values() if spec.default}
        for name, spec in list(merged.items()):
            if spec.default and spec.task in new_default_tasks:
                merged[name] = dataclasses.replace(spec, default=False)
        for name, spec in layer.items():
            merged[name] = spec  # a replaced model keeps its place in the listing
    return Registry(models=MappingProxyType(merged))
