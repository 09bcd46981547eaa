"""PAN networks: shapes, the inpainting contract, the discriminator's taps, the arch table."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from ganedit.archs import ARCHS, build
from ganedit.archs.pan import PANGenerator, PANGeneratorConfig
from ganedit.errors import CheckpointError
from ganedit.train.discriminators import PANDiscriminator, PANDiscriminatorConfig
from ganedit.train.generators import grow, preset
from tinymodels import make_model

PAN_TASKS = ("derain", "inpaint", "sketch2photo")


@pytest.mark.parametrize("task", PAN_TASKS)
def test_generator_keeps_shape_and_exposes_its_contract(task: str) -> None:
    model = make_model(task, seed=1)
    m = model.pad_multiple
    assert model.arch == "pan"
    assert m == 2**model.config.depth
    assert model.out_channels == 3
    assert model.in_channels == (4 if task == "inpaint" else 3)
    x = torch.rand(2, 3, 3 * m, 5 * m) * 2 - 1
    mask = (torch.rand(2, 1, 3 * m, 5 * m) > 0.5).float() if task == "inpaint" else None
    with torch.no_grad():
        y = model(x, mask)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()
    assert not torch.allclose(y, x, atol=1e-3)  # a tiny model does change the image


def test_inpainting_generator_never_sees_the_holes_and_keeps_known_pixels() -> None:
    model = make_model("inpaint", seed=2)
    x = torch.rand(1, 3, 32, 40) * 2 - 1
    mask = torch.zeros(1, 1, 32, 40)
    mask[..., 8:20, 10:30] = 1
    other = x.clone()
    other[mask.expand_as(x).bool()] = 0.7  # different content inside the holes only
    with torch.no_grad():
        y, y_other = model(x, mask), model(other, mask)
    known = ~mask.bool().expand_as(x)
    assert torch.equal(y[known], x[known])  # exactly: a select, not a blend
    assert torch.equal(y, y_other)  # the hole content is never an input
    assert not torch.allclose(y[~known], x[~known])


def test_generator_mask_misuse_is_refused() -> None:
    with pytest.raises(ValueError, match="needs a mask"):
        make_model("inpaint")(torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match="takes no mask"):
        make_model("derain")(torch.zeros(1, 3, 8, 8), torch.zeros(1, 1, 8, 8))


def test_fresh_residual_generator_is_the_identity() -> None:
    # Zero-initialised head: training starts from "change nothing", not from noise.
    model = PANGenerator(PANGeneratorConfig(ngf=4, depth=2, blocks=1)).eval()
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        assert torch.equal(model(x), x)


def test_unet_generator_works_without_norm_and_trains() -> None:
    model = PANGenerator(PANGeneratorConfig(kind="unet", ngf=4, depth=3, norm="none", residual_output=False))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    model(x).abs().mean().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("norm", ["batch", "none"])
@pytest.mark.parametrize(
    ("setting", "part"),
    [("full_res_blocks", "refine"), ("context_blocks", "context"), ("line_blocks", "lines")],
)
def test_grown_generator_starts_exactly_where_the_trained_one_ended(
    norm: str, setting: str, part: str
) -> None:
    torch.manual_seed(0)
    trained = PANGenerator(PANGeneratorConfig(ngf=4, depth=2, blocks=1, norm=norm))
    with torch.no_grad():  # a "trained" model: nothing zero any more, so its output is not the input
        for p in trained.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    trained.eval()
    grown = grow(trained, dataclasses.replace(trained.config, **{setting: 2})).eval()
    added = getattr(grown.net, part)
    assert len(added) == 2
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        assert not torch.equal(trained(x), x)
        assert torch.equal(grown(x), trained(x))
    grown.train()
    grown(x).abs().mean().backward()
    assert all(p.grad is not None for p in added.parameters())


def test_grown_residual_gate_starts_at_full_strength_and_learns() -> None:
    torch.manual_seed(0)
    trained = PANGenerator(PANGeneratorConfig(ngf=4, depth=2, blocks=1))
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    trained.eval()
    grown = grow(trained, dataclasses.replace(trained.config, residual_gate=True)).eval()
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        assert torch.equal(grown(x), trained(x))
    grown.train()
    grown(x).abs().mean().backward()
    assert grown.net.gate is not None
    last = grown.net.gate.mlp[-1]  # zero at the start, so the first layer's gradient waits for it to move
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in last.parameters())


def test_residual_gate_scales_each_images_edit_on_its_own() -> None:
    """The gate turns the whole residual of one image up or down (a closed gate returns the input: how a dry
    photo comes back unchanged), from that image alone: batch companions never change an image's result."""
    torch.manual_seed(0)
    model = PANGenerator(PANGeneratorConfig(ngf=4, depth=2, blocks=1, residual_gate=True))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    model.eval()
    gate = model.net.gate
    assert gate is not None
    dry, rainy = torch.rand(1, 3, 16, 16) * 2 - 1, torch.rand(1, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        both = model(torch.cat([dry, rainy]))
        torch.testing.assert_close(both[:1], model(dry))
        torch.testing.assert_close(both[1:], model(rainy))
        gate.mlp[-1].bias.fill_(-40.0)  # strength 2 * sigmoid(-40) ~ 1e-17: the residual is gone
        gate.mlp[-1].weight.zero_()
        torch.testing.assert_close(model(dry), dry, rtol=0, atol=1e-6)


def test_context_blocks_widen_the_receptive_field_at_the_lowest_resolution() -> None:
    """How far from the centre output pixel an input pixel still moves it: three context blocks (two 3x3
    convs each, dilations 2, 4, 8, at 1/4 resolution here) add 2 * (2 + 4 + 8) * 4 = 112 px on each side."""
    torch.manual_seed(0)

    def reach(context_blocks: int) -> int:
        model = PANGenerator(PANGeneratorConfig(ngf=4, depth=2, blocks=1, context_blocks=context_blocks))
        with torch.no_grad():
            for p in model.parameters():  # no zero-initialised blocks: every path carries gradient
                p.add_(torch.randn_like(p) * 0.1)
        model.eval()
        x = (torch.rand(1, 3, 512, 512) * 2 - 1).requires_grad_(True)
        model(x)[0, :, 256, 256].sum().backward()
        assert x.grad is not None
        rows = x.grad[0].abs().sum((0, 2)).nonzero()
        return int(max(256 - rows.min(), rows.max() - 256))

    plain, widened = reach(0), reach(3)
    assert (plain, widened) == (16, 16 + 112)


def test_line_blocks_follow_a_line_far_at_full_resolution() -> None:
    """Four line blocks (two 3x3 convs each, dilations 2, 4, 8, 16, at full resolution) add
    2 * (2 + 4 + 8 + 16) = 60 px on each side, and every input pixel they reach is a full-resolution one:
    the centre output pixel depends on the pixel exactly 60 px above it through them."""
    torch.manual_seed(0)

    def rows_reached(line_blocks: int) -> set[int]:
        model = PANGenerator(PANGeneratorConfig(ngf=4, depth=2, blocks=1, line_blocks=line_blocks))
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.1)
        model.eval()
        x = (torch.rand(1, 3, 256, 256) * 2 - 1).requires_grad_(True)
        model(x)[0, :, 128, 128].sum().backward()
        assert x.grad is not None
        return {int(r) for r in x.grad[0, :, :, 128].abs().sum(0).nonzero()}

    plain, lines = rows_reached(0), rows_reached(4)
    assert max(plain) - 128 == 16 and max(lines) - 128 == 16 + 60
    assert 128 - 60 in lines and 128 - 60 not in plain


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"ngf": 8}, "generator.ngf cannot change"),
        ({"full_res_blocks": 0}, "can only grow"),
        ({"context_blocks": 0}, "can only grow"),
        ({"line_blocks": 0}, "can only grow"),
        ({"residual_gate": False}, "can only grow"),
    ],
)
def test_grow_refuses_changes_that_would_lose_trained_weights(change: dict, message: str) -> None:
    trained = PANGenerator(
        PANGeneratorConfig(
            ngf=4, depth=2, blocks=1, full_res_blocks=1, context_blocks=1, line_blocks=1, residual_gate=True
        )
    )
    with pytest.raises(ValueError, match=message):
        grow(trained, dataclasses.replace(trained.config, **change))


