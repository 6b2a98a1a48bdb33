"""Zero-shot denoising as a runner: Zero-Shot Noise2Noise (n2n/methods/zero_shot.py) fits a small network to each
image when it is denoised, so the same readers, writers and Python API serve it as they serve trained models.
The image is fitted whole (never in tiles: each tile would get a network of its own, with seams between them)."""
from __future__ import annotations

import sys

import torch

from n2n.methods.zero_shot import ZeroShotNoise2Noise


class ZeroShotRunner:
    """`denoise_image(x)` fits ZS-N2N to x (1 x C x H x W in [0, 1]) and returns the denoised image; a progress
    bar over the fitting steps on stderr when `progress` is set."""

    def __init__(self, channels: int, steps: int | None = None, progress: bool = True):
        self.method = ZeroShotNoise2Noise() if steps is None else ZeroShotNoise2Noise(steps=steps)
        self.in_channels = self.out_channels = channels
        self.progress = progress

    def denoise_image(self, x: torch.Tensor) -> torch.Tensor:
        from tqdm import tqdm

        bar = tqdm(total=self.method.steps, desc=f"zero-shot fit {x.shape[-1]}x{x.shape[-2]}", unit="step",
                   file=sys.stderr, disable=not self.progress, leave=False)
        try:
            # fitting needs autograd, also when called from inference code (denoise_tensor runs in inference mode)
            with torch.inference_mode(False), torch.enable_grad():
                return self.method.fit_and_denoise(x.clone(), progress=lambda step: bar.update(1))
        finally:
            bar.close()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.denoise_image(x)
