"""The two methods that compare the output with a second image of the scene: Noise2Noise (an independent noisy
capture, Lehtinen et al. 2018) and its supervised baseline Noise2Clean (the clean image)."""
from __future__ import annotations

import torch

from n2n.methods.base import CLEAN, PAIR, Batch, Forward, Method


class Noise2Noise(Method):
    """The loss between the network's output on one noisy capture and the other capture of the scene."""

    name = "n2n"
    needs = PAIR

    def loss(self, forward: Forward, batch: Batch) -> torch.Tensor:
        return self.loss_fn(forward(batch["noisy"]), batch["other"])


class Noise2Clean(Method):
    """The supervised baseline: the loss against the clean image (needs data with clean training images)."""

    name = "n2c"
    needs = CLEAN

    def loss(self, forward: Forward, batch: Batch) -> torch.Tensor:
        return self.loss_fn(forward(batch["noisy"]), batch["clean"])
