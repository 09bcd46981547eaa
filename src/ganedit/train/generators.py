"""The PAN generator shapes ganedit trains (`preset`) and growing a trained generator (`grow`): training
choices, not part of the inference networks (`ganedit.archs.pan`)."""

from __future__ import annotations

from ..archs.pan import PANGenerator, PANGeneratorConfig

__all__ = ["GROWABLE", "grow", "preset"]


def preset(task: str) -> PANGeneratorConfig:
    """The generator shape we train and ship for each PAN task.

    derain: the residual net at 1/8 resolution inside (fast on CPUs, long receptive field for streaks).
    inpaint: a 7-level U-Net (128 px divisibility) whose receptive field spans a few hundred pixels, so
    holes tens of pixels wide can be filled from their surroundings; 4 input channels (image + mask);
    resize-conv decoder (`archs.pan.UPSAMPLES`: the shipped model's since 2026-12-07).
    sketch2photo: a 6-level U-Net, as pix2pix uses for edges -> photo.
    labels2photo: a 7-level U-Net (3.4 M parameters): its receptive field spans a whole 128 px crop, as
    a facade's floors and window rows need.
    The U-Nets cap their width at 4 * ngf (pix2pix: 8) to keep the files under 20 MB (fp32): 3.4 M and
    2.6 M parameters; the deep levels see few pixels, so width there buys little.
    """
    if task == "derain":
        return PANGeneratorConfig()
    if task == "inpaint":
        return PANGeneratorConfig(
            kind="unet",
            in_channels=4,
            ngf=32,
            depth=7,
            max_mult=4,
            residual_output=True,
            prefill=True,
            upsample="resize",
        )
    if task == "sketch2photo":
        return PANGeneratorConfig(kind="unet", ngf=32, depth=6, max_mult=4, residual_output=False)
    if task == "labels2photo":
        return PANGeneratorConfig(kind="unet", ngf=32, depth=7, max_mult=4, residual_output=False)
    raise ValueError(
        f"no PAN preset for task {task!r}; PAN tasks: derain, inpaint, sketch2photo, labels2photo"
    )


GROWABLE = ("full_res_blocks", "context_blocks", "line_blocks", "residual_gate")
"""Generator settings a trained model can be grown in (``init`` + a larger value): what they add starts
as the identity, so the grown model begins exactly where the trained one ended."""


def grow(model: PANGenerator, config: PANGeneratorConfig) -> PANGenerator:
    """A new generator of shape `config` holding `model`'s weights; `config` may only raise GROWABLE settings.

    Raises ValueError naming the setting that cannot change.
    """
    old = model.config
    for name in old.__dataclass_fields__:
        before, after = getattr(old, name), getattr(config, name)
        if before == after:
            continue
        if name not in GROWABLE:
            raise ValueError(
                f"generator.{name} cannot change from {before!r} to {after!r} "
                f"(only {', '.join(GROWABLE)} can grow)"
            )
        if after < before:
            raise ValueError(
                f"generator.{name} can only grow ({before} -> {after} would drop trained blocks)"
            )
    grown = PANGenerator(config)
    missing, unexpected = grown.load_state_dict(model.state_dict(), strict=False)
    # the GROWABLE blocks' weights: new, the identity
    added = ("net.refine.", "net.context.", "net.lines.", "net.gate.")
    if unexpected or any(not key.startswith(added) for key in missing):  # a bug, not a user error
        raise RuntimeError(f"grow left weights behind: unexpected {unexpected}, missing {missing}")
    return grown