@pytest.mark.parametrize(
    "bad",
    [
        {"kind": "resnet"},
        {"norm": "instance"},
        {"in_channels": 5},
        {"depth": 0},
        {"ngf": 0},
        {"full_res_blocks": -1},
        {"kind": "unet", "full_res_blocks": 1},
        {"context_blocks": -1},
        {"kind": "unet", "context_blocks": 1},
        {"kind": "unet", "residual_gate": True},
        {"residual_output": False, "residual_gate": True},
        {"kind": "unet", "upsample": "bilinear"},
        {"kind": "residual", "upsample": "resize"},
    ],
)
def test_generator_config_rejects_bad_values(bad: dict) -> None:
    with pytest.raises(ValueError):
        PANGeneratorConfig(**bad)


@pytest.mark.parametrize("task", PAN_TASKS)
def test_presets_fit_the_shipping_budget(task: str) -> None:
    cfg = preset(task)
    model = PANGenerator(cfg)
    size = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    assert size <= 20 * 1024 * 1024  # the shipped checkpoints must stay <= 20 MB
    assert cfg.takes_mask == (task == "inpaint")
    with pytest.raises(ValueError, match="no PAN preset"):
        preset("rerender")


def test_discriminator_has_the_papers_widths() -> None:
    d = PANDiscriminator()  # ndf=64: the paper's network
    widths = [m.out_channels for m in d.modules() if isinstance(m, torch.nn.Conv2d)]
    assert widths == [64, 128, 128, 256, 256, 512, 512, 512, 8]
    kernels = {m.kernel_size for m in d.modules() if isinstance(m, torch.nn.Conv2d)}
    assert kernels == {(3, 3)}


