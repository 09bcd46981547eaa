"""What a run over files shows: notes and per-file lines on stderr as it goes, the summary at the end,
the ``--json`` report and the ``--dry-run`` plan on stdout. Shared by every command that goes through
`ganedit.batch` (the PAN commands and rerender), so they say things the same way.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import click

from .progress import Progress

if TYPE_CHECKING:
    from ..batch import Entry, Job, Plan, Report

STALE_LINES = 10  # outputs made with other settings named one by one on stderr; the rest are counted


def note(message: str) -> None:
    click.echo(f"ganedit: {message}", err=True)


def skipped_text(skipped: int, stale: int) -> str:
    """``3 skipped (output exists)``, with how many of them were made with other settings."""
    more = f", {stale} made with other settings: use --overwrite" if stale else ""
    return f"{skipped} skipped (output exists{more})"


class RunDisplay:
    """The ``on_plan``/``on_entry`` callbacks of a run: notes, a progress bar, warnings and failures as
    they come (the full list of failures follows at the end, in `finish`)."""

    def __init__(self, label: str, *, quiet: bool):
        self.quiet = quiet
        self.progress = Progress(not quiet and sys.stderr.isatty(), label)
        self.stale_shown = 0

    def on_plan(self, plan: Plan) -> None:
        if not self.quiet:
            for text in plan.notes:
                note(text)
        self.progress.start(plan)

    def on_entry(self, entry: Entry) -> None:
        self.progress.advance(entry)
        if entry.stale and not self.quiet:  # not redone: say so, for the first few (all are in --json)
            self.stale_shown += 1
            if self.stale_shown <= STALE_LINES:
                note(f"skipped {entry.output}: {entry.warnings[0]}")
        if entry.status == "failed":  # live, above the bar
            self.progress.print(f"[red]failed[/red] {entry.error}")
        for warning in entry.warnings if entry.status != "skipped" else ():
            if not self.quiet:
                note(f"warning: {entry.input}: {warning}")

    def interrupted(self, interrupt: KeyboardInterrupt, *, as_json: bool) -> None:
        """Stop the bar; with --json, print what was done before the interrupt (a CI job still gets it)."""
        self.progress.stop()
        partial: Report | None = getattr(interrupt, "report", None)
        if as_json and partial is not None:
            click.echo(json.dumps(partial.to_dict(), indent=2))


def finish(name: str, report: Report, *, as_json: bool, quiet: bool) -> None:
    """The --json report, the summary line and the failed files; exits with the report's exit code."""
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    ok, skipped, failed = report.count("ok"), report.count("skipped"), report.count("failed")
    if not quiet and report.stale > STALE_LINES:
        note(f"... and {report.stale - STALE_LINES} more made with other settings")
    if not quiet or failed:
        where = f" with {report.model} on {report.device}" if report.model else ""
        share = f" ({report.shard.describe()})" if report.shard is not None else ""
        click.echo(
            f"ganedit {name}: {ok} done, {skipped_text(skipped, report.stale)}, {failed} failed "
            f"in {report.seconds:.1f} s{where}{share}",
            err=True,
        )
    if failed:
        click.echo("failed files:", err=True)
        for entry in report.failed:
            click.echo(f"  {entry.error}", err=True)
    if report.exit_code:
        sys.exit(report.exit_code)


def plan_rows(plan: Plan) -> list[dict[str, Any]]:
    """One row per input of a plan: ``write``, ``skip``, ``stale`` (skipped, made otherwise) or ``fail``."""
    rows: list[dict[str, Any]] = []
    for job in plan.skipped:
        stale = plan.stale.get(job.output) if job.output is not None else None
        reason = f"exists, made {stale}: use --overwrite" if stale else "output exists"
        rows.append(_plan_row(job, "stale" if stale else "skip", reason))
    for job in plan.jobs:
        rows.append(_plan_row(job, "fail" if job.mask_error is not None else "write", job.mask_error))
    return rows


def _plan_row(job: Job, action: str, reason: str | None) -> dict[str, Any]:
    return {
        "input": job.display,
        "output": str(job.output) if job.output is not None else "-",
        "outputs": [str(path) for path in job.outputs] if job.outputs else ["-"],
        "action": action,
        "mask": str(job.mask) if job.mask is not None else None,
        "reason": reason,
    }


def print_plan(name: str, plan: Plan, *, as_json: bool, quiet: bool) -> None:
    """``--dry-run``: one line per input on stdout (``write``, ``skip``, ``stale``, ``fail``), or JSON."""
    rows = plan_rows(plan)
    counts = {
        action: sum(r["action"] == action for r in rows) for action in ("write", "skip", "stale", "fail")
    }
    if as_json:
        plan_json = {
            "dry_run": True,
            "task": name,
            "totals": {
                "inputs": len(rows),
                "write": counts["write"],
                "skipped": counts["skip"] + counts["stale"],
                "skipped_stale": counts["stale"],
                "fail": counts["fail"],
            },
            "shard": plan.shard.to_dict() if plan.shard is not None else None,
            "notes": list(plan.notes),
            "files": rows,
        }
        click.echo(json.dumps(plan_json, indent=2))
    else:
        for row in rows:
            reason = f" ({row['reason']})" if row["reason"] else ""
            more = len(row["outputs"]) - 1
            extra = f" (+{more} more)" if more > 0 else ""
            click.echo(f"{row['action']:<6} {row['input']} -> {row['output']}{extra}{reason}")
    if not quiet:
        for text in plan.notes:
            note(text)
        click.echo(
            f"ganedit {name} --dry-run: {counts['write']} to write, "
            f"{skipped_text(counts['skip'] + counts['stale'], counts['stale'])}, {counts['fail']} would "
            "fail; nothing was written",
            err=True,
        )
