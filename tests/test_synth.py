"""Tests for the training-pair synthesis (rain, masks, sketches) in `ganedit.data.synth`.

The training loop relies on three things: the same seed gives the same pair (resumable, reproducible
evaluation sets), the outputs respect their ranges and conventions (masks 1 = hole within the coverage
bounds, sketches white paper with dark lines), and the degradations are real (rain visibly changes the
image, streaks follow the requested angle, lines sit on the edges of the picture, painted stripes are
light and dark bands, not a brightening).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator

import pytest
import torch

from ganedit.data.synth import (
    RainLayer,
    RainParams,
    SketchParams,
    add_rain,
    as_generator,
    make_mask,
    make_sketch,
    paint_stripes,
    sample_faint_rain_params,
    sample_fine_rain_params,
    sample_long_rain_params,
    sample_rain_params,
    sample_sketch_params,
    sample_streak_rain_params,
)

SIZE = 128


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Run as synthesis runs in training: in data-loader workers, one thread each.

    It also keeps these tests fast on a shared CPU, where two threads spinning on each small op can make
    them many times slower.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def scene(height: int = SIZE, width: int = SIZE) -> torch.Tensor:
    """A small synthetic 'photo': a colour gradient, a bright disc, a dark square and mild texture."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, height), torch.linspace(0, 1, width), indexing="ij")
    image = torch.stack((0.3 + 0.4 * xx, 0.4 + 0.2 * yy, 0.6 - 0.3 * xx))
    disc = ((yy - 0.35) ** 2 + (xx - 0.6) ** 2) < 0.2**2
    image[:, disc] = torch.tensor([0.95, 0.85, 0.3])[:, None]
    image[:, int(0.6 * height) : int(0.85 * height), int(0.1 * width) : int(0.4 * width)] = 0.08
    texture = torch.Generator().manual_seed(123)
    image += 0.02 * torch.randn(3, height, width, generator=texture)
    return image.clamp(0, 1)


def single_layer(**overrides: float) -> RainParams:
    layer = dict(density=0.004, length=30.0, angle=0.0, width=1.5, blur=0.0, brightness=0.9)
    layer.update(overrides)
    return RainParams(layers=(RainLayer(**layer),))


# ---------------------------------------------------------------------------------------------- rain


def test_rain_is_deterministic_per_seed_and_varies_across_seeds() -> None:
    clean = scene()
    first, again = add_rain(clean, 7), add_rain(clean, 7)
    assert torch.equal(first, again)
    from_generator = add_rain(clean, torch.Generator().manual_seed(7))
    assert torch.equal(first, from_generator)
    assert not torch.equal(first, add_rain(clean, 8))


def test_a_shared_generator_advances_so_consecutive_samples_differ() -> None:
    clean = scene()
    g = torch.Generator().manual_seed(0)
    a, b = add_rain(clean, g), add_rain(clean, g)
    assert not torch.equal(a, b)
    g.manual_seed(0)
    assert torch.equal(add_rain(clean, g), a)


def test_rain_keeps_shape_dtype_and_range_and_leaves_input_alone() -> None:
    clean = scene(96, 160).double()
    before = clean.clone()
    for seed in range(10):
        rainy = add_rain(clean, seed)
        assert rainy.shape == clean.shape and rainy.dtype == torch.float64
        assert rainy.min() >= 0 and rainy.max() <= 1
    assert torch.equal(clean, before)


def test_rain_changes_the_image_by_a_reasonable_amount() -> None:
    clean = scene()
    changes = []
    for seed in range(40):
        difference = (add_rain(clean, seed) - clean).abs()
        assert difference.max() > 0.15, f"seed {seed}: no visible streak"
        changes.append(float(difference.mean()))
    assert min(changes) > 0.003  # never a no-op, even for a drizzle
    assert max(changes) < 0.35  # never wipes the picture out
    assert max(changes) > 5 * min(changes)  # light drizzle and heavy showers both occur


