"""The training losses of the Noise2Noise paper (Lehtinen et al. 2018, section 3).

With noisy targets the loss decides which statistic of the target distribution the network learns, so it must
match the noise: L2 recovers the mean (zero-mean noise: gaussian, poisson), L1 the median (text, where fewer than
half the pixels are corrupted), and the annealed "L0" the mode (impulse, where corrupted values are spread out and
the clean value is the most likely one).

Losses are computed in float32: under mixed precision the L0 loss's `eps` (1e-8) would flush to zero in float16.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from n2n.errors import ConfigError
from n2n.registry import build_from_registry


class Loss(nn.Module):
    """Base class: `forward(pred, target, mask=None)` -> scalar mean loss; `set_progress` informs schedules.

    `mask` (N x 1 x H x W or the shape of `pred`, 0/1) restricts the mean to the chosen pixels: the blind-spot
    methods (n2n/methods/) score only the pixels they hid from the network."""

    name: str = ""

    def set_progress(self, fraction: float) -> None:
        """`fraction` in [0, 1]: the share of training done. Only annealed losses use it."""


class L2Loss(Loss):
    """Mean squared error: learns the mean of the targets.

    `ignore_dropped` leaves out target pixels that are exactly 0 in every channel, as the paper does for Bernoulli
    noise: counting the dropped pixels would teach the network p * x (a darker image) instead of x.
    """

    name = "l2"

    def __init__(self, ignore_dropped: bool = False):
        super().__init__()
        self.ignore_dropped = _flag("loss.ignore_dropped", ignore_dropped)

    def forward(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        pred, target = pred.float(), target.float()
        if self.ignore_dropped:
            valid = (target != 0).any(dim=1, keepdim=True).float()
            mask = valid if mask is None else mask * valid
        if mask is None:
            return F.mse_loss(pred, target)
        return masked_mean((pred - target) ** 2, mask)

    def extra_repr(self) -> str:
        return f"ignore_dropped={self.ignore_dropped}"


class L1Loss(Loss):
    """Mean absolute error: learns the median of the targets."""

    name = "l1"

    def forward(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is None:
            return F.l1_loss(pred.float(), target.float())
        return masked_mean((pred.float() - target.float()).abs(), mask)


class L0Loss(Loss):
    """Annealed `mean((|pred - target| + eps) ** gamma)`, gamma going linearly from `gamma_start` to `gamma_end`.

    As gamma approaches 0 near-exact matches dominate and large errors barely count, so the minimiser moves from
    the mean to the mode. Starting at L2 gives the network an easy, smooth problem first.
    gamma is a 0-d buffer updated in place, so changing it neither recompiles a compiled step nor syncs with the
    device.
    """

    name = "l0"

    def __init__(self, eps: float = 1e-8, gamma_start: float = 2.0, gamma_end: float = 0.0):
        super().__init__()
        self.eps = _number("loss.eps", eps, positive=True)
        self.gamma_start = _number("loss.gamma_start", gamma_start)
        self.gamma_end = _number("loss.gamma_end", gamma_end)
        # Not persistent: it is derived from progress, and extra keys would only clutter checkpoints.
        self.register_buffer("gamma", torch.tensor(self.gamma_start), persistent=False)

    def set_progress(self, fraction: float) -> None:
        fraction = min(max(float(fraction), 0.0), 1.0)
        self.gamma.fill_(self.gamma_start + (self.gamma_end - self.gamma_start) * fraction)

    def forward(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        values = ((pred.float() - target.float()).abs() + self.eps).pow(self.gamma)
        return values.mean() if mask is None else masked_mean(values, mask)

    def extra_repr(self) -> str:
        return f"eps={self.eps:g}, gamma_start={self.gamma_start:g}, gamma_end={self.gamma_end:g}"


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The mean of `values` over the entries where `mask` (broadcast to their shape) is 1; a tensor, no host sync."""
    weight = mask.to(values.dtype).expand_as(values)
    return (values * weight).sum() / weight.sum().clamp_min(1)


def _number(option: str, value: Any, positive: bool = False) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (positive and value == 0):
        raise ConfigError(f"{option}={value!r} must be a {'positive' if positive else 'non-negative'} number")
    return float(value)


def _flag(option: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{option}={value!r} must be true or false")
    return value


#: Choices for `loss.name`.
LOSSES: dict[str, type[Loss]] = {m.name: m for m in (L2Loss, L1Loss, L0Loss)}


def build_loss(cfg: Mapping[str, Any]) -> Loss:
    """`{"name": "l0", "eps": 1e-8}` -> the loss module; any bad name, key or value raises ConfigError."""
    return build_from_registry(LOSSES, cfg, "loss")
