"""weights.toml parsing, validation and layering (bundled < GANEDIT_REGISTRY < --registry)."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import pytest

from ganedit import registry
from ganedit.errors import RegistryError, UsageError, WeightsUnavailableError
from ganedit.registry import ModelSpec, Registry, bundled_registry_path, load_registry, parse_registry

SHA = "ab" * 32
REV = "0123456789abcdef0123456789abcdef01234567"


def entry(name: str, **keys: object) -> str:
    """One [models."NAME"] table; ``None`` values drop the key."""
    base: dict[str, object] = {"task": "derain", "arch": "pan", "file": f"{name}.safetensors", "sha256": SHA}
    base.update(keys)
    lines = [f'[models."{name}"]']
    for key, value in base.items():
        if value is None:
            continue
        if isinstance(value, bool):
            lines.append(f"{key} = {str(value).lower()}")
        elif isinstance(value, int):
            lines.append(f"{key} = {value}")
        else:
            lines.append(f"{key} = {value!r}".replace("'", '"'))
    return "\n".join(lines) + "\n"


@pytest.fixture(autouse=True)
def _no_user_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GANEDIT_REGISTRY", raising=False)


# -- the bundled registry ------------------------------------------------------------------------


def test_bundled_registry_is_found_and_valid() -> None:
    path = bundled_registry_path()
    assert path.name == "weights.toml"
    assert path.is_file()
    specs = parse_registry(path.read_text(encoding="utf-8"), origin=None)
    assert all(spec.origin is None for spec in specs.values())
    loaded = load_registry()
    assert list(loaded.models) == list(specs)


def test_bundled_registry_path_prefers_the_package_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A wheel install has ganedit/weights.toml next to the package's modules.
    pkg = tmp_path / "ganedit"
    pkg.mkdir()
    (pkg / "weights.toml").write_text("[models]\n")
    monkeypatch.setattr(registry.importlib.resources, "files", lambda name: pkg)
    assert bundled_registry_path() == pkg / "weights.toml"


# -- a valid entry -------------------------------------------------------------------------------


def test_full_entry_parses_into_a_frozen_spec(tmp_path: Path) -> None:
    origin = tmp_path / "mine.toml"
    text = entry(
        "pan-derain",
        sha256=SHA.upper(),
        repo_id="acme/pan-derain",
        revision=REV.upper(),
        default=True,
        license="MIT",
        card="docs/models/pan-derain.md",
        description="PAN de-raining",
        size=1234,
    )
    specs = parse_registry(text, origin=origin)
    assert specs == {
        "pan-derain": ModelSpec(
            name="pan-derain",
            task="derain",
            arch="pan",
            file="pan-derain.safetensors",
            sha256=SHA,  # normalised to lower case
            repo_id="acme/pan-derain",
            revision=REV,  # lower case: huggingface-hub only takes lower-case hex as a commit
            default=True,
            license="MIT",
            card="docs/models/pan-derain.md",
            description="PAN de-raining",
            size=1234,
            origin=origin,
        )
    }
    with pytest.raises(dataclasses.FrozenInstanceError):
        specs["pan-derain"].file = "other"  # type: ignore[misc]


def test_empty_file_and_empty_models_table_are_valid() -> None:
    assert parse_registry("", origin=None) == {}
    assert parse_registry("[models]\n", origin=None) == {}


def test_user_registry_files_may_point_outside_their_folder(tmp_path: Path) -> None:
    origin = tmp_path / "reg.toml"
    text = entry("a", file="../ckpt/a.safetensors") + entry("b", file=str(tmp_path / "b.safetensors"))
    specs = parse_registry(text, origin=origin)
    assert specs["a"].file == "../ckpt/a.safetensors"
    assert specs["b"].file == str(tmp_path / "b.safetensors")


# -- validation ----------------------------------------------------------------------------------

INVALID = {
    "bad-toml": ('[models."m"]\ntask = "derain"\ntask = "inpaint"\n', "not valid TOML"),
    "unknown-key": (entry("m", sha="x"), "'sha': unknown key"),
    "missing-task": (entry("m", task=None), "'task': missing"),
    "missing-arch": (entry("m", arch=None), "'arch': missing"),
    "missing-file": (entry("m", file=None), "'file': missing"),
    "missing-sha256": (entry("m", sha256=None), "'sha256': missing"),
    "short-sha256": (entry("m", sha256="ab" * 31), "'sha256': must be 64 hexadecimal"),
    "non-hex-sha256": (entry("m", sha256="zz" * 32), "'sha256': must be 64 hexadecimal"),
    "branch-revision": (entry("m", repo_id="acme/m", revision="main"), "'revision': must be a 40-hex commit"),
    "short-revision": (
        entry("m", repo_id="acme/m", revision=REV[:39]),
        "'revision': must be a 40-hex commit",
    ),
    "repo-without-revision": (entry("m", repo_id="acme/m"), "'revision': missing"),
    "revision-without-repo": (entry("m", revision=REV), "'revision': given without repo_id"),
    "bad-repo-id": (entry("m", repo_id="acme/m/x", revision=REV), "'repo_id': "),
    "unknown-task": (entry("m", task="deblur"), "'task': unknown task 'deblur'; valid tasks: derain"),
    "arch-mismatch": (entry("m", arch="tdgan"), "'arch': task 'derain' is served by arch 'pan'"),
    "two-defaults": (entry("m", default=True) + entry("n", default=True), "'default': task 'derain' already"),
    "default-not-bool": (entry("m", default="yes"), "'default': must be true or false"),
    "negative-size": (entry("m", size=-1), "'size': must be a non-negative integer"),
    "empty-file": (entry("m", file=""), "'file': must be a non-empty string"),
    "task-not-string": (
        '[models."m"]\ntask = 3\narch = "pan"\nfile = "f"\nsha256 = "' + SHA + '"\n',
        "'task'",
    ),
    "repo-file-escapes": (
        entry("m", file="../m.safetensors", repo_id="acme/m", revision=REV),
        "'file': must be",
    ),
    "top-level-typo": ('[modles."m"]\ntask = "derain"\n', "unknown top-level key(s) modles"),
    "models-not-table": ('models = "x"\n', "'models' must be a table"),
    "entry-not-table": ('[models]\nm = "x"\n', "model 'm' must be a table"),
    "name-is-a-task": (entry("derain"), "model name 'derain' is a task name"),
    "name-with-space": (entry("my model"), "model name 'my model' must start"),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_registry_is_refused_naming_file_model_and_key(case: str, tmp_path: Path) -> None:
    text, expected = INVALID[case]
    origin = tmp_path / f"{case}.toml"
    with pytest.raises(RegistryError) as info:
        parse_registry(text, origin=origin)
    message = str(info.value)
    assert message.startswith(f"{origin}: "), message
    assert expected in message, message
    if case not in {"bad-toml", "top-level-typo", "models-not-table"}:
        assert "'m'" in message or "'derain'" in message or "'my model'" in message
    assert info.value.exit_code == 2


def test_bundled_registry_errors_name_it_and_refuse_paths_outside_the_package() -> None:
    with pytest.raises(RegistryError, match=r"^the bundled weights.toml: model 'm', key 'file'"):
        parse_registry(entry("m", file="/abs/m.safetensors"), origin=None)
    with pytest.raises(RegistryError, match="key 'file'"):
        parse_registry(entry("m", file="../m.safetensors"), origin=None)


def test_defaults_for_different_tasks_may_coexist() -> None:
    text = entry("m", default=True) + entry("n", task="inpaint", default=True)
    specs = parse_registry(text, origin=None)
    assert specs["m"].default and specs["n"].default


# -- Registry lookups ----------------------------------------------------------------------------


def _registry(text: str) -> Registry:
    from types import MappingProxyType

    return Registry(models=MappingProxyType(parse_registry(text, origin=None)))


def test_get_unknown_model_lists_valid_names() -> None:
    reg = _registry(entry("pan-a") + entry("pan-b"))
    assert reg.get("pan-b").name == "pan-b"
    with pytest.raises(UsageError, match=r"unknown model 'pan-c'; valid models: pan-a, pan-b") as info:
        reg.get("pan-c")
    assert info.value.exit_code == 2
    with pytest.raises(UsageError, match="no models are registered; pass --weights PATH"):
        _registry("").get("pan-a")


def test_default_for_prefers_the_marked_default_then_the_first_registered() -> None:
    reg = _registry(
        entry("a") + entry("b", default=True) + entry("c", task="inpaint") + entry("d", task="inpaint")
    )
    assert reg.default_for("derain").name == "b"
    assert reg.default_for("inpaint").name == "c"
    assert [s.name for s in reg.for_task("inpaint")] == ["c", "d"]
    assert reg.for_task("sketch2photo") == []


def test_default_for_a_task_without_models_says_how_to_get_one() -> None:
    with pytest.raises(WeightsUnavailableError, match="no model is registered for task 'rerender'") as info:
        _registry(entry("a")).default_for("rerender")
    assert "--weights PATH" in str(info.value)
    assert "ganedit train tdgan --data DIR --out RUN_DIR" in str(info.value)
    assert info.value.exit_code == 3


def test_unknown_task_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown task 'deblur'"):
        _registry("").default_for("deblur")


def test_registry_models_are_read_only() -> None:
    reg = _registry(entry("a"))
    with pytest.raises(TypeError):
        reg.models["b"] = reg.models["a"]  # type: ignore[index]


# -- layering ------------------------------------------------------------------------------------


@pytest.fixture
def bundled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "bundled" / "weights.toml"
    path.parent.mkdir()
    path.write_text(entry("a", default=True) + entry("b") + entry("i", task="inpaint", default=True))
    monkeypatch.setattr(registry, "bundled_registry_path", lambda: path)
    return path


def test_later_files_override_by_name_and_their_defaults_win(
    bundled: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env1 = tmp_path / "env1.toml"
    env1.write_text(entry("b", file="b-env1.safetensors") + entry("c", default=True))
    env2 = tmp_path / "env2.toml"
    env2.write_text(entry("d", file="d.safetensors"))
    extra = tmp_path / "extra.toml"
    extra.write_text(entry("c", file="c-extra.safetensors", default=True) + entry("e"))
    monkeypatch.setenv("GANEDIT_REGISTRY", os.pathsep.join([str(env1), "", str(env2)]))

    reg = load_registry([extra])

    assert list(reg.models) == ["a", "b", "i", "c", "d", "e"]  # an overridden model keeps its place
    assert reg.get("a").origin is None
    assert (reg.get("b").file, reg.get("b").origin) == ("b-env1.safetensors", env1.resolve())
    assert (reg.get("c").file, reg.get("c").origin) == ("c-extra.safetensors", extra.resolve())
    assert reg.get("d").origin == env2.resolve()
    # env1 declared a derain default: the bundled one ("a") is no longer marked as such.
    assert reg.default_for("derain").name == "c"
    assert [s.name for s in reg.models.values() if s.default] == ["i", "c"]
    # the inpaint default is untouched by files that say nothing about inpaint
    assert reg.default_for("inpaint").name == "i"


def test_an_override_without_default_keeps_the_earlier_default(bundled: Path, tmp_path: Path) -> None:
    extra = tmp_path / "extra.toml"
    extra.write_text(entry("z"))
    reg = load_registry([extra])
    assert reg.default_for("derain").name == "a"


def test_env_var_alone_adds_models(bundled: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env1 = tmp_path / "env1.toml"
    env1.write_text(entry("x"))
    monkeypatch.setenv("GANEDIT_REGISTRY", str(env1))
    assert "x" in load_registry().models
    monkeypatch.delenv("GANEDIT_REGISTRY")
    assert "x" not in load_registry().models


def test_relative_registry_paths_are_resolved(
    bundled: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "rel.toml").write_text(entry("x", file="x.safetensors"))
    monkeypatch.chdir(tmp_path)
    spec = load_registry([Path("rel.toml")]).get("x")
    assert spec.origin == (tmp_path / "rel.toml").resolve()
    assert spec.origin.is_absolute()


def test_missing_registry_files_are_errors_naming_where_they_came_from(
    bundled: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nope.toml"
    monkeypatch.setenv("GANEDIT_REGISTRY", str(missing))
    with pytest.raises(RegistryError, match=r"nope.toml \(from GANEDIT_REGISTRY\) does not exist"):
        load_registry()
    monkeypatch.delenv("GANEDIT_REGISTRY")
    with pytest.raises(RegistryError, match=r"nope.toml \(from --registry\) does not exist"):
        load_registry([missing])
    with pytest.raises(RegistryError, match="cannot be read"):
        load_registry([tmp_path])  # a directory


def test_an_invalid_user_file_names_that_file(bundled: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(entry("x", task="deblur"))
    with pytest.raises(RegistryError, match="^" + re.escape(f"{bad.resolve()}: model 'x', key 'task'")):
        load_registry([bad])
