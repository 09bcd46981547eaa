"""The PAN objective (`ganedit.train.losses`): the properties the paper's method depends on.

* The perceptual adversarial loss Σ λ_j P_j sends gradient into the generator T through every hidden
  layer H_j of D (two public PAN ports detached it, so their generators never got it).
* D's hinge [m - Σ λ_j P_j]^+ is active (positive, with gradient pushing the discrepancy up) below the
  margin and exactly zero, with zero gradient, above it.
* The real label is 0.9 (one-sided smoothing), and every term pushes in the right direction.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F

from ganedit.archs.pan import PANGenerator, PANGeneratorConfig
from ganedit.train.discriminators import PANDiscriminator, PANDiscriminatorConfig
from ganedit.train.losses import (
    discriminator_loss,
    generator_loss,
    perceptual_discrepancies,
    perceptual_loss,
    split_taps,
)

LAMBDAS = (5.0, 1.5, 1.5, 1.0)
MARGIN = 3.0


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _models(seed: int = 0) -> tuple[PANGenerator, PANDiscriminator]:
    torch.manual_seed(seed)
    # a U-Net: unlike the residual net (whose head starts at zero) every layer gets gradient at init
    gen = PANGenerator(PANGeneratorConfig(kind="unet", ngf=4, depth=3, residual_output=False))
    disc = PANDiscriminator(PANDiscriminatorConfig(ndf=4))
    return gen.train(), disc.train()


def _batch(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(2, 3, 32, 32, generator=g) * 2 - 1
    y = torch.rand(2, 3, 32, 32, generator=g) * 2 - 1
    return x, y


def _generator_grads(gen: PANGenerator) -> list[torch.Tensor | None]:
    return [p.grad for p in gen.parameters()]


@pytest.mark.parametrize("tap", [0, 1, 2, 3])
def test_each_perceptual_term_reaches_the_generator(tap: int) -> None:
    """Backpropagating P_j alone (D frozen, as in T's update) gives T's parameters non-zero gradients."""
    gen, disc = _models()
    disc.requires_grad_(False)
    x, y = _batch()
    fake = gen(x)
    _, taps = disc(torch.cat([y, fake]))
    real_taps, fake_taps = split_taps(taps, 2)
    discrepancies = perceptual_discrepancies(real_taps, fake_taps)
    discrepancies[tap].backward()
    grads = _generator_grads(gen)
    assert all(g is not None for g in grads), "some generator parameter got no gradient from P_j"
    norms = [float(g.abs().sum()) for g in grads if g is not None]
    assert sum(n > 0 for n in norms) >= len(norms) - 1  # (a bias may be exactly flat; the weights are not)
    assert sum(norms) > 0
    assert all(p.grad is None for p in disc.parameters())  # D frozen: no weight gradients computed


def test_perceptual_loss_in_generator_loss_reaches_generator_only_if_connected() -> None:
    """The full generator loss with the GAN term switched off still trains T (through Σ λ_j P_j), and the
    classic bug, computing P_j on a detached T(x), leaves T without that gradient: the check can fail."""
    gen, disc = _models()
    disc.requires_grad_(False)
    x, y = _batch()
    fake = gen(x)
    logits, taps = disc(torch.cat([y, fake]))
    real_taps, fake_taps = split_taps(taps, 2)
    loss = generator_loss(
        logits[2:], perceptual_discrepancies(real_taps, fake_taps), lambdas=LAMBDAS, gan_weight=0.0
    )
    loss.total.backward()
    assert sum(float(p.grad.abs().sum()) for p in gen.parameters() if p.grad is not None) > 0

    gen.zero_grad(set_to_none=True)
    fake = gen(x)
    logits, taps = disc(torch.cat([y, fake.detach()]))  # the bug
    real_taps, fake_taps = split_taps(taps, 2)
    buggy = generator_loss(
        logits[2:], perceptual_discrepancies(real_taps, fake_taps), lambdas=LAMBDAS, gan_weight=0.0
    )
    assert not buggy.total.requires_grad  # nothing to backpropagate into T at all


def test_perceptual_gradient_moves_output_towards_target_in_feature_space() -> None:
    """A small step of T(x) against the gradient of Σ λ_j P_j lowers the discrepancy (sign check)."""
    _, disc = _models()
    disc.requires_grad_(False)
    _, y = _batch()
    fake = (y + 0.5 * torch.randn_like(y)).clamp(-1, 1).requires_grad_(True)
    _, taps = disc(torch.cat([y, fake]))
    loss = perceptual_loss(perceptual_discrepancies(*split_taps(taps, 2)), LAMBDAS)
    loss.backward()
    with torch.no_grad():
        moved = fake - 0.05 * fake.grad / fake.grad.abs().max()
        _, taps = disc(torch.cat([y, moved]))
        after = perceptual_loss(perceptual_discrepancies(*split_taps(taps, 2)), LAMBDAS)
    assert float(after) < float(loss.detach())


def test_perceptual_discrepancy_is_mean_absolute_difference() -> None:
    real = [torch.zeros(2, 3, 4, 4), torch.ones(1, 2)]
    fake = [torch.full((2, 3, 4, 4), 0.5), torch.tensor([[3.0, -1.0]])]
    p = perceptual_discrepancies(real, fake)
    assert [float(v) for v in p] == pytest.approx([0.5, 2.0])  # |1 - 3| = |1 - (-1)| = 2
    assert float(perceptual_loss(p, (2.0, 3.0))) == pytest.approx(7.0)
    with pytest.raises(ValueError):
        perceptual_loss(p, LAMBDAS)


def _d_loss(p_values: list[float], margin: float = MARGIN) -> tuple[torch.Tensor, list[torch.Tensor]]:
    ps = [torch.tensor(v, requires_grad=True) for v in p_values]
    loss = discriminator_loss(torch.zeros(2), torch.zeros(2), ps, lambdas=LAMBDAS, margin=margin)
    return loss.hinge, ps


def test_hinge_is_positive_below_the_margin_and_pushes_the_discrepancy_up() -> None:
    # Σ λ P = 5*0.1 + 1.5*0.2 + 1.5*0.2 + 1*0.4 = 1.5 < m = 3
    hinge, ps = _d_loss([0.1, 0.2, 0.2, 0.4])
    assert float(hinge.detach()) == pytest.approx(1.5)
    hinge.backward()
    # gradient -λ_j: descending D's loss *increases* every P_j
    assert [float(p.grad) for p in ps] == pytest.approx([-lam for lam in LAMBDAS])


def test_hinge_is_zero_with_zero_gradient_above_the_margin() -> None:
    # Σ λ P = 5*0.5 + 1.5*0.5 + 1.5*0.5 + 1*0.5 = 4.5 > m = 3
    hinge, ps = _d_loss([0.5, 0.5, 0.5, 0.5])
    assert float(hinge.detach()) == 0.0
    hinge.backward()
    assert all(p.grad is None or float(p.grad) == 0.0 for p in ps)


def test_hinge_on_the_real_discriminator() -> None:
    """Through D's own parameters: the hinge trains D while the discrepancy is below m, not above."""
    gen, disc = _models()
    x, y = _batch()
    with torch.no_grad():
        fake = gen(x)
    logits, taps = disc(torch.cat([y, fake]))
    p = perceptual_discrepancies(*split_taps(taps, 2))
    total = float(perceptual_loss(p, LAMBDAS).detach())

    below = discriminator_loss(logits[:2], logits[2:], p, lambdas=LAMBDAS, margin=total + 1.0)
    assert float(below.hinge.detach()) == pytest.approx(1.0, rel=1e-5)
    grads = torch.autograd.grad(below.hinge, list(disc.parameters()), retain_graph=True, allow_unused=True)
    assert sum(float(g.abs().sum()) for g in grads if g is not None) > 0

    above = discriminator_loss(logits[:2], logits[2:], p, lambdas=LAMBDAS, margin=total / 2)
    assert float(above.hinge.detach()) == 0.0
    grads = torch.autograd.grad(above.hinge, list(disc.parameters()), allow_unused=True)
    assert all(g is None or float(g.abs().sum()) == 0.0 for g in grads)


def test_real_label_is_smoothed_to_0_9() -> None:
    logit = torch.tensor([0.3, -1.2])
    loss = discriminator_loss(logit, torch.zeros(2), [torch.tensor(1.0)] * 4, lambdas=LAMBDAS, margin=0.0)
    q = torch.sigmoid(logit)
    expected = -(0.9 * torch.log(q) + 0.1 * torch.log(1 - q)).mean()
    assert float(loss.real.detach()) == pytest.approx(float(expected), rel=1e-5)
    # the real term is smallest where D(y) = 0.9: above it the gradient pushes the logit back down
    for p_real, sign in ((0.95, 1.0), (0.85, -1.0)):
        lgt = torch.tensor([math.log(p_real / (1 - p_real))], requires_grad=True)
        discriminator_loss(
            lgt, torch.zeros(1), [torch.tensor(1.0)] * 4, lambdas=LAMBDAS, margin=0.0
        ).real.backward()
        assert math.copysign(1.0, float(lgt.grad)) == sign


def test_discriminator_terms_point_the_right_way() -> None:
    """D's GAN loss falls when real logits rise and fake logits fall; the fake term is -log(1 - D)."""
    real = torch.tensor([0.5, 1.0], requires_grad=True)
    fake = torch.tensor([0.2, -0.4], requires_grad=True)
    loss = discriminator_loss(
        real, fake, [torch.tensor(1.0)] * 4, lambdas=LAMBDAS, margin=0.0, real_label=1.0
    )
    assert float(loss.fake.detach()) == pytest.approx(
        float(-torch.log(1 - torch.sigmoid(fake.detach())).mean()), rel=1e-5
    )
    assert float(loss.hinge.detach()) == 0.0
    loss.total.backward()
    assert (real.grad < 0).all()  # descending raises D(y)
    assert (fake.grad > 0).all()  # descending lowers D(T(x))


@pytest.mark.parametrize("form", ["non_saturating", "minimax"])
def test_generator_gan_term_raises_d_of_fake(form: str) -> None:
    fake_logits = torch.tensor([-2.0, 0.5], requires_grad=True)
    loss = generator_loss(fake_logits, [torch.tensor(0.0)] * 4, lambdas=LAMBDAS, form=form)
    if form == "minimax":
        expected = torch.log(1 - torch.sigmoid(fake_logits.detach())).mean()  # the paper's log(1 - D)
    else:
        expected = -torch.log(torch.sigmoid(fake_logits.detach())).mean()
    assert float(loss.gan.detach()) == pytest.approx(float(expected), rel=1e-5)
    loss.total.backward()
    assert (fake_logits.grad < 0).all()  # descending raises D(T(x))


def test_non_saturating_form_keeps_gradient_where_d_rejects_confidently() -> None:
    grads = {}
    for form in ("non_saturating", "minimax"):
        logit = torch.tensor([-6.0], requires_grad=True)
        generator_loss(logit, [torch.tensor(0.0)] * 4, lambdas=LAMBDAS, form=form).total.backward()
        grads[form] = abs(float(logit.grad))
    assert grads["non_saturating"] > 100 * grads["minimax"]


def test_pixel_term_and_weights() -> None:
    fake = torch.zeros(1, 3, 4, 4, requires_grad=True)
    target = torch.full((1, 3, 4, 4), 0.5)
    p = [torch.tensor(0.1)] * 4
    loss = generator_loss(torch.zeros(1), p, lambdas=LAMBDAS, fake=fake, target=target, pixel_l1=10.0)
    assert float(loss.pixel.detach()) == pytest.approx(0.5)
    assert float(loss.total.detach()) == pytest.approx(float(F.softplus(torch.tensor(0.0))) + 0.9 + 5.0)
    loss.total.backward()
    assert (fake.grad < 0).all()  # towards the target
    no_pixel = generator_loss(torch.zeros(1), p, lambdas=LAMBDAS, fake=fake, target=target)
    assert float(no_pixel.total.detach()) == pytest.approx(float(F.softplus(torch.tensor(0.0))) + 0.9)
    with pytest.raises(ValueError):
        generator_loss(torch.zeros(1), p, lambdas=LAMBDAS, pixel_l1=1.0)


def test_squared_pixel_term_is_the_mean_squared_error() -> None:
    fake = torch.zeros(1, 3, 4, 4, requires_grad=True)
    target = torch.full((1, 3, 4, 4), 0.5)
    p = [torch.tensor(0.1)] * 4
    base = float(F.softplus(torch.tensor(0.0))) + 0.9
    loss = generator_loss(torch.zeros(1), p, lambdas=LAMBDAS, fake=fake, target=target, pixel_l2=10.0)
    assert float(loss.total.detach()) == pytest.approx(base + 10.0 * 0.25)
    assert float(loss.pixel.detach()) == pytest.approx(0.5)  # the reported pixel term stays mean |T(x) - y|
    loss.total.backward()
    assert (fake.grad < 0).all()
    with pytest.raises(ValueError):
        generator_loss(torch.zeros(1), p, lambdas=LAMBDAS, pixel_l2=1.0)


def test_pooled_pixel_term_anchors_block_means_and_ignores_detail_inside_them() -> None:
    """pixel_pool = k: an output whose k x k block means match the target's costs nothing, whatever its
    detail inside the blocks (the texture is left to D's terms); a colour shift still costs the same."""
    target = torch.zeros(1, 3, 8, 8)
    checker = (torch.arange(8)[:, None] + torch.arange(8)[None, :]) % 2 * 2.0 - 1.0  # zero mean per 2 x 2
    textured = (0.3 * checker).expand(1, 3, 8, 8).clone().requires_grad_(True)
    p = [torch.tensor(0.0)] * 4
    full = generator_loss(torch.zeros(1), p, lambdas=LAMBDAS, fake=textured, target=target, pixel_l1=10.0)
    pooled = generator_loss(
        torch.zeros(1), p, lambdas=LAMBDAS, fake=textured, target=target, pixel_l1=10.0, pixel_pool=2
    )
    gan = float(F.softplus(torch.tensor(0.0)))
    assert float(full.total.detach()) == pytest.approx(gan + 10.0 * 0.3)
    assert float(pooled.total.detach()) == pytest.approx(gan, abs=1e-6)  # detail inside blocks is free
    assert float(pooled.pixel.detach()) == pytest.approx(0.3)  # the report stays the full-resolution error
    shifted = torch.full((1, 3, 8, 8), 0.2, requires_grad=True)
    for pool in (1, 2, 4):
        loss = generator_loss(
            torch.zeros(1), p, lambdas=LAMBDAS, fake=shifted, target=target, pixel_l2=1.0, pixel_pool=pool
        )
        assert float(loss.total.detach()) == pytest.approx(gan + 0.04)  # a colour shift costs the same