def test_fixed_params_are_honoured_and_denser_rain_changes_more() -> None:
    black = torch.zeros(3, SIZE, SIZE)
    light_rain = add_rain(black, 0, params=single_layer(density=0.0005))
    heavy_rain = add_rain(black, 0, params=single_layer(density=0.01))
    assert 0 < light_rain.mean() < heavy_rain.mean()
    # Same params, different seed: different streak positions, similar amount of rain.
    other = add_rain(black, 1, params=single_layer(density=0.01))
    assert not torch.equal(other, heavy_rain)
    assert math.isclose(float(other.mean()), float(heavy_rain.mean()), rel_tol=0.3)


def _shift_correlation(image: torch.Tensor, dy: int, dx: int) -> float:
    a = image[: image.shape[0] - dy, max(0, -dx) : image.shape[1] - max(0, dx)]
    b = image[dy:, max(0, dx) : image.shape[1] + min(0, dx)]
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).mean() / (a.std() * b.std()))


@pytest.mark.parametrize("angle", [-30.0, 0.0, 30.0])
def test_streaks_follow_the_requested_angle(angle: float) -> None:
    black = torch.zeros(3, SIZE, SIZE)
    rain = add_rain(black, 3, params=single_layer(angle=angle, length=60.0, width=1.0))[0]
    dy = 12
    dx = round(dy * math.tan(math.radians(angle)))
    along = _shift_correlation(rain, dy, dx)
    for wrong_dx in (dx - 8, dx + 8):
        assert along > 2 * _shift_correlation(rain, dy, wrong_dx)


def test_sampled_rain_covers_a_wide_range_of_looks() -> None:
    params = [sample_rain_params(seed) for seed in range(300)]
    assert sample_rain_params(5) == sample_rain_params(5)
    layers = [layer for p in params for layer in p.layers]
    assert {len(p.layers) for p in params} == {1, 2, 3, 4}
    angles = [abs(layer.angle) for layer in layers]
    assert min(angles) < 2 and max(angles) > 30  # near-vertical and slanted
    lengths = [layer.length for layer in layers]
    widths = [layer.width for layer in layers]
    assert max(lengths) > 8 * min(lengths) and max(widths) > 4 * min(widths)
    assert max(p.haze for p in params) > 0.3 and min(p.haze for p in params) < 0.02


def test_streak_rain_is_long_thin_streaks_near_vertical_from_drizzle_to_downpour() -> None:
    """What real and benchmark rain looks like (issue: the first synthesiser made short dots and a veil)."""
    params = [sample_streak_rain_params(seed) for seed in range(300)]
    assert sample_streak_rain_params(7) == sample_streak_rain_params(7)
    assert sample_streak_rain_params(7) != sample_streak_rain_params(8)
    layers = [layer for p in params for layer in p.layers]
    assert all(abs(layer.angle) <= 30 + 4 * 3 + 4 * 2.5 for layer in layers)  # ±30° plus the jitters
    dominant = [sum(layer.angle for layer in p.layers) / len(p.layers) for p in params]
    assert min(dominant) < -20 and max(dominant) > 20 and sum(abs(a) < 10 for a in dominant) > 100
    lengths = [layer.length for layer in layers]
    assert min(lengths) < 10 and max(lengths) > 128  # a few px to over half a 256 px crop
    widths = [layer.width for layer in layers]
    assert 0.5 <= min(widths) < 1.2 and 3.0 < max(widths) <= 4.5
    # streaks of one depth are not all parallel: the three sheets of a layer differ in angle
    assert all(len({round(layer.angle, 6) for layer in p.layers}) == len(p.layers) for p in params[:20])
    coverage = [sum(la.density * la.length * la.width for la in p.layers) for p in params]
    assert min(coverage) < 0.06 and max(coverage) > 0.3  # drizzle to downpour
    assert {p.blend for p in params} == {"over", "screen"}


