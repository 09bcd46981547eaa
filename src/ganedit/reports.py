"""Read the ``--json`` reports of a sharded run and merge them into one (``ganedit report merge``).

A merged report has the schema of a single run's (`batch.Report.to_dict`), so whatever reads one reads the
other, and a merged report can be merged again. Its ``shard`` is null and its ``merged`` field lists the
reports it was made from and the shards that have no report (``missing_shards``): a task that died
before writing its report must not let the merge say "all done".

Problems with the report files themselves (unreadable, not JSON, not an editing report, totals that do
not add up, reports of different models, two reports of one shard, shards of different counts) are
`UsageError`s naming the file. Library code: nothing here prints.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .batch import Entry, Report, Shard
from .errors import UsageError

STATUSES = ("ok", "skipped", "failed")
MISSING = "no report for shard"  # how the note on missing shards begins
MAX_MISSING = 1_000_000  # more shards without a report than this: not the reports of one run


def read_report(path: str | Path) -> Report:
    """Load one ``--json`` report file; UsageError (naming the file) for anything that is not one."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such report file") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a folder, not a report file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"{path}: cannot read it ({getattr(error, 'strerror', None) or error})") from None
    if not text.strip():
        raise UsageError(
            f"{path}: empty report (did the task that writes it die before it finished? re-run that task)"
        )
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(f"{path}: not a JSON report ({error.msg} at line {error.lineno})") from None
    except RecursionError:
        raise UsageError(f"{path}: not a JSON report (nested too deeply)") from None
    return report_from_dict(data, name=str(path))


def _field(data: dict[str, Any], key: str, kinds: tuple[type, ...], name: str, *, optional: bool) -> Any:
    value = data.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise UsageError(f"{name}: {key!r} is missing or of the wrong type in this report")
    return value


def _strings(item: dict[str, Any], key: str, where: str) -> list[str]:
    """An entry's list of paths (absent in reports of older versions: empty)."""
    value = item.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"{where}: {key!r} must be a list of strings")
    return list(value)


def _shard_from_dict(value: Any, name: str) -> Shard | None:
    if value is None:
        return None
    try:
        index, count, source = value["index"], value["count"], value.get("source")
        if type(index) is not int or type(count) is not int or not 0 <= index < count:
            raise TypeError
        if source is not None and not isinstance(source, str):
            raise TypeError
    except (TypeError, KeyError, AttributeError):
        raise UsageError(
            f"{name}: 'shard' must be {{index, count, source}} with 0 <= index < count"
        ) from None
    return Shard(index, count, source)


def report_from_dict(data: Any, *, name: str = "report") -> Report:
    """Rebuild a `Report` from its ``to_dict()``, checking what the merge relies on."""
    if not isinstance(data, dict) or not isinstance(data.get("files"), list):
        old = isinstance(data, dict) and "entries" in data
        hint = " (an older ganedit's rerender report, which has 'entries', not 'files')" if old else ""
        raise UsageError(f"{name}: not the --json report of a ganedit run{hint}; cannot merge it")
    entries: list[Entry] = []
    for i, item in enumerate(data["files"]):
        where = f"{name}: files[{i}]"
        if not isinstance(item, dict) or item.get("status") not in STATUSES:
            raise UsageError(f"{where}: not a file entry (status must be one of {', '.join(STATUSES)})")
        warnings = item.get("warnings") or []
        if not isinstance(warnings, list) or not all(isinstance(w, str) for w in warnings):
            raise UsageError(f"{where}: 'warnings' must be a list of strings")
        entries.append(
            Entry(
                input=_field(item, "input", (str,), where, optional=False),
                output=_field(item, "output", (str,), where, optional=True),
                status=item["status"],
                seconds=float(_field(item, "seconds", (int, float), where, optional=True) or 0.0),
                error=_field(item, "error", (str,), where, optional=True),
                warnings=list(warnings),
                stale=item.get("stale") is True,
                outputs=_strings(item, "outputs", where),
                written=_strings(item, "written", where),
                details=item.get("details") if isinstance(item.get("details"), dict) else None,
            )
        )
    notes = data.get("notes") or []
    if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
        raise UsageError(f"{name}: 'notes' must be a list of strings")
    merged = data.get("merged")
    if merged is not None:
        parts = merged.get("reports") if isinstance(merged, dict) else None
        if not isinstance(parts, list) or not all(
            isinstance(p, dict) and isinstance(p.get("file"), str) for p in parts
        ):
            raise UsageError(f"{name}: 'merged' must be null or list the reports it was made from")
        for part in parts:
            _shard_from_dict(part.get("shard"), name)
    options = data.get("options")
    report = Report(
        entries=entries,
        task=_field(data, "task", (str,), name, optional=True),
        options=dict(options) if isinstance(options, dict) else {},
        model=_field(data, "model", (str,), name, optional=True),
        sha256=_field(data, "sha256", (str,), name, optional=True),
        device=_field(data, "device", (str,), name, optional=True),
        precision=_field(data, "precision", (str,), name, optional=True),
        flip_average=_field(data, "flip_average", (bool,), name, optional=True),
        strength=_field(data, "strength", (int, float), name, optional=True),
        seconds=float(_field(data, "seconds", (int, float), name, optional=True) or 0.0),
        notes=list(notes),
        interrupted=bool(_field(data, "interrupted", (bool,), name, optional=True)),
        shard=_shard_from_dict(data.get("shard"), name),
        merged=merged,
    )
    totals = data.get("totals")
    expected = {"inputs": len(entries), **{s: report.count(s) for s in STATUSES}}  # type: ignore[arg-type]
    if not isinstance(totals, dict) or {k: totals.get(k) for k in expected} != expected:
        raise UsageError(
            f"{name}: its totals {totals} do not match its {len(entries)} file entries; "
            "the file is truncated or was edited"
        )
    return report


