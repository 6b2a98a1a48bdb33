"""Neighbor2Neighbor (Huang et al., CVPR 2021): two sub-images of one noisy image as a Noise2Noise pair.

In every 2 x 2 cell a random one of the 8 ordered pairs of orthogonally adjacent pixels is drawn: its first pixel
goes to g1(y), its second to g2(y). The two half-size images see the same scene through (nearly) independent
noise, so `|f(g1 y) - g2 y|^2` trains like Noise2Noise; the regulariser
`gamma * |f(g1 y) - g2 y - (g1 f(y) - g2 f(y))|^2`, with f(y) computed without gradient, makes up for the two
sub-images not being exactly the same scene. `gamma` ramps linearly from 0 to `gamma` over the run (the official
code's schedule) or stays constant. Inference: one plain pass on the whole image.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from n2n.methods.base import SINGLE, Batch, Forward, Method, choice, number

#: The 8 ordered pairs of orthogonal neighbours in a 2 x 2 cell; positions 0 1 / 2 3 (row-major).
NEIGHBOUR_PAIRS = torch.tensor([[0, 1], [1, 0], [0, 2], [2, 0], [1, 3], [3, 1], [2, 3], [3, 2]])


def cell_pixels(x: torch.Tensor, which: torch.Tensor) -> torch.Tensor:
    """From each 2 x 2 cell of `x` (N, C, H, W; even H and W), the pixel at position `which` (N, 1, H/2, W/2)
    of 0..3: a half-size image (N, C, H/2, W/2)."""
    n, c, h, w = x.shape
    cells = F.pixel_unshuffle(x, 2).view(n, c, 4, h // 2, w // 2)  # channel order: c * 4 + position
    index = which.view(n, 1, 1, h // 2, w // 2).expand(n, c, 1, h // 2, w // 2)
    return cells.gather(2, index).squeeze(2)


def draw_neighbour_pairs(n: int, h: int, w: int, device: torch.device,
                         generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions (first, second) in every 2 x 2 cell, each (N, 1, H/2, W/2): one of the 8 pairs per cell."""
    choice_ = torch.randint(0, 8, (n, 1, h // 2, w // 2), device=device, generator=generator)
    pairs = NEIGHBOUR_PAIRS.to(device)[choice_]
    return pairs[..., 0], pairs[..., 1]


class Neighbor2Neighbor(Method):
    name = "nb2nb"
    needs = SINGLE
    even_size = True

    def __init__(self, gamma: float = 2.0, gamma_schedule: str = "ramp"):
        super().__init__()
        self.gamma = number("gamma", gamma, 0, 100)
        self.gamma_schedule = choice("gamma_schedule", gamma_schedule, ("ramp", "constant"))
        # a 0-d buffer changed in place: a replayed CUDA graph reads the current value, and no host sync
        start = self.gamma if self.gamma_schedule == "constant" else 0.0
        self.register_buffer("current_gamma", torch.tensor(start), persistent=False)

    def set_progress(self, fraction: float) -> None:
        super().set_progress(fraction)
        if self.gamma_schedule == "ramp":
            self.current_gamma.fill_(self.gamma * min(max(float(fraction), 0.0), 1.0))

    def prepare(self, batch: Batch, generator: torch.Generator | None) -> Batch:
        y = batch["noisy"]
        first, second = draw_neighbour_pairs(y.shape[0], y.shape[-2], y.shape[-1], y.device, generator)
        return {**batch, "first": first, "second": second}

    def loss(self, forward: Forward, batch: Batch) -> torch.Tensor:
        y, first, second = batch["noisy"], batch["first"], batch["second"]
        g1, g2 = cell_pixels(y, first), cell_pixels(y, second)
        out = forward(g1)
        loss = self.loss_fn(out, g2)
        if self.gamma == 0:
            return loss
        with torch.no_grad():
            full = forward(y).float()
            gap = cell_pixels(full, first) - cell_pixels(full, second)
        return loss + self.current_gamma * ((out.float() - g2.float() - gap) ** 2).mean()

    def describe(self):
        return {"name": self.name, "gamma": self.gamma, "gamma_schedule": self.gamma_schedule}
