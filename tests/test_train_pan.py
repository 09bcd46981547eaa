"""PAN training (`ganedit.train.pan`, `.data`, `.state`): what users of ``ganedit train pan`` rely on.

Tiny everything: 32 px crops, 4-channel discriminator, a generator of a few thousand parameters, a handful
of 48-80 px photos made here. Each run is a few steps on one thread.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from ganedit.checkpoint import load_checkpoint, read_info
from ganedit.cli import main as cli_main
from ganedit.data import synth
from ganedit.errors import ImageError, UsageError
from ganedit.train import state as st
from ganedit.train.data import DataOptions, open_training_data
from ganedit.train.pan import (
    PANTrainConfig,
    config_to_toml,
    export,
    load_config,
    resume_config,
    train,
)

TINY_GENERATORS: dict[str, dict[str, Any]] = {
    "derain": {"ngf": 4, "depth": 2, "blocks": 1},
    "inpaint": {"ngf": 4, "depth": 3},
    "sketch2photo": {"ngf": 4, "depth": 3},
}


@pytest.fixture(autouse=True)
def restore_threads() -> Iterator[None]:
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _photo(seed: int, height: int, width: int) -> np.ndarray:
    """A smooth colour gradient with a few edges and some noise: something to draw, rain on and fill."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack(
        [
            128 + 100 * np.sin(xx / (7 + seed) + seed),
            128 + 100 * np.cos(yy / (5 + seed)),
            (xx + yy) * 255 / (height + width),
        ],
        axis=-1,
    )
    base[height // 3 : height // 2, width // 4 : width // 2] = rng.integers(0, 255, 3)  # a block: edges
    return np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("photos")
    (root / "sub").mkdir()
    for i in range(5):
        folder = root / "sub" if i == 4 else root
        Image.fromarray(_photo(i, 48 + 8 * i, 80 - 4 * i)).save(folder / f"photo{i}.png")
    return root


def _config(task: str, data: Path, out: Path, **values: Any) -> PANTrainConfig:
    settings: dict[str, Any] = {
        "crop": 32,
        "batch_size": 2,
        "ndf": 4,
        "generator": TINY_GENERATORS[task],
        "downscale": (1.0, 1.5),
        "log_every": 1,
        "sample_every": 2,
        "save_every": 2,
        "workers": 0,
        "threads": 1,
        "precision": "fp32",
        "device": "cpu",
        "val_samples": 2,
        "val_fraction": 0.2,
        **values,
    }
    overrides = [
        f"{k}={json.dumps(v) if not isinstance(v, dict) else _inline(v)}" for k, v in settings.items()
    ]
    return load_config(task, None, overrides, data=str(data), out=str(out))


def _inline(table: dict[str, Any]) -> str:
    return "{" + ", ".join(f"{k} = {json.dumps(v)}" for k, v in table.items()) + "}"


# ------------------------------------------------------------------------------------------ smoke runs


@pytest.mark.parametrize("task", ["derain", "inpaint", "sketch2photo"])
def test_smoke_run_writes_state_samples_and_a_checkpoint_the_cli_uses(
    task: str, photos: Path, tmp_path: Path
) -> None:
    events: list[dict] = []
    out = tmp_path / "run"
    workers = 1 if task == "derain" else 0  # one run through real data-loader worker processes
    config = _config(task, photos, out, steps=3, workers=workers)
    model_path = train(config, on_log=events.append)

    assert model_path == out / "model.safetensors"
    assert (out / "config.toml").is_file()
    assert st.latest_state(out / "state").name == "step-00000003.safetensors"
    grids = sorted((out / "samples").glob("*.png"))
    assert [g.name for g in grids] == ["step-00000002.png", "step-00000003.png"]
    with Image.open(grids[-1]) as grid:  # 2 val rows x (input | output | target), 2 px gaps
        assert grid.size == (3 * 32 + 2 * 2, 2 * 32 + 2)
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if r["event"] == "log"] == [1, 2, 3]
    assert all(np.isfinite(r["loss_d"]) and np.isfinite(r["loss_g"]) for r in log if r["event"] == "log")
    assert {"start", "log", "val", "save", "done"} <= {e["event"] for e in events}

    model, info = load_checkpoint(model_path, task=task)
    assert info.arch == "pan"
    assert info.metadata["ganedit.train.steps"] == "3"
    assert json.loads(info.metadata["ganedit.train.config"])["task"] == task
    assert json.loads(info.metadata["ganedit.train.data"])["files"] == 4  # 5 photos, 1 held out
    assert model.config.ngf == 4

    image = tmp_path / "in.png"
    Image.fromarray(_photo(9, 40, 52)).save(image)
    args = [task, str(image), "-o", str(tmp_path / "out"), "--weights", str(model_path)]
    if task == "inpaint":
        mask = np.zeros((40, 52), np.uint8)
        mask[10:20, 10:30] = 255
        Image.fromarray(mask).save(tmp_path / "mask.png")
        args += ["--mask", str(tmp_path / "mask.png")]
    result = CliRunner().invoke(cli_main, args)
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "out" / "in.png") as edited:
        assert edited.size == (52, 40)


def test_existing_run_is_not_overwritten(photos: Path, tmp_path: Path) -> None:
    config = _config("derain", photos, tmp_path / "run", steps=1, sample_every=0)
    train(config)
    with pytest.raises(UsageError, match="already holds a training run"):
        train(config)
    with pytest.raises(UsageError, match="cannot change lr"):
        train(_config("derain", photos, tmp_path / "run", steps=2, sample_every=0, lr=1e-3), resume=True)
    with pytest.raises(UsageError, match="nothing to resume"):
        resume_config(tmp_path / "elsewhere")


