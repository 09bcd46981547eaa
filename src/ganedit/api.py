"""The public library API: load a model once, apply it many times.

    editor = ganedit.load("pan-derain")        # a registered model name: an Editor
    editor = ganedit.load(task="derain")       # the task's default model
    editor = ganedit.load("my-run.safetensors") # a checkpoint file of your own
    clean = editor(pil_image)
    renderer = ganedit.load("tdgan-chairs")    # a rerender model: a Rerenderer

This module wires the pieces together — registry (which model) → hub (where its file is) → checkpoint
(what it is) → runtime (run it: `Editor` for the PAN tasks, `Rerenderer` for rerender) — and owns no
logic of its own beyond that order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from .errors import (
    CheckpointError,
    ChecksumError,
    GaneditError,
    ImageError,
    UsageError,
    WeightsUnavailableError,
)
from .hub import HubOptions, ResolvedWeights, bundled_path, cached_path, resolve, resolve_path
from .registry import ModelSpec, Registry, load_registry
from .tasks import TASKS, get_task

if TYPE_CHECKING:
    from .batch import Entry, Job, Plan, Report, Shard
    from .provenance import Recorder, Settings
    from .runtime.editor import Editor
    from .runtime.rerenderer import Rerenderer


def _registry(registry: Registry | None, registry_files: Sequence[Path]) -> Registry:
    return registry if registry is not None else load_registry(registry_files)


def _looks_like_path(text: str) -> bool:
    return text.endswith(".safetensors") or "/" in text or "\\" in text or Path(text).is_file()


@dataclass(frozen=True)
class Located:
    """A model's weights file, found and sha256-verified (`locate`); nothing loaded yet."""

    name: str  # the registered name, or the file's name for a checkpoint path
    path: Path  # the verified local file
    sha256: str
    source: str  # "path" | "bundled" | "cache" | "download"
    task: str | None  # the registry's task, or the one asked for; None: the file says (read_info)
    spec: ModelSpec | None = None  # the registry's record; None for a checkpoint path


def locate(
    name_or_path: str | Path | None = None,
    *,
    task: str | None = None,
    registry: Registry | None = None,
    registry_files: Sequence[Path] = (),
    hub: HubOptions | None = None,
) -> Located:
    """Find the weights file for a model name, a checkpoint path, or a task's default model.

    Downloads a registered model that is neither bundled nor cached (unless offline). No torch.
    """
    hub = hub or HubOptions()
    if name_or_path is not None and (isinstance(name_or_path, Path) or _looks_like_path(name_or_path)):
        path = Path(name_or_path)
        return _located(path.name, resolve_path(path), task, None)
    spec = _choose_spec(_registry(registry, registry_files), name_or_path, task)
    return _located(spec.name, resolve(spec, hub), spec.task, spec)


def _located(name: str, weights: ResolvedWeights, task: str | None, spec: ModelSpec | None) -> Located:
    return Located(name, weights.path, weights.sha256, weights.source, task, spec)


def _choose_spec(reg: Registry, name: str | None, task: str | None) -> ModelSpec:
    """The registered model a name (or a task's default) stands for; UsageError naming the choices."""
    if name is None:
        if task is None:
            raise UsageError("name a model, a checkpoint path, or a task")
        return reg.default_for(get_task(task).name)
    spec = reg.get(name)
    if task is not None and spec.task != task:
        others = ", ".join(s.name for s in reg.for_task(task)) or "none registered"
        raise UsageError(f"model {spec.name!r} is for {spec.task}, not {task}; {task} models: {others}")
    return spec


def _arch(located: Located) -> str:
    """The architecture the file says it holds; CheckpointError for one this ganedit does not know."""
    from .checkpoint import read_info

    arch = read_info(located.path).arch
    if not any(t.arch == arch for t in TASKS.values()):  # no command of ours runs it
        known = ", ".join(sorted({t.arch for t in TASKS.values()}))
        raise CheckpointError(
            f"{located.path}: unknown architecture {arch!r} (this ganedit knows {known}); "
            "a newer ganedit may read it"
        )
    return arch


