"""Image quality, measured as the paper does: on outputs clipped to [0, 1] and rounded to 8 bits.

Training validation accumulates the same quantities with torchmetrics objects (one per stage, in the
LightningModule); everything that scores single images (eval.py, benchmarks, data tools) uses these.
"""
from __future__ import annotations

import math

import torch

#: SSIM's Gaussian window: images smaller than this on either side have no SSIM.
SSIM_WINDOW = 11


def quantize8(x: torch.Tensor) -> torch.Tensor:
    """What an 8-bit image file holds: metrics are measured on this, as in the paper."""
    return x.clamp(0, 1).mul(255).round().div(255)


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB of `x` against `y` (inf for identical images)."""
    mse = float(torch.mean((x.double() - y.double()) ** 2))  # double: no float32 rounding in the sum
    return 10 * math.log10(data_range ** 2 / mse) if mse > 0 else float("inf")


def ssim(x: torch.Tensor, y: torch.Tensor) -> float:
    """Structural similarity of two C x H x W images in [0, 1]; NaN below SSIM's 11-pixel window."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    if min(x.shape[-2:]) < SSIM_WINDOW:
        return float("nan")
    return float(structural_similarity_index_measure(x[None].float(), y[None].float(), data_range=1.0))
