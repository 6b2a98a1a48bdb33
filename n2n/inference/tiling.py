"""Running a trained network on whole images or on overlapping tiles, through any runner (n2n.inference.runners).

Why tiling reproduces the whole-image result: the U-Net is translation-equivariant only on its 32-pixel
pooling grid, and its zero padding makes pixels near any tile edge differ from the whole-image result.
Tiles therefore (a) live in the same padded frame as the whole-image pass (the image is padded to a
multiple of 32 exactly as `UNet.forward` does), (b) start on multiples of 32 so the pooling grid is the
same, and (c) contribute only their centre, at least `overlap` pixels away from any tile edge that is not
also an image edge. Near an image edge the tile is pushed against that edge, where the whole-image pass
sees the very same zero padding, so border pixels match too. The remaining difference comes only from
context further than `overlap` away, which the network barely uses (see DEFAULT_OVERLAP); with
`overlap >= RECEPTIVE_REACH` there is none at all.
"""
from __future__ import annotations

import numbers
from typing import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F

from n2n.inference.declip import correct_clipping, rule_of
from n2n.inference.runners import RunnerLike, as_runner
from n2n.models.unet import MULTIPLE, pad_to_multiple

#: Beyond this many pixels of context on every side the result cannot change: the U-Net's receptive
#: field reaches 158 px up/left and 127 px down/right of a pixel (it depends on the pixel's position on
#: the 32-pixel pooling grid). With overlap >= RECEPTIVE_REACH tiled output equals whole-image output
#: for any weights, up to float rounding.
RECEPTIVE_REACH = 160

#: Default context kept around each tile's centre. Measured max |tiled - whole| on 448 x 448 and
#: 480 x 480 smooth + texture + edges images: 128 px -> <= 0.0007/255 with random weights and
#: <= 0.0002/255 with briefly fitted ones; 96 px -> up to 31/255 and 1.5/255, failing the 1/255 target.
#: 128 leaves out only the far, faint edge of the receptive field and costs less than RECEPTIVE_REACH.
DEFAULT_OVERLAP = 128

#: Default tile side for the command line: large enough that the 2 x 128 px margins cost < 80 % extra
#: compute on large images, small enough that one tile's activations stay around 1 GB.
DEFAULT_TILE = 1024

#: Default number of tiles sent to the device per call.
DEFAULT_BATCH = 1


