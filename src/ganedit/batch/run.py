"""Running a plan: files decoded on worker threads ahead of the model, encoded and written on worker
threads behind it, so that on a folder of photos the model rarely waits for I/O.

What is done to each file is a `Worker`'s business (`EditWorker` for the PAN commands, `RerenderWorker`
for rerender); everything else is the same for every command: the read-ahead, per-file failure
isolation, atomic writes, provenance records, the report, and what an interrupt leaves behind.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

from ..errors import GaneditError, ImageError, UsageError
from ..io import write_atomic, write_stream
from .plan import Job, Plan
from .read import Loaded, load
from .report import STDIO, Entry, Report

if TYPE_CHECKING:
    from ..provenance import Recorder
    from ..runtime.editor import Editor

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (step, steps) of the file in the model


@dataclass
class Encoded:
    """A file's outputs, encoded: (path or None for stdout, bytes, container) in the job's order."""

    files: list[tuple[Path | None, bytes, str]]
    warnings: list[str] = field(default_factory=list)
    details: dict[str, Any] | None = None


class Worker(Protocol):
    """What a command does with each decoded input; `run_jobs` does the rest."""

    def describe(self, report: Report) -> None:
        """Fill in the report's model, device and settings."""

    def inspect(self, loaded: Loaded) -> list[str]:
        """Warnings about an input before it goes through the model; GaneditError fails the file."""

    def process(self, loaded: Loaded, progress: Progress) -> Any:
        """The model step (main thread): its result goes to `encode`."""

    def encode(self, loaded: Loaded, result: Any) -> Encoded:
        """The outputs to write for the job's ``todo`` outputs (on a writer thread)."""


def _save(
    loaded: Loaded, worker: Worker, result: Any, stdout: IO[bytes] | None, recorder: Recorder | None
) -> Entry:
    started = time.perf_counter()
    job = loaded.job
    entry = _entry(job, "ok", warnings=loaded.warnings)
    try:
        encoded = worker.encode(loaded, result)
        entry.warnings.extend(encoded.warnings)
        entry.details = encoded.details
        for path, data, fmt in encoded.files:
            if path is None:
                if stdout is None:
                    raise ImageError(f"{job.display}: no stdout to write to")
                write_stream(stdout, data)
                entry.written.append(STDIO)
                continue
            write_atomic(path, data)
            entry.written.append(str(path))
            if recorder is not None:
                recorder.record(path, fmt=fmt, source=loaded.source_id, mask=loaded.mask_id)
    except GaneditError as error:
        entry.status, entry.error = "failed", str(error)
    except OSError as error:
        entry.status, entry.error = "failed", f"{job.output or '<stdout>'}: {error.strerror or error}"
    except MemoryError:
        entry.status, entry.error = "failed", f"{job.display}: not enough memory to encode this image"
    entry.seconds = loaded.seconds + time.perf_counter() - started
    return entry


def _entry(job: Job, status: Any, seconds: float = 0.0, error: str | None = None, **more: Any) -> Entry:
    outputs = [str(path) for path in job.outputs] if job.outputs else [STDIO]
    return Entry(job.display, _out(job), status, seconds, error, outputs=outputs, **more)


def run_jobs(
    plan: Plan,
    editor: Editor | None,
    *,
    quality: int = 95,
    on_entry: Callable[[Entry], None] | None = None,
    on_progress: Callable[[float], None] | None = None,
    stdin: IO[bytes] | None = None,
    stdout: IO[bytes] | None = None,
    workers: int = 2,
    compare: bool = False,
    recorder: Recorder | None = None,
    worker: Worker | None = None,
) -> Report:
    """Run every job of the plan through the editor (or ``worker``); never raises for a single bad file.

    Files go through the model one at a time (a large one as batches of its tiles), each written as
    soon as it is done, while the next ones are decoded: a file's pixels never depend on which other
    files were in the run, and an interrupt loses at most the one in the model. ``on_progress(done)``
    is called as the work advances: ``done`` counts the files of ``plan.jobs`` through the model, with
    the fraction of the current one (its tiles), so a progress bar moves tile by tile.
    ``compare`` writes each input and its output side by side; ``recorder`` records what made each
    output written (ganedit.provenance). ``worker``: what to do with each file, for commands other than
    the PAN edits (rerender); ``editor`` and ``worker`` are not given together.

    KeyboardInterrupt propagates after in-flight writes have finished (each is atomic), so no partial
    output is left behind; the report so far is attached to the exception as ``report``.
    """
    if worker is None and editor is not None:
        from .workers import EditWorker

        worker = EditWorker(editor, quality=quality, compare=compare)
    runner = _Runner(plan, worker, on_entry, on_progress, stdin, stdout, workers, recorder)
    return runner.run()


