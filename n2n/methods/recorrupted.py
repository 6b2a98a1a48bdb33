"""Recorrupted-to-Recorrupted (Pang et al., CVPR 2021), for Gaussian noise of a known level sigma.

From one noisy image y and fresh noise z ~ N(0, sigma^2): the input y + alpha z and the target y - z / alpha.
Their noises n + alpha z and n - z / alpha are uncorrelated (E[(n + alpha z)(n - z / alpha)] = sigma^2 - sigma^2)
and zero-mean, so for Gaussian n they are independent and the pair trains like Noise2Noise. The network learns
to denoise inputs with noise of level sigma * sqrt(1 + alpha^2), so inference re-corrupts too: it averages the
outputs for `samples` draws of y + alpha z (fixed seed: the same result on every call).
"""
from __future__ import annotations

import torch

from n2n.methods.base import SINGLE, AveragedInference, Batch, Forward, Method, integer, number

INFERENCE_SEED = 20210619


class Recorrupted2Recorrupted(Method):
    name = "r2r"
    needs = SINGLE
    needs_sigma = True

    def __init__(self, alpha: float = 0.5, sigma: float | None = None, samples: int = 5):
        super().__init__()
        self.alpha = number("alpha", alpha, 0, 10, low_open=True)
        self.given_sigma = None if sigma is None else number("sigma", sigma, 0, 255, low_open=True)
        self.samples = integer("samples", samples, 1, 1000)

    def prepare(self, batch: Batch, generator: torch.Generator | None) -> Batch:
        y = batch["noisy"]
        z = self.sigma * torch.randn(y.shape, device=y.device, generator=generator, dtype=y.dtype)
        return {**batch, "input": y + self.alpha * z, "target": y - z / self.alpha}

    def loss(self, forward: Forward, batch: Batch) -> torch.Tensor:
        return self.loss_fn(forward(batch["input"]), batch["target"])

    def inference_network(self, net):
        return Recorrupted(net, self)

    def describe(self):
        return {"name": self.name, "alpha": self.alpha, "samples": self.samples}


class Recorrupted(AveragedInference):
    """The mean of the network's outputs on `samples` re-corruptions y + alpha z of its input."""

    def __init__(self, net, method: Recorrupted2Recorrupted):
        super().__init__(net, method)
        self.sigma, self.alpha, self.samples = method.sigma, method.alpha, method.samples

    def passes(self, x: torch.Tensor, forward: Forward) -> torch.Tensor:
        generator = torch.Generator(device=x.device).manual_seed(INFERENCE_SEED)
        total = None
        for _ in range(self.samples):
            z = torch.randn(x.shape, device=x.device, generator=generator, dtype=torch.float32).to(x.dtype)
            y = forward(x + (self.alpha * self.sigma) * z)
            total = y if total is None else total + y
        return total / self.samples