# -------------------------------------------------------------------------------------------- resume


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


def test_pixel_only_phase_skips_the_discriminator_but_trains_the_generator_the_same(
    photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ganedit.train import pan

    settings: dict[str, Any] = {"steps": 2, "gan_weight": 0.0, "lambdas": [0, 0, 0, 0], "pixel_l1": 10.0}
    events: list[dict] = []
    fast = train(_config("derain", photos, tmp_path / "fast", **settings), on_log=events.append)
    start = next(e for e in events if e["event"] == "start")
    assert start["discriminator"] == "idle (pixel loss only)"
    logs = [e for e in events if e["event"] == "log"]
    assert all(e["loss_d"] == 0 and e["pixel_l1"] > 0 for e in logs)

    monkeypatch.setattr(pan._Run, "pixel_only", property(lambda self: False))  # the full D + T step
    full = train(_config("derain", photos, tmp_path / "full", **settings))
    a, b = _tensors(fast), _tensors(full)
    assert a.keys() == b.keys()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)  # D never reached T's update

    with pytest.raises(UsageError, match="nothing to train"):
        train(_config("derain", photos, tmp_path / "none", **{**settings, "pixel_l1": 0.0}))


def test_gate_loss_labels_dry_pairs_and_closes_the_residual_gate_on_them(
    photos: Path, tmp_path: Path
) -> None:
    gated = {**TINY_GENERATORS["derain"], "residual_gate": True}
    pixel: dict[str, Any] = {"gan_weight": 0.0, "lambdas": [0, 0, 0, 0], "pixel_l1": 1.0}
    base: dict[str, Any] = {
        "gate_weight": 1.0,
        "lr": 0.01,
        "generator": gated,
        "sample_every": 0,
        "save_every": 0,
    }

    def gate_log(name: str, **settings: Any) -> list[float]:
        events: list[dict] = []
        train(_config("derain", photos, tmp_path / name, **base, **settings), on_log=events.append)
        return [e["gate"] for e in events if e["event"] == "log"]

    # rainy pairs only: the gate starts at strength 1, which is their label, so its loss starts at 0
    assert gate_log("rain", steps=1, clean_fraction=0.0, **pixel) == [0.0]
    # (nearly) all pairs dry: label 0, the loss starts near gate_weight x 1 and training closes the gate
    dry = gate_log("dry", steps=20, clean_fraction=0.99, **pixel)
    assert dry[0] > 0.9 and dry[-1] < 0.5 * dry[0]
    # the adversarial step takes the gate's loss too
    assert all(g > 0 for g in gate_log("gan", steps=2, clean_fraction=0.99, gan_weight=1.0))
    with pytest.raises(UsageError, match="residual_gate"):
        train(_config("derain", photos, tmp_path / "no-gate", gate_weight=1.0))
    with pytest.raises(UsageError, match="gate_weight"):
        train(_config("derain", photos, tmp_path / "negative", gate_weight=-1.0))


def test_squared_pixel_term_alone_trains_the_generator_the_same_in_both_steps(
    photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ganedit.train import pan

    settings: dict[str, Any] = {
        "steps": 2,
        "gan_weight": 0.0,
        "lambdas": [0, 0, 0, 0],
        "pixel_l1": 0.0,
        "pixel_l2": 10.0,
    }
    events: list[dict] = []
    fast = train(_config("derain", photos, tmp_path / "fast", **settings), on_log=events.append)
    # T's loss is 10 x its mean squared error: more than 0, at most 2 x the mean absolute error (logged as
    # pixel_l1) since |T(x) - y| <= 2 in [-1, 1].
    logs = [e for e in events if e["event"] == "log"]
    assert logs and all(0 < e["loss_g"] <= 10 * 2 * e["pixel_l1"] for e in logs)

    monkeypatch.setattr(pan._Run, "pixel_only", property(lambda self: False))  # the full D + T step
    full = train(_config("derain", photos, tmp_path / "full", **settings))
    a, b = _tensors(fast), _tensors(full)
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)

    with pytest.raises(UsageError, match="pixel_l2 and gate_weight must be >= 0"):
        train(_config("derain", photos, tmp_path / "neg", **{**settings, "pixel_l2": -1.0}))


