"""Scores of a denoised volume against a clean one, in the clean volume's own range (volumes are not in [0, 1])."""
from __future__ import annotations

import math

import torch

from n2n.metrics import SSIM_WINDOW


def data_range(reference: torch.Tensor) -> float:
    return float(reference.max() - reference.min()) or 1.0


def psnr(x: torch.Tensor, reference: torch.Tensor) -> float:
    """PSNR in dB with the reference's range (max - min) as the peak."""
    mse = float(((x.double() - reference.double()) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(data_range(reference) ** 2 / mse)


def ssim(x: torch.Tensor, reference: torch.Tensor) -> float:
    """SSIM of two Z x Y x X volumes (3D Gaussian window), or of two single sections (Z = 1, micrographs: 2D window),
    with the reference's range; NaN when any side is below the 11-voxel window."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    dims = 2 if reference.shape[-3] == 1 else 3
    if min(reference.shape[-dims:]) < SSIM_WINDOW:
        return float("nan")
    xs, rs = (t.reshape(1, 1, *t.shape[-dims:]).float() for t in (x, reference))
    return float(structural_similarity_index_measure(xs, rs, data_range=data_range(reference)))