def test_fine_rain_is_dense_sheets_of_thin_sharp_streaks() -> None:
    """The benchmark sets' rain: a quarter of the picture under 1-px streaks at one angle, added as light."""
    params = [sample_fine_rain_params(seed) for seed in range(300)]
    assert sample_fine_rain_params(7) == sample_fine_rain_params(7)
    assert sample_fine_rain_params(7) != sample_fine_rain_params(8)
    layers = [layer for p in params for layer in p.layers]
    assert {len(p.layers) for p in params} == {2, 4}  # one or two depths, two sheets each
    assert all(abs(layer.angle) <= 30 + 4 * 2 + 4 * 1.5 for layer in layers)
    widths = [layer.width for layer in layers]
    assert 0.5 <= min(widths) < 0.7 and 1.4 < max(widths) <= 1.6  # thin: 0.6-1.6 px at scale 1
    assert max(layer.blur for layer in layers) <= 0.4  # nearly sharp
    lengths = [layer.length for layer in layers]
    assert min(lengths) < 15 and max(lengths) > 100
    coverage = [sum(la.density * la.length * la.width for la in p.layers) for p in params]
    assert min(coverage) < 0.12 and max(coverage) > 0.3  # dense, from a light sheet to a downpour
    assert sum(p.blend == "screen" for p in params) > 200 and max(p.haze for p in params) <= 0.1
    # rendered: many thin bright lines on a dark scene, none of them wider than a few px
    rainy = add_rain(torch.full((3, 128, 128), 0.1), 3, params=params[0])
    lit = (rainy - 0.1).amax(dim=0) > 0.05
    assert 0.03 < lit.float().mean() < 0.6
    assert lit.any(dim=0).float().mean() > 0.5  # streaks all across the picture


def test_faint_rain_is_dense_low_contrast_streaks_a_few_bright_among_many_dim() -> None:
    """Real photos' rain (issue 16): faint, dense, unequal streaks at one angle, which the other
    synthesisers (bright, nearly equal streaks) never showed the models."""
    params = [sample_faint_rain_params(seed) for seed in range(300)]
    assert sample_faint_rain_params(7) == sample_faint_rain_params(7)
    assert sample_faint_rain_params(7) != sample_faint_rain_params(8)
    layers = [layer for p in params for layer in p.layers]
    assert {len(p.layers) for p in params} == {4, 6, 8}  # two to four depths, two sheets each
    assert all(abs(layer.angle) <= 30 + 4 * 3 + 4 * 2 for layer in layers)
    assert all(len({round(la.angle, 1) for la in p.layers}) > 1 for p in params[:20])  # not all parallel
    brightness = [layer.brightness for layer in layers]
    assert 0.09 <= min(brightness) < 0.12 and 0.5 < max(brightness) <= 0.6  # faint next to 0.35-0.95
    faint = [p.layers[0].faint for p in params]
    assert (
        all(len({la.faint for la in p.layers}) == 1 for p in params) and 0.2 <= min(faint) < max(faint) <= 0.8
    )
    lengths = [layer.length for layer in layers]
    assert min(lengths) < 12 and max(lengths) > 200
    assert {p.blend for p in params} == {"over", "screen"} and max(p.haze for p in params) > 0.25
    # rendered on a dark scene: streaks everywhere, but most of them dim
    dark = torch.full((3, 128, 128), 0.1)
    lit = (add_rain(dark, 3, params=params[0]) - 0.1).amax(dim=0)
    streaks = lit[lit > 0.01]
    assert (lit > 0.01).any(dim=0).float().mean() > 0.5
    assert float(streaks.median()) < 0.5 * float(streaks.max())


