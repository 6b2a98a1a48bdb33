"""Zero-Shot Noise2Noise (Mansour & Heckel, CVPR 2023): a small network fitted to the one image being denoised.

No training set and no trained model: the image is split by a fixed pair down-sampler into two half-size
images (the means of the two diagonals of every 2 x 2 cell), which see the same scene through independent
noise. A two-layer network that predicts the noise is fitted with the residual loss (each half's prediction
against the other half) and the consistency loss (the halves of the denoised image against the denoised
halves), then applied to the whole image. Defaults are the paper's code: 48 channels, Adam at 1e-3 halved
every 1 000 of 2 000 steps. Used by `n2n denoise --zero-shot` and `n2n.denoise_zero_shot`.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from n2n.errors import ConfigError
from n2n.methods.base import Method, integer, number


def pair_downsample(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The two diagonal means of every 2 x 2 cell: (N, C, H/2, W/2) each."""
    c = x.shape[1]
    first = torch.tensor([[0.0, 0.5], [0.5, 0.0]], device=x.device, dtype=x.dtype).expand(c, 1, 2, 2)
    second = torch.tensor([[0.5, 0.0], [0.0, 0.5]], device=x.device, dtype=x.dtype).expand(c, 1, 2, 2)
    return F.conv2d(x, first, stride=2, groups=c), F.conv2d(x, second, stride=2, groups=c)


class NoisePredictor(nn.Module):
    """The paper's network: 3x3 conv, LeakyReLU(0.2), 3x3 conv, LeakyReLU(0.2), 1x1 conv; predicts the noise."""

    def __init__(self, channels: int, features: int = 48):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, features, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(features, features, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(features, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def zero_shot_loss(model: nn.Module, y: torch.Tensor) -> torch.Tensor:
    a, b = pair_downsample(y)
    pred_a, pred_b = a - model(a), b - model(b)
    residual = 0.5 * (F.mse_loss(a, pred_b) + F.mse_loss(b, pred_a))
    den_a, den_b = pair_downsample(y - model(y))
    consistency = 0.5 * (F.mse_loss(pred_a, den_a) + F.mse_loss(pred_b, den_b))
    return residual + consistency


class ZeroShotNoise2Noise(Method):
    """Registered as a method so that its options live with the others (conf/method/zsn2n.yaml); it does not
    train with train.py: `fit_and_denoise` runs at denoising time."""

    name = "zsn2n"
    trains = False

    def __init__(self, steps: int = 2000, lr: float = 0.001, features: int = 48, seed: int = 0):
        super().__init__()
        self.steps = integer("steps", steps, 1, 1_000_000)
        self.lr = number("lr", lr, 0, 1, low_open=True)
        self.features = integer("features", features, 1, 1024)
        self.seed = integer("seed", seed, 0, 2**32 - 1)

    def fit_and_denoise(self, image: torch.Tensor, progress: Callable[[int], None] | None = None) -> torch.Tensor:
        """`image`: 1 x C x H x W float in [0, 1] (any size of at least 2 x 2); the denoised image, clamped to
        [0, 1], same shape, on the CPU. `progress(k)` is called after each step."""
        if image.dim() != 4 or image.shape[0] != 1 or min(image.shape[-2:]) < 2:
            raise ConfigError(f"zero-shot denoising takes one image of at least 2 x 2 pixels, got shape "
                              f"{tuple(image.shape)}")
        y = image.float()
        # odd sides: the down-sampler drops the last row/column; the whole image is denoised all the same
        fit = y[..., : y.shape[-2] // 2 * 2, : y.shape[-1] // 2 * 2]
        with torch.random.fork_rng(devices=[]):  # the seeded initialisation leaves the caller's RNG as it was
            torch.manual_seed(self.seed)
            model = NoisePredictor(y.shape[1], self.features)
        model = model.to(y.device)
        optimizer = torch.optim.Adam(model.parameters(), lr=self.lr)
        schedule = torch.optim.lr_scheduler.StepLR(optimizer, step_size=max(1, self.steps // 2), gamma=0.5)
        for step in range(self.steps):
            optimizer.zero_grad(set_to_none=True)
            zero_shot_loss(model, fit).backward()
            optimizer.step()
            schedule.step()
            if progress is not None:
                progress(step + 1)
        with torch.no_grad():
            return (y - model(y)).clamp(0, 1).cpu()

    def describe(self):
        return {"name": self.name, "steps": self.steps, "lr": self.lr, "features": self.features}
