"""Paired augmentation on whole batches: the same random transform for both images of each pair.

Every choice is drawn per pair on the batch's device and applied with `torch.where`, so there is no
per-image Python and no host synchronisation.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import torch

from n2n.errors import ConfigError


def _coin(n: int, device: torch.device, generator: torch.Generator | None) -> torch.Tensor:
    return torch.rand(n, 1, 1, 1, device=device, generator=generator) < 0.5


def _rgb_hue_matrix(angle: torch.Tensor) -> torch.Tensor:
    """Per-image 3x3 matrices rotating hue by `angle` radians about the grey axis (keeps luminance-ish)."""
    cos, sin = torch.cos(angle), torch.sin(angle)
    k = 1.0 / 3.0
    s3 = math.sqrt(1.0 / 3.0)
    a = cos + (1 - cos) * k
    b = k * (1 - cos) - s3 * sin
    c = k * (1 - cos) + s3 * sin
    rows = [torch.stack([a, b, c], -1), torch.stack([c, a, b], -1), torch.stack([b, c, a], -1)]
    return torch.stack(rows, -2)  # (N, 3, 3)


@dataclass(frozen=True)
class PairedAugment:
    """flip: random horizontal and vertical flips; swap: random exchange of source and target;
    color: the same random hue rotation and brightness factor on both images (RGB only)."""

    flip: bool = False
    swap: bool = False
    color: bool = False
    hue: float = 0.1          # max hue rotation, in turns (1.0 = 360 degrees)
    brightness: float = 0.2   # factor drawn in [1 - brightness, 1 + brightness]

    def __call__(self, src: torch.Tensor, tgt: torch.Tensor, generator: torch.Generator | None = None):
        n, dev = src.shape[0], src.device
        if self.swap:
            s = _coin(n, dev, generator)
            src, tgt = torch.where(s, tgt, src), torch.where(s, src, tgt)
        if self.flip:
            for dim in (-1, -2):
                f = _coin(n, dev, generator)
                src, tgt = torch.where(f, src.flip(dim), src), torch.where(f, tgt.flip(dim), tgt)
        return self.jitter_colour(src, tgt, generator)

    def pairs(self, pairs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The swap and flips of `__call__`, with the same random draws, on pairs stacked as (N, 2, C, H, W):
        one operation per transform instead of one per image of the pair (fewer kernel launches per step). Colour
        comes after: `jitter_colour`. A stack of single images (N, 1, C, H, W) gets the flips alone."""
        n, dev = pairs.shape[0], pairs.device
        if self.swap:
            s = _coin(n, dev, generator)[:, None]
            pairs = torch.where(s, pairs.flip(1), pairs)
        if self.flip:
            for dim in (-1, -2):
                f = _coin(n, dev, generator)[:, None]
                pairs = torch.where(f, pairs.flip(dim), pairs)
        return pairs

    def jitter_colour(self, src: torch.Tensor, tgt: torch.Tensor, generator: torch.Generator | None = None):
        """The same random hue rotation and brightness on both images of each pair (float RGB)."""
        if not self.color or src.shape[1] != 3:
            return src, tgt
        n, dev = src.shape[0], src.device
        angle = (torch.rand(n, device=dev, generator=generator) * 2 - 1) * (2 * math.pi * self.hue)
        gain = 1 + (torch.rand(n, 1, 1, 1, device=dev, generator=generator) * 2 - 1) * self.brightness
        m = _rgb_hue_matrix(angle).to(src.dtype)
        src = torch.einsum("nij,njhw->nihw", m, src) * gain
        tgt = torch.einsum("nij,njhw->nihw", m, tgt) * gain
        return src, tgt


def build_augment(cfg: Mapping[str, Any]) -> PairedAugment:
    """From the `aug` config section, e.g. `{"flip": true, "swap": true, "color": false}`."""
    options = dict(cfg)
    options.pop("name", None)
    allowed = set(PairedAugment.__dataclass_fields__)
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ConfigError(f"aug: unknown option(s) {unknown}; allowed: {sorted(allowed)}")
    if not 0 <= float(options.get("hue", 0.1)) <= 0.5:
        raise ConfigError("aug.hue must be in [0, 0.5] turns")
    if not 0 <= float(options.get("brightness", 0.2)) < 1:
        raise ConfigError("aug.brightness must be in [0, 1)")
    return PairedAugment(**options)
