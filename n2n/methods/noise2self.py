"""Noise2Self (Batson & Royer, ICML 2019): J-invariant training with grid masks.

Each step hides, in every image, the pixels of one random phase of a `grid` x `grid` lattice (every grid-th
pixel in both directions, 1 / grid^2 of them), replaced by the average of their 8 neighbours
(`replacement: interp`, weights 1 on the sides and 1/2 on the corners, as in the paper's code) or by 0
(`zero`); the loss is computed at the hidden pixels against their noisy values. Neighbours of a hidden pixel
are never hidden (grid >= 2), so the input carries no trace of a hidden pixel's value.

Inference: one plain pass (`inference: plain`), or the J-invariant prediction (`jinv`): the network applied to
each of the grid^2 masked inputs, each pixel taken from the pass that hid it (grid^2 passes).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from n2n.methods.base import AveragedInference, Batch, Forward, choice, integer
from n2n.methods.blind_spot import BlindSpotMethod

_KERNEL = torch.tensor([[0.5, 1.0, 0.5], [1.0, 0.0, 1.0], [0.5, 1.0, 0.5]])


def neighbour_average(x: torch.Tensor) -> torch.Tensor:
    """Each pixel replaced by the weighted mean of its 8 neighbours (reflected at the borders)."""
    c = x.shape[1]
    kernel = (_KERNEL / _KERNEL.sum()).to(x.device, x.dtype).expand(c, 1, 3, 3)
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), kernel, groups=c)


def grid_mask(h: int, w: int, grid: int, row: torch.Tensor, col: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) 0/1: the pixels (i, j) with i % grid == row and j % grid == col, per image."""
    i = torch.arange(h, device=row.device).view(1, 1, h, 1)
    j = torch.arange(w, device=row.device).view(1, 1, 1, w)
    return ((i % grid == row.view(-1, 1, 1, 1)) & (j % grid == col.view(-1, 1, 1, 1))).float()


def hide(x: torch.Tensor, mask: torch.Tensor, replacement: str) -> torch.Tensor:
    fill = neighbour_average(x) if replacement == "interp" else torch.zeros_like(x)
    return torch.where(mask.bool(), fill, x)


class Noise2Self(BlindSpotMethod):
    name = "n2s"

    def __init__(self, grid: int = 4, replacement: str = "interp", inference: str = "plain"):
        super().__init__()
        self.grid = integer("grid", grid, 2, 16)
        self.replacement = choice("replacement", replacement, ("interp", "zero"))
        self.inference = choice("inference", inference, ("plain", "jinv"))

    def prepare(self, batch: Batch, generator: torch.Generator | None) -> Batch:
        y = batch["noisy"]
        n, _, h, w = y.shape
        phase = torch.randint(0, self.grid ** 2, (n,), device=y.device, generator=generator)
        mask = grid_mask(h, w, self.grid, phase // self.grid, phase % self.grid).to(y.dtype)
        return {**batch, "input": hide(y, mask, self.replacement), "mask": mask}

    def inference_network(self, net):
        return net if self.inference == "plain" else JInvariant(net, self)

    def describe(self):
        return {"name": self.name, "grid": self.grid, "replacement": self.replacement, "inference": self.inference}


class JInvariant(AveragedInference):
    """The J-invariant prediction: every pixel from the pass in which it was hidden (grid^2 passes)."""

    def __init__(self, net, method: Noise2Self):
        super().__init__(net, method)
        self.grid, self.replacement = method.grid, method.replacement

    def passes(self, x: torch.Tensor, forward: Forward) -> torch.Tensor:
        n, _, h, w = x.shape
        out = None
        for phase in range(self.grid ** 2):
            row = torch.full((n,), phase // self.grid, device=x.device)
            mask = grid_mask(h, w, self.grid, row, torch.full_like(row, phase % self.grid)).to(x.dtype)
            y = forward(hide(x, mask, self.replacement))
            out = y * mask if out is None else out + y * mask
        return out