def test_long_rain_is_long_thin_lines_or_wide_soft_bands() -> None:
    """The benchmark sets' long streaks (issue 16): Rain100L's sharp lines across a third of the picture and
    SIRR's wide, soft, faint bands, which the other synthesisers (thin streaks mostly 10-60 px) never drew."""
    params = [sample_long_rain_params(seed) for seed in range(300)]
    assert sample_long_rain_params(7) == sample_long_rain_params(7)
    assert sample_long_rain_params(7) != sample_long_rain_params(8)
    assert {len(p.layers) for p in params} == {2, 4, 6}  # one to three depths, two sheets each
    layers = [layer for p in params for layer in p.layers]
    assert all(abs(layer.angle) <= 25 + 4 * 2 + 4 * 1 for layer in layers)
    dominant = [sum(layer.angle for layer in p.layers) / len(p.layers) for p in params]
    assert min(dominant) < -15 and max(dominant) > 15 and sum(abs(a) < 8 for a in dominant) > 150
    thin = [layer for layer in layers if layer.width < 2.5]
    bands = [layer for layer in layers if layer.width >= 2.5]
    assert 0.45 < len(thin) / len(layers) < 0.75
    assert min(la.length for la in thin) >= 60 and max(la.length for la in thin) > 300
    assert min(la.width for la in thin) >= 0.8 and max(la.blur for la in thin) <= 0.3
    assert min(la.brightness for la in thin) >= 0.3
    assert min(la.length for la in bands) >= 150 and max(la.width for la in bands) > 10
    assert min(la.blur for la in bands) >= 1.0 and max(la.brightness for la in bands) <= 0.3
    veiled = [p.haze > 0 for p in params]
    assert 100 < sum(veiled) < 200 and max(p.haze for p in params) <= 0.25
    assert {p.blend for p in params} == {"over", "screen"}
    # rendered upright on black, at the sampler's own lengths: a lit pixel of a thin line is most often
    # still lit 40 px further down (10-60 px streaks, as the fine synthesiser draws, would not be)
    thin_only = next(p for p in params if all(la.width < 2.5 for la in p.layers))
    upright = RainParams(
        layers=tuple(dataclasses.replace(la, angle=0.0) for la in thin_only.layers), light=(1.0, 1.0, 1.0)
    )
    rain = add_rain(torch.zeros(3, 256, 256), 5, params=upright)[0]
    lit = rain > 0.1
    assert lit[:-40].any() and float(lit[40:][lit[:-40]].float().mean()) > 0.6


def test_faint_streaks_are_mostly_dim_and_zero_faint_keeps_the_old_streaks() -> None:
    """RainLayer.faint: at 1 most streaks of a layer are dim and a few bright; at 0 (the default) each
    streak is 40-100 % of the layer's brightness, as the first synthesisers drew them."""
    black = torch.zeros(3, 256, 256)

    def streak_levels(faint: float) -> torch.Tensor:
        layer = RainLayer(
            density=0.002, length=1.0, angle=0.0, width=0.6, blur=0.0, brightness=1.0, faint=faint
        )
        rain = add_rain(black, 11, params=RainParams(layers=(layer,), light=(1.0, 1.0, 1.0)))[0]
        return rain[rain > 0.005]

    even, unequal = streak_levels(0.0), streak_levels(1.0)
    assert float(even.quantile(0.05)) > 0.3  # every streak at least ~0.4 (thin streaks lose a little)
    assert float(unequal.median()) < 0.2 and float(unequal.max()) > 0.7
    with pytest.raises(ValueError, match="faint"):
        RainLayer(density=0.01, length=5.0, angle=0.0, width=1.0, blur=0.0, brightness=0.5, faint=1.5)


