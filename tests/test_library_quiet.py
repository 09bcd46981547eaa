"""The library never prints: messages for people are the command line's (ganedit.cli); the library says
what it has to say through `logging.getLogger("ganedit")` (shown with ``ganedit -v``), exceptions and
return values."""

from __future__ import annotations

import ast
from pathlib import Path

import ganedit

PACKAGE = Path(ganedit.__file__).parent


def test_no_module_outside_cli_calls_print() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith("cli/"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                found.append(f"{rel}:{node.lineno}")
    assert not found, f"library code prints (use logging.getLogger(__name__)): {found}"


def test_library_loggers_are_children_of_ganedit() -> None:
    import logging

    from ganedit import hub, provenance
    from ganedit.batch import run

    for module in (hub, provenance, run):
        logger = module.log
        assert isinstance(logger, logging.Logger) and logger.name.startswith("ganedit.")
