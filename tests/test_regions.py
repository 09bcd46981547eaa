"""Inpainting a large photo hole by hole (runtime.regions): holes grouped, each with context around it,
a large one run scaled down, and every known pixel kept exactly."""

from __future__ import annotations

import numpy as np
import pytest

from ganedit.runtime.regions import CONTEXT_MIN, MAX_SIDE, plan_regions
from test_editor import make_editor, photo
from tinymodels import record_forwards


def _mask(h: int, w: int, *boxes: tuple[int, int, int, int]) -> np.ndarray:
    mask = np.zeros((h, w), bool)
    for top, left, bottom, right in boxes:
        mask[top:bottom, left:right] = True
    return mask


def test_a_hole_gets_a_region_with_context_on_every_side() -> None:
    (region,) = plan_regions(_mask(1000, 1200, (400, 500, 440, 560)), multiple=8)
    assert region.top <= 400 - CONTEXT_MIN and region.left <= 500 - CONTEXT_MIN
    assert region.top + region.height >= 440 + CONTEXT_MIN and region.left + region.width >= 560 + CONTEXT_MIN
    assert not region.scaled


def test_near_holes_share_a_region_and_far_ones_do_not() -> None:
    near = plan_regions(_mask(1000, 1200, (100, 100, 120, 120), (100, 150, 120, 170)), multiple=8)
    far = plan_regions(_mask(1000, 1200, (100, 100, 120, 120), (800, 1000, 820, 1020)), multiple=8)
    assert len(near) == 1 and len(far) == 2
    # regions never overlap: each hole pixel is filled once
    a, b = far
    assert a.top + a.height <= b.top or a.left + a.width <= b.left


def test_regions_are_clipped_to_the_image_and_a_large_one_runs_scaled() -> None:
    (corner,) = plan_regions(_mask(300, 300, (0, 0, 10, 10)), multiple=8)
    assert (corner.top, corner.left) == (0, 0)
    (big,) = plan_regions(_mask(3000, 4000, (1000, 1000, 1800, 2000)), multiple=16)
    assert big.scaled and max(big.run_height, big.run_width) <= MAX_SIDE + 16
    assert big.run_height % 16 == 0 and big.run_width % 16 == 0


def test_no_hole_no_region() -> None:
    assert plan_regions(np.zeros((500, 500), bool), multiple=8) == []


def test_a_large_inpainting_runs_once_per_region_and_keeps_known_pixels(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    editor = make_editor("inpaint", seed=3, tile=64)  # any tiling setting makes a large image "large"
    img = photo(400, 600, seed=1)
    mask = _mask(400, 600, (50, 60, 90, 100), (300, 480, 340, 560))
    shapes = record_forwards(editor, monkeypatch)
    ticks: list[tuple[int, int]] = []
    (out,) = editor.edit_many([(img, mask)], progress=lambda done, total: ticks.append((done, total)))
    assert len(shapes) == 2 and ticks == [(1, 2), (2, 2)]  # two holes far apart: two regions
    assert np.array_equal(out[~mask], img[~mask])  # known pixels bit for bit
    assert not np.array_equal(out[mask], img[mask])  # the holes were filled
    for shape in shapes:  # each region holds its hole and the context around it, not the whole photo
        assert shape[1] < 400 and shape[2] < 600 and shape[1] >= 40 + 2 * CONTEXT_MIN - 8


def test_a_hole_larger_than_a_region_is_filled_scaled_and_still_pastes_known_pixels() -> None:
    editor = make_editor("inpaint", seed=3, tile=64)
    img = photo(700, 900, seed=2)
    mask = _mask(700, 900, (100, 100, 600, 800))
    out = editor.edit(img, mask)
    assert out.shape == img.shape
    assert np.array_equal(out[~mask], img[~mask])
