"""TDGAN training (`ganedit.train.tdgan`): what users of ``ganedit train tdgan`` rely on.

No renderer: a toy tagged set in the chairs layout (tags.json + <size>/<split>/<identity>/*.png) of 16 px
images, a coloured square per identity whose position follows the azimuth and elevation tags and whose
brightness follows the light tag. Tiny networks, one thread: every run is a few steps.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from ganedit.checkpoint import load_checkpoint, read_info
from ganedit.errors import UsageError
from ganedit.train import state as st
from ganedit.train.tdgan import TaggedPairs, TDGANTrainConfig, load_config, resume_config, train

SIZE = 16
AZIMUTHS = [0.0, 90.0, 180.0, 270.0]
ELEVATIONS = [20.0, 30.0]
LIGHTS = ["front", "left"]
COLOURS = {
    "train": [(200, 40, 40), (40, 160, 40), (40, 40, 200), (180, 160, 20)],
    "eval": [(160, 40, 160), (20, 150, 150)],
}


@pytest.fixture(autouse=True)
def restore_threads() -> Iterator[None]:
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _toy_image(colour: tuple[int, int, int], azimuth: int, elevation: int, light: int) -> np.ndarray:
    image = np.full((SIZE, SIZE, 3), 240, dtype=np.uint8)
    x, y = 1 + 3 * azimuth, 3 + 5 * elevation
    shade = 1.0 if light == 0 else 0.55
    image[y : y + 6, x : x + 5] = (np.asarray(colour) * shade).astype(np.uint8)
    return image


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("toy-chairs")
    images: list[dict[str, Any]] = []
    for split, colours in COLOURS.items():
        for k, colour in enumerate(colours):
            identity = f"{split}-seat{k}"
            for a, az in enumerate(AZIMUTHS):
                for e, el in enumerate(ELEVATIONS):
                    for li, light in enumerate(LIGHTS):
                        file = f"{split}/{identity}/az{a:02d}_el{round(el):02d}_{light}.png"
                        (root / str(SIZE) / file).parent.mkdir(parents=True, exist_ok=True)
                        Image.fromarray(_toy_image(colour, a, e, li)).save(root / str(SIZE) / file)
                        images.append(
                            {
                                "file": file,
                                "identity": identity,
                                "split": split,
                                "azimuth": a,
                                "elevation": e,
                                "light": li,
                                "pose": e * len(AZIMUTHS) + a,
                                "azimuth_deg": az,
                                "elevation_deg": el,
                                "light_name": light,
                            }
                        )
    index = {
        "format": "ganedit-chairs/1",
        "sizes": [SIZE],
        "renderer": {"background": [240, 240, 240]},
        "vocabulary": {
            "azimuth": AZIMUTHS,
            "elevation": ELEVATIONS,
            "light": LIGHTS,
            "pose": [f"az{a:02d}_el{round(e):02d}" for e in ELEVATIONS for a in range(len(AZIMUTHS))],
        },
        "images": sorted(images, key=lambda entry: entry["file"]),
    }
    (root / "tags.json").write_text(json.dumps(index))
    return root


def _config(data: Path, out: Path, **values: Any) -> TDGANTrainConfig:
    settings: dict[str, Any] = {
        "size": SIZE,
        "batch_size": 8,
        "identity_dim": 8,
        "tag_dim": 4,
        "ngf": 8,
        "ndf": 8,
        "steps": 2,
        "log_every": 1,
        "save_every": 0,
        "sample_every": 0,
        "threads": 1,
        "device": "cpu",
        "lr": 1e-3,
    }
    settings.update(values)
    return TDGANTrainConfig(data=str(data), out=str(out), **settings)


def _log(run: Path, event: str = "log") -> list[dict[str, Any]]:
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    return [r for r in records if r["event"] == event]


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


def test_two_step_run_writes_config_log_state_samples_and_a_rerender_checkpoint(
    toy: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    model_path = train(_config(toy, run, sample_every=2))
    assert model_path == run / "model.safetensors"
    assert resume_config(run) == _config(toy, run, sample_every=2)  # config.toml round-trips
    logs = _log(run)
    assert [r["step"] for r in logs] == [1, 2]
    for record in logs:
        for key in ("loss_d", "loss_g", "consistency", "reconstruction", "rerender", "adversarial"):
            assert np.isfinite(record[key]), key
    assert st.latest_state(run / "state").name == "step-00000002.safetensors"
    samples = _log(run, "sample")
    assert samples and Path(samples[0]["grid"]).is_file() and "sample_rerender_l1" in samples[0]

    model, info = load_checkpoint(model_path, task="rerender")
    assert info.arch == "tdgan" and info.metadata["ganedit.train.steps"] == "2"
    vocabulary = {"azimuth": ["0", "90", "180", "270"], "elevation": ["20", "30"], "light": ["front", "left"]}
    assert json.loads(info.metadata["ganedit.tags"]) == vocabulary
    assert {name: list(values) for name, values in model.config.tags} == vocabulary
    x = torch.zeros(2, 3, SIZE, SIZE)
    assert model.rerender(x, torch.tensor([[0, 1, 1], [3, 0, 0]])).shape == (2, 3, SIZE, SIZE)

    with pytest.raises(UsageError, match="already holds a training run"):
        train(_config(toy, run))


def test_cli_export_rebuilds_a_tdgan_checkpoint_from_the_latest_state(toy: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from ganedit.cli import main

    run = tmp_path / "run"
    train(_config(toy, run))
    out = tmp_path / "exported.safetensors"
    result = CliRunner().invoke(main, ["train", "export", str(run), "-o", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == str(out)
    model, info = load_checkpoint(out, task="rerender")
    assert info.arch == "tdgan" and info.metadata["ganedit.train.steps"] == "2"
    reference, _ = load_checkpoint(run / "model.safetensors", task="rerender")
    for (name, a), (_, b) in zip(model.state_dict().items(), reference.state_dict().items(), strict=True):
        assert torch.equal(a, b), name

    empty = tmp_path / "not-a-run"
    empty.mkdir()
    failed = CliRunner().invoke(main, ["train", "export", str(empty)])
    assert failed.exit_code == 2 and "not a training run folder" in failed.stderr


def test_interrupted_and_resumed_run_matches_the_straight_run_bit_for_bit(toy: Path, tmp_path: Path) -> None:
    steps = 5

    def batches(run: Path) -> list[tuple[int, str, str, float]]:
        return [(r["step"], r["batch"], r["data_digest"], r["loss_g"]) for r in _log(run)]

    straight = tmp_path / "straight"
    train(_config(toy, straight, steps=steps))

    resumed = tmp_path / "resumed"

    def interrupt_at_3(record: dict) -> None:
        if record.get("event") == "log" and record["step"] == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(_config(toy, resumed, steps=steps, save_every=2), on_log=interrupt_at_3)
    assert st.latest_state(resumed / "state").name == "step-00000003.safetensors"
    assert (resumed / "model.safetensors").is_file()  # exported on the way out too

    config = resume_config(resumed)
    assert config.steps == steps
    train(config, resume=True)

    assert batches(resumed) == batches(straight)
    assert len({fp for _, fp, _, _ in batches(straight)}) == steps  # every batch differs
    a = _tensors(st.latest_state(straight / "state"))
    b = _tensors(st.latest_state(resumed / "state"))
    assert a.keys() == b.keys()
    assert any(k.startswith("D.") for k in a) and any(k.startswith("opt_d.") for k in a)
    mismatched = [k for k in a if not torch.equal(a[k], b[k])]
    assert not mismatched, f"not bit-for-bit: {mismatched[:5]}"

    with pytest.raises(UsageError, match="cannot change"):
        train(resume_config(resumed, ["lr=0.1"]), resume=True)
    train(resume_config(resumed, steps=steps + 1), resume=True)  # extending a finished run
    assert read_info(resumed / "model.safetensors").metadata["ganedit.train.steps"] == str(steps + 1)


def test_semi_supervised_run_keeps_tags_for_a_fraction_of_identities(toy: Path, tmp_path: Path) -> None:
    pairs = TaggedPairs(toy, SIZE, ("azimuth", "light"), seed=0, tag_fraction=0.5)
    assert pairs.description["train_identities"] == 4 and pairs.description["tagged_identities"] == 2
    tagged = torch.cat([pairs.batch(k, 8)["tagged"] for k in range(4)])
    assert tagged.any() and not tagged.all()
    batch = pairs.batch(0, 8)
    same = [pairs.identity_of[a] == pairs.identity_of[b] for a, b in batch["index"].tolist()]
    assert all(same)  # pairs are one object at two tag settings
    assert not torch.equal(batch["t_a"], batch["t_b"])

    run = tmp_path / "semi"
    train(_config(toy, run, steps=3, tag_fraction=0.5, tags=("azimuth", "light")))
    for record in _log(run):
        assert all(np.isfinite(v) for k, v in record.items() if isinstance(v, float)), record
    _, info = load_checkpoint(run / "model.safetensors", task="rerender")
    assert list(json.loads(info.metadata["ganedit.tags"])) == ["azimuth", "light"]


def test_a_few_dozen_steps_lower_the_rerendering_l1(toy: Path, tmp_path: Path) -> None:
    run = tmp_path / "learn"
    train(_config(toy, run, steps=40, lr=2e-3, seed=1))
    rerender = [r["rerender"] for r in _log(run)]
    first, last = np.mean(rerender[:3]), np.mean(rerender[-3:])
    assert last < 0.6 * first, (first, last)


def test_init_fine_tunes_from_a_checkpoint_and_refuses_another_architecture(
    toy: Path, tmp_path: Path
) -> None:
    """`init`: a new run (other data, say more identities) starts from a model's R, g and G, not at random."""
    first = train(_config(toy, tmp_path / "first"))
    start = _tensors(first)
    tuned = train(_config(toy, tmp_path / "tuned", steps=1, lr=1e-12, init=str(first)))
    after = _tensors(tuned)
    assert after.keys() == start.keys()
    # one step at a negligible learning rate: the weights are where the checkpoint left them (batch-norm
    # running statistics move with any step, whatever the learning rate)
    weights = [k for k in start if "running_" not in k and "num_batches" not in k]
    assert all(torch.allclose(after[k].float(), start[k].float(), atol=1e-6) for k in weights)
    scratch = _tensors(train(_config(toy, tmp_path / "scratch", steps=1, lr=1e-12)))
    assert not any(torch.allclose(scratch[k].float(), start[k].float(), atol=1e-6) for k in weights)
    assert resume_config(tmp_path / "tuned").init == str(first)  # config.toml keeps it
    first.unlink()  # `init` seeds a new run only: resuming it does not read the file again
    train(resume_config(tmp_path / "tuned", steps=2), resume=True)

    with pytest.raises(UsageError, match="ngf differ"):
        train(_config(toy, tmp_path / "wider", ngf=16, init=str(tuned)))


def test_config_errors_name_the_setting(toy: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="did you mean 'steps'"):
        load_config(None, ["stepz=3"], data=str(toy), out=str(tmp_path / "r"))
    config = load_config(None, ["tags=azimuth,light", "w_identity=0"], data=str(toy), out=str(tmp_path / "r"))
    assert config.tags == ("azimuth", "light") and config.w_identity == 0.0
    with pytest.raises(UsageError, match="tag_fraction"):
        load_config(None, ["tag_fraction=0"], data=str(toy), out=str(tmp_path / "r"))
    with pytest.raises(UsageError, match="not in"):
        train(_config(toy, tmp_path / "r", tags=("azimuth", "colour")))