def round_up(n: int, multiple: int = MULTIPLE) -> int:
    return -(-int(n) // multiple) * multiple


def tile_windows(size: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """Split [0, size) along one axis into (window_start, window_end, core_start, core_end).

    `size`, `tile` and `overlap` are multiples of 32. Cores partition [0, size); every window has length
    min(tile, size), starts on a multiple of 32 and holds its core with at least `overlap` pixels of
    context on each side that is not the image border.
    """
    if tile >= size:
        return [(0, size, 0, size)]
    step = tile - 2 * overlap
    out: list[tuple[int, int, int, int]] = []
    for core_start in range(0, size, step):
        core_end = min(core_start + step, size)
        start = min(max(core_start - overlap, 0), size - tile)
        if out and out[-1][0] == start:  # near the far border cores share a window: run it once
            out[-1] = (start, start + tile, out[-1][2], core_end)
        else:
            out.append((start, start + tile, core_start, core_end))
    return out


def _batches(items: Sequence, size: int) -> Iterator[Sequence]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def check_tiling(tile: int, overlap: int) -> tuple[int, int]:
    """Tile and overlap rounded up to multiples of 32, refusing a tile with no room for a centre."""
    if overlap < 0:
        raise ValueError(f"overlap must be >= 0 pixels, got {overlap}")
    t, o = round_up(tile), round_up(overlap)
    if t - 2 * o < MULTIPLE:
        raise ValueError(
            f"tile {tile} (rounded up to {t}) leaves no centre with overlap {overlap} (rounded up to {o}) "
            f"on both sides: use a tile of at least {2 * o + MULTIPLE} pixels or a smaller overlap"
        )
    return t, o


def denoise_tensor(
    net: RunnerLike,
    x: torch.Tensor,
    tile: int | None = None,
    overlap: int = DEFAULT_OVERLAP,
    batch: int = DEFAULT_BATCH,
    precision: str | None = None,
    strength: float = 1.0,
    declip: bool = True,
) -> torch.Tensor:
    """Denoise x (B x C x H x W, float in [0, 1], any H and W); returns B x C_out x H x W on the CPU in [0, 1].

    `tile=None` runs the whole image at once. Otherwise the image is cut into overlapping tiles of
    `tile` pixels (rounded up to a multiple of 32) whose centres, `overlap` pixels (rounded up to a
    multiple of 32) away from inner tile edges, are stitched together; at most `batch` tiles of one
    image are on the device at a time and the output is assembled on the CPU in one float32 buffer of
    the output's size (the padded frame is never materialised: each tile is padded on its own).
    `precision` ("auto", "fp32", "bf16"; None = fp32) applies when `net` is a module (see TorchRunner).
    `strength` in [0, 1] keeps some of the input: strength x denoised + (1 - strength) x input (1: the network's
    output; 0: the input itself), for grain or texture a blind model would remove with the noise.
    `declip`: correct the output for the clipping of the input's noise where the model carries a rule for it
    and the input lies in [0, 1] (n2n.inference.declip: black stays black on files); False: the network's output.
    """
    if x.dim() != 4:
        raise ValueError(f"expected a B x C x H x W tensor, got shape {tuple(x.shape)}")
    check_strength(strength)
    if batch < 1:
        raise ValueError(f"batch must be >= 1 tile, got {batch}")
    run = as_runner(net, precision)
    h, w = x.shape[-2:]
    with torch.inference_mode():
        x = x.detach().float().cpu()
        hp, wp = round_up(h), round_up(w)
        whole = getattr(run, "denoise_image", None)  # zero-shot: a network fitted to each whole image, never tiled
        if whole is not None:
            out = torch.cat([whole(image[None]) for image in x])
        elif tile is None or (tile >= hp and tile >= wp):
            # The same padding as UNet.forward; the tiled pass below works in this very frame.
            out = run(pad_to_multiple(x, MULTIPLE))[..., :h, :w]
        else:
            out = _denoise_tiled(run, x, *check_tiling(tile, overlap), batch)
        out.clamp_(0.0, 1.0)
        if declip:
            correct_clipping(out, x, rule_of(run))
        if strength < 1.0:
            if out.shape != x.shape:
                raise ValueError(f"strength {strength} blends the output with the input, but the model turns "
                                 f"{x.shape[1]} channel(s) into {out.shape[1]}")
            # in place (an image-sized buffer less); at strength 0 this is exactly the input
            out.mul_(strength).add_(x, alpha=1.0 - strength)
        return out


def check_strength(strength: float) -> float:
    """`strength` if it is a number in [0, 1], else ValueError naming what is allowed."""
    if not isinstance(strength, numbers.Real) or isinstance(strength, bool) or not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be a number from 0 (the input, unchanged) to 1 (fully denoised), "
                         f"got {strength!r}")
    return float(strength)


def _pad_mode(h: int, w: int) -> str:
    """The mode n2n.models.unet.pad_to_multiple uses for an h x w image."""
    return "reflect" if (-h) % MULTIPLE < h and (-w) % MULTIPLE < w else "replicate"


def crop_padded(x: torch.Tensor, y0: int, y1: int, x0: int, x1: int) -> torch.Tensor:
    """pad_to_multiple(x)[..., y0:y1, x0:x1], padding only the crop (a view when no padding is needed)."""
    h, w = x.shape[-2:]
    if y1 <= h and x1 <= w:
        return x[..., y0:y1, x0:x1]
    # Bottom/right padding (< 32 px) reflects or repeats the last rows/columns: take up to 32 of them along.
    ya = min(y0, max(h - MULTIPLE, 0)) if y1 > h else y0
    xa = min(x0, max(w - MULTIPLE, 0)) if x1 > w else x0
    part = x[..., ya:min(y1, h), xa:min(x1, w)]
    part = F.pad(part, (0, max(x1 - w, 0), 0, max(y1 - h, 0)), mode=_pad_mode(h, w))
    return part[..., y0 - ya:, x0 - xa:]


def _denoise_tiled(run: Callable, x: torch.Tensor, tile: int, overlap: int, batch: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    windows = [
        (ry, rx)
        for ry in tile_windows(round_up(h), tile, overlap)
        for rx in tile_windows(round_up(w), tile, overlap)
    ]
    out: torch.Tensor | None = None
    for image in range(x.shape[0]):
        for group in _batches(windows, batch):
            # All windows have the same size (each is min(tile, side)), so tiles stack into one batch.
            crops = torch.cat([crop_padded(x[image:image + 1], y0, y1, x0, x1)
                               for (y0, y1, _, _), (x0, x1, _, _) in group])
            pred = run(crops)
            if out is None:  # allocated lazily: the runner decides the number of output channels
                out = torch.empty(x.shape[0], pred.shape[1], h, w, dtype=pred.dtype)
            for k, ((y0, _, cy0, cy1), (x0, _, cx0, cx1)) in enumerate(group):
                cy1, cx1 = min(cy1, h), min(cx1, w)  # cores in the padding are not kept
                if cy0 < cy1 and cx0 < cx1:
                    out[image, :, cy0:cy1, cx0:cx1] = pred[k, :, cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
            del crops, pred
    assert out is not None
    return out
