"""Progress on stderr: a rich bar over the files of a run, and one over the steps of a training run.

Silent when quiet or when stderr is not a terminal (a log file gets the summary lines, not a bar).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..batch import Entry, Plan


def _columns() -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, TimeElapsedColumn, TimeRemainingColumn

    return BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn()


class Progress:
    """A rich progress bar over the inputs of a run, on stderr."""

    def __init__(self, enabled: bool, label: str):
        self.enabled = enabled
        self.label = label
        self.progress: Any = None
        self.task_id: Any = None
        self.skipped = 0

    def start(self, plan: Plan) -> None:
        if not self.enabled:
            return
        from rich.console import Console
        from rich.progress import Progress as RichProgress
        from rich.progress import TextColumn

        bar, count, elapsed, remaining = _columns()
        self.progress = RichProgress(
            TextColumn("[bold]{task.description}"),
            bar,
            count,
            TextColumn("{task.fields[status]}"),
            elapsed,
            remaining,
            console=Console(stderr=True),
            transient=False,
            speed_estimate_period=60.0,
        )
        self.progress.start()
        # Skipped outputs count as done from the start, not as work done at once: the speed, hence the
        # time remaining, is that of the files edited (advanced tile by tile as the model goes).
        self.skipped = len(plan.skipped)
        total = len(plan.jobs) + self.skipped
        self.task_id = self.progress.add_task(self.label, total=total, completed=self.skipped, status="")

    def advance(self, entry: Entry) -> None:
        if self.progress is not None and entry.status != "skipped":
            self.progress.update(self.task_id, status=Path(entry.input).name[-32:])

    def model_progress(self, done: float) -> None:
        """Files through the model so far, with the fraction of the current one (its tiles)."""
        if self.progress is not None:
            self.progress.update(self.task_id, completed=self.skipped + done)

    def print(self, markup: str) -> bool:
        """Print a line above the bar; False when there is no bar."""
        if self.progress is None:
            return False
        self.progress.console.print(markup, highlight=False)
        return True

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def training_logger(quiet: bool) -> tuple[Callable[[dict[str, Any]], None], Callable[[], None]]:
    """A progress bar over steps plus the latest losses, on stderr; plain lines when not a terminal."""
    if quiet:
        return (lambda record: None), (lambda: None)
    from rich.console import Console
    from rich.progress import Progress as RichProgress
    from rich.progress import TextColumn

    console = Console(stderr=True)
    bar, count, elapsed, remaining = _columns()
    progress = RichProgress(
        TextColumn("[bold]train"),
        bar,
        count,
        elapsed,
        remaining,
        TextColumn("{task.fields[losses]}"),
        console=console,
        disable=not console.is_terminal,
    )
    state: dict[str, Any] = {"task": None}

    def on_log(record: dict[str, Any]) -> None:
        step, total = record.get("step"), record.get("steps")
        losses = "  ".join(
            f"{k}={v:.4g}" for k, v in record.items() if isinstance(v, float) and k not in {"step", "steps"}
        )
        if not console.is_terminal:
            line = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items())
            console.print(line, highlight=False)
            return
        if state["task"] is None and isinstance(total, int):
            progress.start()
            state["task"] = progress.add_task("train", total=total, completed=step or 0, losses="")
        if state["task"] is not None and isinstance(step, int):
            progress.update(state["task"], completed=step, losses=losses[:80])
        elif record.get("event") not in (None, "step"):
            console.print(" ".join(f"{k}={v}" for k, v in record.items()), highlight=False)

    return on_log, progress.stop