def _parts(name: str, report: Report) -> list[dict[str, Any]]:
    """The runs a report stands for: itself, or (already merged) the reports it was made from."""
    if report.merged is not None:
        return [dict(part) for part in report.merged["reports"]]
    return [
        {
            "file": name,
            "shard": report.shard.to_dict() if report.shard is not None else None,
            "totals": {"inputs": len(report.entries), **{s: report.count(s) for s in STATUSES}},  # type: ignore[arg-type]
            "interrupted": report.interrupted,
        }
    ]


def _same(values: list[tuple[str, Any]], what: str) -> Any:
    """The one value the reports that have one agree on; UsageError naming two that differ."""
    known = [(name, value) for name, value in values if value is not None]
    for name, value in known[1:]:
        if value != known[0][1]:
            raise UsageError(
                f"{known[0][0]} and {name} were made with different {what} ({known[0][1]} vs {value}); "
                "merge the reports of one run"
            )
    return known[0][1] if known else None


def _joined(values: list[Any]) -> str | None:
    distinct = sorted({str(v) for v in values if v is not None})
    return ", ".join(distinct) if distinct else None


def _missing_shards(parts: list[dict[str, Any]]) -> tuple[int | None, list[int]]:
    """The shard count of the run the reports come from, and the shards with no report; UsageError for
    reports that are not of one sharded run (a whole run mixed with shards, other counts, a shard twice)."""
    sharded = [p for p in parts if p.get("shard") is not None]
    missing: list[int] = []
    count: int | None = None
    if sharded:
        whole = [p["file"] for p in parts if p.get("shard") is None]
        if whole:
            raise UsageError(
                f"{whole[0]} is a whole run (no shard) but {sharded[0]['file']} is shard "
                f"{sharded[0]['shard']['index']}/{sharded[0]['shard']['count']}; merge the reports of one "
                "sharded run"
            )
        seen: dict[int, str] = {}
        for part in sharded:
            shard = part["shard"]
            if count is None:
                count = shard["count"]
            elif shard["count"] != count:
                raise UsageError(
                    f"{sharded[0]['file']} is one of {count} shards but {part['file']} one of "
                    f"{shard['count']}; merge the reports of one sharded run"
                )
            if shard["index"] in seen:
                raise UsageError(
                    f"shard {shard['index']}/{count} has two reports, {seen[shard['index']]} and "
                    f"{part['file']}; keep the latest"
                )
            seen[shard["index"]] = part["file"]
        assert count is not None
        if count - len(seen) > MAX_MISSING:  # a crafted or corrupt count: never list 10^12 shards
            raise UsageError(
                f"{sharded[0]['file']} is one of {count} shards, and {count - len(seen)} of them have no "
                "report here: too many to be one run's; merge the reports of one sharded run"
            )
        missing = [i for i in range(count) if i not in seen]

    return count, missing


def merge_reports(named: Sequence[tuple[str, Report]]) -> Report:
    """Merge the reports of one sharded run (name = the file each came from, for messages)."""
    if not named:
        raise UsageError("no reports to merge")
    seen_files: set[str] = set()
    for name, _ in named:
        if name in seen_files:
            raise UsageError(f"{name} is given twice")
        seen_files.add(name)
    parts: list[tuple[dict[str, Any], str, Report]] = []
    for name, report in named:
        parts += [(part, name, report) for part in _parts(name, report)]

    count, missing = _missing_shards([p for p, _, _ in parts])

    def order(item: tuple[int, tuple[str, Report]]) -> tuple[int, int]:
        shard = item[1][1].shard
        return (shard.index if shard is not None else -1, item[0])

    ordered = [pair for _, pair in sorted(enumerate(named), key=order)]
    merged = Report(
        task=_same([(n, r.task) for n, r in ordered], "commands"),
        options=_same([(n, r.options or None) for n, r in ordered], "command settings") or {},
        model=_same([(n, r.model if r.sha256 else None) for n, r in ordered], "models"),
        sha256=_same([(n, r.sha256) for n, r in ordered], "model files (sha256)"),
        flip_average=_same([(n, r.flip_average) for n, r in ordered], "flip averaging settings"),
        strength=_same([(n, r.strength) for n, r in ordered], "strength settings"),
        device=_joined([r.device for _, r in ordered]),
        precision=_joined([r.precision for _, r in ordered]),
        seconds=sum(r.seconds for _, r in ordered),
        interrupted=any(r.interrupted for _, r in ordered),
    )
    for name, report in ordered:
        merged.entries += report.entries
        if report.merged is None:
            merged.notes += [f"{name}: {note}" for note in report.notes]
        else:  # already prefixed; its missing shards are computed again below
            merged.notes += [note for note in report.notes if not note.startswith(MISSING)]
    if merged.model is None:  # nothing ran anywhere: keep a name a skipped-only report may still carry
        merged.model = _joined([r.model for _, r in ordered])
    if missing:
        merged.notes.append(
            f"{MISSING}{'s' if len(missing) > 1 else ''} {', '.join(map(str, missing))} of {count}: "
            "their inputs are not counted here (re-run those tasks)"
        )
    merged.merged = {
        "reports": sorted(
            (p for p, _, _ in parts),
            key=lambda p: (p["shard"]["index"] if p.get("shard") else -1, p["file"]),
        ),
        "shard_count": count,
        "missing_shards": missing,
    }
    return merged
