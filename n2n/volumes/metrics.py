"""Scores of a denoised volume against a clean one, in the clean volume's own range (volumes are not in [0, 1])."""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

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


#: SSIM's constants and Gaussian window (torchmetrics' defaults, which the image scores use: n2n.metrics.ssim).
SSIM_SIGMA, SSIM_K1, SSIM_K2 = 1.5, 0.01, 0.03
#: Bytes per voxel of a slab while its SSIM map is computed (five float32 maps in, filtered, and the map's terms).
SSIM_BYTES_PER_VOXEL = 100


def _gaussian_window() -> torch.Tensor:
    offsets = torch.arange(SSIM_WINDOW, dtype=torch.float32) - (SSIM_WINDOW - 1) / 2
    g = torch.exp(-((offsets / SSIM_SIGMA) ** 2) / 2)
    return g / g.sum()


def _filtered(maps: torch.Tensor, window: torch.Tensor, axes: int) -> torch.Tensor:
    """The Gaussian window over the last `axes` axes of N x 1 x ... maps, one axis at a time (the window is
    separable), without padding: each filtered axis loses SSIM_WINDOW - 1."""
    conv = F.conv3d if axes == 3 else F.conv2d
    for axis in range(axes):
        shape = [1] * axes
        shape[axis] = SSIM_WINDOW
        maps = conv(maps, window.reshape(1, 1, *shape))
    return maps


def ssim(x, reference, max_memory: int = 2**30) -> float:
    """SSIM of two Z x Y x X volumes (3D Gaussian window), or of two single sections (Z = 1, micrographs: 2D window),
    with the reference's range; NaN when any side is below the 11-voxel window. Arrays, memory maps or tensors: the
    map is computed slab by slab along z (reflected at the volume's ends, as torchmetrics pads), so no more than
    about `max_memory` bytes are held at once; the value is torchmetrics' (tested)."""
    shape = tuple(int(n) for n in reference.shape[-3:])
    axes = 2 if shape[0] == 1 else 3
    if min(shape[-axes:]) < SSIM_WINDOW:
        return float("nan")
    as_array = lambda a: a.detach().float().cpu().numpy() if isinstance(a, torch.Tensor) else a  # noqa: E731
    x, reference = as_array(x).reshape(shape), as_array(reference).reshape(shape)
    peak = data_range(reference)
    c1, c2 = (SSIM_K1 * peak) ** 2, (SSIM_K2 * peak) ** 2
    r = SSIM_WINDOW // 2
    window = _gaussian_window()
    section = shape[1] * shape[2] * SSIM_BYTES_PER_VOXEL
    step = 1 if axes == 2 else max(1, int(max_memory) // section - 2 * r)
    total = 0.0
    for z0 in range(0, shape[0], step):
        z1 = min(z0 + step, shape[0])
        rows = np.arange(z0 - r, z1 + r) if axes == 3 else np.arange(z0, z1)
        rows = np.abs(rows)  # reflect below 0 and above Z - 1, the last section not repeated
        rows = np.where(rows > shape[0] - 1, 2 * (shape[0] - 1) - rows, rows)
        a, b = (torch.from_numpy(np.asarray(v[rows], dtype=np.float32)) for v in (x, reference))
        if axes == 2:
            a, b = a[0], b[0]
        pair = torch.stack((a, b))[:, None]  # 2 x 1 x (z) x y x x
        pair = F.pad(pair, (r, r, r, r) + (0, 0) * (axes - 2), mode="reflect")  # y and x; z was read reflected
        a, b = pair[0:1], pair[1:2]
        mu_a, mu_b, aa, bb, ab = _filtered(torch.cat((a, b, a * a, b * b, a * b)), window, axes)
        del a, b, pair
        mu_aa, mu_bb, mu_ab = mu_a * mu_a, mu_b * mu_b, mu_a * mu_b
        var_a, var_b = (aa - mu_aa).clamp_(min=0), (bb - mu_bb).clamp_(min=0)
        index = ((2 * mu_ab + c1) * (2 * (ab - mu_ab) + c2)) / ((mu_aa + mu_bb + c1) * (var_a + var_b + c2))
        total += float(index.double().sum())
    return total / int(np.prod(shape))