def test_screen_blend_streaks_show_on_dark_and_vanish_on_bright_backgrounds() -> None:
    layer = RainLayer(density=0.01, length=40.0, angle=0.0, width=2.0, blur=0.0, brightness=0.8)
    for blend, expect_on_white in (("screen", 0.0), ("over", None)):
        params = RainParams(layers=(layer,), light=(0.9, 0.9, 0.9), blend=blend)
        dark = add_rain(torch.full((3, 96, 96), 0.1), 5, params=params)
        white = add_rain(torch.ones(3, 96, 96), 5, params=params)
        assert (dark - 0.1).amax() > 0.5  # bright streaks on a dark scene
        if expect_on_white is not None:
            assert (white - 1.0).abs().amax() < 1e-6  # screen never darkens: white stays white
        else:
            assert (1.0 - white).amax() > 0.05  # opaque drops in a grey light do show on white
    with pytest.raises(ValueError, match="blend"):
        RainParams(layers=(layer,), blend="multiply")


def test_additive_streaks_keep_the_hue_of_the_scene_and_saturate_on_white() -> None:
    """blend="add" (O = B + S, the benchmark sets' model): a grey streak raises every channel by the same
    amount, so it stays yellowish on a yellow scene, where screen and over whiten it (the dark channel
    gains most); on white it clips, and it never darkens."""
    layer = RainLayer(density=0.01, length=40.0, angle=0.0, width=2.0, blur=0.0, brightness=0.3)
    scene = torch.tensor([0.6, 0.4, 0.2]).view(3, 1, 1).expand(3, 96, 96).contiguous()
    gains = {}
    for blend in ("add", "screen", "over"):
        params = RainParams(layers=(layer,), light=(0.9, 0.9, 0.9), blend=blend)
        rainy = add_rain(scene, 5, params=params)
        assert (rainy >= scene - 1e-6).all()  # a light streak on a darker scene: nothing darkens
        lit = (rainy - scene)[0] > 0.01
        assert lit.float().mean() > 0.02
        gains[blend] = ((rainy - scene)[2][lit] / (rainy - scene)[0][lit]).median().item()
    assert gains["add"] == pytest.approx(1.0, abs=0.02)  # blue gains what red gains
    assert gains["screen"] > 1.8 and gains["over"] > 1.8  # blue gains twice as much: the streak whitens
    params = RainParams(layers=(layer,), light=(0.9, 0.9, 0.9), blend="add")
    assert (add_rain(torch.ones(3, 96, 96), 5, params=params) == 1.0).all()
    assert (add_rain(torch.full((3, 96, 96), 0.1), 5, params=params) - 0.1).amax() > 0.2
    faint = RainLayer(density=1e-5, length=2, angle=0, width=0.6, blur=0, brightness=0.01)
    veiled = add_rain(
        scene, 3, params=RainParams(layers=(faint,), haze=0.2, light=(1.0, 1.0, 1.0), blend="add")
    )
    offset = (veiled - scene).flatten(1).median(1).values
    assert offset.tolist() == pytest.approx(
        [0.2, 0.2, 0.2], abs=0.04
    )  # the veil adds the same to each channel


def test_the_veil_is_smooth_and_the_scene_is_not_dimmed() -> None:
    """The veil follows scene depth, so within a training crop it is nearly uniform; a per-crop grid that
    changed every few dozen pixels could not be told apart from the scene. Sampled looks never dim it."""
    assert all(p.darken == 0.0 for p in (sample_rain_params(seed) for seed in range(50)))
    faint = RainLayer(density=1e-5, length=2, angle=0, width=0.6, blur=0, brightness=0.01)
    params = RainParams(layers=(faint,), haze=0.5, light=(1.0, 1.0, 1.0))
    veiled = add_rain(torch.zeros(3, 96, 96), 3, params=params)
    assert veiled.mean().item() == pytest.approx(0.5, abs=0.1)  # black scene: the veil itself
    assert (veiled.amax() - veiled.amin()).item() <= 2 * 0.5 * params.veil_variation + 0.02


def test_rain_params_reject_out_of_range_values() -> None:
    with pytest.raises(ValueError, match="density"):
        RainLayer(density=0.0, length=10, angle=0, width=1, blur=0, brightness=0.5)
    with pytest.raises(ValueError, match="angle"):
        RainLayer(density=0.01, length=10, angle=95, width=1, blur=0, brightness=0.5)
    with pytest.raises(ValueError, match="at least one"):
        RainParams(layers=())
    with pytest.raises(ValueError, match="3 x H x W"):
        add_rain(torch.zeros(1, 8, 8), 0)


