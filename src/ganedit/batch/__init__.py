"""Plan and run a batch of edits: which input goes to which output(s), and a report of what happened.

Every command that turns files into files goes through here: the PAN commands (one output per input)
and rerender (several: one per tag combination, a contact sheet, a GIF). So they share one set of rules
and one ``--json`` schema.

Planning (`plan_jobs`, in `plan`) is pure path logic and runs before any model is loaded, so that usage
errors (output inside input, two inputs writing one output, a bad shard) cost nothing. Running
(`run_jobs`, in `run`) keeps the model busy: files are decoded on worker threads ahead of the model and
encoded/written on worker threads behind it; what is done to each file is a `Worker`'s (`workers`).

Promises kept here, because photographers depend on them:
- inputs are never written: an output path that equals an input path is refused;
- outputs are written atomically (temp file + rename), so an interrupt leaves no half-written file;
- an output that already exists is skipped unless ``overwrite`` — re-running a command resumes it
  (a job is skipped when all of its outputs exist; a job partly done writes only what is missing);
- a file that fails is reported and the others go on; the report's ``exit_code`` tells the truth.

Modules: `shard` (which share of the inputs), `plan` (with `masks`), `read` (decoding ahead), `run`,
`workers`, `report` (`Entry`, `Report`: the --json schema).
"""

from __future__ import annotations

from .plan import Job, Namer, Plan, expand_patterns, plan_jobs
from .read import Loaded
from .report import STATUSES, STDIO, Entry, Report, Status
from .run import Encoded, Worker, run_jobs
from .shard import Shard
from .workers import EditWorker, RerenderWorker, rerender_names, side_by_side

__all__ = [
    "STATUSES",
    "STDIO",
    "EditWorker",
    "Encoded",
    "Entry",
    "Job",
    "Loaded",
    "Namer",
    "Plan",
    "Report",
    "RerenderWorker",
    "Shard",
    "Status",
    "Worker",
    "expand_patterns",
    "plan_jobs",
    "rerender_names",
    "run_jobs",
    "side_by_side",
]
