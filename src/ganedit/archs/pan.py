"""PAN: Perceptual Adversarial Networks for image-to-image transformation.

Reference: Chaoyue Wang, Chang Xu, Chaohui Wang, Dacheng Tao, "Perceptual Adversarial Networks for
Image-to-Image Transformation", IEEE Transactions on Image Processing 27(8), 2018 (arXiv:1706.09138, 2017).
Authors' Theano code: https://github.com/WANG-Chaoyue/PAN

PAN trains an image transformation network T against a discriminator D and, besides the usual GAN loss,
asks T(x) and the ground truth y to agree in D's *hidden layers* (the "perceptual adversarial loss"
Σ_j λ_j |H_j(y) - H_j(T(x))|). The losses live in ``ganedit.train``; this module holds the networks only:

- `PANGenerator`, fully convolutional so that photographs of any size can be edited:
  * ``kind="residual"``: the de-raining network. The authors' version runs stride-1 convolutions and
    deconvolutions with additive skips at full resolution; we work at 1/2**depth resolution inside (a
    12-megapixel photo must be de-rained in seconds on a laptop CPU) and keep the additive skips and
    the "output = input + predicted residual" shortcut, which suits a task that removes a thin layer.
  * ``kind="unet"``: the pix2pix U-Net (concatenating skips, 4x4 stride-2 convolutions), used for
    sketch -> photo and, with the mask as a 4th input channel, for inpainting holes of any shape.

The discriminator (`ganedit.train.discriminators.PANDiscriminator`) and the generator presets and growing
(`ganedit.train.generators`) are training code and live in ``ganedit.train``.

Vocabulary follows pix2pix: ``ngf``/``ndf`` are the base widths of generator/discriminator; a PatchGAN is
a discriminator that judges patches (ours pools its patch features before the final linear layer).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

GENERATOR_KINDS = ("unet", "residual")
# How the U-Net's decoder doubles the resolution. "deconv" is pix2pix's 4x4 stride-2 transposed conv;
# "resize" is nearest-neighbour upsampling then a 3x3 conv (Odena, Dumoulin & Olah, "Deconvolution and
# Checkerboard Artifacts", Distill 2016): a transposed conv learns a separate kernel for each output pixel
# parity, and under an adversarial loss those drift apart into a checkerboard (measured: visible in our
# inpainting U-Net after 1,000 PAN steps); a resize-conv has one kernel for every output pixel.
UPSAMPLES = ("deconv", "resize")
# The residual kind's context blocks: residual blocks at the lowest resolution whose 3x3 convs are dilated
# by these factors in turn (Yu & Koltun, "Multi-Scale Context Aggregation by Dilated Convolutions", 2016).
# At 1/8 resolution a block of dilation d (two 3x3 convs) reaches 16 d full-resolution pixels further on
# each side, for the FLOPs of an undilated one: rain streaks run for hundreds of pixels and a veil spans
# the photo, so the net may look that far for the cost of a few 1/64-size layers.
CONTEXT_DILATIONS = (2, 4, 8)
# The residual kind's line blocks: residual blocks at *full* resolution dilated by these factors in turn.
# The 3x3 full-resolution blocks see 13 px and the low-resolution body sees far but blurred: neither can
# follow a line one or two pixels wide for tens of pixels, which is what tells a long rain streak (straight,
# one angle, crossing whatever lies under it) from a thin line of the scene. A dilated 3x3 kernel samples
# points d px apart, along a line as well as across it; four blocks (2, 4, 8, 16) reach 60 px further on
# each side for the FLOPs of four 3x3 blocks (about 0.009 MFLOP per pixel each at ngf 16). Large depthwise
# kernels (21x21, RepLKNet-style) would follow lines more directly but ran 10x slower to train and 3.4x
# slower at inference on our CPUs (PyTorch 2.14, measured); a dilated dense 3x3 conv costs what an
# undilated one costs.
LINE_DILATIONS = (2, 4, 8, 16)
# No "instance" here on purpose: instance norm normalises with the statistics of the image it sees, so
# when a large photo is edited tile by tile every tile would be normalised differently and the seams
# would show. Batch norm at inference uses fixed running statistics: a pixel's output does not depend on
# which tile it was in (beyond the receptive field), so tiling is invisible.
NORMS = ("batch", "none")


def _norm(norm: str, channels: int) -> nn.Module:
    return nn.BatchNorm2d(channels) if norm == "batch" else nn.Identity()


def init_weights(module: nn.Module) -> None:
    """pix2pix / DCGAN initialisation: conv weights ~ N(0, 0.02), norm scales ~ N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


