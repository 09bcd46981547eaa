"""What a run did: one `Entry` per input, gathered in a `Report`, whose ``to_dict()`` is the ``--json``
report of every command that goes through the folder runner (the PAN commands and rerender alike).

The schema (docs/cli.md, "The --json report") has one shape for every command: an entry lists all the
outputs of its input (``outputs``; a PAN command has one, rerender one per tag combination plus a sheet
and a GIF) and those this run wrote (``written``); what only one command has goes into the report's
``options`` and an entry's ``details``, never into keys of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from .shard import Shard

STDIO = "-"
Status = Literal["ok", "skipped", "failed"]
STATUSES: tuple[Status, ...] = ("ok", "skipped", "failed")


@dataclass
class Entry:
    input: str
    output: str | None  # the job's first output ("-": stdout); for a PAN command its only one
    status: Status
    seconds: float = 0.0
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    stale: bool = False  # skipped, but made from another input or with other settings
    outputs: list[str] = field(default_factory=list)  # every output of this input, ``output`` first
    written: list[str] = field(default_factory=list)  # those this run wrote (the others existed, or failed)
    details: dict[str, Any] | None = None  # what one command alone tells about a file (rerender: tags read)

    def __post_init__(self) -> None:
        if not self.outputs and self.output is not None:
            self.outputs = [self.output]

    def to_dict(self) -> dict[str, Any]:
        return {
            "input": self.input,
            "output": self.output,
            "outputs": list(self.outputs),
            "written": list(self.written),
            "status": self.status,
            "seconds": round(self.seconds, 3),
            "error": self.error,
            "warnings": list(self.warnings),
            "stale": self.stale,
            "details": self.details,
        }


@dataclass
class Report:
    entries: list[Entry] = field(default_factory=list)
    task: str | None = None  # the command: derain, inpaint, ..., rerender
    model: str | None = None
    sha256: str | None = None
    device: str | None = None
    precision: str | None = None
    flip_average: bool | None = None
    strength: float | None = None  # derain: result blended with the input (1 = the full edit)
    # The settings only one command has (rerender: refine_steps, sweep, sheet, gif); {} for the others.
    options: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    interrupted: bool = False
    shard: Shard | None = None  # which share of the inputs this run took, and where its index came from
    # Set by `ganedit report merge` (ganedit.reports): the reports merged, their shards, missing shards.
    merged: dict[str, Any] | None = None

    def count(self, status: Status) -> int:
        return sum(entry.status == status for entry in self.entries)

    @property
    def stale(self) -> int:
        """Outputs skipped that were made from another input or with other settings."""
        return sum(entry.stale for entry in self.entries)

    @property
    def failed(self) -> list[Entry]:
        return [entry for entry in self.entries if entry.status == "failed"]

    @property
    def exit_code(self) -> int:
        incomplete = bool(self.merged and self.merged.get("missing_shards"))
        return 1 if self.failed or self.interrupted or incomplete else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "model": self.model,
            "sha256": self.sha256,
            "device": self.device,
            "precision": self.precision,
            "flip_average": self.flip_average,
            "strength": self.strength,
            "options": dict(self.options),
            "seconds": round(self.seconds, 3),
            "totals": {
                "inputs": len(self.entries),
                "ok": self.count("ok"),
                "skipped": self.count("skipped"),
                "failed": self.count("failed"),
                "skipped_stale": self.stale,
            },
            "interrupted": self.interrupted,
            "shard": self.shard.to_dict() if self.shard is not None else None,
            "merged": self.merged,
            "notes": list(self.notes),
            "files": [entry.to_dict() for entry in self.entries],
        }
