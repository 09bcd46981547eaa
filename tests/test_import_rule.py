"""The one-way import rule, checked: imports point from the command line down to pixels, never up.

Every ``ganedit`` module is given a layer (below); an import of another layer's module must go to a LOWER
layer (a larger number). Modules of one layer may import each other (a package's own modules do). Every
import counts: at the top of a module, inside a function, or under ``TYPE_CHECKING`` — a lazy import is
still a dependency. The old module paths kept for one release (`SHIMS`) may not be imported by ganedit
itself. docs/architecture.md draws the same layers.
"""

from __future__ import annotations

import ast
from pathlib import Path

import ganedit

PACKAGE = Path(ganedit.__file__).parent

# Longest dotted prefix wins. Lower layers know nothing of the ones above them.
LAYERS: dict[str, int] = {
    "__main__": -1,  # python -m ganedit: runs the command line
    "cli": 0,  # the command line: options, progress, messages, exit codes
    "ray": 1,  # integrations with other runners
    "api": 2,  # the library's front door: load / locate / edit_file / edit_folder
    "reports": 2,  # merging --json reports
    "batch": 3,  # the folder runner: plan, run, report
    "eval": 4,  # measuring models (never imports train)
    "train": 4,  # training models (never imports eval)
    "runtime": 5,  # running a model on pictures: editor, rerenderer, tiling
    "hub": 6,  # finding weights: the registry, the hub, checkpoints
    "checkpoint": 6,
    "provenance": 6,
    "registry": 7,
    "palette": 7,
    "archs": 7,  # networks (inference only)
    "data": 7,  # data made or read for training and evaluation
    "io": 8,  # pictures in and out, atomic files
    "runtime.devices": 8,  # the one device / threads / precision policy
    "tasks": 9,
    "errors": 10,
}

# Old paths kept for one release: thin aliases of the new modules, for users' code only.
SHIMS = {
    "images",
    "editor",
    "rerender",
    "evaluate",
    "evaluate_tdgan",
    "metrics",
    "train.synth",
    "train.tagset",
}

# Peers that must stay apart even though they share a layer.
FORBIDDEN = [("eval", "train"), ("train", "eval"), ("data", "train"), ("data", "eval"), ("archs", "train")]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path, module: str) -> set[str]:
    """The ganedit modules `path` imports (relative to the package, '' for ganedit itself)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package else []
                base = base[: len(base) - node.level + 1] if node.level > 1 else base
                target = ".".join([*base, *([node.module] if node.module else [])])
            elif (node.module or "").startswith("ganedit"):
                target = (node.module or "").removeprefix("ganedit").lstrip(".")
            else:
                continue
            if node.module is None:  # `from . import x`: x is a module or a name of the package
                found.update(f"{target}.{a.name}".lstrip(".") for a in node.names)
            else:
                found.add(target)
        elif isinstance(node, ast.Import):
            found.update(
                a.name.removeprefix("ganedit").lstrip(".") for a in node.names if a.name.startswith("ganedit")
            )
    return found


def _layer(module: str) -> tuple[str, int] | None:
    best = None
    for prefix, layer in LAYERS.items():
        if (module == prefix or module.startswith(prefix + ".")) and (
            best is None or len(prefix) > len(best[0])
        ):
            best = (prefix, layer)
    return best


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p, _module_name(p)) for p in sorted(PACKAGE.rglob("*.py"))}


def test_every_module_has_a_layer() -> None:
    missing = [m for m in _graph() if m and m not in SHIMS and _layer(m) is None]
    assert not missing, f"give these modules a layer in LAYERS (and docs/architecture.md): {missing}"


def test_imports_point_down() -> None:
    upward = []
    for module, targets in _graph().items():
        if not module or module in SHIMS:
            continue  # ganedit/__init__ re-exports api lazily; shims alias their new home
        here = _layer(module)
        assert here is not None
        for target in sorted(targets):
            if target in ("", "__version__"):
                continue  # the package's version
            there = _layer(target)
            if there is None or there[0] == here[0]:
                continue  # within one layer unit (a package's own modules)
            if there[1] <= here[1]:
                upward.append(f"{module} (layer {here[1]}) imports {target} (layer {there[1]})")
    assert not upward, "imports must point down:\n" + "\n".join(upward)


def test_peers_stay_apart() -> None:
    crossing = []
    for module, targets in _graph().items():
        for low, high in FORBIDDEN:
            if module == low or module.startswith(low + "."):
                crossing += [
                    f"{module} imports {t}" for t in targets if t == high or t.startswith(high + ".")
                ]
    assert not crossing, crossing


def test_no_module_imports_an_old_path() -> None:
    users = [
        f"{module} imports {target}"
        for module, targets in _graph().items()
        if module not in SHIMS
        for target in targets
        if target in SHIMS
    ]
    assert not users, f"the old paths are for users' code; import the new modules: {users}"


def test_the_rule_catches_an_upward_import(tmp_path: Path) -> None:
    # The checker itself: a low module importing the command line is reported.
    source = tmp_path / "mod.py"
    source.write_text("from ..cli import main\nfrom . import atomic\n", encoding="utf-8")
    found = _imports(source, "io.mod")
    assert found == {"cli", "io.atomic"}
    assert _layer("io.mod") == ("io", 8) and _layer("cli") == ("cli", 0)
    assert _layer("runtime.devices") == ("runtime.devices", 8) and _layer("runtime.editor") == ("runtime", 5)