# ---------------------------------------------------------------------------------------------------------
# Generator


@dataclass(frozen=True)
class PANGeneratorConfig:
    """Shape of a PAN generator. Stored as JSON in every checkpoint, so fields are plain ints/str/bool.

    The defaults are the shipped de-raining model: small enough for 12-megapixel photos on a CPU
    (timings in docs/models/pan-derain.md; see `preset` for the other tasks).
    """

    kind: str = "residual"  # "residual" (de-raining net, additive skips) | "unet" (pix2pix, concat skips)
    in_channels: int = 3  # out_channels, or out_channels + 1 when the model also reads a mask (inpainting)
    out_channels: int = 3
    ngf: int = 16  # width of the full-resolution layers; doubles at every stride-2 level
    depth: int = 3  # number of stride-2 levels; the model needs H, W divisible by 2**depth
    blocks: int = 6  # residual kind: residual blocks at the lowest resolution
    full_res_blocks: int = 0  # residual kind: residual blocks at full resolution, before the head
    context_blocks: int = 0  # residual kind: dilated residual blocks after the body (see CONTEXT_DILATIONS)
    line_blocks: int = 0  # residual kind: dilated residual blocks at full resolution (see LINE_DILATIONS)
    residual_gate: bool = False  # residual kind: one learned strength per image (see ResidualGate)
    max_mult: int = 8  # width cap as a multiple of ngf (pix2pix caps its U-Net at 8 * ngf)
    norm: str = "batch"  # "batch" | "none" (never instance norm: see NORMS)
    residual_output: bool = True  # output = input + predicted residual (de-raining removes a thin layer)
    prefill: bool = False  # with a mask: holes start as a smooth push-pull fill (see `smooth_fill`)
    upsample: str = "deconv"  # unet kind: "deconv" (pix2pix) | "resize" (no checkerboards, see UPSAMPLES)

    def __post_init__(self) -> None:
        if self.kind not in GENERATOR_KINDS:
            raise ValueError(f"kind must be one of {', '.join(GENERATOR_KINDS)}, not {self.kind!r}")
        if self.norm not in NORMS:
            raise ValueError(f"norm must be one of {', '.join(NORMS)}, not {self.norm!r}")
        if self.upsample not in UPSAMPLES:
            raise ValueError(f"upsample must be one of {', '.join(UPSAMPLES)}, not {self.upsample!r}")
        if self.upsample != "deconv" and self.kind != "unet":
            raise ValueError("upsample is a setting of the unet kind only")
        if self.out_channels < 1 or self.in_channels - self.out_channels not in (0, 1):
            raise ValueError(
                f"in_channels must equal out_channels (or out_channels + 1 with a mask), "
                f"got in_channels={self.in_channels}, out_channels={self.out_channels}"
            )
        if self.ngf < 1 or self.depth < 1 or self.max_mult < 1:
            raise ValueError("ngf, depth and max_mult must be >= 1")
        if min(self.blocks, self.full_res_blocks, self.context_blocks, self.line_blocks) < 0:
            raise ValueError("blocks, full_res_blocks, context_blocks and line_blocks must be >= 0")
        for name in ("full_res_blocks", "context_blocks", "line_blocks"):
            if getattr(self, name) and self.kind != "residual":
                raise ValueError(f"{name} is a setting of the residual kind only")
        if self.residual_gate and (self.kind != "residual" or not self.residual_output):
            raise ValueError("residual_gate is a setting of the residual kind with residual_output only")
        if self.prefill and not self.takes_mask:
            raise ValueError("prefill needs a mask channel (in_channels = out_channels + 1)")

    @property
    def takes_mask(self) -> bool:
        return self.in_channels == self.out_channels + 1

    def width(self, level: int) -> int:
        """Channels at stride 2**level."""
        return self.ngf * min(2**level, self.max_mult)