@pytest.mark.parametrize("ema", [0.0, 0.5])
def test_interrupted_and_resumed_run_matches_the_straight_run_bit_for_bit(
    photos: Path, tmp_path: Path, ema: float
) -> None:
    steps = 6

    def batches(run: Path) -> list[tuple[int, str, str]]:
        lines = (run / "log.jsonl").read_text().splitlines()
        return [
            (r["step"], r["batch"], r["data_digest"]) for r in map(json.loads, lines) if r["event"] == "log"
        ]

    straight = tmp_path / "straight"
    # with a learning-rate decay over the last 4 steps: the schedule must resume exactly too
    train(_config("derain", photos, straight, steps=steps, save_every=0, lr_decay_steps=4, ema=ema))
    logged = [
        r["lr"] for r in map(json.loads, (straight / "log.jsonl").read_text().splitlines()) if "lr" in r
    ]
    assert logged == pytest.approx([2e-4, 2e-4, 2e-4, 1.5e-4, 1e-4, 0.5e-4])

    resumed = tmp_path / "resumed"

    def interrupt_at_3(record: dict) -> None:
        if record.get("event") == "log" and record["step"] == 3:
            raise KeyboardInterrupt

    # save_every=2: the interrupt at step 3 must save a state of its own (step 3), not fall back to 2
    with pytest.raises(KeyboardInterrupt):
        train(
            _config("derain", photos, resumed, steps=steps, save_every=2, lr_decay_steps=4, ema=ema),
            on_log=interrupt_at_3,
        )
    assert st.latest_state(resumed / "state").name == "step-00000003.safetensors"
    assert (resumed / "model.safetensors").is_file()  # exported on the way out too

    # --resume RUN_DIR alone: the config comes from RUN_DIR/config.toml; a worker process this time, to
    # show that the data order does not depend on how the samples are loaded
    config = resume_config(resumed, ["workers=1"])
    assert config.steps == steps and config.lr == 2e-4
    train(config, resume=True)

    assert batches(resumed) == batches(straight)
    assert len(batches(straight)) == steps
    assert len({fp for _, fp, _ in batches(straight)}) == steps  # every batch differs

    a = _tensors(st.latest_state(straight / "state"))
    b = _tensors(st.latest_state(resumed / "state"))
    assert a.keys() == b.keys()
    mismatched = [k for k in a if not torch.equal(a[k], b[k])]
    assert not mismatched, f"not bit-for-bit: {mismatched[:5]}"
    ga, gb = _tensors(straight / "model.safetensors"), _tensors(resumed / "model.safetensors")
    assert all(torch.equal(ga[k], gb[k]) for k in ga)

    # extending a finished run: more steps on resume
    more = resume_config(resumed, steps=steps + 1)
    train(more, resume=True)
    assert read_info(resumed / "model.safetensors").metadata["ganedit.train.steps"] == str(steps + 1)


def test_moving_average_is_what_is_exported(photos: Path, tmp_path: Path) -> None:
    """ema: the state keeps an exponential moving average of T beside T, updated after every step, and the
    exported model is the average, not the last iterate."""
    run = tmp_path / "run"
    train(_config("derain", photos, run, steps=3, save_every=1, keep_states=3, ema=0.75))
    states = [_tensors(run / "state" / f"step-{k:08d}.safetensors") for k in (2, 3)]
    exported = _tensors(run / "model.safetensors")
    last = states[1]
    for name, value in exported.items():
        assert torch.equal(value, last[f"G_ema.{name}"])
        if value.is_floating_point():  # the average moved a quarter of the way from its last value to T's
            expected = 0.75 * states[0][f"G_ema.{name}"] + 0.25 * last[f"G.{name}"]
            torch.testing.assert_close(value, expected, rtol=1e-5, atol=1e-6)
        else:  # counters (batch-norm's batches seen) are T's
            assert torch.equal(value, last[f"G.{name}"])
    weights = [k for k in exported if k.endswith("weight") and exported[k].dim() == 4]
    assert any(not torch.equal(exported[k], last[f"G.{k}"]) for k in weights)  # not T itself
    assert any(not exported[k].is_floating_point() for k in exported)  # the counters were checked
    with pytest.raises(UsageError, match="ema"):
        _config("derain", photos, tmp_path / "bad", ema=1.0).validate()


def test_sigterm_finishes_the_step_saves_a_state_and_exports(photos: Path, tmp_path: Path) -> None:
    """`kill`, a batch scheduler or a container stop sends SIGTERM: the run must not lose the steps since
    its last periodic save (a 256 px derain run on CPU saves every 500 steps, ~25 minutes)."""
    import signal

    run = tmp_path / "run"

    def terminate_at_3(record: dict) -> None:
        if record.get("event") == "log" and record["step"] == 3:
            os.kill(os.getpid(), signal.SIGTERM)

    def outside(signum: int, frame: Any) -> None:  # only reached when training does not handle it
        pass

    previous = signal.signal(signal.SIGTERM, outside)
    try:
        with pytest.raises(KeyboardInterrupt):
            train(_config("derain", photos, run, steps=6, save_every=0), on_log=terminate_at_3)
        assert signal.getsignal(signal.SIGTERM) is outside  # the handler is put back
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert st.latest_state(run / "state").name == "step-00000003.safetensors"
    assert read_info(run / "model.safetensors").metadata["ganedit.train.steps"] == "3"


def test_learning_rate_schedule_is_constant_then_linear_to_zero() -> None:
    from ganedit.train.pan import scheduled_lr

    assert [scheduled_lr(1.0, s, 10, 4) for s in range(10)] == [1, 1, 1, 1, 1, 1, 1, 0.75, 0.5, 0.25]
    assert [scheduled_lr(1.0, s, 10, 0) for s in range(10)] == [1.0] * 10
    assert scheduled_lr(1.0, 12, 10, 4) == 0.0  # past the end (a run extended without more decay)