def load(
    name_or_path: str | Path | None = None,
    *,
    task: str | None = None,
    device: str = "auto",
    precision: str = "auto",
    tile: int | None = None,
    batch_size: int | None = None,
    flip_average: bool | None = None,
    strength: float = 1.0,
    refine_steps: int | None = None,
    refine_lr: float | None = None,
    keep_detail: bool | None = None,
    registry: Registry | None = None,
    registry_files: Sequence[Path] = (),
    hub: HubOptions | None = None,
) -> Editor | Rerenderer:
    """Load a model onto a device: an `Editor` for a PAN task (derain, inpaint, sketch2photo,
    labels2photo), a `Rerenderer` for a rerender (TDGAN) model. Both take arrays (the Editor PIL too).

    Editor options: ``precision``, ``tile``, ``flip_average`` (None: the model's own choice), ``strength``
    (derain: 1 = the full edit, less blends the result with the input, 0 = unchanged). Rerenderer
    options: ``refine_steps``, ``refine_lr`` (identity refinement; default
    `runtime.rerenderer.REFINE_STEPS`), ``keep_detail`` (re-lighting at the input's resolution with its
    own detail; default: on for re-lighting models). ``batch_size``: tiles (Editor, default 4) or renders
    (Rerenderer, default 16) a forward. An option of the other kind
    of model is a `UsageError`.
    """
    located = locate(name_or_path, task=task, registry=registry, registry_files=registry_files, hub=hub)
    arch = _arch(located)
    if arch != "tdgan" or (task is not None and get_task(task).arch != "tdgan"):
        if refine_steps is not None or refine_lr is not None or keep_detail is not None:
            raise UsageError(
                "refine_steps, refine_lr and keep_detail apply to rerender models; "
                f"{located.name!r} is not one"
            )
        return _open_editor(located, arch, device, precision, tile, batch_size, flip_average, strength)
    pan_only = {
        "precision": precision not in ("auto", "fp32"),
        "tile": tile is not None,
        "strength": strength != 1.0,
    }
    if any(pan_only.values()):
        given = ", ".join(k for k, v in pan_only.items() if v)
        raise UsageError(f"{given}: not an option of rerender models ({located.name!r} is one)")
    from .runtime.rerenderer import REFINE_LR, REFINE_STEPS, Rerenderer

    return Rerenderer.open(
        located.path,
        name=located.name,
        sha256=located.sha256,
        device=device,
        batch_size=16 if batch_size is None else batch_size,
        refine_steps=REFINE_STEPS if refine_steps is None else refine_steps,
        refine_lr=REFINE_LR if refine_lr is None else refine_lr,
        keep_detail=keep_detail,
    )


def load_editor(
    name_or_path: str | Path | None = None,
    *,
    task: str | None = None,
    device: str = "auto",
    precision: str = "auto",
    tile: int | None = None,
    batch_size: int = 4,
    flip_average: bool | None = None,
    strength: float = 1.0,
    registry: Registry | None = None,
    registry_files: Sequence[Path] = (),
    hub: HubOptions | None = None,
) -> Editor:
    """`load` for callers that edit files (``edit_folder``, Ray, ``ganedit eval``): always an `Editor`;
    a rerender model is a `UsageError` pointing to ``ganedit rerender``, before its weights load."""
    located = locate(name_or_path, task=task, registry=registry, registry_files=registry_files, hub=hub)
    return _open_editor(located, _arch(located), device, precision, tile, batch_size, flip_average, strength)


def _open_editor(
    located: Located,
    arch: str,
    device: str,
    precision: str,
    tile: int | None,
    batch_size: int | None,
    flip_average: bool | None,
    strength: float,
) -> Editor:
    if arch != "pan":
        command = next(t.name for t in TASKS.values() if t.arch == arch)
        raise UsageError(
            f"{located.name!r} is a {arch} checkpoint ({command!r}); edit with it through "
            f"`ganedit {command}` (ganedit.load in Python), not this command"
        )
    from .runtime.editor import Editor

    return Editor.open(
        located.path,
        name=located.name,
        sha256=located.sha256,
        task=located.task,
        device=device,
        precision=precision,
        tile=tile,
        batch_size=4 if batch_size is None else batch_size,
        flip_average=flip_average,
        strength=strength,
    )


@dataclass(frozen=True)
class ModelStatus:
    spec: ModelSpec
    bundled: bool
    cached: bool


