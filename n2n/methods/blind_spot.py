"""What the blind-spot methods (Noise2Void, Noise2Self) share: hiding chosen pixels from the network and scoring
the network only there, against their own noisy values. Since the network never sees a hidden pixel's value,
it cannot learn to copy it, and for noise independent from pixel to pixel the best it can do is predict the clean
value from the neighbours."""
from __future__ import annotations

import torch

from n2n.methods.base import SINGLE, Batch, Forward, Method


class BlindSpotMethod(Method):
    """Subclasses implement `prepare`, returning the batch with `input` (the network's input, hidden pixels
    replaced) and `mask` (N x 1 x H x W, 1 at the hidden pixels)."""

    needs = SINGLE

    def loss(self, forward: Forward, batch: Batch) -> torch.Tensor:
        return self.loss_fn(forward(batch["input"]), batch["noisy"], batch["mask"])


def scatter_pixels(image: torch.Tensor, where: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """`image` (N, C, H, W) with the pixels at flat positions `where` (N, M) set to `values` (N, C, M)."""
    n, c, h, w = image.shape
    out = image.reshape(n, c, h * w).clone()
    out.scatter_(2, where[:, None, :].expand(n, c, where.shape[1]), values)
    return out.view(n, c, h, w)


def gather_pixels(image: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
    """The pixels of `image` (N, C, H, W) at flat positions `where` (N, M): (N, C, M)."""
    n, c, h, w = image.shape
    return image.reshape(n, c, h * w).gather(2, where[:, None, :].expand(n, c, where.shape[1]))