class ResidualBlock(nn.Module):
    """conv-norm-relu-conv-norm with an identity shortcut (He et al.): depth without vanishing gradients."""

    def __init__(self, channels: int, norm: str, dilation: int = 1) -> None:
        super().__init__()
        bias = norm == "none"  # a bias before batch norm is cancelled by its mean subtraction
        d = dilation
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=d, dilation=d, bias=bias),
            _norm(norm, channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=d, dilation=d, bias=bias),
            _norm(norm, channels),
        )

    def start_as_identity(self) -> None:
        """Zero the body's last scale ("zero-init residual", Goyal et al. 2017): the block is the identity
        until training moves it. The last batch-norm scale, or without norm the last conv (bias is 0)."""
        last = self.body[-1] if isinstance(self.body[-1], nn.BatchNorm2d) else self.body[-2]
        assert isinstance(last, nn.BatchNorm2d | nn.Conv2d)  # what ResidualBlock builds
        nn.init.zeros_(last.weight)
        if last.bias is not None:
            nn.init.zeros_(last.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResidualGate(nn.Module):
    """One strength per image, in (0, 2), for the whole predicted residual: ``2 * sigmoid(MLP(mean(h)))``.

    Why: a de-raining net judges locally whether a bright thin line is rain or a lamp post, and the
    rain-free training pairs that keep dry photos unchanged also teach it to doubt real streaks (measured:
    without them it removes more real rain and changes dry photos by 38.9 instead of 43.4 dB). Whether a
    picture has rain at all is a question about the whole picture: a field of parallel streaks. The gate
    reads the body's features averaged over the image and scales the residual as one, so dry photos can
    come back unchanged without the body learning to hold back. One scalar, not one per channel: a
    per-channel strength could tint the output. It starts at exactly 1 (last layer zero), so growing it
    into a trained model leaves the model's output unchanged until training moves it. The user's
    ``--strength`` (a blend with the input) multiplies on top of it.

    Measured (docs/models/pan-derain.md, 2026-12-07), not shipped: trained with its own loss
    (``gate_weight``) it gives rain-free photos back unchanged but also shuts on real rainy photos whose
    rain does not look like the training rain (12 of 36; 5 of 36 once faint rain was in training); without
    it, it shrinks every edit.
    A tiled photo gets one strength per tile (blended over the overlaps), not one for the whole photo.
    """

    def __init__(self, channels: int, hidden: int = 32) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 1))

    def start_as_one(self) -> None:
        last = self.mlp[-1]
        assert isinstance(last, nn.Linear)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """h: N x C x H x W features -> N x 1 x 1 x 1 strengths."""
        return 2.0 * torch.sigmoid(self.mlp(h.float().mean(dim=(2, 3)))).to(h.dtype)[:, :, None, None]