def list_models(
    *,
    task: str | None = None,
    registry: Registry | None = None,
    registry_files: Sequence[Path] = (),
    hub: HubOptions | None = None,
) -> list[ModelStatus]:
    """Every registered model and whether it is usable offline (bundled or in the hub cache). No requests."""
    hub = hub or HubOptions()
    reg = _registry(registry, registry_files)
    specs = reg.for_task(task) if task else list(reg.models.values())
    return [ModelStatus(s, bundled_path(s) is not None, cached_path(s, hub) is not None) for s in specs]


def pull(
    names: Sequence[str],
    *,
    registry: Registry | None = None,
    registry_files: Sequence[Path] = (),
    hub: HubOptions | None = None,
) -> list[tuple[str, ResolvedWeights]]:
    """Fetch (or find) and verify the named models' files, e.g. before going offline."""
    reg = _registry(registry, registry_files)
    specs = [reg.get(n) for n in names] if names else list(reg.models.values())
    return [(s.name, resolve(s, hub or HubOptions())) for s in specs]


@dataclass(frozen=True)
class Verified:
    name: str
    status: str  # "ok" | "missing" | "mismatch"
    source: str | None
    detail: str = ""


def verify(
    names: Sequence[str] = (),
    *,
    registry: Registry | None = None,
    registry_files: Sequence[Path] = (),
    hub: HubOptions | None = None,
) -> list[Verified]:
    """Check the sha256 of every local copy (bundled or cached) without downloading anything."""
    hub = hub or HubOptions()
    reg = _registry(registry, registry_files)
    specs = [reg.get(n) for n in names] if names else list(reg.models.values())
    results: list[Verified] = []
    offline = HubOptions(cache_dir=hub.cache_dir, endpoint=hub.endpoint, offline=True, token=hub.token)
    for spec in specs:
        if bundled_path(spec) is None and cached_path(spec, hub) is None:
            results.append(Verified(spec.name, "missing", None, "not bundled and not in the hub cache"))
            continue
        try:
            weights = resolve(spec, offline)
        except ChecksumError as error:
            results.append(Verified(spec.name, "mismatch", None, str(error)))
        except WeightsUnavailableError as error:
            results.append(Verified(spec.name, "missing", None, str(error)))
        else:
            results.append(Verified(spec.name, "ok", weights.source, str(weights.path)))
    return results


def _model_identity(
    model: str | Path | None, task: str | None, editor: Editor | None, load_options: dict[str, object]
) -> str | None:
    """What identifies the model a run would use, without loading it: its sha256 (a registered model's
    from the registry, a checkpoint file's by hashing it), or the name of an editor that has none.
    None when the task has no model at all. A misspelt model name is a UsageError."""
    if editor is not None:
        return editor.sha256 or f"name:{editor.name}"
    if model is not None and (isinstance(model, Path) or _looks_like_path(model)):
        return resolve_path(Path(model)).sha256
    spec = _planned_spec(model, task, load_options)
    return spec.sha256 if spec is not None else None


def _planned_spec(model: str | None, task: str | None, load_options: dict[str, object]) -> ModelSpec | None:
    """The registered model a run would use (not a file path), or None when the task has no model."""
    registry = _registry(load_options.get("registry"), load_options.get("registry_files", ()))  # type: ignore[arg-type]
    try:
        return _choose_spec(registry, model, task)
    except WeightsUnavailableError:
        return None


def _model_flip_average(
    model: str | Path | None, task: str | None, load_options: dict[str, object]
) -> bool | None:
    """The model's own flip-averaging choice (`CheckpointInfo.flip_average`) read from its checkpoint's
    header where the file is here (a path, a bundled or cached model); None when it is not."""
    from .checkpoint import read_info

    if model is not None and (isinstance(model, Path) or _looks_like_path(model)):
        return read_info(Path(model)).flip_average
    spec = _planned_spec(model, task, load_options)
    if spec is None:
        return None
    hub = load_options.get("hub")
    local = bundled_path(spec) or cached_path(spec, hub if isinstance(hub, HubOptions) else HubOptions())
    return read_info(local).flip_average if local is not None else None


