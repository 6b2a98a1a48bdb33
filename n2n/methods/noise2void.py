"""Noise2Void (Krull et al., CVPR 2019), with N2V2's median replacement and structN2V's line masks.

Each step hides a stratified ~`mask_ratio` of the pixels: one random pixel in every box of side
round(1 / sqrt(mask_ratio)). A hidden pixel's value is replaced by that of a random other pixel of its
`window` x `window` neighbourhood (`replacement: random`, the original) or by the median of that neighbourhood
without its centre (`median`, N2V2, which avoids checkerboard artefacts); the loss is computed only at the
hidden pixels, against their original noisy values. The random position inside each box keeps a margin of
window // 2 to the next box, so no hidden pixel lies in another's window: its value reaches the network through
no replacement, and the output there has exactly zero gradient with respect to it.

structN2V (Broaddus et al., ISBI 2020), for noise correlated along rows or columns: `struct_axis: row` (or
`column`) also hides the `struct_span` pixels on each side of every hidden pixel along that axis, replacing
them and the hidden pixel with values drawn uniformly over the image's range, so that the correlated noise
around it cannot give its value away. Inference: one plain pass.
"""
from __future__ import annotations

import math

import torch

from n2n.errors import ConfigError
from n2n.methods.base import Batch, choice, integer, number
from n2n.methods.blind_spot import BlindSpotMethod, gather_pixels, scatter_pixels


class Noise2Void(BlindSpotMethod):
    name = "n2v"

    def __init__(self, mask_ratio: float = 0.002, window: int = 11, replacement: str = "random",
                 struct_axis: str | None = None, struct_span: int = 0):
        super().__init__()
        self.mask_ratio = number("mask_ratio", mask_ratio, 0, 0.05, low_open=True)
        self.window = integer("window", window, 3, 31)
        if self.window % 2 == 0:
            raise ConfigError(f"method.window={window} must be odd (a window centred on the hidden pixel)")
        self.replacement = choice("replacement", replacement, ("random", "median"))
        self.struct_axis = choice("struct_axis", struct_axis, (None, "row", "column"))
        self.struct_span = integer("struct_span", struct_span, 0, 64)
        if self.struct_axis is not None and self.struct_span < 1:
            raise ConfigError(f"method.struct_axis={struct_axis} hides a line: set method.struct_span >= 1 (pixels "
                              f"on each side)")
        self.box = max(1, round(1 / math.sqrt(self.mask_ratio)))
        reach = max(self.window // 2, self.struct_span)
        if self.box <= reach:
            raise ConfigError(f"method.mask_ratio={mask_ratio} is too high for method.window={window}"
                              f"{f' and struct_span={struct_span}' if self.struct_span else ''}: hidden pixels would "
                              f"lie in each other's neighbourhood; at most {1 / (reach + 1) ** 2:.4g}")

    def positions(self, n: int, h: int, w: int, device: torch.device,
                  generator: torch.Generator | None) -> torch.Tensor:
        """(N, M) flat positions of the hidden pixels: one per box, at least window // 2 from the next box's."""
        margin = self.box - max(self.window // 2, self.struct_span)
        rows, cols = torch.arange(0, h, self.box, device=device), torch.arange(0, w, self.box, device=device)
        m = len(rows) * len(cols)
        dy = torch.randint(0, margin, (n, m), device=device, generator=generator)
        dx = torch.randint(0, margin, (n, m), device=device, generator=generator)
        y = (rows[:, None].expand(-1, len(cols)).reshape(1, m) + dy).clamp_max(h - 1)
        x = (cols[None, :].expand(len(rows), -1).reshape(1, m) + dx).clamp_max(w - 1)
        return y * w + x

    def neighbour_offsets(self, n: int, m: int, device: torch.device,
                          generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """A random offset in the window, never (0, 0): (N, M) rows and columns."""
        r = self.window // 2
        k = torch.randint(0, self.window ** 2 - 1, (n, m), device=device, generator=generator)
        k = k + (k >= (self.window ** 2) // 2).long()  # skip the centre
        return k // self.window - r, k % self.window - r

    def prepare(self, batch: Batch, generator: torch.Generator | None) -> Batch:
        y = batch["noisy"]
        n, _, h, w = y.shape
        where = self.positions(n, h, w, y.device, generator)
        py, px = where // w, where % w
        if self.struct_axis is not None:
            values, hidden = self._struct(y, py, px, generator)
        else:
            if self.replacement == "random":
                oy, ox = self.neighbour_offsets(n, where.shape[1], y.device, generator)
                values = gather_pixels(y, _reflect(py + oy, h) * w + _reflect(px + ox, w))
            else:
                values = self._median(y, py, px)
            hidden = where
        mask = torch.zeros(n, 1, h * w, device=y.device, dtype=y.dtype)
        mask.scatter_(2, where[:, None, :], 1.0)
        return {**batch, "input": scatter_pixels(y, hidden, values), "mask": mask.view(n, 1, h, w)}

    def _median(self, y: torch.Tensor, py: torch.Tensor, px: torch.Tensor) -> torch.Tensor:
        """The median of each hidden pixel's window without its centre, per channel: (N, C, M)."""
        n, _, h, w = y.shape
        r = self.window // 2
        offsets = [(a, b) for a in range(-r, r + 1) for b in range(-r, r + 1) if (a, b) != (0, 0)]
        values = torch.stack([gather_pixels(y, _reflect(py + a, h) * w + _reflect(px + b, w)) for a, b in offsets], -1)
        return values.median(-1).values

    def _struct(self, y: torch.Tensor, py: torch.Tensor, px: torch.Tensor,
                generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """The hidden pixel and its line along `struct_axis`: uniform random values over the image's range."""
        n, c, h, w = y.shape
        span = torch.arange(-self.struct_span, self.struct_span + 1, device=y.device)
        if self.struct_axis == "row":
            where = py[..., None] * w + _reflect(px[..., None] + span, w)
        else:
            where = _reflect(py[..., None] + span, h) * w + px[..., None]
        where = where.reshape(n, -1)
        flat = y.detach().reshape(n, c, h * w)
        low, high = flat.amin(2, keepdim=True), flat.amax(2, keepdim=True)
        u = torch.rand(n, c, where.shape[1], device=y.device, generator=generator, dtype=y.dtype)
        return low + (high - low) * u, where

    def describe(self):
        out = {"name": self.name, "mask_ratio": self.mask_ratio, "window": self.window,
               "replacement": self.replacement}
        if self.struct_axis is not None:
            out.update(struct_axis=self.struct_axis, struct_span=self.struct_span)
        return out


def _reflect(i: torch.Tensor, size: int) -> torch.Tensor:
    """Indices mirrored into [0, size) at the borders (-1 -> 1, size -> size - 2)."""
    i = i.abs()
    return torch.where(i >= size, 2 * (size - 1) - i, i).clamp(0, size - 1)
