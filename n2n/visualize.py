"""Side-by-side pictures of noisy | denoised | clean, for TensorBoard and for eval.py's `comparison.png`:
each column named, each image captioned (e.g. its PSNR), small images enlarged so that the difference can be
seen."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

COLUMNS = ("noisy", "denoised", "clean")
_TEXT_SIZE = 14
#: The width TensorBoard's Time Series tab shows an image at by default (its cards are about 400 px wide; the
#: image is scaled to fit): grids made for it get text that reads at that width (`shown_width`).
TENSORBOARD_CARD_WIDTH = 400


def comparison_grid(rows: Sequence[Sequence[torch.Tensor]], max_side: int = 256, min_side: int = 128,
                    labels: Sequence[str] = COLUMNS, captions: Sequence[Sequence[str]] | None = None,
                    gap: int = 4, shown_width: int | None = None) -> torch.Tensor:
    """One row per image, its versions C x H x W in [0, 1] side by side (centre-cropped to `max_side`,
    enlarged by a whole factor with nearest neighbours up to `min_side`, so that pixels stay pixels), under a
    header naming the columns (`labels`), each image with its caption below (`captions[row][column]`, e.g.
    "20.17 dB"). `shown_width`: the width the grid will be shown at, scaled to fit (TensorBoard's image cards
    are about 400 px wide): the text is enlarged so that it still reads at 14 px there.
    Returns C x H x W in [0, 1] with C the images' channels."""
    channels = rows[0][0].shape[0]
    cells = [[_fit(im, max_side, min_side) for im in row] for row in rows]
    col_w = [max(row[j].shape[-1] for row in cells if j < len(row)) for j in range(max(map(len, cells)))]
    width = sum(col_w) + gap * (len(col_w) + 1)
    text_size = max(_TEXT_SIZE, round(_TEXT_SIZE * width / shown_width)) if shown_width else _TEXT_SIZE
    text_h = text_size + 6
    heights = [max(c.shape[-2] for c in row) + (text_h if captions else 0) for row in cells]
    height = text_h + sum(heights) + gap * len(rows) + gap
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    font = _font(text_size)
    x = gap
    for j, w in enumerate(col_w):
        if j < len(labels):
            _centred(draw, labels[j], x, w, gap // 2, font)
        x += w + gap
    y = text_h + gap
    for i, row in enumerate(cells):
        x = gap
        for j, cell in enumerate(row):
            canvas.paste(Image.fromarray(_to_rgb8(cell)), (x, y))
            if captions and j < len(captions[i]):
                _centred(draw, captions[i][j], x, col_w[j], y + cell.shape[-2] + 2, font)
            x += col_w[j] + gap
        y += heights[i] + gap
    out = torch.from_numpy(np.asarray(canvas).copy()).permute(2, 0, 1).float() / 255
    return out[:1] if channels == 1 else out


def _fit(image: torch.Tensor, max_side: int, min_side: int) -> torch.Tensor:
    image = image.detach().float().cpu().clamp(0, 1)
    h, w = image.shape[-2:]
    ch, cw = min(h, max_side), min(w, max_side)
    y, x = (h - ch) // 2, (w - cw) // 2
    image = image[:, y: y + ch, x: x + cw]
    factor = max(1, math.ceil(min_side / max(ch, cw)))
    return image.repeat_interleave(factor, dim=1).repeat_interleave(factor, dim=2) if factor > 1 else image


def _to_rgb8(image: torch.Tensor) -> np.ndarray:
    pixels = to_uint8_hwc(image)
    return np.repeat(pixels, 3, axis=2) if pixels.shape[2] == 1 else pixels[..., :3]


def _font(size: int = _TEXT_SIZE) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)  # Pillow's bundled font (needs FreeType)
    except (TypeError, OSError, ImportError):  # older Pillow or no FreeType: the small bitmap font
        return ImageFont.load_default()


def _centred(draw: ImageDraw.ImageDraw, text: str, x: int, width: int, y: int, font: ImageFont.ImageFont) -> None:
    left, _, right, _ = draw.textbbox((0, 0), text, font=font)
    draw.text((x + max(0, (width - (right - left)) // 2), y), text, fill="black", font=font)


def psnr_caption(value: float | None) -> str:
    return "" if value is None or not math.isfinite(value) else f"{value:.2f} dB"


def to_uint8_hwc(image: torch.Tensor):
    """C x H x W float in [0, 1] -> H x W x C uint8 numpy array (8-bit rounding, as saved images hold)."""
    return (image.detach().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
