"""Editor: any size in, same size out; dtype, gray and alpha kept; masks; tiling without seams."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganedit.archs.pan import PANGenerator
from ganedit.checkpoint import load_checkpoint
from ganedit.errors import CheckpointError, UsageError
from ganedit.runtime.devices import select_device
from ganedit.runtime.editor import Editor
from ganedit.runtime.tiling import tile_starts
from ganedit.tasks import get_task
from tinymodels import make_checkpoint, make_editor, make_info, make_model, record_forwards

PAN_TASKS = ("derain", "inpaint", "sketch2photo")


def photo(h: int, w: int, *, seed: int = 0, dtype: type = np.uint8) -> np.ndarray:
    """A smooth-plus-noise RGB test image (structure at several scales, like a photo)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = 0.5 + 0.25 * np.sin(xx / 17.0)[..., None] + 0.2 * np.cos(yy / 11.0)[..., None] * [1, 0.5, -0.7]
    img = np.clip(base + rng.normal(0, 0.04, (h, w, 3)), 0, 1)
    top = np.iinfo(dtype).max
    return np.rint(img * top).astype(dtype)


def box_mask(h: int, w: int) -> np.ndarray:
    mask = np.zeros((h, w), bool)
    mask[h // 4 : h // 2, w // 3 : 2 * w // 3] = True
    return mask


def mask_for(task: str, h: int, w: int) -> np.ndarray | None:
    return box_mask(h, w) if task == "inpaint" else None


# -- shapes, dtypes, channels --------------------------------------------------------------------------------


@pytest.mark.parametrize("task", PAN_TASKS)
@pytest.mark.parametrize("size", [(37, 53), (1, 1), (2, 3), (64, 8)])
def test_any_size_comes_back_the_same_size(task: str, size: tuple[int, int]) -> None:
    editor = make_editor(task, seed=1)
    h, w = size
    img = photo(h, w)
    out = editor.edit(img, mask_for(task, h, w))
    assert out.shape == (h, w, 3)
    assert out.dtype == np.uint8
    if h * w > 100:
        assert np.abs(out.astype(int) - img).mean() > 1  # the model did something


def test_inpainting_keeps_every_unmasked_pixel_exactly() -> None:
    editor = make_editor("inpaint", seed=3)
    img = photo(61, 47, seed=1)
    mask = box_mask(61, 47)
    out = editor.edit(img, mask)
    assert np.array_equal(out[~mask], img[~mask])
    assert np.abs(out[mask].astype(int) - img[mask]).mean() > 1  # the holes were filled with something new
    # the same through tiles and batches, and for a mask given as 0/255 bytes
    tiled = make_editor("inpaint", seed=3, tile=32, overlap=8).edit(img, mask.astype(np.uint8) * 255)
    assert np.array_equal(tiled[~mask], img[~mask])


def test_mask_is_required_for_inpainting_and_refused_elsewhere() -> None:
    img = photo(16, 16)
    with pytest.raises(UsageError, match="needs a mask"):
        make_editor("inpaint").edit(img)
    with pytest.raises(UsageError, match="takes no mask"):
        make_editor("derain").edit(img, np.zeros((16, 16), bool))
    with pytest.raises(UsageError, match="must match"):
        make_editor("inpaint").edit(img, np.zeros((16, 15), bool))


@pytest.mark.parametrize("task", PAN_TASKS)
def test_alpha_is_carried_through_byte_identical(task: str) -> None:
    rng = np.random.default_rng(5)
    rgba = np.concatenate([photo(30, 41), rng.integers(0, 256, (30, 41, 1), dtype=np.uint8)], axis=2)
    la = rgba[:, :, [0, 3]]
    editor = make_editor(task)
    for img in (rgba, la):
        out = editor.edit(img, mask_for(task, 30, 41))
        assert out.shape[2] == (2 if img.shape[2] == 2 and task != "sketch2photo" else 4)
        assert np.array_equal(out[:, :, -1], img[:, :, -1])


def test_gray_stays_gray_but_sketch2photo_colourises() -> None:
    gray = photo(33, 29)[:, :, 1]
    derain = make_editor("derain")
    assert derain.edit(gray).shape == (33, 29)  # 2-D in, 2-D out
    assert derain.edit(gray[:, :, None]).shape == (33, 29, 1)
    out = make_editor("sketch2photo").edit(gray[:, :, None])
    assert out.shape == (33, 29, 3)
    assert not (np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2]))


def test_uint16_in_uint16_out_with_16_bit_precision() -> None:
    img16 = photo(40, 40, dtype=np.uint16)
    out16 = make_editor("derain").edit(img16)
    assert out16.dtype == np.uint16
    assert np.any(out16 % 257 != 0)  # not merely 8-bit values scaled up
    out8 = make_editor("derain").edit(np.rint(img16 / 257).astype(np.uint8))
    assert np.abs(out16 / 257.0 - out8).mean() < 1.0  # and the same picture as the 8-bit path


