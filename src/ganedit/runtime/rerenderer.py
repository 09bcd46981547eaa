"""Re-rendering objects at other tags with a TDGAN checkpoint (``ganedit rerender``).

    rr = ganedit.load("tdgan-chairs")                     # or a .safetensors path: a Rerenderer
    sweep = parse_tag_options(["azimuth=0,90", "light=all"], rr.config, snap=False)  # runtime.tags
    images = rr.render(pixels, sweep)                       # one image per {tag: value} in the sweep

A sweep names values for some tags only; every other tag keeps the value the model reads off the input
(`Rerenderer.infer_tags`: the value whose g code is nearest, in L1 as trained, to R(x)'s tag code).

Identity refinement (test-time inversion). The paper re-renders with R's identity code as it comes out of
one forward pass. On objects R never saw that code is approximate: G redraws an unseen seat like the
training seats it resembles, measurably worse than a training seat at the input's own pose
(docs/models/tdgan-chairs.md). So, as GAN inversion does (Zhu et al. 2016, "Generative Visual
Manipulation on the Natural Image Manifold"), the code is refined first: a few Adam steps on the identity
code alone, minimising the L1 distance between the input and G(identity, g(the input's own tags)); R, g
and G stay as trained. Few steps on purpose: the more the code is fitted to one view, the more of that
view's pose it absorbs, and the re-renders turn less far than asked (the model card gives the trade-off
as measured). ``refine_steps=0`` is the paper's feed-forward re-rendering.

Library code: no printing; errors are `UsageError` (bad tags, bad refinement settings),
`CheckpointError` or `ImageError`. Loading by model name is `ganedit.load` (api); `Rerenderer.open`
takes a file already located.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from ..errors import CheckpointError, ImageError, UsageError
from .tags import is_light_tag, relights_only, valid_tags

if TYPE_CHECKING:
    import torch

    from ..archs.tdgan import TDGAN, TDGANConfig

TASK = "rerender"
ARCH = "tdgan"
REFINE_STEPS = 5
"""Default identity-refinement steps (`Rerenderer`): chosen on seats no checkpoint was trained or tested on
(docs/models/tdgan-chairs.md, "Identity refinement")."""
REFINE_LR = 0.01
"""Adam step size of the identity refinement (identity codes are unbounded linear outputs of R)."""

__all__ = ["REFINE_LR", "REFINE_STEPS", "Rerenderer", "prepare", "read_config"]


# --------------------------------------------------------------------------------------------------------
# Model


def _config_from_dict(arch_config: dict[str, object], where: str) -> TDGANConfig:
    from ..archs import check_config
    from ..archs.tdgan import TDGANConfig

    try:
        check_config(ARCH, arch_config)  # types and sizes, before a config sizes anything
    except CheckpointError as e:
        raise CheckpointError(f"{where}: {e}") from None
    try:
        return TDGANConfig(**arch_config)  # type: ignore[arg-type]
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{where}: bad TDGAN config ({e})") from None


def read_config(path: Path) -> TDGANConfig:
    """The TDGAN config (tag vocabulary included) of a rerender checkpoint, from its header only.

    The arch config is authoritative; ``ganedit.tags`` (JSON) is only a fallback when the config carries
    no tags.
    """
    from ..checkpoint import read_info

    info = read_info(Path(path))
    if info.arch != ARCH or info.task != TASK:
        raise CheckpointError(
            f"{path} is a {info.task!r} ({info.arch}) checkpoint, not a {TASK!r} ({ARCH}) one"
        )
    arch_config = dict(info.arch_config)
    if not arch_config.get("tags") and info.metadata.get("ganedit.tags"):
        try:
            arch_config["tags"] = list(json.loads(info.metadata["ganedit.tags"]).items())
        except (json.JSONDecodeError, AttributeError) as e:
            raise CheckpointError(f"{path}: ganedit.tags is not a JSON object ({e})") from None
    return _config_from_dict(arch_config, str(path))


def prepare(
    pixels: np.ndarray, size: int | None, background: tuple[int, int, int], fit: str = "pad"
) -> np.ndarray:
    """Any H x W x C (C in 1..4, uint8/uint16) image -> size x size x 3 uint8 RGB: alpha composited on
    `background`, made square (``fit="pad"``: centred on `background`; ``"crop"``: its centred square cut
    out), resized with Lanczos to `size` (None: left at its own size)."""
    a = np.asarray(pixels)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 2, 3, 4) or a.shape[0] < 1 or a.shape[1] < 1:
        raise ImageError(f"cannot re-render an image of shape {a.shape}")
    f = a.astype(np.float32) / (65535.0 if a.dtype == np.uint16 else 255.0)
    channels = f.shape[2]
    colour = f[:, :, :3] if channels >= 3 else np.repeat(f[:, :, :1], 3, axis=2)
    bg = np.asarray(background, np.float32) / 255.0
    if channels in (2, 4):
        alpha = f[:, :, -1:]
        colour = colour * alpha + bg * (1.0 - alpha)
    rgb = np.clip(np.rint(colour * 255.0), 0, 255).astype(np.uint8)
    h, w = rgb.shape[:2]
    if fit == "crop":
        side = min(h, w)
        y, x = (h - side) // 2, (w - side) // 2
        square = np.ascontiguousarray(rgb[y : y + side, x : x + side])
    else:
        side = max(h, w)
        square = np.empty((side, side, 3), np.uint8)
        square[:] = np.asarray(background, np.uint8)
        y, x = (side - h) // 2, (side - w) // 2
        square[y : y + h, x : x + w] = rgb
    if size is not None and side != size:
        square = np.array(Image.fromarray(square).resize((size, size), Image.Resampling.LANCZOS))
    return square


DETAIL_RADIUS = 1.0
"""`transfer_detail`'s split between shading and detail: a Gaussian of this many model pixels (chosen on
faces, docs/models/tdgan-faces.md)."""
_DETAIL_EPS = 0.03  # keeps the detail ratio finite in near-black pixels
_DETAIL_MAX = 2.5  # the largest detail ratio kept (the input's pixel over its local brightness)
_DETAIL_DARK = (0.03, 0.13)  # local brightness below which the input's detail fades out (it has none there)


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """N x C x H x W blurred by a separable Gaussian (replicate edges)."""
    import torch
    import torch.nn.functional as F

    half = max(1, round(3 * sigma))
    taps = torch.arange(-half, half + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-(taps**2) / (2 * sigma * sigma))
    kernel = kernel / kernel.sum()
    c = x.shape[1]
    x = F.pad(x, (half, half, half, half), mode="replicate")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def transfer_detail(
    source: np.ndarray, rendered: Sequence[np.ndarray], radius: float = DETAIL_RADIUS
) -> list[np.ndarray]:
    """Each re-lit image at the source's resolution: the model's shading (each of `rendered`, s x s x 3,
    blurred by `radius` model pixels) times the source's own fine detail (S x S x 3: the source over its
    blur at the same scale), all uint8. Valid when only the lighting changes (the pixels do not move).
    Where the source is nearly black its detail is lost, so the model's pixels are used there. A colour
    source keeps its colours: each channel is divided by the source's local grey brightness, not by its
    own. The source's terms are computed once for all the renders (a sweep of a large photo)."""
    import torch
    import torch.nn.functional as F

    size = source.shape[0]
    x = torch.from_numpy(np.ascontiguousarray(source)).permute(2, 0, 1)[None].float().div(255)
    out: list[np.ndarray] = []
    if not rendered:
        return out
    sigma = radius * size / rendered[0].shape[0]
    # the input's brightness at the shading's scale (grey, over its channels)
    local = _gaussian_blur(x.mean(1, keepdim=True), sigma)
    low, high = _DETAIL_DARK
    weight = ((local - low) / (high - low)).clamp(0, 1)
    # the input over its local brightness keeps its detail AND its colour; the model sets the brightness;
    # capped: at a hard edge of the input (a cast shadow's border, the frame) the ratio would spike
    detail = ((x + _DETAIL_EPS) / (local + _DETAIL_EPS)).clamp(max=_DETAIL_MAX)
    for image in rendered:
        y = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float().div(255)
        y = F.interpolate(y, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)
        shading = _gaussian_blur(y.mean(1, keepdim=True), sigma)
        relit = weight * (shading * detail) + (1 - weight) * y
        out.append(relit[0].permute(1, 2, 0).mul(255).round().clamp(0, 255).to(torch.uint8).numpy())
    return out