class _Runner:
    """One run of a plan: the report, the reader and writer pools, and where the model is."""

    def __init__(
        self,
        plan: Plan,
        worker: Worker | None,
        on_entry: Callable[[Entry], None] | None,
        on_progress: Callable[[float], None] | None,
        stdin: IO[bytes] | None,
        stdout: IO[bytes] | None,
        workers: int,
        recorder: Recorder | None,
    ) -> None:
        self.plan, self.worker, self.on_entry, self.on_progress = plan, worker, on_entry, on_progress
        self.stdin, self.stdout, self.workers, self.recorder = stdin, stdout, workers, recorder
        self.report = Report(notes=list(plan.notes), shard=plan.shard)
        if worker is not None:
            worker.describe(self.report)
        self.pending: list[Future[Entry]] = []
        self.done = 0

    def record(self, entry: Entry) -> None:
        self.report.entries.append(entry)
        if self.on_entry is not None:
            self.on_entry(entry)

    def advance(self, fraction: float) -> None:
        if self.on_progress is not None:
            self.on_progress(self.done + fraction)

    def run(self) -> Report:
        for job in self.plan.skipped:
            stale = self.plan.stale.get(job.output) if job.output is not None else None
            why = f"exists, made {stale}: use --overwrite" if stale else "output exists"
            self.record(_entry(job, "skipped", warnings=[why], stale=bool(stale)))
        if not self.plan.jobs:
            return self.report
        if self.worker is None:
            raise UsageError("run_jobs needs an editor when there is work to do")
        log.info("%d input(s) to do, %d skipped (outputs exist)", len(self.plan.jobs), len(self.plan.skipped))
        started = time.perf_counter()
        self.readers = ThreadPoolExecutor(max_workers=max(1, self.workers), thread_name_prefix="ganedit-read")
        self.writers = ThreadPoolExecutor(
            max_workers=max(1, self.workers), thread_name_prefix="ganedit-write"
        )
        try:
            for item in self.decoded(self.worker):
                self.step(self.worker, item)
            self.drain(block=True)
        except KeyboardInterrupt as interrupt:
            self.report.interrupted = True
            self.readers.shutdown(wait=True, cancel_futures=True)
            self.writers.shutdown(wait=True)  # files already made are written (atomically): no work lost
            for future in self.pending:
                if future.done() and not future.cancelled():
                    self.record(future.result())
            self.report.seconds = time.perf_counter() - started
            interrupt.report = self.report  # type: ignore[attr-defined]
            raise
        finally:
            self.readers.shutdown(wait=True, cancel_futures=True)
            self.writers.shutdown(wait=True)
        self.report.seconds = time.perf_counter() - started
        return self.report

    def decoded(self, worker: Worker) -> Iterator[Loaded]:
        """The jobs' inputs, decoded ahead on the reader threads, inspected, in plan order."""
        lookahead = max(2, self.workers + 1)  # decoded files waiting for the model (a 100 MP photo is 600 MB)
        queue: list[Future[Loaded]] = []
        jobs = iter(self.plan.jobs)
        for job in jobs:
            queue.append(self.readers.submit(load, job, self.stdin))
            if len(queue) >= lookahead:
                break
        while queue:
            item = queue.pop(0).result()
            nxt = next(jobs, None)
            if nxt is not None:
                queue.append(self.readers.submit(load, nxt, self.stdin))
            if item.picture is not None:
                try:  # e.g. labels2photo: is this a label map at all?
                    item.warnings.extend(worker.inspect(item))
                except GaneditError as error:
                    item.picture, item.error = None, f"{item.job.display}: {error}"
            yield item

    def step(self, worker: Worker, item: Loaded) -> None:
        """One file through the model; its writing queued behind."""
        if item.picture is None:
            self.record(_entry(item.job, "failed", item.seconds, item.error, warnings=item.warnings))
        else:
            began = time.perf_counter()
            try:
                result = worker.process(
                    item, lambda step, steps: self.advance(step / steps) if step < steps else None
                )
            except (GaneditError, RuntimeError, MemoryError) as error:  # torch or numpy out of memory...
                message = _model_error(item.job.display, error)  # ... fails this file only, named
                log.debug("%s failed in the model", item.job.display, exc_info=error)
                seconds = item.seconds + time.perf_counter() - began
                self.record(_entry(item.job, "failed", seconds, message, warnings=item.warnings))
            else:
                item.seconds += time.perf_counter() - began
                self.pending.append(
                    self.writers.submit(_save, item, worker, result, self.stdout, self.recorder)
                )
        self.done += 1
        self.advance(0.0)
        self.drain(block=False)

    def drain(self, block: bool) -> None:
        while self.pending and (block or self.pending[0].done()):
            self.record(self.pending.pop(0).result())


def _model_error(display: str, error: BaseException) -> str:
    """A model failure as a per-file message that names the file (torch's own messages do not)."""
    if isinstance(error, MemoryError):
        return f"{display}: out of memory while editing it (try --tile 512 or --batch-size 1)"
    text = " ".join(str(error).split()) or type(error).__name__
    if len(text) > 300:
        text = text[:300] + "..."
    return text if text.startswith(display) else f"{display}: {text}"


def _out(job: Job) -> str:
    return str(job.output) if job.output else STDIO