def _settings(
    model: str | Path | None,
    task: str | None,
    editor: Editor | None,
    quality: int,
    compare: bool,
    load_options: dict[str, object],
) -> Settings:
    """The settings that change pixels, as this run asks for them (ganedit.provenance)."""
    from .provenance import Settings

    if editor is not None:
        return Settings(
            task=editor.task.name,
            model=_model_identity(model, task, editor, load_options),
            flip_average=editor.flip_average,
            precision=editor.precision,
            strength=editor.strength,
            quality=quality,
            compare=compare,
        )
    flip = load_options.get("flip_average")
    if flip is None:  # the model's own choice: from its checkpoint's header, when the file is here
        flip = _model_flip_average(model, task, load_options)
    return Settings(
        task=task,
        model=_model_identity(model, task, None, load_options),
        flip_average=None if flip is None else bool(flip),
        precision=str(load_options.get("precision", "auto")),
        strength=float(load_options.get("strength", 1.0)),  # type: ignore[arg-type]
        quality=quality,
        compare=compare,
    )


def plan_edits(
    inputs: Sequence[str | Path],
    output: str | Path,
    *,
    model: str | Path | None = None,
    task: str | None = None,
    editor: Editor | None = None,
    recursive: bool = False,
    mask: str | Path | None = None,
    fmt: str = "keep",
    quality: int = 95,
    suffix: str = "",
    overwrite: bool = False,
    shard: Shard | None = None,
    stdin: IO[bytes] | None = None,
    compare: bool = False,
    **load_options: object,
) -> Plan:
    """What `edit_folder` with the same arguments would do, without doing anything (``--dry-run``).

    Returns the plan: the jobs to run (``plan.jobs``, a ``mask_error`` where a mask is missing), the
    outputs that exist and are skipped (``plan.skipped``) and, of those, the ones made from another input
    or with other settings (``plan.stale``: why). Raises UsageError for what a run would refuse. No
    model is loaded and nothing is written; a checkpoint file is read to hash it.
    """
    from .batch import plan_jobs
    from .provenance import Index, data_identity, differences, file_identity

    if editor is None and task is None and model is None:
        raise UsageError("give a model, a task or an editor")
    needs_mask = get_task(task).needs_mask if task else False
    index = Index()
    settings: list[Settings] = []  # worked out on the first existing output (hashing a checkpoint)

    def check(job: Job) -> str | None:
        assert job.output is not None
        record = index.record_for(job.output)
        if record is None:  # made by hand, by an older ganedit, or changed since: skipped as it is
            return None
        if not settings:
            settings.append(_settings(model, task, editor, quality, compare, dict(load_options)))
        if job.source is not None:
            source = file_identity(job.source)
        else:
            source = data_identity(job.data) if job.data is not None else None
        mask_id = file_identity(job.mask) if job.mask is not None else None
        return differences(record, settings[0], fmt=job.fmt, source=source, mask=mask_id)

    plan = plan_jobs(
        inputs,
        output,
        recursive=recursive,
        mask=mask,
        needs_mask=needs_mask,
        fmt=fmt,
        suffix=suffix,
        overwrite=overwrite,
        shard=shard,
        stdin=stdin,
        check=check,
    )
    if not plan.jobs and not settings and isinstance(model, str) and not _looks_like_path(model):
        _model_identity(model, task, editor, dict(load_options))  # a misspelt name is still an error
    return plan


