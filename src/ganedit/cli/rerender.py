"""``ganedit rerender``: re-render objects at other tags (TDGAN), through the folder runner.

The sweep (every combination of the --tag values) names the outputs of each input; `ganedit.batch`
plans them (the same refusals, clash and skip rules as the PAN commands), runs a `RerenderWorker` over
the inputs, and reports in the same --json schema.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..errors import UsageError
from .boundary import CONTEXT, need_stream
from .options import (
    apply,
    device_option,
    dry_run_option,
    hub_options,
    json_option,
    model_option,
    offline_option,
    overwrite_option,
    recursive_option,
    refine_option,
    registry_files,
    registry_option,
    shard_options,
    shard_spec,
    weights_option,
)
from .reporting import RunDisplay, finish, print_plan

if TYPE_CHECKING:
    from ..batch import Job
    from ..provenance import Settings

EXAMPLES = (
    "ganedit rerender chair.png --tag azimuth=30 --snap --tag light=left -o out/",
    "ganedit rerender chairs/ --tag azimuth=all --gif --sheet -o turntables/",
    "ganedit rerender chair.png --tag azimuth=0,90,180 --tag light=all -o out/ --json",
    "ganedit rerender face.png --model tdgan-faces --tag light_azimuth=35 --tag light_elevation=15 -o out/",
    "ganedit rerender face.png --model tdgan-faces --tag light_azimuth=all --gif -o sweep/",
    "ganedit models show tdgan-chairs              # the tags and values a model knows",
)

OPTIONS = [
    click.argument("inputs", nargs=-1, required=True, type=click.Path()),
    click.option("-o", "--output", required=True, type=click.Path(file_okay=False), help="Output folder."),
    recursive_option,
    click.option(
        "--tag",
        "tags",
        multiple=True,
        metavar="NAME=VALUE[,VALUE...]",
        help="Target tag value(s), or NAME=all; repeatable. Every combination is rendered. Tags not given "
        "keep the value the model reads off the input.",
    ),
    click.option(
        "--snap", is_flag=True, help="Round a number to the nearest value the model knows (30 -> 35)."
    ),
    click.option(
        "--sheet", is_flag=True, help="Also write STEM_sheet.png: all renders of an input in a grid."
    ),
    click.option(
        "--gif", is_flag=True, help="Also write STEM.gif: the renders as an animation (a turntable)."
    ),
    click.option(
        "--gif-ms",
        type=click.IntRange(min=10),
        default=120,
        show_default=True,
        help="GIF frame duration (ms).",
    ),
    model_option("rerender"),
    weights_option,
    registry_option,
    offline_option,
    device_option,
    refine_option("Steps"),
    click.option(
        "--keep-detail/--no-keep-detail",
        default=None,
        help="Re-lighting (light tags only): output at the input's resolution, the model's shading on the "
        "input's own detail and colour [default: on for models whose tags are all light tags, e.g. "
        "tdgan-faces]; --no-keep-detail gives the model's own image at its size.",
    ),
    overwrite_option,
    dry_run_option,
    *shard_options,
    json_option,
    click.option("-q", "--quiet", is_flag=True, help="No progress bar or notes (errors still go to stderr)."),
]


@click.command(
    "rerender",
    context_settings=CONTEXT,
    epilog="\b\nExamples:\n" + "\n".join(f"  {line}" for line in EXAMPLES),
)
@apply(OPTIONS)
def rerender_command(**given: Any) -> None:
    """Re-render objects at other tags such as pose or lighting (TDGAN).

    Writes one PNG per combination of the --tag values, named STEM_TAG-VALUE_....png. An input is
    skipped when all its outputs exist (--overwrite redoes it); one with some missing writes those.
    """
    from ..batch import plan_jobs, rerender_names, run_jobs
    from ..batch.plan import tidy_output_folders
    from ..batch.sweep import name_widths
    from ..runtime.rerenderer import REFINE_STEPS
    from ..runtime.tags import parse_tag_options

    as_json, quiet, dry_run = given["as_json"], given["quiet"], given["dry_run"]
    if given["model"] and given["weights"]:
        raise UsageError("give --model or --weights, not both")
    if as_json or dry_run:
        need_stream("stdout", f"{'--dry-run' if dry_run else '--json'} prints on stdout")
    steps = REFINE_STEPS if given["refine_steps"] is None else given["refine_steps"]
    model = _Model.locate(given, steps, given["keep_detail"])
    sweep = parse_tag_options(given["tags"], model.config, snap=given["snap"])
    names = rerender_names(sweep, name_widths(model.config), sheet=given["sheet"], gif=given["gif"])
    plan = plan_jobs(
        given["inputs"],
        given["output"],
        recursive=given["recursive"],
        overwrite=given["overwrite"],
        shard=shard_spec(given["shard"], given["shard_count"]),
        check=model.check,
        names=names,
    )
    if dry_run:
        print_plan("rerender", plan, as_json=as_json, quiet=quiet)
        return
    tidy_output_folders(plan)
    display = RunDisplay("rerender", quiet=quiet)
    display.on_plan(plan)
    try:
        worker = model.worker(sweep, given) if plan.jobs else None
        report = run_jobs(
            plan,
            None,
            worker=worker,
            recorder=model.recorder(),
            on_entry=display.on_entry,
            on_progress=display.progress.model_progress,
        )
    except KeyboardInterrupt as interrupt:
        display.interrupted(interrupt, as_json=as_json)
        raise
    finally:
        display.progress.stop()
    report.task = "rerender"  # model and device stay null when nothing ran, as for the PAN commands
    report.options = report.options or {
        "refine_steps": steps,
        "keep_detail": model.keep_detail,
        "sweep": sweep,
        "sheet": given["sheet"],
        "gif": given["gif"],
    }
    finish("rerender", report, as_json=as_json, quiet=quiet)


class _Model:
    """The rerender checkpoint a run uses: located and its tags read (no weights loaded yet), what made an
    existing output (provenance), and the renderer once there is work."""

    def __init__(
        self, name: str, path: Path, sha256: str | None, device: str, steps: int, keep_detail: bool | None
    ) -> None:
        from ..provenance import Index
        from ..runtime.rerenderer import read_config
        from ..runtime.tags import relights_only

        self.name, self.path, self.sha256, self.device, self.steps = name, path, sha256, device, steps
        self.config = read_config(path)
        self.keep_detail = relights_only(self.config) if keep_detail is None else keep_detail
        self.index = Index()

    @classmethod
    def locate(cls, given: dict[str, Any], steps: int, keep_detail: bool | None) -> _Model:
        from .. import api

        located = api.locate(
            given["weights"] or given["model"],
            task="rerender",
            registry_files=registry_files(given["registry"]),
            hub=hub_options(given["offline"]),
        )
        model = cls(located.name, located.path, located.sha256, given["device"], steps, keep_detail)
        if not given["tags"]:
            valid = "; ".join(f"{n} ({', '.join(v)})" for n, v in model.config.tags)
            raise UsageError(
                f"give at least one --tag NAME=VALUE (or NAME=all); tags of {located.name}: {valid}"
            )
        return model

    def settings(self) -> Settings:
        """What changes a re-render's pixels (recorded with each output, compared on a re-run)."""
        from ..provenance import Settings

        return Settings(
            task="rerender",
            model=self.sha256 or f"name:{self.name}",
            flip_average=False,
            precision="fp32",
            strength=1.0,
            quality=95,
            compare=False,
            refine_steps=self.steps,
            keep_detail=self.keep_detail,
        )

    def check(self, job: Job) -> str | None:
        """Why an output of this skipped job was made from another input or with other settings."""
        from ..provenance import differences, file_identity

        source = file_identity(job.source) if job.source is not None else None
        for output in job.outputs:
            record = self.index.record_for(output)
            if record is None:  # made by hand, by an older ganedit, or changed since
                continue
            fmt = "gif" if output.suffix.lower() == ".gif" else "png"
            why = differences(record, self.settings(), fmt=fmt, source=source, mask=None)
            if why is not None:
                return why
        return None

    def recorder(self) -> Any:
        from ..provenance import Recorder

        return Recorder(self.settings(), precision="fp32", model_name=self.name)

    def worker(self, sweep: list[dict[str, str]], given: dict[str, Any]) -> Any:
        from ..batch import RerenderWorker
        from ..runtime.rerenderer import Rerenderer

        renderer = Rerenderer.open(
            self.path,
            name=self.name,
            sha256=self.sha256,
            device=self.device,
            refine_steps=self.steps,
            keep_detail=self.keep_detail,
        )
        return RerenderWorker(renderer, sweep, sheet=given["sheet"], gif=given["gif"], gif_ms=given["gif_ms"])