class ResidualNet(nn.Module):
    """The de-raining body: full-res stem -> depth x (3x3 conv, stride 2) -> residual blocks ->
    ``context_blocks`` dilated residual blocks -> depth x (4x4 deconv, stride 2) each added to the
    encoder feature of the same size -> ``line_blocks`` dilated residual blocks (`LINE_DILATIONS`) and
    ``full_res_blocks`` residual blocks at full resolution -> 3x3 conv.

    Additive (not concatenating) skips as in the authors' de-raining network: they carry the
    full-resolution detail around the low-resolution body at no extra width. The low-resolution body
    sees far (streaks are long, the veil is wide); the full-resolution blocks are where streaks one or
    two pixels wide can be told from the detail under them. They are not free: four of them (ngf 16)
    about doubled the forward time of a 512 px tile on one CPU thread.
    """

    def __init__(self, cfg: PANGeneratorConfig) -> None:
        super().__init__()
        bias = cfg.norm == "none"
        self.stem = nn.Sequential(
            nn.Conv2d(cfg.in_channels, cfg.width(0), 3, padding=1, bias=bias),
            _norm(cfg.norm, cfg.width(0)),
            nn.ReLU(inplace=True),
        )
        self.down = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(cfg.width(i), cfg.width(i + 1), 3, stride=2, padding=1, bias=bias),
                _norm(cfg.norm, cfg.width(i + 1)),
                nn.ReLU(inplace=True),
            )
            for i in range(cfg.depth)
        )
        self.body = nn.Sequential(*(ResidualBlock(cfg.width(cfg.depth), cfg.norm) for _ in range(cfg.blocks)))
        self.context = nn.Sequential(
            *(
                ResidualBlock(cfg.width(cfg.depth), cfg.norm, CONTEXT_DILATIONS[i % len(CONTEXT_DILATIONS)])
                for i in range(cfg.context_blocks)
            )
        )
        # up[i] brings stride 2**(i+1) back to 2**i; 4x4 kernels so every output pixel sees 2x2 inputs
        # (a 2x2 kernel would make blocky output, and a 3x3 one uneven overlap: checkerboards).
        self.up = nn.ModuleList(
            nn.Sequential(
                nn.ConvTranspose2d(cfg.width(i + 1), cfg.width(i), 4, stride=2, padding=1, bias=bias),
                _norm(cfg.norm, cfg.width(i)),
            )
            for i in range(cfg.depth)
        )
        self.lines = nn.Sequential(
            *(
                ResidualBlock(cfg.width(0), cfg.norm, LINE_DILATIONS[i % len(LINE_DILATIONS)])
                for i in range(cfg.line_blocks)
            )
        )
        self.refine = nn.Sequential(
            *(ResidualBlock(cfg.width(0), cfg.norm) for _ in range(cfg.full_res_blocks))
        )
        self.head = nn.Conv2d(cfg.width(0), cfg.out_channels, 3, padding=1)
        self.gate = ResidualGate(cfg.width(cfg.depth)) if cfg.residual_gate else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        skips = [h]
        for down in self.down:
            h = down(h)
            skips.append(h)
        h = self.context(self.body(h))
        strength = None if self.gate is None else self.gate(h)
        for i in reversed(range(len(self.up))):
            h = torch.relu_(self.up[i](h) + skips[i])  # in place on the fresh sum: safe for autograd
        out = self.head(self.refine(self.lines(h)))
        return out if strength is None else out * strength


