"""`ganedit.load` returns the runtime a checkpoint needs; `locate` says where it is; the old module paths
(`ganedit.editor`, `ganedit.rerender`) still export their public names."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import torch

import ganedit
from ganedit.api import Located, load_editor, locate
from ganedit.archs.tdgan import TDGAN, TDGANConfig
from ganedit.checkpoint import save_checkpoint
from ganedit.errors import UsageError
from ganedit.runtime.editor import Editor
from ganedit.runtime.rerenderer import REFINE_STEPS, Rerenderer
from tinymodels import make_checkpoint

TINY_TDGAN = TDGANConfig(
    tags=(("azimuth", ("0", "90")), ("light", ("front", "left"))),
    image_size=16,
    identity_dim=4,
    tag_dim=2,
    ngf=4,
    ndf=4,
)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("load")
    torch.manual_seed(0)
    save_checkpoint(folder / "tdgan.safetensors", TDGAN(TINY_TDGAN), task="rerender")
    return {
        "rerender": folder / "tdgan.safetensors",
        "derain": make_checkpoint(folder / "derain.safetensors", "derain"),
    }


def test_load_returns_the_runtime_of_the_checkpoint(checkpoints: dict[str, Path]) -> None:
    editor = ganedit.load(checkpoints["derain"], device="cpu", precision="fp32")
    assert isinstance(editor, Editor) and editor.task.name == "derain"
    assert editor.name == "derain.safetensors" and editor.sha256 is not None
    renderer = ganedit.load(str(checkpoints["rerender"]), device="cpu")
    assert isinstance(renderer, Rerenderer)
    assert renderer.refine_steps == REFINE_STEPS and renderer.config == TINY_TDGAN
    assert renderer.sha256 == locate(checkpoints["rerender"]).sha256
    assert isinstance(ganedit.load(checkpoints["rerender"], task="rerender", device="cpu"), Rerenderer)


def test_options_of_the_other_kind_of_model_are_refused(checkpoints: dict[str, Path]) -> None:
    with pytest.raises(UsageError, match="refine_steps"):
        ganedit.load(checkpoints["derain"], device="cpu", refine_steps=2)
    with pytest.raises(UsageError, match="tile, strength: not an option of rerender models"):
        ganedit.load(checkpoints["rerender"], device="cpu", tile=64, strength=0.5)
    # a PAN task asked for, or a caller that edits files: a rerender checkpoint is refused before it loads
    with pytest.raises(UsageError, match="ganedit rerender"):
        ganedit.load(checkpoints["rerender"], task="derain", device="cpu")
    with pytest.raises(UsageError, match="ganedit rerender"):
        load_editor(checkpoints["rerender"], device="cpu")


def test_locate_returns_a_frozen_record(checkpoints: dict[str, Path]) -> None:
    found = locate(checkpoints["derain"])
    assert isinstance(found, Located)
    assert (found.name, found.path, found.source, found.task, found.spec) == (
        "derain.safetensors",
        checkpoints["derain"],
        "path",
        None,
        None,
    )
    assert len(found.sha256) == 64
    with pytest.raises(AttributeError):
        found.name = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("old", "names"),
    [
        ("ganedit.editor", ["Editor", "PRECISIONS", "fold_batchnorm", "select_device", "tile_starts"]),
        (
            "ganedit.rerender",
            ["Rerenderer", "REFINE_STEPS", "contact_sheet", "output_name", "parse_tag_options", "write_gif"],
        ),
    ],
)
def test_old_module_paths_still_export_their_names(old: str, names: list[str]) -> None:
    module = importlib.import_module(old)
    assert all(hasattr(module, name) for name in names)
    assert set(module.__all__) >= set(names)


def test_shipped_models_load_by_name_as_their_runtime() -> None:
    from ganedit.hub import HubOptions

    offline = HubOptions(offline=True)  # both are bundled: no request
    renderer = ganedit.load("tdgan-chairs", device="cpu", hub=offline)
    assert isinstance(renderer, Rerenderer) and renderer.name == "tdgan-chairs"
    assert isinstance(ganedit.load(task="rerender", device="cpu", hub=offline), Rerenderer)
    editor = ganedit.load("pan-derain", device="cpu", hub=offline)
    assert isinstance(editor, Editor) and editor.task.name == "derain"
    found = locate("tdgan-chairs", hub=offline)
    assert found.spec is not None and (found.task, found.source) == ("rerender", "bundled")
    assert found.sha256 == found.spec.sha256
