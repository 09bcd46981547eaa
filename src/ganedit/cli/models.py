"""``ganedit models`` (what the registry offers) and ``ganedit weights`` (fetch and check weights files)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from ..tasks import TASKS
from .boundary import CONTEXT, Group, need_stream
from .options import hub_options, registry_files, registry_option


@click.group(cls=Group, context_settings=CONTEXT)
def models() -> None:
    """List and inspect the models weights.toml offers."""


def _human_size(size: int | None) -> str:
    if size is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024  # type: ignore[assignment]
    return "?"


@models.command("list", context_settings=CONTEXT)
@click.option("--task", type=click.Choice(list(TASKS)), help="Only models for this task.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@registry_option
def models_list(task: str | None, as_json: bool, registry: tuple[str, ...]) -> None:
    """Every registered model: task, default, size, sha256, and whether it is available offline.

    \b
    Examples:
      ganedit models list
      ganedit models list --task derain --json
    """
    from .. import api

    rows = api.list_models(task=task, registry_files=registry_files(registry), hub=hub_options(False))
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "name": r.spec.name,
                        "task": r.spec.task,
                        "arch": r.spec.arch,
                        "default": r.spec.default,
                        "size": r.spec.size,
                        "sha256": r.spec.sha256,
                        "bundled": r.bundled,
                        "cached": r.cached,
                        "repo_id": r.spec.repo_id,
                        "revision": r.spec.revision,
                        "license": r.spec.license,
                        "card": r.spec.card,
                    }
                    for r in rows
                ],
                indent=2,
            )
        )
        return
    if not rows:
        click.echo("no models registered" + (f" for {task}" if task else ""), err=True)
        return
    header = ("name", "task", "default", "size", "sha256", "available")
    table_rows = []
    for r in rows:
        local = "bundled" if r.spec.origin is None else "local file"
        where = local if r.bundled else "cached" if r.cached else "not cached (ganedit weights pull)"
        default = "yes" if r.spec.default else "no"
        table_rows.append(
            (r.spec.name, r.spec.task, default, _human_size(r.spec.size), r.spec.sha256[:12], where)
        )
    need_stream("stdout", "models list prints on stdout")
    if not sys.stdout.isatty():  # piped or redirected: plain columns, nothing cut to a terminal's width
        widths = [max(len(row[i]) for row in [header, *table_rows]) for i in range(len(header))]
        for row in [header, *table_rows]:
            click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(*header)
    for row in table_rows:
        table.add_row(*row)
    table.columns[0].no_wrap = True
    table.columns[0].overflow = "fold"
    Console().print(table)


@models.command("show", context_settings=CONTEXT)
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@registry_option
def models_show(name: str, as_json: bool, registry: tuple[str, ...]) -> None:
    """Everything about one model: registry entry and, when available locally, its checkpoint metadata.

    \b
    Examples:
      ganedit models show pan-derain
    """
    need_stream("stdout", "models show prints on stdout")
    from dataclasses import asdict

    from ..hub import bundled_path, cached_path
    from ..registry import load_registry

    spec = load_registry(registry_files(registry)).get(name)
    info: dict[str, Any] = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(spec).items()}
    info["card"] = _card_location(spec)
    local = bundled_path(spec) or cached_path(spec, hub_options(False))
    info["local_path"] = str(local) if local else None
    if local is not None:
        from ..checkpoint import read_info

        ckpt = read_info(local)
        info["checkpoint"] = {"arch": ckpt.arch, "task": ckpt.task, "arch_config": ckpt.arch_config}
        info["checkpoint_metadata"] = ckpt.metadata
        if ckpt.arch == "pan":
            info["flip_average"] = "on" if ckpt.flip_average else "off (--flip-average turns it on)"
        if ckpt.arch == "tdgan":
            from ..runtime.rerenderer import read_config

            info["tags"] = {tag: list(values) for tag, values in read_config(local).tags}
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    if info["local_path"] is None:
        info["local_path"] = f"not here (ganedit weights pull {spec.name})"
    for key, value in info.items():
        if key == "checkpoint_metadata" or value is None:  # unset keys are left out, not shown as None
            continue
        if key == "tags":
            click.echo(f"{key:>12}:")
            for tag, values in value.items():
                click.echo(f"{'':>14}{tag}: {', '.join(values)}")
            continue
        shown = ("yes" if value else "no") if isinstance(value, bool) else value
        click.echo(f"{key:>12}: {json.dumps(shown) if isinstance(shown, dict) else shown}")


def _card_location(spec: Any) -> str | None:
    """Where a model's card can be read: a URL as it is; a relative path resolved against the folder of
    the registry that names it (the bundled cards are installed inside the package); None when there is
    no such file here (a path into a source tree this installation does not have)."""
    card = spec.card
    if card is None or "://" in card:
        return card
    from ..registry import bundled_registry_path

    base = (spec.origin or bundled_registry_path()).parent
    path = Path(card) if Path(card).is_absolute() else base / card
    return str(path) if path.is_file() else None


@click.group(cls=Group, context_settings=CONTEXT)
def weights() -> None:
    """Fetch and check weights files (for offline machines)."""


@weights.command("pull", context_settings=CONTEXT)
@click.argument("names", nargs=-1)
@registry_option
def weights_pull(names: tuple[str, ...], registry: tuple[str, ...]) -> None:
    """Download (or find) and verify models' weights; with no NAME, all registered models.

    \b
    Examples:
      ganedit weights pull pan-derain
      HF_ENDPOINT=https://my-mirror ganedit weights pull
    """
    need_stream("stdout", "weights pull prints on stdout")
    from .. import api

    hub = hub_options(False)
    for name, resolved in api.pull(list(names), registry_files=registry_files(registry), hub=hub):
        click.echo(f"{name}: {resolved.path} ({resolved.source}, sha256 ok)")


@weights.command("verify", context_settings=CONTEXT)
@click.argument("names", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@registry_option
def weights_verify(names: tuple[str, ...], as_json: bool, registry: tuple[str, ...]) -> None:
    """Check the sha256 of local copies (bundled or cached) without downloading.

    Exit 1 if a local copy does not match; 3 if a model you named has no local copy.
    """
    need_stream("stdout", "weights verify prints on stdout")
    from .. import api

    results = api.verify(list(names), registry_files=registry_files(registry), hub=hub_options(False))
    if as_json:
        click.echo(json.dumps([r.__dict__ for r in results], indent=2))
    else:
        for r in results:
            where = f" ({r.source})" if r.source else ""
            click.echo(f"{r.name}: {r.status}" + (f"{where} {r.detail}" if r.detail else ""))
    if any(r.status == "mismatch" for r in results):
        sys.exit(1)
    if names and any(r.status == "missing" for r in results):
        sys.exit(3)