def test_bad_pixels_are_refused() -> None:
    editor = make_editor("derain")
    with pytest.raises(UsageError, match="uint8 or uint16"):
        editor.edit(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(UsageError, match=r"C in 1\.\.4"):
        editor.edit(np.zeros((8, 8, 5), np.uint8))


# -- tiling --------------------------------------------------------------------------------------------------


def test_tile_starts_cover_the_image_with_equal_aligned_tiles() -> None:
    for size, tile, stride in [(300, 128, 96), (129, 64, 48), (64, 64, 48), (50, 64, 48)]:
        starts = tile_starts(size, tile, stride)
        assert starts[0] == 0
        assert starts[-1] + min(tile, size) == size  # the last tile is shifted inward, not cut
        assert all(b - a <= stride for a, b in itertools.pairwise(starts))


def _edge_band(editor: Editor, img: np.ndarray, width: int) -> np.ndarray:
    """True within `width` px of every tile edge that lies inside the image."""
    h, w = img.shape[:2]
    plan = editor._plan(h + (-h % editor.multiple), w + (-w % editor.multiple))
    assert plan is not None and len(plan.ys) > 1 and len(plan.xs) > 1
    band = np.zeros((h, w), bool)
    for starts, size, total, axis in ((plan.ys, plan.height, h, 0), (plan.xs, plan.width, w, 1)):
        edges = {s for s in starts if s > 0} | {s + size for s in starts if s + size < total}
        for e in edges:
            index = [slice(None), slice(None)]
            index[axis] = slice(max(0, e - width), e + width)
            band[tuple(index)] = True
    return band


@pytest.mark.parametrize("task", ["derain", "sketch2photo"])  # a large inpainting runs by regions instead
def test_tiles_leave_no_seams(task: str) -> None:
    img = photo(300, 260, seed=2)
    mask = mask_for(task, 300, 260)
    whole = make_editor(task, seed=4, tile=0).edit(img, mask).astype(float)
    tiled_editor = make_editor(task, seed=4, tile=128)
    tiled = tiled_editor.edit(img, mask).astype(float)
    band = _edge_band(tiled_editor, img, 3)
    diff = np.abs(tiled - whole).mean(axis=2)
    # along the tile edges the result is no worse than elsewhere (the differences are rounding flips)
    assert diff[band].mean() <= 1.5 * diff[~band].mean() + 0.02
    assert diff.max() <= 3

    # Control: hard-edged tiles (no overlap, no blending) do show seams, so the test above can fail.
    seamed_editor = make_editor(task, seed=4, tile=128, overlap=0)
    seamed_editor._feather = False
    seamed = seamed_editor.edit(img, mask).astype(float)
    seam_diff = np.abs(seamed - whole).mean(axis=2)
    seam_band = _edge_band(seamed_editor, img, 3)
    assert seam_diff[seam_band].mean() > 4 * seam_diff[~seam_band].mean() + 0.1
    assert seam_diff[seam_band].mean() > 10 * diff[band].mean()


def test_all_tiles_of_an_image_have_one_size_and_are_batched(monkeypatch: pytest.MonkeyPatch) -> None:
    editor = make_editor("derain", tile=64, overlap=16, batch_size=3)
    shapes = record_forwards(editor, monkeypatch)
    out = editor.edit(photo(150, 111))
    assert out.shape == (150, 111, 3)
    assert {s[1:] for s in shapes} == {(64, 64, 3)}
    assert len(shapes) > 1 and all(s[0] <= 3 for s in shapes) and shapes[0][0] == 3
    # padded to 152 x 112, stride 64 - 16 = 48: rows start at 0, 48, 88 (shifted in), columns at 0, 48
    assert sum(s[0] for s in shapes) == 3 * 2


def test_large_images_are_tiled_automatically_on_the_cpu() -> None:
    editor = make_editor("derain")
    assert editor._plan(512, 512) is None
    plan = editor._plan(4000, 6000)
    assert plan is not None and plan.height == plan.width and plan.height <= 1024
    assert make_editor("derain", tile=0)._plan(4000, 6000) is None
    with pytest.raises(UsageError, match="overlap"):
        make_editor("derain", tile=64, overlap=40).edit(photo(100, 100))


# -- batching, precision, devices ----------------------------------------------------------------------------


def test_edit_many_runs_each_image_alone_and_matches_edit_exactly(monkeypatch: pytest.MonkeyPatch) -> None:
    # Images are never batched together: batched forwards round differently (bf16, several threads),
    # and a file's pixels must not depend on which files came with it.
    editor = make_editor("derain", seed=2, batch_size=2)
    items = [(photo(24, 20, seed=s), None) for s in range(5)] + [(photo(17, 31, seed=9), None)]
    singles = [editor.edit(img) for img, _ in items]
    shapes = record_forwards(editor, monkeypatch)
    steps: list[tuple[int, int]] = []
    outs = editor.edit_many(items, progress=lambda done, total: steps.append((done, total)))
    assert [s[0] for s in shapes] == [1] * 6
    assert steps == [(i, 6) for i in range(1, 7)]
    for out, single in zip(outs, singles, strict=True):
        assert np.array_equal(out, single)


def test_precision_choices_on_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    # auto: bf16 only where the CPU has bf16 instructions (elsewhere it is emulated, slower than fp32)
    monkeypatch.setattr("ganedit.runtime.devices.cpu_bf16_native", lambda: False)
    assert make_editor("derain").precision == "fp32"
    monkeypatch.setattr("ganedit.runtime.devices.cpu_bf16_native", lambda: True)
    assert make_editor("derain").precision == "bf16"
    monkeypatch.undo()
    with pytest.raises(UsageError, match="fp16 is not supported on the CPU"):
        make_editor("derain", precision="fp16")
    with pytest.raises(UsageError, match="valid: auto, fp32, fp16, bf16"):
        make_editor("derain", precision="int8")
    img = photo(32, 32)
    bf16 = make_editor("derain", precision="bf16")
    assert bf16.precision == "bf16"
    fp32 = make_editor("derain", precision="fp32")
    assert np.abs(bf16.edit(img).astype(int) - fp32.edit(img)).mean() < 3


def test_flip_averaging_is_the_mean_of_the_image_and_its_mirror_pass() -> None:
    img = photo(40, 24, seed=3)
    plain = make_editor("derain", seed=4, precision="fp32", flip_average=False)
    averaged = make_editor("derain", seed=4, precision="fp32")  # on by default
    assert averaged.flip_average and not plain.flip_average
    expected = (plain.edit(img).astype(float) + plain.edit(img[:, ::-1].copy())[:, ::-1]) / 2
    out = averaged.edit(img)
    assert np.abs(out - expected).max() <= 1  # rounding of the two 8-bit halves
    assert np.abs(out.astype(int) - plain.edit(img)).max() > 1  # a random model is not mirror-symmetric
    # The averaged editor treats an image and its mirror alike, tiled or not.
    tiled = make_editor("derain", seed=4, precision="fp32", tile=16, overlap=4)
    assert np.abs(tiled.edit(img)[:, ::-1].astype(int) - tiled.edit(img[:, ::-1].copy())).max() <= 1


def test_flip_averaging_keeps_the_known_pixels_of_an_inpainting_exact() -> None:
    img = photo(32, 32, seed=5)
    mask = np.zeros((32, 32), dtype=bool)
    mask[8:20, 5:30] = True
    out = make_editor("inpaint", seed=1).edit(img, mask)
    assert np.array_equal(out[~mask], img[~mask])


def test_select_device() -> None:
    assert select_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        assert select_device("auto").type in ("cpu", "mps")
        with pytest.raises(UsageError, match="cuda:1"):
            select_device("cuda:1")
    with pytest.raises(UsageError, match="valid: auto, cpu, cuda, cuda:N, mps"):
        select_device("tpu")


def test_editor_refuses_a_model_for_another_task() -> None:
    model = make_model("derain")
    with pytest.raises(CheckpointError, match="cannot run the 'inpaint' task"):
        Editor(
            model,
            task=get_task("inpaint"),
            info=make_info(model, "derain"),
            name="m",
            sha256=None,
            device=torch.device("cpu"),
        )


def test_forward_is_the_model_alone() -> None:
    editor = make_editor("sketch2photo", precision="fp32", flip_average=False)
    x = torch.rand(2, 3, 16, 24) * 2 - 1
    y = editor.forward(x)
    assert y.shape == x.shape and y.dtype == torch.float32
    with torch.no_grad():
        assert torch.allclose(y, editor.model(x), atol=1e-5)


# -- PIL convenience -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "task", "out_mode"),
    [
        ("RGB", "derain", "RGB"),
        ("RGBA", "derain", "RGBA"),
        ("L", "derain", "L"),
        ("LA", "derain", "LA"),
        ("I;16", "derain", "I;16"),
        ("P", "derain", "RGB"),
        ("L", "sketch2photo", "RGB"),
        ("RGB", "inpaint", "RGB"),
    ],
)
def test_pil_in_pil_out_keeps_the_mode(mode: str, task: str, out_mode: str) -> None:
    rgb = Image.fromarray(photo(21, 34))
    image = (
        Image.fromarray(np.asarray(rgb.convert("L")).astype(np.uint16) * 257)
        if mode == "I;16"
        else rgb.convert(mode)
    )
    mask = Image.fromarray(box_mask(21, 34).astype(np.uint8) * 255) if task == "inpaint" else None
    out = make_editor(task)(image, mask)
    assert out.mode == out_mode
    assert out.size == image.size
    if mode in ("RGBA", "LA"):
        assert out.getchannel("A").tobytes() == image.getchannel("A").tobytes()
    if task == "inpaint":
        known = ~box_mask(21, 34)
        assert np.array_equal(np.asarray(out)[known], np.asarray(image)[known])


