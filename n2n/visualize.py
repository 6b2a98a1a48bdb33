"""Side-by-side pictures of noisy | denoised | clean, for TensorBoard and for eval.py's output folder."""
from __future__ import annotations

from typing import Sequence

import torch


def comparison_row(images: Sequence[torch.Tensor], max_side: int = 256, gap: int = 4) -> torch.Tensor:
    """Images C x H x W in [0, 1] (same size), centre-cropped to `max_side`, side by side with white gaps."""
    h, w = images[0].shape[-2:]
    ch, cw = min(h, max_side), min(w, max_side)
    y, x = (h - ch) // 2, (w - cw) // 2
    parts = []
    for i, im in enumerate(images):
        if i:
            parts.append(torch.ones(im.shape[0], ch, gap, dtype=im.dtype, device=im.device))
        parts.append(im[:, y: y + ch, x: x + cw].clamp(0, 1))
    return torch.cat(parts, dim=2)


def comparison_grid(rows: Sequence[Sequence[torch.Tensor]], max_side: int = 256, gap: int = 4) -> torch.Tensor:
    """One row per image (noisy | denoised | clean); rows of different widths are padded with white."""
    made = [comparison_row(r, max_side, gap) for r in rows]
    width = max(r.shape[-1] for r in made)
    padded = []
    for i, r in enumerate(made):
        if i:
            padded.append(torch.ones(r.shape[0], gap, width, dtype=r.dtype, device=r.device))
        padded.append(torch.nn.functional.pad(r, (0, width - r.shape[-1]), value=1.0))
    return torch.cat(padded, dim=1)


def to_uint8_hwc(image: torch.Tensor):
    """C x H x W float in [0, 1] -> H x W x C uint8 numpy array (8-bit rounding, as saved images hold)."""
    return (image.detach().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