def edit_folder(
    inputs: Sequence[str | Path],
    output: str | Path,
    *,
    model: str | Path | None = None,
    task: str | None = None,
    editor: Editor | None = None,
    recursive: bool = False,
    mask: str | Path | None = None,
    fmt: str = "keep",
    quality: int = 95,
    suffix: str = "",
    overwrite: bool = False,
    shard: Shard | None = None,
    on_plan: Callable[[Plan], None] | None = None,
    on_entry: Callable[[Entry], None] | None = None,
    on_progress: Callable[[float], None] | None = None,
    stdin: IO[bytes] | None = None,
    stdout: IO[bytes] | None = None,
    compare: bool = False,
    **load_options: object,
) -> Report:
    """Edit files and folders into an output folder (or file); returns a report, never raises per file.

    Paths are planned before the model loads, so usage errors come first and cost nothing. An output
    that exists is skipped; one made from another input or with other settings is skipped too, and
    flagged (``Entry.stale``, ``Report.stale``): ``overwrite=True`` redoes them. Every output written
    is recorded in the index of its folder (ganedit.provenance). ``on_progress(done)``: files done so
    far, with the fraction of the one in the model; ``compare``: write input and output side by side.
    """
    from .batch import run_jobs
    from .batch.plan import tidy_output_folders

    plan = plan_edits(
        inputs,
        output,
        model=model,
        task=task,
        editor=editor,
        recursive=recursive,
        mask=mask,
        fmt=fmt,
        quality=quality,
        suffix=suffix,
        overwrite=overwrite,
        shard=shard,
        stdin=stdin,
        compare=compare,
        **load_options,
    )
    tidy_output_folders(plan)
    if on_plan is not None:
        on_plan(plan)
    if editor is None and plan.jobs:
        editor = load_editor(model, task=task, **load_options)  # type: ignore[arg-type]
    if editor is not None and editor.task.needs_mask and mask is None:
        raise UsageError(f"model {editor.name} inpaints: it needs --mask")
    recorder = _recorder(editor, quality, compare, load_options) if editor is not None else None
    return run_jobs(
        plan,
        editor,
        quality=quality,
        on_entry=on_entry,
        on_progress=on_progress,
        stdin=stdin,
        stdout=stdout,
        compare=compare,
        recorder=recorder,
    )


def _recorder(editor: Editor, quality: int, compare: bool, load_options: dict[str, object]) -> Recorder:
    """Records what made each output: the editor's settings, the precision as asked and as run."""
    from dataclasses import replace

    from .provenance import Recorder

    settings = _settings(None, None, editor, quality, compare, {})
    asked = str(load_options.get("precision", editor.precision))
    return Recorder(replace(settings, precision=asked), precision=editor.precision, model_name=editor.name)


def edit_file(
    source: str | Path,
    output: str | Path,
    *,
    editor: Editor | None = None,
    model: str | Path | None = None,
    task: str | None = None,
    mask: str | Path | None = None,
    fmt: str = "keep",
    quality: int = 95,
    overwrite: bool = False,
    compare: bool = False,
    **load_options: object,
) -> Entry:
    """Edit one image file into another, as ``ganedit TASK SOURCE -o OUTPUT`` does it: the EXIF
    orientation applied, EXIF (reset to upright), ICC profile, DPI, alpha and 16-bit depth kept, the
    output written atomically (never half a file) and recorded (so a later run knows what made it).

    ``output`` is a file name whose suffix is the format (``fmt`` may only agree). Returns the `Entry`
    (``status`` ``"ok"``, or ``"skipped"`` when ``output`` was already made from this file with these
    settings). Raises `ImageError` naming the file when it cannot be read, edited or written, and
    `UsageError` when ``output`` is the input (or its mask), or exists and was not made from this
    input with these settings (unless ``overwrite``).
    """
    from .io.picture import IMAGE_SUFFIXES
    from .provenance import Index

    source, output = Path(source), Path(output)
    if output.is_dir() or output.suffix.lower() not in IMAGE_SUFFIXES:
        raise UsageError(f"{output}: give an output file name ({', '.join(sorted(IMAGE_SUFFIXES))})")
    if not source.is_file():
        raise ImageError(f"{source}: no such file")
    options = dict(editor=editor, model=model, task=task, mask=mask, fmt=fmt, quality=quality)
    plan = plan_edits([source], output, overwrite=overwrite, compare=compare, **options, **load_options)  # type: ignore[arg-type]
    if plan.skipped:
        why = plan.stale.get(output)
        if why is not None:
            raise UsageError(f"{output} exists, made {why}; pass overwrite=True to replace it")
        if Index().record_for(output) is None:
            raise UsageError(
                f"{output} exists (not made by ganedit, or changed since); pass overwrite=True to replace it"
            )
    report = edit_folder([source], output, overwrite=overwrite, compare=compare, **options, **load_options)  # type: ignore[arg-type]
    entry = report.entries[0]
    if entry.status == "failed":
        raise ImageError(entry.error or f"{source}: failed")
    return entry


__all__ = [
    "GaneditError",
    "Located",
    "ModelStatus",
    "Verified",
    "edit_file",
    "edit_folder",
    "list_models",
    "load",
    "load_editor",
    "locate",
    "plan_edits",
    "pull",
    "verify",
]