@pytest.mark.parametrize("size", [(64, 64), (72, 100)])
def test_discriminator_taps_and_logits_on_any_size(size: tuple[int, int]) -> None:
    ndf = 8
    d = PANDiscriminator(PANDiscriminatorConfig(ndf=ndf)).eval()
    h, w = size
    x = torch.rand(3, 3, h, w) * 2 - 1
    logits, taps = d(x)
    assert logits.shape == (3,)
    assert len(taps) == 4
    for tap, stride, mult in zip(taps, d.tap_strides, (1, 4, 8, 8), strict=True):
        assert tap.shape == (3, ndf * mult, -(-h // stride), -(-w // stride))
    assert taps[0].abs().max() <= 1  # H1 is a tanh layer


def test_discriminator_conditional_input_and_gradients() -> None:
    d = PANDiscriminator(PANDiscriminatorConfig(in_channels=6, ndf=4))
    x = (torch.rand(2, 6, 32, 32) * 2 - 1).requires_grad_()
    logits, taps = d(x)
    (logits.sum() + sum(t.abs().mean() for t in taps)).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0  # the perceptual loss can reach the generator


def test_arch_table_builds_and_refuses_unknowns() -> None:
    assert set(ARCHS) == {"pan", "tdgan"}
    with pytest.raises(TypeError):
        ARCHS["x"] = ARCHS["pan"]  # type: ignore[index]  # read-only: no registration by side effect
    cfg = dataclasses.asdict(PANGeneratorConfig(kind="unet", ngf=4, depth=2))
    model = build("pan", cfg)
    assert isinstance(model, PANGenerator) and model.config == PANGeneratorConfig(**cfg)
    with pytest.raises(CheckpointError, match=r"unknown architecture 'nope'.*pan"):
        build("nope", {})
    with pytest.raises(CheckpointError, match="bogus"):
        build("pan", {**cfg, "bogus": 1})
    with pytest.raises(CheckpointError, match="kind"):
        build("pan", {"kind": "transformer"})


# ------------------------------------------------------------------------------------- inpainting prefill


def test_smooth_fill_keeps_known_pixels_and_interpolates_a_ramp() -> None:
    from ganedit.archs.pan import smooth_fill

    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 96), torch.linspace(-1, 1, 128), indexing="ij")
    ramp = torch.stack([xx, yy, (xx + yy) / 2])[None]
    mask = torch.zeros(1, 1, 96, 128)
    mask[..., 30:60, 40:90] = 1
    filled = smooth_fill(ramp, mask)
    known = mask.expand_as(ramp) == 0
    assert torch.equal(filled[known], ramp[known])
    hole = ~known
    # a smooth fill of a linear ramp is close to the ramp (a grey or mean fill would be ~0.3 off)
    assert (filled[hole] - ramp[hole]).abs().mean() < 0.05