# -- inference machinery -----------------------------------------------------------------------------------


def test_batchnorm_folding_keeps_outputs_and_leaves_the_callers_model_alone() -> None:
    for task in PAN_TASKS:
        model = make_model(task, seed=6)
        state = {k: v.clone() for k, v in model.state_dict().items()}
        editor = Editor(
            model,
            task=get_task(task),
            info=make_info(model, task),
            name="m",
            sha256=None,
            device=torch.device("cpu"),
            precision="fp32",
            flip_average=False,
        )
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in editor.model.modules())
        assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
        assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
        x = torch.rand(2, 3, 16, 24) * 2 - 1
        mask = (torch.rand(2, 1, 16, 24) > 0.5).float() if task == "inpaint" else None
        with torch.no_grad():
            assert torch.allclose(editor.forward(x, mask), model(x, mask).clamp(-1e9, 1e9), atol=1e-5)


class _NaNUnderAutocast(PANGenerator):
    """A generator whose low-precision forward goes non-finite, as fp16 overflow does on GPUs."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        y = super().forward(x, mask)
        return y * float("nan") if torch.is_autocast_enabled("cpu") else y


def test_non_finite_low_precision_output_is_recomputed_in_fp32() -> None:
    tiny = make_model("derain", seed=8)
    model = _NaNUnderAutocast(tiny.config)
    model.load_state_dict(tiny.state_dict())
    model.eval()
    kwargs = {"task": get_task("derain"), "info": make_info(model, "derain"), "name": "m", "sha256": None}
    img = photo(20, 28)
    bf16 = Editor(model, device=torch.device("cpu"), precision="bf16", **kwargs).edit(img)
    fp32 = Editor(model, device=torch.device("cpu"), precision="fp32", **kwargs).edit(img)
    assert np.array_equal(bf16, fp32)


def test_checkpoint_file_to_editor(tmp_path: Path) -> None:

    path = make_checkpoint(tmp_path / "inpaint.safetensors", "inpaint", seed=2)
    model, info = load_checkpoint(path, task="inpaint")
    editor = Editor(
        model, task=get_task("inpaint"), info=info, name="tiny", sha256=None, device=select_device("cpu")
    )
    img, mask = photo(45, 38), box_mask(45, 38)
    assert np.array_equal(editor.edit(img, mask), make_editor("inpaint", seed=2).edit(img, mask))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_autocast_matches_cpu() -> None:
    model = make_model("sketch2photo", seed=3)
    kwargs = {"task": get_task("sketch2photo"), "info": make_info(model, "sketch2photo"), "name": "m"}
    gpu = Editor(model, sha256=None, device=select_device("cuda"), **kwargs)
    assert gpu.precision in ("bf16", "fp16")
    img = photo(300, 260)
    cpu_out = Editor(model, sha256=None, device=torch.device("cpu"), **kwargs).edit(img).astype(int)
    gpu_out = gpu.edit(img).astype(int)
    assert np.abs(gpu_out - cpu_out).mean() < 2
    tiled = Editor(model, sha256=None, device=select_device("cuda"), tile=128, **kwargs).edit(img)
    assert np.abs(tiled.astype(int) - gpu_out).mean() < 1


@pytest.mark.slow
def test_24_megapixel_peak_memory_on_cpu() -> None:
    """A 6000 x 4000 photo through the shipped-size de-raining net stays well under 3 GB."""
    script = """
import resource, dataclasses, numpy as np, torch
from ganedit.archs.pan import PANGenerator, preset
from ganedit.checkpoint import CheckpointInfo
from ganedit.runtime.editor import Editor
from ganedit.tasks import get_task
model = PANGenerator(preset("derain"))
info = CheckpointInfo("pan", dataclasses.asdict(model.config), "derain", {})
editor = Editor(model, task=get_task("derain"), info=info, name="m", sha256=None, device=torch.device("cpu"))
img = np.random.default_rng(0).integers(0, 256, (4000, 6000, 3), dtype=np.uint8)
out = editor.edit(img)
assert out.shape == img.shape
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    peak_mib = int(done.stdout.split()[-1]) / 1024
    assert peak_mib < 2048, f"peak RSS {peak_mib:.0f} MiB"
