"""Declipping: black stays black when a model that learnt unclipped noise denoises a clipped file.

An image file holds nothing below black or above white, so its noise is clipped there and no longer has zero
mean: under Gaussian noise of sigma 25 a black region averages about 10/255. A network trained by Noise2Noise
(or Noise2Clean) with the L2 loss on unclipped synthetic noise estimates a local mean of its input, and on a
clipped input that mean is the clipped one: black comes out lifted, white lowered, shadows flat.

The remedy of Foi (2009, "Clipped noisy images: heteroskedastic modeling and practical denoising", Signal
Processing 89(12)) undoes this after denoising: for Gaussian noise of standard deviation sigma, the mean of the
clipped value of x + noise is a known, strictly increasing function of x,

    m(x) = x (Phi(b) - Phi(a)) + sigma (phi(a) - phi(b)) + 1 - Phi(b),   a = -x / sigma,  b = (1 - x) / sigma,

(Phi, phi: the standard normal distribution and density), equal to x far from 0 and 1. Each denoised pixel is
taken as m(x) and replaced by x = m^-1(pixel). Sigma is estimated from the image itself (the median absolute
deviation of noisy - denoised over the mid-tones, where clipping is rare), so blind models need no sigma.

When it applies (`rule_for_training`): the network learnt the mean of unclipped additive Gaussian noise (noise
gaussian, loss l2, `noise.file_like` 0: a model trained with clipped inputs learnt the clean value itself), and
its input was clipped to [0, 1] (an image file, or any input of the Python API, which clips floats). An input
with values outside [0, 1], such as the benchmarks' unclipped noise in eval.py, is left alone: nothing was
clipped. The rule travels with the network: the attribute `declip` of a loaded model, the `n2n.declip` metadata
of .safetensors and .onnx files.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Mapping

import torch

#: A network's attribute (and weight files' metadata value) naming how its clipped inputs' outputs are corrected.
ATTRIBUTE = "declip"
METADATA_KEY = "n2n.declip"
#: Mid-tones where sigma is measured: clipping moves few of their noisy values (sigma 50: 16 % at the edges).
_MID_TONES = ((0.2, 0.8), (0.05, 0.95))
_MIN_SAMPLES = 1000
_MAX_SAMPLES = 1 << 20  # a strided subset of larger images: the median of a million residuals is plenty
_GRID = 4097            # points of the tabulated m(x) on [0, 1]: linear interpolation error far below 1/65535
_CHUNK = 1 << 22        # pixels corrected at a time: bounded temporaries on 24-megapixel images


def clipped_gaussian_mean(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """E[clip(x + n, 0, 1)] for n ~ N(0, sigma^2), elementwise (sigma > 0)."""
    a, b = -x / sigma, (1.0 - x) / sigma
    cdf_a, cdf_b = torch.special.ndtr(a), torch.special.ndtr(b)
    pdf = lambda t: torch.exp(-0.5 * t * t) / math.sqrt(2.0 * math.pi)  # noqa: E731
    return x * (cdf_b - cdf_a) + sigma * (pdf(a) - pdf(b)) + (1.0 - cdf_b)


def estimate_sigma(noisy: torch.Tensor, denoised: torch.Tensor) -> float | None:
    """The noise's standard deviation in one image (C x H x W), from the residual noisy - denoised over its
    mid-tones (1.4826 x the median absolute deviation); None where too few pixels are mid-tones to tell."""
    for low, high in _MID_TONES:
        mid = (denoised > low) & (denoised < high)  # indexing keeps row-major order in any memory layout
        chosen = noisy[mid] - denoised[mid]
        if chosen.numel() >= _MIN_SAMPLES:
            step = max(1, chosen.numel() // _MAX_SAMPLES)
            chosen = chosen[::step].double()
            return float(1.4826 * (chosen - chosen.median()).abs().median())
    return None


def undo_gaussian_clipping(denoised: torch.Tensor, sigma: float) -> torch.Tensor:
    """x = m^-1(denoised) in place for one image, C x H x W of any memory layout (see the module's docstring), by
    interpolation in m tabulated over [0, 1]; values below m(0) become 0 and above m(1) become 1."""
    if sigma <= 0:
        return denoised
    grid = torch.linspace(0.0, 1.0, _GRID, dtype=torch.float64)
    means = clipped_gaussian_mean(grid, sigma)
    grid, means = grid.float(), means.float()
    rows = max(1, _CHUNK // max(1, denoised[..., 0, :].numel()))
    for top in range(0, denoised.shape[-2], rows):  # bands of rows: bounded temporaries on large images
        band = denoised[..., top:top + rows, :]
        values = band.clamp(float(means[0]), float(means[-1]))
        right = torch.searchsorted(means, values.contiguous()).clamp_(1, _GRID - 1)
        m0, m1 = means[right - 1], means[right]
        t = (values - m0) / (m1 - m0).clamp_min(1e-12)
        band.copy_(grid[right - 1] + t * (grid[right] - grid[right - 1]))
    return denoised


def declip_gaussian(denoised: torch.Tensor, noisy: torch.Tensor) -> torch.Tensor:
    """Each image of a batch (B x C x H x W) corrected in place with its own estimated sigma."""
    for out, inp in zip(denoised, noisy):
        sigma = estimate_sigma(inp, out)
        if sigma:
            undo_gaussian_clipping(out, sigma)
    return denoised


#: The corrections by name: the value of a network's `declip` attribute and of the `n2n.declip` metadata.
RULES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {"gaussian": declip_gaussian}


def rule_for_training(config: Mapping[str, Any]) -> str | None:
    """The correction a network trained with `config` (a resolved training config) needs on clipped inputs: the
    name of a rule of RULES, or None. Only a network that learnt the mean of unclipped additive Gaussian noise
    drawn on clean images (data=folder-like synthetic noise) is corrected: files of the user's own noisy captures
    carry noise of unknown kind, and a model trained on clipped inputs (noise.file_like) handles them itself."""
    noise = config.get("noise") or {}
    model = config.get("model") or {}
    loss = config.get("loss") or {}
    if noise.get("name") != "gaussian" or noise.get("file_like") or int(model.get("dims", 2)) != 2:
        return None
    if (loss.get("name") if isinstance(loss, Mapping) else loss) != "l2":
        return None
    from n2n.data.sources import SOURCES

    source = SOURCES.get((config.get("data") or {}).get("name"))
    return "gaussian" if source is not None and source.clean_train else None


def rule_of(model: Any) -> str | None:
    """The declipping rule a loaded network or runner carries (None: none)."""
    rule = getattr(model, ATTRIBUTE, None)
    return rule if rule in RULES else None


def correct_clipping(denoised: torch.Tensor, noisy: torch.Tensor, rule: str | None) -> torch.Tensor:
    """`denoised` (B x C x H x W, in [0, 1]) corrected in place by `rule` where the input `noisy` was clipped to
    [0, 1] like a file; unchanged when rule is None, the channel counts differ or the input has values outside
    [0, 1] (unclipped noise: nothing to undo)."""
    if rule is None or denoised.shape != noisy.shape:
        return denoised
    if float(noisy.min()) < 0.0 or float(noisy.max()) > 1.0:
        return denoised
    return RULES[rule](denoised, noisy)