class UNet(nn.Module):
    """The pix2pix U-Net, written as two loops instead of pix2pix's recursive blocks.

    Encoder level i: (LeakyReLU 0.2) -> conv 4x4 stride 2 -> norm (none on the outermost and innermost).
    Decoder level i: ReLU -> deconv 4x4 stride 2 (or, ``upsample="resize"``, nearest x2 -> conv 3x3)
    -> norm (none on the outermost), then concatenated with encoder level i-1. pix2pix's dropout is left
    out: it is its noise source in training, but at inference it would make the editor non-deterministic.
    """

    def __init__(self, cfg: PANGeneratorConfig) -> None:
        super().__init__()
        bias = cfg.norm == "none"
        d = cfg.depth
        self.down = nn.ModuleList()
        for i in range(d):
            c_in = cfg.in_channels if i == 0 else cfg.width(i - 1)
            # Not in place: the activation's input is also the skip that decoder level i-1 concatenates.
            layers: list[nn.Module] = [] if i == 0 else [nn.LeakyReLU(0.2)]
            layers.append(nn.Conv2d(c_in, cfg.width(i), 4, stride=2, padding=1, bias=bias or i in (0, d - 1)))
            if 0 < i < d - 1:
                layers.append(_norm(cfg.norm, cfg.width(i)))
            self.down.append(nn.Sequential(*layers))
        self.up = nn.ModuleList()
        for i in range(d):
            c_in = cfg.width(i) * (1 if i == d - 1 else 2)  # the innermost level has no skip to concatenate
            c_out = cfg.out_channels if i == 0 else cfg.width(i - 1)
            layers = [nn.ReLU()]  # not in place: at the innermost level its input is a skip tensor too
            with_bias = bias or i == 0
            if cfg.upsample == "resize":
                layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
                layers.append(nn.Conv2d(c_in, c_out, 3, padding=1, bias=with_bias))
            else:
                layers.append(nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=with_bias))
            if i > 0:
                layers.append(_norm(cfg.norm, c_out))
            self.up.append(nn.Sequential(*layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        h = x
        for down in self.down:
            h = down(h)
            skips.append(h)
        h = self.up[-1](skips[-1])
        for i in reversed(range(len(self.up) - 1)):
            h = self.up[i](torch.cat([h, skips[i]], dim=1))
        return h


def smooth_fill(x: torch.Tensor, mask: torch.Tensor, sweeps: int = 8) -> torch.Tensor:
    """Fill the holes (mask == 1) of `x` smoothly from their surroundings by push-pull interpolation
    (Gortler et al., "The Lumigraph", SIGGRAPH 1996). Push: average the known pixels down a pyramid
    (4 x 4 windows, stride 2: overlapping, so the coarse levels are smooth, not blocky), tracking the
    fraction of each window that is known. Pull: from the coarsest level back up, a pixel keeps its own
    average in proportion to its confidence min(1, 32 x known fraction) and takes the rest from the
    upsampled coarser level, then `sweeps` Jacobi sweeps of Laplace's equation relax the unknown part of
    the level (a multigrid-style smoother: the pull alone leaves kinks where the levels meet). Known pixels
    are returned exactly. The sweeps bring the fill up to the harmonic fill `ganedit eval` uses as its
    baseline (PSNR in the hole); more than the default 8 add next to nothing, and overlapping 4 x 4
    windows do far better than a plain 2 x 2 push-pull. Cost: a few cheap depthwise 3 x 3 passes per
    level, small next to the network.

    Why: an inpainting net that starts from this fill and learns a residual (zero at initialisation)
    begins as a good smooth-fill baseline instead of as grey holes, so a short training run on a CPU
    only has to learn what a smooth fill gets wrong (texture, edges running through the hole).
    """
    known = (1 - mask).to(x.dtype)
    levels: list[tuple[torch.Tensor, torch.Tensor]] = []
    value, weight = x * known, known
    while min(value.shape[-2:]) > 1:
        levels.append((value, weight))
        value = F.avg_pool2d(value, 4, stride=2, padding=1, ceil_mode=True, count_include_pad=False)
        weight = F.avg_pool2d(weight, 4, stride=2, padding=1, ceil_mode=True, count_include_pad=False)
    # coarsest level: the mean of the known pixels (0, mid-grey, when nothing is known)
    fill = value / weight.clamp_min(1e-6)
    laplace = torch.tensor([[0, 0.25, 0], [0.25, 0, 0.25], [0, 0.25, 0]], dtype=x.dtype, device=x.device)
    laplace = laplace.expand(x.shape[1], 1, 3, 3)
    for value, weight in reversed(levels):
        up = F.interpolate(fill, size=value.shape[-2:], mode="bilinear", align_corners=False)
        confidence = (weight * 32.0).clamp(max=1.0)
        own = value / weight.clamp_min(1e-6)
        fill = confidence * own + (1 - confidence) * up
        for _ in range(sweeps):
            neighbours = F.conv2d(F.pad(fill, (1, 1, 1, 1), mode="replicate"), laplace, groups=x.shape[1])
            fill = confidence * own + (1 - confidence) * neighbours
    return torch.where(mask.bool(), fill, x)


class PANGenerator(nn.Module):
    """The transformation network T of PAN: image in [-1, 1] -> edited image in [-1, 1] (nominally).

    With a mask (``config.in_channels == out_channels + 1``) it is an inpainting network: the holes
    (mask == 1) are blanked before the network sees them, the mask is appended as a channel, and the known
    pixels are pasted back over the prediction, so training and inference share one forward and the
    network never gets credit (or blame) for pixels it was given.
    """

    arch: ClassVar[str] = "pan"

    def __init__(self, config: PANGeneratorConfig | None = None) -> None:
        super().__init__()
        self.config = config or PANGeneratorConfig()
        self.net = ResidualNet(self.config) if self.config.kind == "residual" else UNet(self.config)
        init_weights(self)
        if self.config.residual_output:
            # Start as the identity map (residual 0): the generator's first outputs are the inputs, not
            # noise, which keeps the early adversarial game stable. Gradients still reach the head.
            head: nn.Module
            if isinstance(self.net, ResidualNet):
                head = self.net.head
            else:
                first_up = self.net.up[0]
                assert isinstance(first_up, nn.Sequential)  # (ReLU, [Upsample,] conv): UNet's outermost
                head = first_up[-1]
            assert isinstance(head, nn.Conv2d | nn.ConvTranspose2d)
            nn.init.zeros_(head.weight)
            if head.bias is not None:
                nn.init.zeros_(head.bias)
        if isinstance(self.net, ResidualNet):
            # The full-resolution, line and context blocks start as the identity, so adding them to a trained
            # model (`grow`) leaves its output unchanged until training moves them.
            for block in (*self.net.refine, *self.net.context, *self.net.lines):
                assert isinstance(block, ResidualBlock)
                block.start_as_identity()
            if self.net.gate is not None:
                self.net.gate.start_as_one()

    @property
    def pad_multiple(self) -> int:
        return 2**self.config.depth

    @property
    def in_channels(self) -> int:
        return self.config.in_channels

    @property
    def out_channels(self) -> int:
        return self.config.out_channels

    @property
    def takes_mask(self) -> bool:
        return self.config.takes_mask

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x: N x C x H x W in [-1, 1]; mask: N x 1 x H x W in {0, 1} (1 = fill), inpainting models only.

        H and W must be multiples of `pad_multiple` (the editor pads).
        """
        if self.takes_mask:
            if mask is None:
                raise ValueError("this inpainting generator needs a mask (N x 1 x H x W, 1 = fill)")
            mask = mask.to(x.dtype)
            # The holes' content is the answer during training: the network must never see it.
            base = smooth_fill(x, mask) if self.config.prefill else x * (1 - mask)
            inp = torch.cat([base, mask], dim=1)
        else:
            if mask is not None:
                raise ValueError("this generator takes no mask (config.in_channels == out_channels)")
            base = inp = x
        y = self.net(inp)
        y = base + y if self.config.residual_output else torch.tanh(y)
        if mask is not None:
            # Known pixels are copied through exactly (mask is 0 or 1, so this is a select, not a blend).
            y = torch.where(mask.bool(), y.to(x.dtype), x)
        return y


# Training-only pieces that lived here, kept importable from this module for one release (loaded on first
# use, by name, so that importing the inference networks never imports ganedit.train).
_MOVED = {
    "preset": "ganedit.train.generators",
    "grow": "ganedit.train.generators",
    "GROWABLE": "ganedit.train.generators",
    "PANDiscriminator": "ganedit.train.discriminators",
    "PANDiscriminatorConfig": "ganedit.train.discriminators",
}


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
