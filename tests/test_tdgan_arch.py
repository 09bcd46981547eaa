"""TDGAN networks (R, g, G, D): shapes, the tag vocabulary in the config, checkpoint round trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ganedit.archs import build
from ganedit.archs.tdgan import TDGAN, TDGANConfig
from ganedit.checkpoint import load_checkpoint, read_info, save_checkpoint
from ganedit.train.discriminators import Discriminator

VOCABULARY = (
    ("pose", tuple(str(a) for a in range(0, 360, 30))),
    ("light", ("front", "left", "right", "top")),
)


def tiny(image_size: int = 32) -> TDGANConfig:
    return TDGANConfig(tags=VOCABULARY, image_size=image_size, identity_dim=8, tag_dim=4, ngf=4, ndf=4)


@pytest.mark.parametrize("size", [16, 32, 64])
def test_shapes(size: int) -> None:
    torch.manual_seed(0)
    model = TDGAN(tiny(size)).eval()
    x = torch.rand(3, 3, size, size) * 2 - 1
    identity, codes = model.disentangler(x)
    assert identity.shape == (3, 8) and [c.shape for c in codes] == [(3, 4), (3, 4)]
    targets = torch.tensor([[0, 1], [5, 3], [11, 0]])
    out = model.rerender(x, targets)
    assert out.shape == x.shape and out.abs().max() <= 1
    assert Discriminator(tiny(size))(x).shape == (3,)
    # the target tags matter: another pose gives another image
    other = model.rerender(x, torch.tensor([[6, 1], [5, 3], [11, 0]]))
    assert not torch.allclose(out[0], other[0]) and torch.allclose(out[1:], other[1:])


def test_vocabulary_is_validated() -> None:
    with pytest.raises(ValueError, match="at least one tag"):
        TDGANConfig()
    with pytest.raises(ValueError, match="unique"):
        TDGANConfig(tags=(("pose", ("0", "30")), ("pose", ("a", "b"))))
    with pytest.raises(ValueError, match="2 distinct"):
        TDGANConfig(tags=(("pose", ("0", "0")),))
    with pytest.raises(ValueError, match="power of two"):
        TDGANConfig(tags=VOCABULARY, image_size=48)


def test_checkpoint_round_trip_keeps_the_vocabulary(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = TDGAN(tiny()).eval()
    save_checkpoint(tmp_path / "t.safetensors", model, task="rerender")
    info = read_info(tmp_path / "t.safetensors")
    assert info.arch == "tdgan" and info.task == "rerender"
    assert info.arch_config["tags"] == [
        ["pose", [str(a) for a in range(0, 360, 30)]],
        ["light", ["front", "left", "right", "top"]],
    ]
    loaded, _ = load_checkpoint(tmp_path / "t.safetensors", task="rerender")
    assert loaded.config == model.config
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    t = torch.tensor([[1, 2], [3, 0]])
    with torch.no_grad():
        assert torch.equal(loaded.rerender(x, t), model.rerender(x, t))
    assert isinstance(build("tdgan", json.loads(json.dumps(info.arch_config))), TDGAN)
