"""The PAN objective (Wang, Xu, Wang & Tao, "Perceptual Adversarial Networks for Image-to-Image
Transformation", IEEE TIP 2018; design.md §4).

With H_j the hidden layer j of the discriminator D (taps H1..H4) and the perceptual discrepancy

    P_j = mean | H_j(y) - H_j(T(x)) |          (y = ground truth, T(x) = the generator's output)

the two players minimise

    T:  log(1 - D(T(x))) + Σ_j λ_j P_j                                    (+ optional pixel L1)
    D:  -log D(y) - log(1 - D(T(x))) + [m - Σ_j λ_j P_j]^+

D's hinge term rewards D for feature spaces in which real and generated images still differ by at least
the margin m; once they differ by more than m the term is zero and D is left to the plain GAN loss. T is
pushed the other way, to make the discrepancy small in whatever features D has found. Both losses use
P_j of the same (y, T(x)) pair; in T's loss the discrepancy must stay connected to T's parameters (never
computed on a detached T(x)), or the generator gets no perceptual gradient at all.

All functions take D's *logits* (ganedit's PANDiscriminator returns logits) and use the numerically
stable log-sigmoid forms: -log D = softplus(-l), -log(1 - D) = softplus(l).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "GAN_FORMS",
    "DiscriminatorLoss",
    "GeneratorLoss",
    "discriminator_loss",
    "generator_loss",
    "perceptual_discrepancies",
    "perceptual_loss",
    "pixel_loss",
    "split_taps",
]

GAN_FORMS = ("non_saturating", "minimax")
"""How T's adversarial term is written. ``minimax`` is the paper's log(1 - D(T(x))); ``non_saturating``
(default) is Goodfellow et al.'s -log D(T(x)): the same fixed point, but strong gradients early on, when D
rejects every generated image with confidence and log(1 - D) is flat."""


def split_taps(taps: Sequence[Tensor], n_real: int) -> tuple[list[Tensor], list[Tensor]]:
    """Split taps computed on ``cat([real, fake])`` into (real taps, fake taps).

    D sees real and generated images in one batch, so its batch-norm layers normalise both with the same
    statistics and the hidden layers H_j compare them in one feature space.
    """
    return [t[:n_real] for t in taps], [t[n_real:] for t in taps]


def perceptual_discrepancies(real_taps: Sequence[Tensor], fake_taps: Sequence[Tensor]) -> list[Tensor]:
    """P_j = mean |H_j(y) - H_j(T(x))| for every tap j, as 0-d float32 tensors.

    Gradients flow to whatever produced the taps: D's parameters (D's loss) and, through H_j(T(x)), the
    generator (T's loss). Nothing is detached here.
    """
    if len(real_taps) != len(fake_taps):
        raise ValueError(f"{len(real_taps)} real taps but {len(fake_taps)} fake taps")
    out = []
    for real, fake in zip(real_taps, fake_taps, strict=True):
        if real.shape != fake.shape:
            raise ValueError(f"tap shapes differ: {tuple(real.shape)} vs {tuple(fake.shape)}")
        # float32: under bf16 autocast the taps are bf16, too coarse for a sum over a whole batch
        out.append((real.float() - fake.float()).abs().mean())
    return out


def perceptual_loss(discrepancies: Sequence[Tensor], lambdas: Sequence[float]) -> Tensor:
    """Σ_j λ_j P_j (the paper's λ = (5, 1.5, 1.5, 1) for H1..H4)."""
    if len(discrepancies) != len(lambdas):
        raise ValueError(f"{len(discrepancies)} discrepancies but {len(lambdas)} weights λ")
    total = discrepancies[0].new_zeros(())
    for p, lam in zip(discrepancies, lambdas, strict=True):
        total = total + float(lam) * p
    return total


@dataclass(frozen=True)
class DiscriminatorLoss:
    """D's loss and its parts (0-d tensors; ``total`` is what to backpropagate)."""

    total: Tensor
    real: Tensor  # -log D(y) against the (smoothed) real label
    fake: Tensor  # -log(1 - D(T(x)))
    hinge: Tensor  # [m - Σ λ_j P_j]^+
    perceptual: Tensor  # Σ λ_j P_j


@dataclass(frozen=True)
class GeneratorLoss:
    """T's loss and its parts (0-d tensors; ``total`` is what to backpropagate)."""

    total: Tensor
    gan: Tensor  # the adversarial term, in the chosen form
    perceptual: Tensor  # Σ λ_j P_j
    pixel: Tensor  # mean |T(x) - y| (reported even when its weight is 0)


def discriminator_loss(
    logits_real: Tensor,
    logits_fake: Tensor,
    discrepancies: Sequence[Tensor],
    *,
    lambdas: Sequence[float],
    margin: float,
    real_label: float = 0.9,
) -> DiscriminatorLoss:
    """-log D(y) - log(1 - D(T(x))) + [m - Σ_j λ_j P_j]^+, means over the batch.

    ``real_label`` < 1 is one-sided label smoothing (Salimans et al. 2016; the paper uses 0.9): the real
    term is the binary cross-entropy against that target, -0.9 log D(y) - 0.1 log(1 - D(y)), which stops D
    from driving its logits on real images to infinity. Generated images keep the target 0.
    ``discrepancies`` must be computed on the same pair through the D being trained (T(x) may be detached:
    D's loss does not train T).
    """
    real_target = torch.full_like(logits_real, float(real_label), dtype=torch.float32)
    real = F.binary_cross_entropy_with_logits(logits_real.float(), real_target)
    fake = F.softplus(logits_fake.float()).mean()  # -log(1 - sigmoid(l))
    perceptual = perceptual_loss(discrepancies, lambdas)
    hinge = F.relu(float(margin) - perceptual)
    return DiscriminatorLoss(
        total=real + fake + hinge, real=real, fake=fake, hinge=hinge, perceptual=perceptual
    )


def pixel_loss(
    fake: Tensor, target: Tensor, *, pixel_l1: float, pixel_l2: float, pool: int = 1
) -> tuple[Tensor, Tensor]:
    """T's pixel terms in float32: (pixel_l1 · mean|T(x) - y| + pixel_l2 · mean (T(x) - y)², mean|T(x) - y|).

    The squared error is the distance PSNR measures; under an ambiguity (how much veil a rainy photo hides)
    its minimiser is the conditional mean, where L1's is the median. The mean absolute error is returned
    too: it is what the logs report whatever the weights (always at full resolution).

    ``pool`` > 1 weighs the error of the two images averaged over ``pool x pool`` blocks instead: it anchors
    colour and layout but says nothing about detail finer than a block. Inside an inpainting hole the
    detail is unknowable, and a per-pixel loss makes the network paint its conditional mean (a blur); with
    a pooled anchor the fine texture is left to the adversarial and perceptual terms.
    """
    error = fake.float() - target.float()
    absolute = error.abs().mean()
    weighed = F.avg_pool2d(error, pool) if pool > 1 else error
    total = float(pixel_l1) * (weighed.abs().mean() if pool > 1 else absolute)
    if pixel_l2:
        total = total + float(pixel_l2) * weighed.square().mean()
    return total, absolute


def generator_loss(
    logits_fake: Tensor,
    discrepancies: Sequence[Tensor],
    *,
    lambdas: Sequence[float],
    fake: Tensor | None = None,
    target: Tensor | None = None,
    pixel_l1: float = 0.0,
    pixel_l2: float = 0.0,
    gan_weight: float = 1.0,
    form: str = "non_saturating",
    pixel_pool: int = 1,
) -> GeneratorLoss:
    """T's loss: gan_weight · adversarial + Σ_j λ_j P_j + pixel_l1 · mean|T(x) - y|
    + pixel_l2 · mean (T(x) - y)² (with ``pixel_pool`` > 1 on block means, see `pixel_loss`).

    ``discrepancies`` must be connected to T(x) (not detached) so that T receives the perceptual gradient.
    ``fake``/``target`` are only needed for the pixel term (and its report).
    """
    if form not in GAN_FORMS:
        raise ValueError(f"form must be one of {', '.join(GAN_FORMS)}, not {form!r}")
    logits = logits_fake.float()
    # minimax: minimise log(1 - D) = -softplus(l); non-saturating: minimise -log D = softplus(-l)
    gan = -F.softplus(logits).mean() if form == "minimax" else F.softplus(-logits).mean()
    perceptual = perceptual_loss(discrepancies, lambdas)
    total = float(gan_weight) * gan + perceptual
    if fake is not None and target is not None:
        weighted, pixel = pixel_loss(fake, target, pixel_l1=pixel_l1, pixel_l2=pixel_l2, pool=pixel_pool)
        if pixel_l1 or pixel_l2:
            total = total + weighted
    else:
        if pixel_l1 or pixel_l2:
            raise ValueError("pixel_l1 or pixel_l2 > 0 needs fake and target")
        pixel = logits.new_zeros(())
    return GeneratorLoss(total=total, gan=gan, perceptual=perceptual, pixel=pixel)