# --------------------------------------------------------------------------------------------- masks


@pytest.mark.parametrize(("height", "width"), [(128, 128), (96, 160), (256, 64)])
def test_mask_coverage_stays_within_bounds_over_many_seeds(height: int, width: int) -> None:
    coverages = []
    for seed in range(150):
        mask = make_mask(height, width, seed)
        assert mask.shape == (1, height, width) and mask.dtype == torch.float32
        assert set(mask.unique().tolist()) <= {0.0, 1.0}
        coverages.append(float(mask.mean()))
    assert min(coverages) >= 0.05 and max(coverages) <= 0.5
    assert min(coverages) < 0.15 and max(coverages) > 0.4  # the whole range is used


def test_mask_is_deterministic_and_honours_custom_bounds() -> None:
    assert torch.equal(make_mask(64, 80, 11), make_mask(64, 80, 11))
    assert not torch.equal(make_mask(64, 80, 11), make_mask(64, 80, 12))
    for seed in range(40):
        coverage = float(make_mask(64, 64, seed, coverage=(0.2, 0.3)).mean())
        assert 0.2 <= coverage <= 0.3
    with pytest.raises(ValueError, match="coverage"):
        make_mask(64, 64, 0, coverage=(0.5, 0.2))


def test_masks_are_not_all_one_blob_in_the_same_place() -> None:
    total = sum(make_mask(64, 64, seed) for seed in range(100))
    # Every quadrant is a hole in some masks and kept in others.
    for quadrant in (total[0, :32, :32], total[0, :32, 32:], total[0, 32:, :32], total[0, 32:, 32:]):
        assert 5 < float(quadrant.mean()) < 60


# ------------------------------------------------------------------------------------------ sketches


def test_sketch_is_mostly_white_with_some_dark_lines() -> None:
    clean = scene()
    for seed in range(12):
        sketch = make_sketch(clean, seed)
        assert sketch.shape == (3, SIZE, SIZE)
        assert sketch.min() >= 0 and sketch.max() <= 1
        assert torch.equal(sketch[0], sketch[1]) and torch.equal(sketch[0], sketch[2])
        dark = float((sketch[0] < 0.5).float().mean())
        assert 0.002 < dark < 0.3, f"seed {seed}: {dark:.3f} of the drawing is dark"
        assert float(sketch.mean()) > 0.7


def test_sketch_lines_lie_on_the_edges_of_the_picture() -> None:
    clean = torch.full((3, SIZE, SIZE), 0.8)
    clean[:, 40:90, 30:100] = 0.2  # one dark rectangle: edges at rows 40/90 and columns 30/100
    rows = torch.arange(SIZE)[:, None].expand(SIZE, SIZE)
    cols = torch.arange(SIZE)[None, :].expand(SIZE, SIZE)
    distance = torch.minimum(
        torch.minimum((rows - 40).abs(), (rows - 89).abs()),
        torch.minimum((cols - 30).abs(), (cols - 99).abs()),
    )
    inside = (rows >= 36) & (rows <= 93) & (cols >= 26) & (cols <= 103)
    near_edge = (distance <= 6) & inside
    for seed in range(8):
        dark = make_sketch(clean, seed, channels=1)[0] < 0.5
        assert dark.any()
        assert not (dark & ~near_edge).any()


def test_flat_image_draws_nothing() -> None:
    for seed in range(5):
        assert torch.equal(make_sketch(torch.full((3, 64, 64), 0.4), seed), torch.ones(3, 64, 64))