def test_state_has_no_pickle_and_optimizer_round_trips(tmp_path: Path) -> None:
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.5, 0.999))
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    tensors, meta = st.flatten_optimizer(opt.state_dict(), "opt")
    path = st.save_state(tmp_path, 7, tensors, {"opt": meta})
    raw = path.read_bytes()
    assert b"\x80\x04" not in raw[:64]  # not a pickle; safetensors starts with its header length
    loaded, document = st.load_state(path)
    assert document["step"] == 7
    restored = torch.optim.Adam(torch.nn.Linear(3, 2).parameters(), lr=0.5)
    restored.load_state_dict(st.unflatten_optimizer(loaded, document["opt"], "opt"))
    want, got = opt.state_dict(), restored.state_dict()
    assert got["param_groups"][0]["betas"] == (0.5, 0.999)
    assert got["param_groups"][0]["lr"] == 1e-3
    for pid in want["state"]:
        for key, value in want["state"][pid].items():
            assert torch.equal(got["state"][pid][key], value)
    for step in (8, 9, 10):
        st.save_state(tmp_path, step, tensors, {"opt": meta}, keep=2)
    assert [p.name for p in sorted(tmp_path.glob("step-*"))] == [
        "step-00000009.safetensors",
        "step-00000010.safetensors",
    ]


# ------------------------------------------------------------------------------------- paired folders


def _options(task: str = "derain", **kw: Any) -> DataOptions:
    return DataOptions(task=task, crop=32, paired_downscale=(1.0, 1.0), val_fraction=0.0, **kw)


def test_rain_models_and_dry_pairs(photos: Path) -> None:
    """derain data: the streak synthesiser, the mix, and dry pairs (input = target) at the asked share."""
    opts = {"downscale": (1.0, 1.5)}
    classic = open_training_data(photos, None, _options(**opts), seed=1).train
    explicit = open_training_data(photos, None, _options(rain="classic", clean_fraction=0.0, **opts), seed=1)
    # the defaults draw nothing extra: old runs resume to the same pairs
    assert all(torch.equal(classic[i]["input"], explicit.train[i]["input"]) for i in range(4))
    streaks = open_training_data(photos, None, _options(rain="streaks", **opts), seed=1).train
    assert not torch.equal(classic[0]["input"], streaks[0]["input"])
    assert torch.equal(classic[0]["target"], streaks[0]["target"])  # same crop, other rain

    dry = open_training_data(photos, None, _options(rain="mixed", clean_fraction=0.25, **opts), seed=1).train
    items = [dry[i] for i in range(200)]
    same = [torch.equal(item["input"], item["target"]) for item in items]
    assert 0.15 < sum(same) / len(same) < 0.35
    again = open_training_data(
        photos, None, _options(rain="mixed", clean_fraction=0.25, **opts), seed=1
    ).train
    assert all(torch.equal(items[i]["input"], again[i]["input"]) for i in range(0, 200, 17))  # deterministic
    fine = open_training_data(photos, None, _options(rain="fine", **opts), seed=1).train
    assert not torch.equal(fine[0]["input"], streaks[0]["input"])
    assert not torch.equal(fine[0]["input"], classic[0]["input"])
    assert torch.equal(fine[0]["target"], classic[0]["target"])
    fine_again = open_training_data(photos, None, _options(rain="fine", **opts), seed=1).train
    assert all(torch.equal(fine[i]["input"], fine_again[i]["input"]) for i in range(3))
    with pytest.raises(UsageError, match="rain"):
        _options(rain="drizzle")
    with pytest.raises(UsageError, match="clean_fraction"):
        _options(clean_fraction=1.0)


def test_grey_pairs_are_black_and_white_rain_included(photos: Path) -> None:
    """grey_fraction: that share of the pairs is black-and-white, the (possibly tinted) rain too; the rest
    keep their colour, and the default draws nothing extra (old runs get the same pairs)."""
    opts: dict[str, Any] = {"downscale": (1.0, 1.5), "rain": "all"}
    colour = open_training_data(photos, None, _options(**opts), seed=1).train
    explicit = open_training_data(photos, None, _options(grey_fraction=0.0, **opts), seed=1).train
    assert all(torch.equal(colour[i]["input"], explicit[i]["input"]) for i in range(4))
    grey = open_training_data(photos, None, _options(grey_fraction=0.3, **opts), seed=1).train

    def is_grey(image: torch.Tensor) -> bool:
        return bool(torch.allclose(image[0], image[1]) and torch.allclose(image[1], image[2]))

    items = [grey[i] for i in range(100)]
    flags = [is_grey(item["target"]) for item in items]
    assert 0.15 < sum(flags) / len(flags) < 0.45
    for item, flag in zip(items, flags, strict=True):
        assert is_grey(item["input"]) == flag  # rain greyed with its photo
        assert not torch.equal(item["input"], item["target"])  # still a rainy pair
    with pytest.raises(UsageError, match="grey_fraction"):
        _options(grey_fraction=1.5)


def test_additive_rain_pairs_keep_the_hue_of_the_scene(tmp_path: Path) -> None:
    """additive_fraction: that share of the rainy pairs has its streaks added to the scene (O = B + S,
    as the benchmark sets were made), so on a yellow photo the rain raises blue about as much as red,
    where the synthesisers' own blends raise blue about twice as much; the default draws nothing extra."""
    folder = tmp_path / "yellow"
    folder.mkdir()
    Image.fromarray(np.full((80, 80, 3), (153, 102, 51), np.uint8)).save(folder / "yellow.png")
    opts: dict[str, Any] = {"downscale": (1.0, 1.0), "rain": "fine", "flip": False}
    plain = open_training_data(folder, None, _options(**opts), seed=1).train
    explicit = open_training_data(folder, None, _options(additive_fraction=0.0, **opts), seed=1).train
    assert all(torch.equal(plain[i]["input"], explicit[i]["input"]) for i in range(4))

    def blue_to_red(data: Any) -> float:
        ratios = []
        for i in range(12):
            gain = data[i]["input"] - data[i]["target"]
            lit = (gain[0] > 0.02) & (data[i]["input"].amax(0) < 0.99)  # streak pixels, not clipped
            ratios.append((gain[2][lit] / gain[0][lit]).median().item())
        return float(np.median(ratios))

    added = open_training_data(folder, None, _options(additive_fraction=1.0, **opts), seed=1).train
    assert blue_to_red(added) < 1.5 and blue_to_red(plain) > 1.8
    with pytest.raises(UsageError, match="additive_fraction"):
        _options(additive_fraction=1.5)


