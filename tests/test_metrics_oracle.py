"""ganedit.eval.metrics against an independent implementation (scikit-image), on random and real images.

Every PSNR/SSIM figure in the model cards comes from ganedit.eval.metrics; comparing it only with itself would
let a definition slip unseen. scikit-image is a test-only dependency.
"""

from __future__ import annotations

import numpy as np
import pytest

skimage = pytest.importorskip("skimage")
from skimage import color, data  # noqa: E402
from skimage.metrics import peak_signal_noise_ratio, structural_similarity  # noqa: E402

from ganedit.eval.metrics import bt601_luma, psnr, ssim  # noqa: E402


def _skimage_ssim_map(a: np.ndarray, b: np.ndarray) -> tuple[float, np.ndarray]:
    return structural_similarity(
        a,
        b,
        data_range=1.0,
        channel_axis=2 if a.ndim == 3 else None,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        full=True,
    )


def _images() -> list[tuple[str, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    out = []
    a = rng.random((40, 56, 3))
    out.append(("random", a, np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1)))
    photo = data.astronaut()[::4, ::4].astype(np.float64) / 255.0  # 128 x 128 real photo
    blurred = (photo + np.roll(photo, 1, 0) + np.roll(photo, 1, 1)) / 3
    out.append(("astronaut", photo, np.clip(blurred + rng.normal(0, 0.02, photo.shape), 0, 1)))
    cam = data.camera()[::4, ::4].astype(np.float64) / 255.0  # gray
    out.append(("camera", cam, np.clip(cam * 0.9 + 0.05, 0, 1)))
    return out


@pytest.mark.parametrize("name,a,b", _images(), ids=lambda v: v if isinstance(v, str) else "")
def test_psnr_and_ssim_match_scikit_image(name: str, a: np.ndarray, b: np.ndarray) -> None:
    assert psnr(a, b) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=1.0), abs=1e-9)
    reference, _ = _skimage_ssim_map(a, b)
    assert ssim(a, b) == pytest.approx(reference, abs=1e-6)


@pytest.mark.parametrize("name,a,b", _images(), ids=lambda v: v if isinstance(v, str) else "")
def test_masked_psnr_and_ssim_match_scikit_image(name: str, a: np.ndarray, b: np.ndarray) -> None:
    rng = np.random.default_rng(1)
    mask = np.zeros(a.shape[:2], bool)
    mask[5:-9, 3:20] = True
    mask[rng.random(mask.shape) < 0.1] = True  # scattered pixels, some in the border band
    selected = (a[mask] - b[mask]) ** 2
    assert psnr(a, b, mask=mask) == pytest.approx(10 * np.log10(1.0 / selected.mean()), abs=1e-9)
    _, ssim_map = _skimage_ssim_map(a, b)
    per_pixel = ssim_map.mean(axis=2) if ssim_map.ndim == 3 else ssim_map
    assert ssim(a, b, mask=mask) == pytest.approx(per_pixel[mask].mean(), abs=1e-6)


def test_bt601_luma_matches_scikit_image_ycbcr() -> None:
    rng = np.random.default_rng(2)
    for rgb in (rng.random((16, 24, 3)), data.astronaut()[::8, ::8] / 255.0):
        expected = color.rgb2ycbcr(rgb)[..., 0] / 255.0  # MATLAB's rgb2ycbcr: Y in [16, 235]
        np.testing.assert_allclose(bt601_luma(rgb), expected, atol=1e-9)


def test_y_channel_psnr_ssim_as_the_deraining_papers_compute_them() -> None:
    """The protocol: 8-bit images -> rgb2ycbcr Y -> PSNR / SSIM with peak 255."""
    rng = np.random.default_rng(3)
    clean = (rng.random((48, 48, 3)) * 255).round().astype(np.uint8)
    rainy = np.clip(clean.astype(int) + (rng.random((48, 48, 1)) < 0.05) * 120, 0, 255).astype(np.uint8)
    y_clean = color.rgb2ycbcr(clean)[..., 0]
    y_rainy = color.rgb2ycbcr(rainy)[..., 0]
    ours_psnr = psnr(bt601_luma(rainy / 255.0), bt601_luma(clean / 255.0))
    assert ours_psnr == pytest.approx(peak_signal_noise_ratio(y_clean, y_rainy, data_range=255.0), abs=1e-9)
    ours_ssim = ssim(bt601_luma(rainy / 255.0), bt601_luma(clean / 255.0))
    theirs = structural_similarity(
        y_clean, y_rainy, data_range=255.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    assert ours_ssim == pytest.approx(theirs, abs=1e-6)