def _check_refine(steps: object, lr: object) -> None:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise UsageError(f"refine_steps must be an integer >= 0, not {steps!r}")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not (math.isfinite(lr) and lr > 0):
        raise UsageError(f"refine_lr must be a finite number > 0, not {lr!r}")


class Rerenderer:
    """A loaded TDGAN: re-renders images at target tags. Arrays in (H x W x C), arrays out (S x S x 3).

    `refine_steps`: Adam steps (size `refine_lr`) refining each input's identity code before re-rendering
    (see the module docstring); 0 re-renders with R's code as it is. The weights never change.

    `keep_detail`: for re-lighting (targets that change light tags only), outputs at the input's own
    resolution, the model's shading on the input's fine detail (`transfer_detail`); otherwise the model's
    S x S image. None (default): on for a model whose tags are all light tags (`relights_only`).
    """

    def __init__(
        self,
        model: TDGAN,
        *,
        name: str,
        sha256: str | None = None,
        device: str | torch.device = "cpu",
        batch_size: int = 16,
        refine_steps: int = REFINE_STEPS,
        refine_lr: float = REFINE_LR,
        keep_detail: bool | None = None,
    ) -> None:
        import torch

        _check_refine(refine_steps, refine_lr)
        self.model = model.to(device).eval()
        self.config: TDGANConfig = model.config
        self.name = name
        self.sha256 = sha256
        self.device = torch.device(device)
        if self.device.type == "cpu":
            from .devices import limit_threads

            limit_threads()  # as the editor does: no more threads than the CPUs this process gets
        self.batch_size = max(1, batch_size)
        self.refine_steps = refine_steps
        self.refine_lr = refine_lr
        self.keep_detail = relights_only(self.config) if keep_detail is None else keep_detail

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        name: str | None = None,
        sha256: str | None = None,
        device: str = "auto",
        batch_size: int = 16,
        refine_steps: int = REFINE_STEPS,
        refine_lr: float = REFINE_LR,
        keep_detail: bool | None = None,
    ) -> Rerenderer:
        """Load a rerender checkpoint file (already located and verified: `ganedit.api.locate`)."""
        from ..checkpoint import load_checkpoint
        from .devices import select_device

        _check_refine(refine_steps, refine_lr)
        dev = select_device(device)
        model, _ = load_checkpoint(Path(path), task=TASK, arch=ARCH, device=dev)
        return cls(
            model,  # type: ignore[arg-type]
            name=name or Path(path).name,
            sha256=sha256,
            device=dev,
            batch_size=batch_size,
            refine_steps=refine_steps,
            refine_lr=refine_lr,
            keep_detail=keep_detail,
        )

    # ---------------------------------------------------------------------------------------------------

    def _tensor(self, pixels: np.ndarray) -> torch.Tensor:
        import torch

        square = prepare(pixels, self.config.image_size, self.config.background, self.config.fit)
        x = torch.from_numpy(square).permute(2, 0, 1).float().div(127.5).sub(1.0)
        return x.unsqueeze(0).to(self.device)

    def _infer_indices(self, x: torch.Tensor) -> list[int]:
        import torch
        from torch import nn

        with torch.inference_mode():
            _, codes = self.model.disentangler(x)
            indices = []
            for code, mapper in zip(codes, self.model.tag_mapper.maps, strict=True):
                assert isinstance(mapper, nn.Linear)  # TagMapper: one linear map per tag type
                value_codes = mapper.weight.t()  # n_values x tag_dim: g(one-hot of each value)
                distance = (code[:1] - value_codes).abs().mean(dim=1)  # L1, as the consistency loss
                indices.append(int(distance.argmin()))
        return indices

    def identity(self, x: torch.Tensor, own: Sequence[int]) -> torch.Tensor:
        """The identity code (1 x identity_dim) of `x` (1 x C x S x S in [-1, 1]): R's, refined
        `refine_steps` times so that G(identity, g(own tags)) redraws `x` (L1, as trained). `own`: the
        input's tag indices. Works under a caller's ``torch.inference_mode()`` or ``no_grad()``; only the
        code is optimised (the gradient is taken w.r.t. it alone), the weights are left as they are."""
        import torch

        model = self.model
        with torch.no_grad():
            identity, _ = model.disentangler(x)
            if self.refine_steps == 0:
                return identity
        # a caller's inference mode would make every tensor here unusable for autograd: leave it
        with torch.inference_mode(False), torch.enable_grad():
            target = x.clone()
            own_codes = [
                c.detach().clone()
                for c in model.tag_mapper(model.one_hot(torch.tensor([list(own)], device=self.device)))
            ]
            identity = identity.clone().requires_grad_(True)
            optimizer = torch.optim.Adam([identity], lr=self.refine_lr)
            for _ in range(self.refine_steps):
                loss = (model.generator(identity, own_codes) - target).abs().mean()
                (identity.grad,) = torch.autograd.grad(loss, [identity])
                optimizer.step()
        return identity.detach()

    def infer_tags(self, pixels: np.ndarray) -> dict[str, str]:
        """The value of every tag that the model reads off the image (vocabulary order)."""
        indices = self._infer_indices(self._tensor(pixels))
        return {name: values[i] for (name, values), i in zip(self.config.tags, indices, strict=True)}

    def render(
        self, pixels: np.ndarray, targets: Sequence[dict[str, str]], *, inferred: dict[str, str] | None = None
    ) -> list[np.ndarray]:
        """The object in `pixels` re-rendered at each target (S x S x 3 uint8 each, in order).

        `inferred`: the input's own tag values (default: the model's reading, `infer_tags`). Tags a target
        leaves out keep them, and the identity refinement fits G to the input at them. Unknown tags or
        values raise `UsageError`.
        """
        import torch

        x = self._tensor(pixels)
        if inferred is None:
            indices = self._infer_indices(x)
            inferred = {name: values[i] for (name, values), i in zip(self.config.tags, indices, strict=True)}
        own = inferred
        vocabulary = dict(self.config.tags)
        for name, values in self.config.tags:
            if own.get(name) not in values:
                raise UsageError(f"the input's {name} {own.get(name)!r} is not a value of the model's")
        rows: list[list[int]] = []
        for target in targets:
            unknown = sorted(set(target) - set(vocabulary))
            if unknown:
                raise UsageError(f"unknown tag {unknown[0]!r}; valid tags: {valid_tags(self.config)}")
            row = []
            for name, values in self.config.tags:
                value = target.get(name, own[name])
                if value not in values:
                    raise UsageError(
                        f"unknown value {value!r} of tag {name}; valid values: {', '.join(values)}"
                    )
                row.append(values.index(value))
            rows.append(row)
        if self.keep_detail:
            self._check_relighting(rows, [values.index(own[name]) for name, values in self.config.tags])
        identity = self.identity(x, [values.index(own[name]) for name, values in self.config.tags])
        out: list[np.ndarray] = []
        with torch.inference_mode():
            for start in range(0, len(rows), self.batch_size):
                chunk = torch.tensor(
                    rows[start : start + self.batch_size], dtype=torch.long, device=self.device
                )
                codes = self.model.tag_mapper(self.model.one_hot(chunk))
                y = self.model.generator(identity.expand(len(chunk), -1), codes)
                y = y.float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
                out.extend(y.permute(0, 2, 3, 1).cpu().numpy())
        images = [np.ascontiguousarray(im[:, :, :3]) for im in out]
        if self.keep_detail:
            source = prepare(pixels, None, self.config.background, self.config.fit)
            images = transfer_detail(source, images)
        return images

    def _check_relighting(self, rows: Sequence[Sequence[int]], own: Sequence[int]) -> None:
        """keep_detail moves no pixel: every target may change light tags only."""
        for row in rows:
            for (name, values), want, have in zip(self.config.tags, row, own, strict=True):
                if want != have and not is_light_tag(name):
                    raise UsageError(
                        f"keeping the input's detail re-lights only: {name}={values[want]} would change "
                        f"the input's {name} ({values[have]}); change light tags only, or drop --keep-detail"
                    )