def test_striped_surfaces_are_part_of_the_scene_in_training_crops_only(photos: Path) -> None:
    """stripe_fraction: that share of the training crops gets a striped surface painted in before the rain
    is made, so it is in the target as well as the input (scene to keep, not rain to remove): a dry pair
    stays input = target. Validation crops never get one and the default draws nothing extra."""
    opts: dict[str, Any] = {"downscale": (1.0, 1.5), "rain": "fine"}
    plain = open_training_data(photos, None, _options(**opts), seed=1).train
    explicit = open_training_data(photos, None, _options(stripe_fraction=0.0, **opts), seed=1).train
    assert all(torch.equal(plain[i]["input"], explicit[i]["input"]) for i in range(4))
    striped = open_training_data(photos, None, _options(stripe_fraction=1.0, **opts), seed=1).train
    for i in range(6):
        assert not torch.equal(striped[i]["target"], plain[i]["target"])
        # bands darker than the photo under them: painted into the clean target, not rain
        assert (striped[i]["target"] < plain[i]["target"] - 0.3).any()
    dry = open_training_data(photos, None, _options(stripe_fraction=1.0, clean_fraction=0.99, **opts), seed=2)
    assert all(torch.equal(dry.train[i]["input"], dry.train[i]["target"]) for i in range(4))
    split = {"task": "derain", "crop": 32, "val_fraction": 0.4, **opts}
    validation = open_training_data(photos, None, DataOptions(stripe_fraction=1.0, **split), seed=1)
    reference = open_training_data(photos, None, DataOptions(**split), seed=1)
    assert validation.val is not None and reference.val is not None
    assert torch.equal(validation.val[0]["target"], reference.val[0]["target"])
    with pytest.raises(UsageError, match="stripe_fraction"):
        _options(stripe_fraction=-0.1)


