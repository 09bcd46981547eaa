"""The discriminators, used only in training: PAN's D with its feature taps H1..H4 (`PANDiscriminator`)
and TDGAN's D (`Discriminator`). A checkpoint holds generators only (`ganedit.archs`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from ..archs.pan import NORMS, _norm, init_weights
from ..archs.tdgan import TDGANConfig, _Encoder

__all__ = ["Discriminator", "PANDiscriminator", "PANDiscriminatorConfig"]


@dataclass(frozen=True)
class PANDiscriminatorConfig:
    """The paper's discriminator; ``ndf=64`` gives its widths 64-128-128-256-256-512-512-512-8."""

    in_channels: int = 3  # 3 for D(y); 6 for a conditional D that sees input and output side by side
    ndf: int = 64
    head_channels: int = 8  # the paper's last conv ("conv8") before the dense layer
    norm: str = "batch"

    def __post_init__(self) -> None:
        if self.norm not in NORMS:
            raise ValueError(f"norm must be one of {', '.join(NORMS)}, not {self.norm!r}")
        if self.in_channels < 1 or self.ndf < 1 or self.head_channels < 1:
            raise ValueError("in_channels, ndf and head_channels must be >= 1")


class PANDiscriminator(nn.Module):
    """D of PAN: real/fake logits plus the hidden layers H1..H4 the perceptual loss compares.

    Layers (3x3 kernels; widths for ndf=64):
      conv64 s1 -> tanh (H1) | conv128 s2 | conv128 s1 | conv256 s2 (H2) | conv256 s1 | conv512 s2 (H3)
      | conv512 s1 | conv512 s2 (H4) | conv8 s2 | global average pool -> linear -> logit
    with batch norm + LeakyReLU(0.2) after every conv but the first. The taps sit at strides 1, 4, 8, 16:
    from pixel-level colour agreement (H1) up to structure (H4). The paper flattens a fixed 8x8x8 map into
    its dense layer; pooling instead lets D judge crops of any size. Returns logits (apply a sigmoid or,
    better, use BCE-with-logits), not probabilities.
    """

    arch: ClassVar[str] = "pan"
    tap_strides: ClassVar[tuple[int, ...]] = (1, 4, 8, 16)
    # (output width as a multiple of ndf, stride, is a tap) for the convs after the first
    _LAYERS: ClassVar[tuple[tuple[float, int, bool], ...]] = (
        (2, 2, False),
        (2, 1, False),
        (4, 2, True),
        (4, 1, False),
        (8, 2, True),
        (8, 1, False),
        (8, 2, True),
    )

    def __init__(self, config: PANDiscriminatorConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or PANDiscriminatorConfig()
        bias = cfg.norm == "none"
        # H1: tanh and no norm, as in the authors' code: a bounded, pixel-aligned feature map.
        self.first = nn.Sequential(nn.Conv2d(cfg.in_channels, cfg.ndf, 3, padding=1), nn.Tanh())
        self.layers = nn.ModuleList()
        self._tap_after: list[bool] = []
        c_in = cfg.ndf
        for mult, stride, tap in self._LAYERS:
            c_out = int(cfg.ndf * mult)
            self.layers.append(
                nn.Sequential(
                    nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=bias),
                    _norm(cfg.norm, c_out),
                    nn.LeakyReLU(0.2, inplace=True),
                )
            )
            self._tap_after.append(tap)
            c_in = c_out
        self.last = nn.Sequential(
            nn.Conv2d(c_in, cfg.head_channels, 3, stride=2, padding=1, bias=bias),
            _norm(cfg.norm, cfg.head_channels),
            nn.LeakyReLU(0.2, inplace=True),
        )
        self.classifier = nn.Linear(cfg.head_channels, 1)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """x: N x in_channels x H x W in [-1, 1] -> (logits N, [H1, H2, H3, H4])."""
        h = self.first(x)
        taps = [h]
        for layer, tap in zip(self.layers, self._tap_after, strict=True):
            h = layer(h)
            if tap:
                taps.append(h)
        h = self.last(h).mean(dim=(2, 3))
        return self.classifier(h).squeeze(1), taps


class Discriminator(nn.Module):
    """D: image -> one real/generated logit per image."""

    def __init__(self, cfg: TDGANConfig) -> None:
        super().__init__()
        self.encoder = _Encoder(cfg)
        self.head = nn.Linear(self.encoder.features, 1)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x)).squeeze(1)
