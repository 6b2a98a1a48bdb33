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
    color: the same random hue rotation and brightness factor on both images (RGB only);
    levels: the fraction of clean images whose levels are stretched before noise is added (`clean_levels`)."""

    flip: bool = False
    swap: bool = False
    color: bool = False
    hue: float = 0.1          # max hue rotation, in turns (1.0 = 360 degrees)
    brightness: float = 0.2   # factor drawn in [1 - brightness, 1 + brightness]
    levels: float = 0.0

    def __call__(self, src: torch.Tensor, tgt: torch.Tensor, generator: torch.Generator | None = None):
        """The transforms on two separate batches of float images (training calls `pairs` on its stack)."""
        return self.pairs(torch.stack([src, tgt], 1), generator).unbind(1)

    def pairs(self, pairs: torch.Tensor, generator: torch.Generator | None = None,
              swappable: int | None = None) -> torch.Tensor:
        """The transforms on float images stacked as (N, K, C, H, W): K = 2 for (source, target) pairs, K = 1 for
        single clean images (the swap is then a no-op, its coin still drawn). The swap exchanges the first two
        images, and only where `swappable` (default K) is 2 or more: a stored noisy copy and its clean image
        are not exchanged. One operation per transform for the whole stack, so a batch costs few kernel
        launches. Draws, in this order: swap, horizontal flip, vertical flip, hue, brightness."""
        n, dev, k = pairs.shape[0], pairs.device, pairs.shape[1]
        if self.swap:
            coin = _coin(n, dev, generator)[:, None]
            if min(k, k if swappable is None else swappable) >= 2:
                order = torch.tensor([1, 0, *range(2, k)], device=dev)
                pairs = torch.where(coin, pairs.index_select(1, order), pairs)
        if self.flip:
            for dim in (-1, -2):
                pairs = torch.where(_coin(n, dev, generator)[:, None], pairs.flip(dim), pairs)
        if self.color and pairs.shape[2] == 3:
            angle = (torch.rand(n, device=dev, generator=generator) * 2 - 1) * (2 * math.pi * self.hue)
            gain = 1 + (torch.rand(n, 1, 1, 1, 1, device=dev, generator=generator) * 2 - 1) * self.brightness
            pairs = torch.einsum("nij,nkjhw->nkihw", _rgb_hue_matrix(angle).to(pairs.dtype), pairs) * gain
        return pairs

    def clean_levels(self, clean: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """A `levels` fraction of the clean images (N, C, H, W), drawn per image, with their levels stretched as a
        photo editor's "levels" does: x -> clip((x - lo) / (hi - lo), 0, 1), lo drawn in [0, LEVELS_LOW] and hi
        in [1 - LEVELS_LOW, 1]. Shadows below lo become pure black and highlights above hi pure white: regions a
        training set of well-exposed photos (CBSD432) hardly has, so that a network trained on it learns that
        they exist instead of pulling black up to the dark greys it has seen (n2n.bench.black_level). Only for
        clean images: the noise is added after (the DataModule refuses it on noisy captures). Draws nothing when
        `levels` is 0, so seeded runs without it are unchanged."""
        if not self.levels:
            return clean
        n, dev = clean.shape[0], clean.device
        chosen = torch.rand(n, 1, 1, 1, device=dev, generator=generator) < self.levels
        low = torch.rand(n, 1, 1, 1, device=dev, generator=generator) * LEVELS_LOW
        high = 1 - torch.rand(n, 1, 1, 1, device=dev, generator=generator) * LEVELS_LOW
        stretched = ((clean - low) / (high - low)).clamp(0, 1)
        return torch.where(chosen, stretched, clean)


#: The widest black and white points of `clean_levels`: up to 30 % of the range clipped at each end.
LEVELS_LOW = 0.3


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
    if not 0 <= float(options.get("levels", 0.0)) <= 1:
        raise ConfigError("aug.levels must be in [0, 1]: the fraction of clean images whose levels are stretched")
    return PairedAugment(**options)