def test_quarter_turns_turn_the_photo_not_the_rain(
    photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """quarter_turn: that share of the clean crops is turned 90 degrees (the same region, transposed) and
    the rain is drawn on the turned crop; the default draws nothing extra, validation crops and stored pairs
    are never turned."""
    opts: dict[str, Any] = {"downscale": (1.0, 1.5), "rain": "streaks"}
    plain = open_training_data(photos, None, _options(**opts), seed=1).train
    explicit = open_training_data(photos, None, _options(quarter_turn=0.0, **opts), seed=1).train
    assert all(torch.equal(plain[i]["input"], explicit[i]["input"]) for i in range(4))
    rained_on: list[torch.Tensor] = []
    add_rain = synth.add_rain

    def spy(image: torch.Tensor, *args: Any, **kw: Any) -> torch.Tensor:
        rained_on.append(image.clone())
        return add_rain(image, *args, **kw)

    monkeypatch.setattr(synth, "add_rain", spy)
    turned = open_training_data(photos, None, _options(quarter_turn=1.0, **opts), seed=1).train
    for i in range(6):
        target = turned[i]["target"]
        # the rain is synthesised on the turned crop (keeping its own angle), not turned with the photo
        torch.testing.assert_close(rained_on[-1] * 2 - 1, target, rtol=0, atol=1e-6)
        assert torch.equal(target, plain[i]["target"].transpose(1, 2))
    monkeypatch.undo()
    half = open_training_data(photos, None, _options(quarter_turn=0.5, **opts), seed=1).train
    flags = []
    for i in range(80):
        target, reference = half[i]["target"], plain[i]["target"]
        assert torch.equal(target, reference) or torch.equal(target, reference.transpose(1, 2))
        flags.append(not torch.equal(target, reference))
    assert 20 < sum(flags) < 60
    split = {"task": "derain", "crop": 32, "val_fraction": 0.4, **opts}
    validation = open_training_data(photos, None, DataOptions(quarter_turn=1.0, **split), seed=1)
    reference = open_training_data(photos, None, DataOptions(**split), seed=1)
    assert validation.val is not None and reference.val is not None
    assert torch.equal(validation.val[0]["target"], reference.val[0]["target"])

    for kind in ("input", "target"):
        (tmp_path / kind).mkdir()
    stripes = np.zeros((40, 40, 3), np.uint8)
    stripes[:, ::4] = 255  # vertical lines: a turn would make them horizontal
    Image.fromarray(stripes).save(tmp_path / "target" / "a.png")
    Image.fromarray(255 - stripes).save(tmp_path / "input" / "a.png")
    pairs = open_training_data(tmp_path, None, _options(quarter_turn=1.0), seed=3).train
    for i in range(8):
        target = pairs[i]["target"]
        assert torch.equal(target[:, 0], target[:, -1])  # rows identical: the lines are still vertical
    with pytest.raises(UsageError, match="quarter_turn"):
        _options(quarter_turn=1.5)


def test_rain_mixes_draw_each_named_synthesiser(photos: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """rain = "all": every sample's rain comes from one of the three synthesisers, each about a third;
    names joined by "+" draw each of them with equal odds; unknown names are refused."""
    used: list[str] = []
    for name, sampler in list(synth.RAIN_SAMPLERS.items()):

        def spy(*args: Any, _name: str = name, _sampler: Any = sampler, **kw: Any) -> Any:
            used.append(_name)
            return _sampler(*args, **kw)

        monkeypatch.setitem(synth.RAIN_SAMPLERS, name, spy)
    data = open_training_data(photos, None, _options(rain="all", downscale=(1.0, 1.5)), seed=1).train
    first = [data[i]["input"] for i in range(90)]
    assert len(used) == 90 and all(15 < used.count(n) < 45 for n in ("classic", "streaks", "fine"))
    assert torch.equal(first[7], data[7]["input"])  # a sample is a function of its seed
    # "all" stays the three synthesisers its recorded runs drew from; a list names any others
    assert "faint" in synth.RAIN_SAMPLERS and "faint" not in used
    used.clear()
    listed = open_training_data(
        photos, None, _options(rain="classic+streaks+fine", downscale=(1.0, 1.5)), seed=1
    )
    assert all(torch.equal(first[i], listed.train[i]["input"]) for i in range(0, 90, 11))  # "all", spelt out
    used.clear()
    mix = open_training_data(photos, None, _options(rain="fine+faint", downscale=(1.0, 1.5)), seed=1).train
    for i in range(60):
        mix[i]
    assert len(used) == 60 and all(15 < used.count(n) < 45 for n in ("fine", "faint"))
    for bad in ("fine+drizzle", "", "fine+", "all+faint"):
        with pytest.raises(UsageError, match="rain"):
            _options(rain=bad)


def test_input_target_folders_are_matched_by_stem(tmp_path: Path) -> None:
    for kind in ("input", "target"):
        (tmp_path / kind).mkdir()
    for i, stem in enumerate(["a", "b", "c"]):
        target = _photo(i, 40, 48 + 8 * i)
        # input = negative of its target, saved in another format: pairing must go by stem
        Image.fromarray(target).save(tmp_path / "target" / f"{stem}.png")
        Image.fromarray(255 - target).save(tmp_path / "input" / f"{stem}.bmp")
    data = open_training_data(tmp_path, None, _options(), seed=3)
    assert data.layout == "pairs" and data.description["files"] == 3
    for index in range(12):
        item = data.train[index]
        assert item["input"].shape == item["target"].shape == (3, 32, 32)
        torch.testing.assert_close(item["input"], -item["target"], atol=1e-6, rtol=0)
    again = open_training_data(tmp_path, None, _options(), seed=3)
    assert torch.equal(again.train[5]["target"], data.train[5]["target"])  # a pure function of the index

    (tmp_path / "input" / "c.bmp").unlink()
    with pytest.raises(UsageError, match="no input/c"):
        open_training_data(tmp_path, None, _options(), seed=3)
    Image.fromarray(_photo(0, 40, 40)).save(tmp_path / "input" / "c.bmp")
    with pytest.raises(ImageError, match="same size"):
        open_training_data(tmp_path, None, _options(), seed=3)


def test_side_by_side_pairs_split_in_halves(tmp_path: Path) -> None:
    a = np.zeros((40, 40, 3), np.uint8)
    a[..., 0] = 220  # A is red
    b = np.zeros((40, 40, 3), np.uint8)
    b[..., 2] = 220  # B is blue
    Image.fromarray(np.concatenate([a, b], axis=1)).save(tmp_path / "pair.png")
    for direction, (inp, tgt) in {"AtoB": (0, 2), "BtoA": (2, 0)}.items():
        data = open_training_data(
            tmp_path, None, _options(layout="side-by-side", direction=direction), seed=0
        )
        item = data.train[0]
        assert float(item["input"][inp].mean()) > 0.5 > float(item["input"][tgt].mean())
        assert float(item["target"][tgt].mean()) > 0.5 > float(item["target"][inp].mean())
    # never guessed: a wide picture in a photos folder is a photo
    assert open_training_data(tmp_path, None, _options(), seed=0).layout == "photos"


def test_inpaint_pairs_use_the_mask_folder(tmp_path: Path) -> None:
    (tmp_path / "target").mkdir()
    (tmp_path / "mask").mkdir()
    Image.fromarray(_photo(1, 32, 32)).save(tmp_path / "target" / "x.png")
    mask = np.zeros((32, 32), np.uint8)
    mask[:, :16] = 255
    Image.fromarray(mask).save(tmp_path / "mask" / "x.png")
    # quarter_turn never turns stored pairs: the holes stay in the left half
    for turn in (0.0, 1.0):
        data = open_training_data(tmp_path, None, _options("inpaint", flip=False, quarter_turn=turn), seed=0)
        item = data.train[0]
        assert data.layout == "pairs"
        assert float(item["mask"][0, :, :16].min()) == 1.0 and float(item["mask"][0, :, 16:].max()) == 0.0


def test_holdout_by_fraction_and_val_folder(photos: Path, tmp_path: Path) -> None:
    options = DataOptions(task="derain", crop=32, downscale=(1.0, 1.0), val_fraction=0.4, val_samples=3)
    data = open_training_data(photos, None, options, seed=0)
    assert data.description["files"] == 3 and data.description["val_files"] == 2
    val = data.val_batch()
    assert val is not None and val["input"].shape == (3, 3, 32, 32)
    assert not torch.equal(val["input"], val["target"])  # rain was added
    # whole files are held out: no validation photo is a training photo
    train_names = {s.name for s in data.train.sources}
    assert train_names.isdisjoint({s.name for s in data.val.sources})
    separate = open_training_data(photos, photos / "sub", options, seed=0)
    assert separate.description["files"] == 5 and separate.description["val_files"] == 1


# --------------------------------------------------------------------------------------------- config


def test_config_precedence_and_unknown_keys(tmp_path: Path) -> None:
    file = tmp_path / "pan.toml"
    file.write_text('task = "derain"\nlr = 1e-3\nbatch_size = 2\nsteps = 100\n[generator]\nngf = 8\n')
    config = load_config(
        "derain", file, ["lr=5e-4", "generator.blocks=2", "lambdas=[1, 2, 3, 4]"], data="d", out="o", steps=5
    )
    assert config.lr == 5e-4  # --set beats the file
    assert config.batch_size == 2  # the file beats the defaults
    assert config.steps == 5  # the command line beats the file
    assert config.crop == 96  # the derain preset
    assert config.generator == {"ngf": 8, "blocks": 2}
    assert config.lambdas == (1.0, 2.0, 3.0, 4.0)
    assert config.generator_config().ngf == 8 and config.generator_config().depth == 3
    assert load_config("derain", file, ["steps=7"], data="d", out="o", steps=5).steps == 7  # --set > cli
    assert load_config("inpaint", None, [], data="d", out="o").crop == 128
    assert load_config("derain", None, ["data=some/folder"], out="o").data == "some/folder"  # unquoted

    with pytest.raises(UsageError, match=r"unknown config key 'lrate'.*did you mean 'lr'"):
        load_config("derain", None, ["lrate=1"], data="d", out="o")
    file.write_text("bach_size = 3\n")
    with pytest.raises(UsageError, match=r"bach_size.*pan\.toml"):
        load_config("derain", file, [], data="d", out="o")
    with pytest.raises(UsageError, match="unknown generator setting 'width'"):
        load_config("derain", None, ["generator.width=3"], data="d", out="o")
    with pytest.raises(UsageError, match="must be an integer"):
        load_config("derain", None, ["batch_size=2.5"], data="d", out="o")
    with pytest.raises(UsageError, match="multiple of 8"):
        load_config("derain", None, ["crop=100"], data="d", out="o")
    with pytest.raises(UsageError, match=r"pixel_pool must .* divide crop 96"):
        load_config("derain", None, ["pixel_pool=5"], data="d", out="o")
    assert load_config("inpaint", None, ["pixel_pool=4"], data="d", out="o").pixel_pool == 4
    with pytest.raises(UsageError, match="for task 'inpaint'"):
        file.write_text('task = "inpaint"\n')
        load_config("derain", file, [], data="d", out="o")
    with pytest.raises(UsageError, match="missing required"):
        load_config("derain", None, [])
    with pytest.raises(UsageError, match="KEY=VALUE"):
        load_config("derain", None, ["lr"], data="d", out="o")


def test_config_toml_round_trips(tmp_path: Path) -> None:
    config = load_config(
        "sketch2photo",
        None,
        ["generator.ngf=8", "val=v", "lr=3e-5", "synth_scale=[0.7, 1.2]"],
        data="d",
        out=str(tmp_path),
    )
    (tmp_path / "config.toml").write_text(config_to_toml(config))
    assert resume_config(tmp_path) == config


@pytest.mark.parametrize("config_file", ["pan-derain.toml", "pan-inpaint.toml", "pan-sketch2photo.toml"])
def test_shipped_configs_load(config_file: str) -> None:
    path = Path(__file__).resolve().parent.parent / "configs" / config_file
    task = config_file.removeprefix("pan-").removesuffix(".toml")
    config = load_config(task, path, [], data="d", out="o")
    assert config.task == task and config.lambdas == (5.0, 1.5, 1.5, 1.0) and config.margin == 3.0


def test_init_model_can_grow_full_resolution_blocks_but_not_change_shape(
    photos: Path, tmp_path: Path
) -> None:
    first = train(_config("derain", photos, tmp_path / "a", steps=2))
    tiny = TINY_GENERATORS["derain"]
    grown = _config(
        "derain", photos, tmp_path / "b", steps=2, init=str(first), generator={**tiny, "full_res_blocks": 1}
    )
    model, _ = load_checkpoint(train(grown), task="derain")
    assert model.config.full_res_blocks == 1 and model.config.ngf == tiny["ngf"]

    wider = _config("derain", photos, tmp_path / "c", steps=2, init=str(first), generator={**tiny, "ngf": 8})
    with pytest.raises(UsageError, match=r"generator\.ngf cannot change"):
        train(wider)

    # `init` seeds a new run only: resuming the grown run needs neither the init file nor its shape
    first.unlink()
    model, _ = load_checkpoint(train(resume_config(tmp_path / "b", steps=3), resume=True), task="derain")
    assert model.config.full_res_blocks == 1


def test_export_needs_a_state(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no saved training state"):
        export(tmp_path)


# ----------------------------------------------------------------------------------------- distributed


def test_two_process_torchrun(photos: Path, tmp_path: Path) -> None:
    """``torchrun --nproc_per_node=2 -m ganedit train pan``, as documented: DDP over gloo, data sharded per
    rank, only rank 0 writes."""
    out = tmp_path / "ddp"
    settings = [
        "crop=32",
        "batch_size=2",
        "ndf=4",
        "generator={ngf = 4, depth = 2, blocks = 1}",
        "downscale=[1, 1.5]",
    ]
    settings += [
        "log_every=1",
        "sample_every=3",
        "save_every=3",
        "workers=0",
        "threads=1",
        'precision="fp32"',
    ]
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone"]
    command += [
        "-m",
        "ganedit",
        "train",
        "pan",
        "-q",
        "--task",
        "derain",
        "--data",
        str(photos),
        "--out",
        str(out),
    ]
    command += ["--steps", "3"] + [arg for s in settings for arg in ("--set", s)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, check=False, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if r["event"] == "log"] == [1, 2, 3]  # one writer, not two
    _, meta = st.load_state(st.latest_state(out / "state"))
    assert meta["world_size"] == 2 and meta["step"] == 3
    model, _ = load_checkpoint(out / "model.safetensors", task="derain")
    assert model.config.ngf == 4


def _tiny_config_file(tmp_path: Path, *, save_every: int) -> Path:
    """A derain config file for a tiny CPU run (the CLI reads the task from it)."""
    config_file = tmp_path / "tiny.toml"
    config_file.write_text(
        'task = "derain"\ncrop = 32\nbatch_size = 2\nndf = 4\ndownscale = [1.0, 1.5]\nworkers = 0\n'
        'threads = 1\nprecision = "fp32"\ndevice = "cpu"\nval_samples = 2\nval_fraction = 0.2\n'
        f"sample_every = 0\nsave_every = {save_every}\nlog_every = 1\n"
        "[generator]\nngf = 4\ndepth = 2\nblocks = 1\n"
    )
    return config_file


def test_cli_trains_on_several_data_folders_and_resumes(photos: Path, tmp_path: Path) -> None:
    """``--data A --data B``: one run over both folders, recorded in its config, resumable as it started."""
    more = tmp_path / "more"
    more.mkdir()
    Image.fromarray(_photo(9, 64, 64)).save(more / "photo0.png")  # the same name as one of A's
    config_file = _tiny_config_file(tmp_path, save_every=1)
    run = tmp_path / "run"
    args = ["train", "pan", "--config", str(config_file), "--data", str(photos), "--data", str(more)]
    result = CliRunner().invoke(cli_main, [*args, "--out", str(run), "--steps", "1", "-q"])
    assert result.exit_code == 0, result.output
    _, meta = st.load_state(st.latest_state(run / "state"))
    assert meta["data"]["files"] == 5  # six photos, one held out for validation (val_fraction 0.2)
    assert meta["data"]["data"] == os.pathsep.join([str(photos), str(more)])
    result = CliRunner().invoke(cli_main, ["train", "pan", "--resume", str(run), "--steps", "2", "-q"])
    assert result.exit_code == 0, result.output
    assert read_info(run / "model.safetensors").metadata["ganedit.train.steps"] == "2"
    moved = tmp_path / "moved"  # --data on a resume: the same files in another place
    more.rename(moved)
    resume = ["train", "pan", "--resume", str(run), "--data", str(photos), "--data", str(moved)]
    result = CliRunner().invoke(cli_main, [*resume, "--steps", "3", "-q"])
    assert result.exit_code == 0, result.output
    assert "moved" in (run / "config.toml").read_text()
    more = moved

    (more / "photo0.png").unlink()  # the data changed under the run: resuming would see other batches
    Image.fromarray(_photo(9, 72, 64)).save(more / "photo0.png")
    result = CliRunner().invoke(cli_main, ["train", "pan", "--resume", str(run), "--steps", "4", "-q"])
    assert result.exit_code != 0 and "differs" in result.output


def test_step_sampler_shards_one_global_stream() -> None:
    """Rank r of N takes the r-th slice of every global step; a resumed sampler continues the stream."""
    from ganedit.train.data import StepBatchSampler

    def take(sampler: StepBatchSampler, n: int) -> list[list[int]]:
        it = iter(sampler)
        return [next(it) for _ in range(n)]

    ranks = [take(StepBatchSampler(2, rank=r, world_size=2), 3) for r in range(2)]
    assert ranks[0] == [[0, 1], [4, 5], [8, 9]] and ranks[1] == [[2, 3], [6, 7], [10, 11]]
    single = take(StepBatchSampler(4), 3)
    assert [a + b for a, b in zip(*ranks, strict=True)] == single  # the same global batches
    assert take(StepBatchSampler(4, start_step=2), 1) == single[2:]


def test_cli_trains_from_a_config_file_and_resumes(photos: Path, tmp_path: Path) -> None:
    """``ganedit train pan --config FILE`` (task read from the file) then ``--resume RUN --steps N``."""
    config_file = _tiny_config_file(tmp_path, save_every=2)
    run = tmp_path / "run"
    args = ["train", "pan", "--config", str(config_file), "--data", str(photos), "--out", str(run)]
    result = CliRunner().invoke(cli_main, [*args, "--steps", "2", "-q"])
    assert result.exit_code == 0, result.output
    assert read_info(run / "model.safetensors").metadata["ganedit.train.steps"] == "2"

    result = CliRunner().invoke(cli_main, ["train", "pan", "--resume", str(run), "--steps", "3", "-q"])
    assert result.exit_code == 0, result.output
    assert read_info(run / "model.safetensors").metadata["ganedit.train.steps"] == "3"
    steps = [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert max(steps) == 3

    result = CliRunner().invoke(cli_main, ["train", "pan", "--resume", str(run), "--set", "lr=0.1"])
    assert result.exit_code == 2
    assert "lr" in result.output
