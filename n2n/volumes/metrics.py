"""Scores of a denoised volume against a clean one, in the clean volume's own range (volumes are not in [0, 1])."""
from __future__ import annotations

import math

import numpy as np
import torch

from n2n.metrics import SSIM_WINDOW


def data_range(reference) -> float:
    return float(reference.max() - reference.min()) or 1.0


def psnr(x: torch.Tensor, reference: torch.Tensor) -> float:
    """PSNR in dB with the reference's range (max - min) as the peak."""
    return psnr_of(float(((x.double() - reference.double()) ** 2).mean()), data_range(reference))


def psnr_of(mse: float, peak: float) -> float:
    return math.inf if mse == 0 else 10 * math.log10(peak ** 2 / mse)


def mean_squared(x, reference, scale: float = 1.0, slab: int = 16) -> float:
    """Mean of ((x - reference) / scale)^2 over two Z x Y x X arrays (or memory maps), `slab` sections at a time
    in float64, so that a whole tomogram needs no volume-sized temporary."""
    total = 0.0
    for z in range(0, x.shape[0], slab):
        a = np.asarray(x[z:z + slab], dtype=np.float64)
        total += float((((a - np.asarray(reference[z:z + slab], dtype=np.float64)) / scale) ** 2).sum())
    return total / max(1, int(np.prod(x.shape)))


def psnr_volume(x, reference) -> float:
    """`psnr` of two Z x Y x X arrays (or memory maps), slab by slab."""
    return psnr_of(mean_squared(x, reference), data_range(reference))


def ssim(x: torch.Tensor, reference: torch.Tensor) -> float:
    """SSIM of two Z x Y x X volumes (3D Gaussian window), or of two single sections (Z = 1, micrographs: 2D window),
    with the reference's range; NaN when any side is below the 11-voxel window."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    dims = 2 if reference.shape[-3] == 1 else 3
    if min(reference.shape[-dims:]) < SSIM_WINDOW:
        return float("nan")
    xs, rs = (t.reshape(1, 1, *t.shape[-dims:]).float() for t in (x, reference))
    return float(structural_similarity_index_measure(xs, rs, data_range=data_range(reference)))