def test_prefill_generator_starts_as_the_smooth_fill() -> None:
    from ganedit.archs.pan import smooth_fill

    config = PANGeneratorConfig(
        kind="unet", in_channels=4, ngf=4, depth=3, residual_output=True, prefill=True
    )
    model = PANGenerator(config).eval()
    x = torch.rand(2, 3, 64, 40) * 2 - 1
    mask = (torch.rand(2, 1, 64, 40) > 0.7).float()
    with torch.no_grad():
        out = model(x, mask)
    assert torch.allclose(out, smooth_fill(x, mask))  # zero residual at initialisation
    with pytest.raises(ValueError, match="prefill needs a mask"):
        PANGeneratorConfig(kind="unet", prefill=True)


def test_training_pieces_moved_out_of_archs_keep_their_old_names() -> None:
    """Kept for one release: the old names are the moved objects, loaded on first use."""
    import ganedit.archs.pan as old_pan
    import ganedit.archs.tdgan as old_tdgan
    from ganedit.train import discriminators

    assert old_pan.preset is preset and old_pan.grow is grow
    assert old_pan.PANDiscriminator is PANDiscriminator
    assert old_tdgan.Discriminator is discriminators.Discriminator
    with pytest.raises(AttributeError):
        _ = old_pan.no_such_name


def test_resize_conv_unet_starts_as_its_prefill_folds_and_round_trips(tmp_path) -> None:
    """upsample="resize": the same contract as the pix2pix decoder (zero residual at initialisation, known
    pixels kept), batch norm folds into its convs as the editor does, and a checkpoint rebuilds it."""
    from ganedit.archs.pan import smooth_fill
    from ganedit.checkpoint import load_checkpoint, save_checkpoint
    from ganedit.runtime.editor import fold_batchnorm

    config = PANGeneratorConfig(kind="unet", in_channels=4, ngf=4, depth=3, prefill=True, upsample="resize")
    model = PANGenerator(config).eval()
    x = torch.rand(2, 3, 32, 24) * 2 - 1
    mask = (torch.rand(2, 1, 32, 24) > 0.6).float()
    with torch.no_grad():
        assert torch.allclose(model(x, mask), smooth_fill(x, mask))
    torch.manual_seed(0)
    for p in model.parameters():  # a trained-looking model: the residual and the norms are not trivial
        p.data.normal_(0, 0.1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    with torch.no_grad():
        plain = model(x, mask)
        folded = PANGenerator(config).eval()
        folded.load_state_dict(model.state_dict())
        folded = fold_batchnorm(folded)
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
        assert torch.allclose(folded(x, mask), plain, atol=1e-5)
        assert torch.equal(plain[mask.expand_as(plain) == 0], x[mask.expand_as(x) == 0])
    save_checkpoint(tmp_path / "m.safetensors", model, task="inpaint")
    again, info = load_checkpoint(tmp_path / "m.safetensors")
    assert info.arch_config["upsample"] == "resize"
    with torch.no_grad():
        assert torch.equal(again.eval()(x, mask), plain)
