"""TDGAN: the networks of Tag Disentangled GANs.

Reference: Chaoyue Wang, Chaohui Wang, Chang Xu, Dacheng Tao, "Tag Disentangled Generative Adversarial
Networks for Object Image Re-rendering", IJCAI 2017.

Four networks, trained alternately (ganedit.train.tdgan):

- R, the disentangling network (`Disentangler`): image -> an identity code and one code per tag type;
- g, the tag-mapping network (`TagMapper`): tag values (one-hot, or a distribution over the values for a
  partially tagged image) -> the same per-tag codes, so that R(x)'s tag codes and g(tags) can be made
  consistent;
- G, the generative network (`Generator`): identity code + tag codes -> image;
- D, the discriminator (`ganedit.train.discriminators.Discriminator`): image -> real/generated logit,
  training code.

Re-rendering an object at other tags = G(identity of R(x), g(target tags)). Inference needs R, g and G:
they make up the `TDGAN` module a checkpoint holds; D lives only in training states.

The tag vocabulary (tag names, their values, their order) is part of the config, so it travels in the
checkpoint's metadata and the CLI can validate ``--tag pose=30`` against what the model was trained on.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from .pan import init_weights

__all__ = ["TDGAN", "Disentangler", "Generator", "TDGANConfig", "TagMapper"]

FITS = ("pad", "crop")


@dataclass(frozen=True)
class TDGANConfig:
    """Shape of the TDGAN networks and the tag vocabulary. Stored as JSON in checkpoints."""

    tags: tuple[tuple[str, tuple[str, ...]], ...] = field(default_factory=tuple)  # ((name, (values...)), ...)
    image_size: int = 64  # square images; a power of two >= 16
    channels: int = 3
    identity_dim: int = 128  # the identity code: everything about the object that no tag describes
    tag_dim: int = 16  # code size per tag type
    ngf: int = 32  # G's width at full resolution (doubles per level, capped at max_mult * ngf)
    ndf: int = 32  # R's and D's width at full resolution
    max_mult: int = 8
    background: tuple[int, int, int] = (240, 240, 240)  # the renders' plain background
    # How an input that is not square becomes the model's square: "pad" centres it on `background` (an
    # object photographed on a plain ground, as the renders are), "crop" cuts the centred square (a face
    # crop, where padding would add a border no training image has).
    fit: str = "pad"

    def __post_init__(self) -> None:
        # JSON gives lists: normalise to tuples so configs compare and hash as values.
        tags = tuple((str(name), tuple(str(v) for v in values)) for name, values in self.tags)
        object.__setattr__(self, "tags", tags)
        object.__setattr__(self, "background", tuple(int(c) for c in self.background))
        if not tags:
            raise ValueError("a TDGAN needs at least one tag type (tags = ((name, (values...)), ...))")
        names = [name for name, _ in tags]
        if len(set(names)) != len(names):
            raise ValueError(f"tag names must be unique, got {names}")
        for name, values in tags:
            if len(values) < 2 or len(set(values)) != len(values):
                raise ValueError(f"tag {name!r} needs at least 2 distinct values, got {list(values)}")
        if self.image_size < 16 or self.image_size & (self.image_size - 1):
            raise ValueError(f"image_size must be a power of two >= 16, got {self.image_size}")
        if min(self.identity_dim, self.tag_dim, self.ngf, self.ndf, self.max_mult, self.channels) < 1:
            raise ValueError("identity_dim, tag_dim, ngf, ndf, max_mult and channels must be >= 1")
        if self.fit not in FITS:
            raise ValueError(f"fit must be one of {', '.join(FITS)}, got {self.fit!r}")
        if len(self.background) != 3 or not all(0 <= c <= 255 for c in self.background):
            raise ValueError(f"background must be an RGB triple of 0..255, got {self.background}")

    @property
    def levels(self) -> int:
        """Stride-2 levels between the image and the 4 x 4 bottleneck."""
        return int(math.log2(self.image_size)) - 2

    @property
    def tag_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.tags)

    def values(self, tag: str) -> tuple[str, ...]:
        return dict(self.tags)[tag]

    @property
    def code_dim(self) -> int:
        return self.identity_dim + len(self.tags) * self.tag_dim


def _width(base: int, level: int, cap: int) -> int:
    return base * min(2**level, cap)


class _Encoder(nn.Module):
    """image -> features at 4 x 4 (DCGAN discriminator body: conv 4x4 stride 2, LeakyReLU 0.2, batch norm
    on all but the first level), flattened."""

    def __init__(self, cfg: TDGANConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = cfg.channels
        for i in range(cfg.levels):
            c_out = _width(cfg.ndf, i, cfg.max_mult)
            layers.append(nn.Conv2d(c_in, c_out, 4, stride=2, padding=1, bias=i == 0))
            if i > 0:
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            c_in = c_out
        self.body = nn.Sequential(*layers)
        self.features = c_in * 16

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).flatten(1)


class Disentangler(nn.Module):
    """R: image -> (identity code, [one code per tag type]). Codes are unbounded linear outputs."""

    def __init__(self, cfg: TDGANConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = _Encoder(cfg)
        self.head = nn.Linear(self.encoder.features, cfg.code_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        codes = self.head(self.encoder(x))
        identity, rest = codes[:, : self.cfg.identity_dim], codes[:, self.cfg.identity_dim :]
        return identity, list(rest.split(self.cfg.tag_dim, dim=1))


class TagMapper(nn.Module):
    """g: per tag type, a distribution over its values (one-hot when the tag is known) -> its code.

    A linear map of the one-hot vector is a learned code per value; a distribution (a partially tagged
    image, or an interpolation between two poses) maps to the matching mixture of codes.
    """

    def __init__(self, cfg: TDGANConfig) -> None:
        super().__init__()
        self.maps = nn.ModuleList(nn.Linear(len(values), cfg.tag_dim, bias=False) for _, values in cfg.tags)

    def forward(self, tags: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """tags: one N x n_values tensor per tag type (rows sum to 1)."""
        return [m(t) for m, t in zip(self.maps, tags, strict=True)]


class Generator(nn.Module):
    """G: identity code + tag codes -> image in [-1, 1] (DCGAN generator: linear to 4 x 4, then
    deconv 4x4 stride 2 + batch norm + ReLU per level, tanh out)."""

    def __init__(self, cfg: TDGANConfig) -> None:
        super().__init__()
        top = _width(cfg.ngf, cfg.levels - 1, cfg.max_mult)
        self.top = top
        self.project = nn.Sequential(nn.Linear(cfg.code_dim, top * 16, bias=False), nn.BatchNorm1d(top * 16))
        layers: list[nn.Module] = [nn.ReLU(inplace=True)]
        for i in reversed(range(cfg.levels)):
            c_in = _width(cfg.ngf, i, cfg.max_mult)
            last = i == 0
            c_out = cfg.channels if last else _width(cfg.ngf, i - 1, cfg.max_mult)
            layers.append(nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=last))
            layers += [nn.Tanh()] if last else [nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)

    def forward(self, identity: torch.Tensor, codes: Sequence[torch.Tensor]) -> torch.Tensor:
        z = torch.cat([identity, *codes], dim=1)
        return self.body(self.project(z).view(-1, self.top, 4, 4))


class TDGAN(nn.Module):
    """R, g and G together: what a ``tdgan`` checkpoint holds and `ganedit rerender` runs."""

    arch: ClassVar[str] = "tdgan"

    def __init__(self, config: TDGANConfig | None = None) -> None:
        super().__init__()
        if config is None:
            raise ValueError("TDGAN needs a config with its tag vocabulary")
        self.config = config
        self.disentangler = Disentangler(config)
        self.tag_mapper = TagMapper(config)
        self.generator = Generator(config)
        init_weights(self)

    def one_hot(self, indices: Mapping[str, torch.Tensor] | torch.Tensor) -> list[torch.Tensor]:
        """Value indices (N x n_tags long tensor in vocabulary order, or {tag: N long tensor}) -> one-hots."""
        if isinstance(indices, torch.Tensor):
            columns = indices.unbind(1)
        else:
            columns = tuple(indices[name] for name in self.config.tag_names)
        return [
            nn.functional.one_hot(c.long(), len(values)).float()
            for c, (_, values) in zip(columns, self.config.tags, strict=True)
        ]

    def rerender(self, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """x: N x C x S x S in [-1, 1]; targets: N x n_tags value indices -> the objects re-rendered."""
        identity, _ = self.disentangler(x)
        return self.generator(identity, self.tag_mapper(self.one_hot(targets)))

    def forward(self, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.rerender(x, targets)


def __getattr__(name: str) -> Any:
    # The discriminator moved to ganedit.train.discriminators (training only); importable from here for
    # one release, loaded by name on first use so that the inference networks never import ganedit.train.
    if name == "Discriminator":
        return importlib.import_module("ganedit.train.discriminators").Discriminator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
