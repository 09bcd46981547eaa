"""``ganedit eval``: PSNR/SSIM of a PAN model against ground truth, or a rerender model's sweep scores."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ..errors import UsageError
from ..tasks import TASKS
from .boundary import CONTEXT, need_stream
from .options import (
    PRECISIONS,
    flip_average_option,
    hub_options,
    offline_option,
    refine_option,
    registry_files,
    registry_option,
)


@click.command("eval", context_settings=CONTEXT)
@click.argument("model", required=False)
@click.option(
    "--data",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="Clean photos (degradation synthesised with a fixed seed), or a paired folder (input/ + target/, "
    "or rain/ + clean/).",
)
@click.option(
    "--weights", type=click.Path(exists=True, dir_okay=False), help="A checkpoint file instead of MODEL."
)
@click.option(
    "--task",
    type=click.Choice([t.name for t in TASKS.values() if t.arch == "pan"]),
    help="Evaluate the task's default model (when no MODEL or --weights).",
)
@click.option("--limit", type=click.IntRange(min=1), help="Use at most this many images.")
@click.option(
    "--size",
    type=click.IntRange(min=32),
    default=512,
    show_default=True,
    help="Photos are downscaled so the short side is SIZE, then centre-cropped.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the synthesised degradation.")
@click.option("--device", default="auto", show_default=True)
@click.option("--precision", type=click.Choice(PRECISIONS), default="auto", show_default=True)
@flip_average_option
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON on stdout.")
@click.option(
    "--rain",
    type=click.Choice(["classic", "streaks", "fine", "faint", "long"]),
    default="classic",
    show_default=True,
    help="derain on clean photos: the rain synthesised: the first synthesiser's, streak rain, dense "
    "sheets of fine streaks, faint unequal streaks as in real photos, or long lines and soft bands.",
)
@click.option(
    "--identity",
    is_flag=True,
    help="derain: DATA holds rain-free photos; measure how much the model changes them (output vs input: "
    "PSNR, SSIM, worst PSNR, largest colour shift).",
)
@click.option(
    "--classifier",
    type=click.Path(exists=True, dir_okay=False),
    help="Rerender models: the tag classifier judging the re-renders (default: DATA/classifier-SIZE-"
    "STEPSsteps.safetensors, trained on DATA's train split when missing).",
)
@refine_option("Rerender models: steps")
@click.option(
    "--keep-detail/--no-keep-detail",
    default=None,
    help="Rerender models: as `ganedit rerender` (default: on for re-lighting models).",
)
@registry_option
@offline_option
def eval_command(
    model: str | None,
    data: str,
    weights: str | None,
    task: str | None,
    limit: int | None,
    size: int,
    seed: int,
    device: str,
    precision: str,
    flip_average: bool | None,
    as_json: bool,
    rain: str,
    identity: bool,
    classifier: str | None,
    refine_steps: int | None,
    keep_detail: bool | None,
    registry: tuple[str, ...],
    offline: bool,
) -> None:
    """PSNR and SSIM against ground truth, next to a baseline on the same images.

    \b
    Baselines: derain - the rainy input unchanged (whole image); inpaint - a smooth (harmonic) fill of
    the hole (measured inside the hole); sketch2photo, labels2photo - the mean colour of each photo
    (whole image), with colour statistics (mean chroma, colour histogram distance) for both.
    labels2photo DATA may be a folder of side-by-side 'photo | label map' pairs (the CMP facades).
    \b
    derain also reports PSNR/SSIM on the Y channel of BT.601 (psnr_y, ssim_y), as de-raining papers do.
    \b
    Examples:
      ganedit eval pan-derain --data data/photos/holdout
      ganedit eval pan-derain --data ../shared/datasets/derain/rain12      # rain/ + clean/ pairs
      ganedit eval pan-derain --identity --data dry-photos/                # rain-free photos untouched?
      ganedit eval --weights runs/derain/model.safetensors --data testset/ --json
    \b
    Rerender (TDGAN) models: DATA is a tagged image set (tags.json); held-out identities are re-rendered
    to every azimuth and light and compared with their true renders (baseline: the input unchanged), at
    the model's image size (--size is not used); --limit counts identities.
    """
    need_stream("stdout", "eval prints on stdout")
    from .. import api
    from ..eval.pan import evaluate

    if model and weights:
        raise UsageError("give MODEL or --weights, not both")
    if not (model or weights or task):
        raise UsageError("name a MODEL, or give --weights PATH or --task")
    if task is None:
        from ..checkpoint import read_info

        located = api.locate(
            weights or model, registry_files=registry_files(registry), hub=hub_options(offline)
        )
        if read_info(located.path).task == "rerender":
            _eval_rerender(
                located.name,
                located.path,
                located.sha256,
                Path(data),
                classifier,
                device,
                seed,
                limit,
                as_json,
                refine_steps,
                keep_detail,
            )
            return
    editor = api.load_editor(
        weights or model,
        task=task,
        device=device,
        precision=precision,
        flip_average=flip_average,
        registry_files=registry_files(registry),
        hub=hub_options(offline),
    )
    result = evaluate(editor, Path(data), seed=seed, limit=limit, size=size, identity=identity, rain=rain)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, allow_nan=False))
        return
    _print_pan(result, data)


def _print_pan(result: Any, data: str) -> None:
    click.echo(f"{result.model} ({result.task}) on {result.images} images of {data}")
    click.echo(f"  protocol: {result.protocol}")
    click.echo(f"  baseline: {result.baseline}")
    click.echo(f"  inference: {result.precision}, flip averaging {'on' if result.flip_average else 'off'}")
    for key, value in result.metrics.items():
        click.echo(f"  {key:>16}: {value:.4f}")


def _eval_rerender(
    name: str,
    path: Path,
    sha256: str | None,
    data: Path,
    classifier_path: str | None,
    device: str,
    seed: int,
    limit: int | None,
    as_json: bool,
    refine_steps: int | None,
    keep_detail: bool | None = None,
) -> None:
    """``ganedit eval`` on a rerender (TDGAN) checkpoint: `evaluate_rerender` (or, for a re-lighting
    model, `evaluate_relighting`), printed."""
    from ..data.tagset import INDEX_NAME
    from ..eval.tdgan import evaluate_rerender
    from ..runtime.rerenderer import REFINE_STEPS, Rerenderer

    if not (data / INDEX_NAME).is_file():
        raise UsageError(
            f"{name} is a rerender (tdgan) checkpoint: --data must be a tagged image set (DATA/tags.json, "
            f"as `ganedit train render-chairs` writes); {data} has no tags.json"
        )
    steps = REFINE_STEPS if refine_steps is None else refine_steps
    rr = Rerenderer.open(
        path, name=name, sha256=sha256, device=device, refine_steps=steps, keep_detail=keep_detail
    )
    size = rr.config.image_size
    if _relights(rr.config):
        _eval_relighting(rr, data, seed, as_json)
        return
    judge = _classifier(data, size, classifier_path)
    result = evaluate_rerender(rr, data, classifier=judge, size=size, seed=seed, limit=limit)
    if as_json:
        click.echo(json.dumps(result, indent=2, allow_nan=False))
        return
    _print_rerender(result, data)


def _relights(config: Any) -> bool:
    from ..eval.faces import LIGHT_TAGS

    return set(LIGHT_TAGS) <= set(config.tag_names)


def _eval_relighting(rr: Any, data: Path, seed: int, as_json: bool) -> None:
    """A face re-lighting model (light_azimuth and light_elevation tags): `evaluate_relighting`, with
    its two judges cached in DATA (trained on the train split the first time)."""
    from ..eval import faces
    from ..eval.tdgan import load_classifier, save_classifier, train_classifier

    size = rr.config.image_size
    judges = {}
    makers = {
        "light": lambda: train_classifier(data, size, tags=list(faces.LIGHT_TAGS), seed=0),
        "identity": lambda: faces.train_identity_embedding(data, size, seed=0),
    }
    for kind, make in makers.items():
        cache = data / f"judge-{kind}-{size}.safetensors"
        if cache.is_file():
            judges[kind] = load_classifier(cache)
            continue
        click.echo(f"training the {kind} judge on the train split of {data}, cached to {cache}", err=True)
        judges[kind] = make()
        save_classifier(cache, judges[kind])
    result = faces.evaluate_relighting(
        rr, data, seed=seed, light_judge=judges["light"], identity_judge=judges["identity"]
    )
    if as_json:
        click.echo(json.dumps(result, indent=2, allow_nan=False))
        return
    o, light, ident = result["overall"], result["light_accuracy"], result["identity_accuracy"]
    click.echo(
        f"{result['model']} (re-lighting) on {result['identities']} held-out people of {data}: "
        f"{result['renders']} re-lit faces"
    )
    click.echo(f"  protocol: {result['protocol']}")
    for key, label in (
        ("relit", "re-lit"),
        ("unchanged", "input unchanged"),
        ("matched", "brightness-matched"),
    ):
        click.echo(f"  {label:>18}: PSNR {o[key + '_psnr']:.2f} dB, SSIM {o[key + '_ssim']:.4f}")
    click.echo(
        f"  light read as requested (both tags within one step): {light['relit']['both_within_1']:.3f} "
        f"(the judge on the true photos: {light['true_photos']['both_within_1']:.3f})"
    )
    click.echo(
        f"  identity kept (nearest held-out person): {ident['relit']:.3f} "
        f"(brightness-matched input {ident['matched']:.3f}, true photos {ident['true_photos']:.3f})"
    )


def _classifier(data: Path, size: int, classifier_path: str | None) -> Any:
    """The tag classifier judging re-renders: the one given, the one cached in DATA, or one trained now."""
    from ..eval.tdgan import CLASSIFIER_STEPS, load_classifier, save_classifier, train_classifier

    if classifier_path is not None:
        return load_classifier(Path(classifier_path))
    cache = data / f"classifier-{size}-{CLASSIFIER_STEPS}steps.safetensors"
    if cache.is_file():
        click.echo(f"using the tag classifier {cache}", err=True)
        return load_classifier(cache)
    click.echo(
        f"no --classifier: training a tag classifier on the train split of {data} "
        f"({size} px), cached to {cache}",
        err=True,
    )
    judge = train_classifier(data, size, split="train", seed=0)
    save_classifier(cache, judge)
    return judge


def _print_rerender(result: dict[str, Any], data: Path) -> None:
    def f(value: float | None, digits: int = 2) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    o = result["overall"]
    click.echo(
        f"{result['model']} (rerender) on {result['identities']} held-out identities of {data}: "
        f"{result['sources']} source views, {result['renders']} re-renders"
    )
    click.echo(f"  protocol: {result['protocol']}")
    click.echo(f"  baseline: {result['baseline']}")
    refine = result["refine"]
    click.echo(f"  identity refinement: {refine['steps']} steps (Adam, step size {refine['lr']:g})")
    click.echo(
        f"  azimuth sweep (offset != 0, {o['count']}): PSNR {f(o['psnr'])} dB "
        f"(baseline {f(o['baseline_psnr'])})"
        f", SSIM {f(o['ssim'], 4)} (baseline {f(o['baseline_ssim'], 4)})"
    )
    lt = result["light"]
    if lt["count"]:
        click.echo(
            f"  light sweep (other light, {lt['count']}): PSNR {f(lt['psnr'])} dB (baseline "
            f"{f(lt['baseline_psnr'])}), SSIM {f(lt['ssim'], 4)} (baseline {f(lt['baseline_ssim'], 4)})"
        )
    click.echo("  offset  degrees   psnr  base_psnr    ssim  base_ssim")
    for row in result["per_offset"]:
        degrees = "-" if row["degrees"] is None else f"{row['degrees']:.0f}"
        click.echo(
            f"  {row['offset']:>6} {degrees:>8} {f(row['psnr']):>6} {f(row['baseline_psnr']):>10} "
            f"{f(row['ssim'], 4):>7} {f(row['baseline_ssim'], 4):>10}"
        )
    accuracy = ", ".join(f"{k} {v:.3f}" for k, v in result["tag_accuracy"].items()) or "-"
    click.echo(f"  tag accuracy of the re-renders (classifier): {accuracy}")
    judge_acc = result["classifier"]["on_true_renders"]
    own = ", ".join(f"{k} {v:.3f}" for k, v in judge_acc.items() if k != "images") or "-"
    click.echo(f"  classifier's own accuracy on the {judge_acc['images']} true target renders: {own}")
