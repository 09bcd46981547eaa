"""`--strength` / ``strength=``: derain's result blended with the input, as denoisers offer."""

from __future__ import annotations

import numpy as np
import pytest
from tinymodels import make_editor

from ganedit.errors import UsageError


def _photo(dtype: type = np.uint8) -> np.ndarray:
    rng = np.random.default_rng(0)
    peak = np.iinfo(dtype).max
    return (rng.random((40, 56, 3)) * peak).astype(dtype)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_strength_blends_result_and_input(dtype: type) -> None:
    photo = _photo(dtype)
    full = make_editor("derain", seed=1, precision="fp32", flip_average=False).edit(photo)
    assert not np.array_equal(full, photo)  # the tiny model does change the photo
    same = make_editor("derain", seed=1, precision="fp32", flip_average=False, strength=1.0).edit(photo)
    assert np.array_equal(same, full)
    none = make_editor("derain", seed=1, precision="fp32", flip_average=False, strength=0.0).edit(photo)
    assert np.array_equal(none, photo)  # bit-exact: strength 0 is "leave it alone"
    half = make_editor("derain", seed=1, precision="fp32", flip_average=False, strength=0.5).edit(photo)
    expected = (full.astype(np.float64) + photo.astype(np.float64)) / 2
    assert np.abs(half.astype(np.float64) - expected).max() <= 1.0  # one level of rounding


def test_strength_keeps_gray_and_alpha() -> None:
    gray = _photo()[:, :, :1]
    alpha = np.full((40, 56, 1), 77, np.uint8)
    out = make_editor("derain", seed=1, precision="fp32", flip_average=False, strength=0.0).edit(
        np.concatenate([gray, alpha], axis=2)
    )
    assert out.shape == (40, 56, 2)
    assert np.array_equal(out[:, :, :1], gray) and np.array_equal(out[:, :, 1:], alpha)


@pytest.mark.parametrize("value", [-0.1, 1.5, float("nan")])
def test_strength_out_of_range_is_a_usage_error(value: float) -> None:
    with pytest.raises(UsageError, match="strength"):
        make_editor("derain", strength=value)


def test_strength_is_derain_only() -> None:
    with pytest.raises(UsageError, match="derain"):
        make_editor("sketch2photo", strength=0.5)
    assert make_editor("sketch2photo", strength=1.0).strength == 1.0
