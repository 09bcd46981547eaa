"""``ganedit report merge``: the --json reports of a run split over several machines, merged into one."""

from __future__ import annotations

import json
import sys

import click

from .boundary import CONTEXT, Group, need_stream
from .reporting import skipped_text


@click.group("report", cls=Group, context_settings=CONTEXT)
def report_group() -> None:
    """Combine the --json reports of a run split over several machines."""


@report_group.command("merge", context_settings=CONTEXT)
@click.argument("files", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print the merged report as JSON on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No summary on stderr (failures are still listed).")
def report_merge(files: tuple[str, ...], as_json: bool, quiet: bool) -> None:
    """Merge the --json reports of the shards of one run into one report.

    \b
    Exit 0 when every file was done or skipped; 1 when some file failed, a shard was interrupted or a
    shard has no report; 2 when a report file is unreadable, not an editing report, or from another
    run (other model, two reports of one shard, another shard count).
    \b
    Examples:
      ganedit report merge reports/shard-*.json
      ganedit report merge reports/shard-*.json --json > report.json
    """
    if as_json:
        need_stream("stdout", "--json prints on stdout")
    from ..reports import merge_reports, read_report

    merged = merge_reports([(name, read_report(name)) for name in files])
    if as_json:
        click.echo(json.dumps(merged.to_dict(), indent=2))
    info = merged.merged or {}
    count = info.get("shard_count")
    ok, skipped, failed = merged.count("ok"), merged.count("skipped"), merged.count("failed")
    if not quiet or merged.exit_code:
        shards = f", {len(info.get('reports', []))} of {count} shards" if count else ""
        where = f" with {merged.model}" if merged.model else ""
        click.echo(
            f"ganedit report merge: {len(files)} report{'s' if len(files) != 1 else ''}{shards}: {ok} done, "
            f"{skipped_text(skipped, merged.stale)}, {failed} failed{where}",
            err=True,
        )
    if info.get("missing_shards"):
        missing = ", ".join(str(i) for i in info["missing_shards"])
        click.echo(f"missing shards (no report; re-run those tasks): {missing} of {count}", err=True)
    interrupted = [p["file"] for p in info.get("reports", []) if p.get("interrupted")]
    if interrupted:
        click.echo(f"interrupted: {', '.join(interrupted)} (re-run those tasks to finish)", err=True)
    if failed:
        click.echo("failed files:", err=True)
        for entry in merged.failed:
            click.echo(f"  {entry.error}", err=True)
    if merged.exit_code:
        sys.exit(merged.exit_code)
