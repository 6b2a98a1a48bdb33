"""SURE training (Soltanayev & Chun, NeurIPS 2018), for Gaussian noise of a known level sigma.

Stein's unbiased risk estimate of the mean squared error to the clean image, from the noisy image y alone:
`|f(y) - y|^2 / n - sigma^2 + 2 sigma^2 div f(y) / n`. The divergence (the trace of f's Jacobian) is
estimated by Monte Carlo with one random direction b ~ N(0, I) per step: `b . (f(y + tau b) - f(y)) / tau`
(Ramani et al. 2008), whose expectation over b is the divergence as tau -> 0. Inference: one plain pass.
"""
from __future__ import annotations

import torch

from n2n.methods.base import SINGLE, Batch, Forward, Method, number


def mc_divergence(forward: Forward, y: torch.Tensor, out: torch.Tensor, b: torch.Tensor, tau: float) -> torch.Tensor:
    """Per image, b . (f(y + tau b) - f(y)) / tau: (N,)."""
    work = torch.promote_types(out.dtype, torch.float32)  # at least float32 (float64 stays: tests, tiny tau)
    moved = forward(y + tau * b).to(work)
    return (b.to(work) * (moved - out.to(work))).flatten(1).sum(1) / tau


class SURE(Method):
    name = "sure"
    needs = SINGLE
    needs_sigma = True
    l2_only = True

    def __init__(self, tau: float = 0.001, sigma: float | None = None):
        super().__init__()
        self.tau = number("tau", tau, 0, 1, low_open=True)
        self.given_sigma = None if sigma is None else number("sigma", sigma, 0, 255, low_open=True)

    def prepare(self, batch: Batch, generator: torch.Generator | None) -> Batch:
        y = batch["noisy"]
        return {**batch, "direction": torch.randn(y.shape, device=y.device, generator=generator, dtype=y.dtype)}

    def loss(self, forward: Forward, batch: Batch) -> torch.Tensor:
        y = batch["noisy"]
        out = forward(y)
        pixels = y[0].numel()
        divergence = mc_divergence(forward, y, out, batch["direction"], self.tau)
        per_image = (((out.float() - y.float()) ** 2).flatten(1).sum(1) - pixels * self.sigma ** 2
                     + 2 * self.sigma ** 2 * divergence) / pixels
        return per_image.mean()

    def describe(self):
        return {"name": self.name, "tau": self.tau}