def test_sketch_is_deterministic_and_params_matter() -> None:
    clean = scene()
    assert torch.equal(make_sketch(clean, 3), make_sketch(clean, 3))
    assert not torch.equal(make_sketch(clean, 3), make_sketch(clean, 4))
    assert sample_sketch_params(9) == sample_sketch_params(9)
    thin = make_sketch(clean, params=SketchParams(epsilon=-0.1), channels=1)
    thick = make_sketch(clean, params=SketchParams(epsilon=-0.1, thickness=1), channels=1)
    assert thin.shape == (1, SIZE, SIZE)
    assert (thick < 0.5).sum() > 1.5 * (thin < 0.5).sum()
    with pytest.raises(ValueError, match="params or an rng"):
        make_sketch(clean)


def test_as_generator_rejects_non_seeds() -> None:
    with pytest.raises(TypeError):
        as_generator(1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        as_generator(True)


def test_blobs_are_opt_in_and_leave_the_evaluation_masks_unchanged() -> None:
    # blobs=0 (the default, what `ganedit eval` uses) draws the masks it always drew
    for seed in range(5):
        assert torch.equal(make_mask(64, 80, seed), make_mask(64, 80, seed, blobs=0.0))
    with pytest.raises(ValueError, match="blobs"):
        make_mask(64, 64, 0, blobs=1.5)


def _box_fill(mask: torch.Tensor) -> float:
    """The share of the mask's bounding box that is hole: high for a solid blob, low for a thin stroke."""
    ys, xs = mask.nonzero(as_tuple=True)
    return float(mask.sum()) / float((ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1))


def test_object_shaped_blobs_are_solid_holes_within_the_coverage() -> None:
    coverages, fills = [], []
    for seed in range(60):
        mask = make_mask(128, 128, seed, coverage=(0.05, 0.6), blobs=1.0)[0].bool()
        coverages.append(float(mask.float().mean()))
        fills.append(_box_fill(mask))
    assert min(coverages) >= 0.05 and max(coverages) <= 0.6 and max(coverages) > 0.4
    stroke_fills = [_box_fill(make_mask(128, 128, s, coverage=(0.05, 0.1))[0].bool()) for s in range(60)]
    fills.sort()
    stroke_fills.sort()
    assert fills[30] > 0.5 and fills[30] > stroke_fills[30]  # medians: the check can tell them apart


def test_painted_stripes_are_light_and_dark_bands_in_part_of_the_scene() -> None:
    """paint_stripes: a function of its seed, in [0, 1], the input left alone; where it paints, it paints
    bands of a light and a dark colour (some pixels much lighter than the scene, some much darker: a
    surface, unlike rain, which only brightens), and over many seeds it paints parts of the image, not
    always all of it."""
    scene = torch.full((3, 96, 128), 0.5)
    scene[1] = 0.45
    before = scene.clone()
    assert torch.equal(paint_stripes(scene, 3), paint_stripes(scene, 3))
    assert not torch.equal(paint_stripes(scene, 3), paint_stripes(scene, 4))
    assert torch.equal(scene, before)
    partial = darkened = banded = 0
    for seed in range(16):
        out = paint_stripes(scene, seed)
        assert out.shape == scene.shape and out.dtype == scene.dtype
        assert out.min() >= 0.0 and out.max() <= 1.0
        change = (out - scene).mean(0)
        painted = change.abs() > 0.02
        assert painted.any()
        # both colours of the surface show: the painted pixels split into a light and a dark band
        luma = out.mean(0)[painted]
        banded += bool(luma.quantile(0.9) - luma.quantile(0.1) > 0.3)
        darkened += bool((change < -0.2).sum() > 0.05 * painted.sum())
        partial += bool(painted.float().mean() < 0.9)
    assert partial >= 8
    # most surfaces are high-contrast bands, with one far darker than the scene (a coloured awning may not be)
    assert banded >= 12 and darkened >= 10
    with pytest.raises(ValueError, match="paint_stripes"):
        paint_stripes(torch.zeros(1, 8, 8), 0)
