"""Denoising a volume in overlapping 3D tiles (or its sections in 2D tiles, for a 2D model), within a memory bound.

The scheme is n2n.inference.tiling's, one axis more: tiles live in the frame of the whole-volume pass (the volume
padded on its far sides to a multiple of 2**depth, as UNet.forward pads it), start on multiples of 2**depth so the
pooling grid is the same, and contribute only their centre, `overlap` voxels away from any inner tile edge. Cores
partition the volume, so there is no blending weight to get wrong and no seam: a voxel's output differs from the
whole-volume pass only through context further than `overlap` away, and not at all with `overlap` at least the
network's receptive reach (n2n.models.unet.receptive_reach; tested). Each tile is padded on its own, the input may
be a memory map (only a tile's worth is read at a time) and the output is one float32 array of the volume's size.
"""
from __future__ import annotations

import itertools
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from n2n.inference.tiling import DEFAULT_OVERLAP as IMAGE_OVERLAP
from n2n.inference.tiling import tile_windows
from n2n.models.unet import pad_to_multiple, receptive_reach

#: Bytes of memory per tile voxel that the default U-Net (48 features) needs in a float32 forward pass, measured
#: as peak resident memory on 64^3 and 96^3 tiles (1177 and 1114 B), and per pixel for the 2D U-Net on a section
#: (1091 and 1066 B on 1024^2 and 2048^2); the tile sizes chosen from --max-memory scale it with model.features.
BYTES_PER_VOXEL_48 = 1200
#: Memory kept aside for the interpreter, PyTorch and the model (bytes).
RESERVE = 512 * 2**20


def round_up(n: int, multiple: int) -> int:
    return -(-int(n) // multiple) * multiple


def round_down(n: int, multiple: int) -> int:
    return max(multiple, int(n) // multiple * multiple)


def default_overlap(depth: int, dims: int = 3) -> int:
    """Context kept around each tile's centre. In 3D a fifth of the receptive reach, at least one pooling multiple
    (32 voxels for the paper's depth): the full reach (158 voxels at depth 5) would multiply the work by
    (1 + 2 * 158 / core)^3; measured differences at the default are in docs/volumes.md. In 2D (a 2D model's
    sections and micrographs) the image path's measured default (n2n.inference.tiling.DEFAULT_OVERLAP), within
    the reach."""
    m = 2 ** depth
    if dims == 2:
        return round_up(min(IMAGE_OVERLAP, receptive_reach(depth)), m)
    return max(m, round_up(receptive_reach(depth) // 5, m))


def plan_tiles(shape: tuple[int, int, int], depth: int, features: int, max_memory: int,
               overlap: int | None = None, tile: int | None = None,
               dims: int = 3) -> tuple[tuple[int, ...], int]:
    """(tile size per axis, overlap) for a Z x Y x X volume and a network of `dims` spatial dimensions: the largest
    tiles whose activations, with the output array, fit in `max_memory` bytes. In 3D z is taken whole first when
    it fits (tomograms are thin); in 2D the tiles are Y x X, cut from each section. `tile` forces a square or cubic
    tile side instead. ValueError when not even the smallest tile fits."""
    if dims not in (2, 3):
        raise ValueError(f"dims must be 2 or 3, got {dims}")
    m = 2 ** depth
    o = round_up(overlap if overlap is not None else default_overlap(depth, dims), m)
    padded = [round_up(n, m) for n in shape[-dims:]]
    smallest = 2 * o + m
    if tile is not None:
        side = round_up(tile, m)
        if side < smallest and side < max(padded):
            raise ValueError(f"a tile of {tile} voxels (rounded up to {side}) leaves no centre with an overlap of "
                             f"{o} on both sides: use a tile of at least {smallest} or a smaller overlap")
        return tuple(min(side, p) for p in padded), o
    per_voxel = BYTES_PER_VOXEL_48 * max(features, 1) / 48
    output = 4 * int(np.prod(shape))
    budget = (max_memory - output - RESERVE) / per_voxel
    least = min(smallest, padded[0]) * smallest ** (dims - 1)
    if budget < least:
        need = (output + RESERVE + least * per_voxel) / 2**30
        raise ValueError(f"--max-memory {max_memory / 2**30:.2f} GiB cannot hold the output ({output / 2**30:.2f} "
                         f"GiB) and one tile of {smallest} voxels a side: allow at least {need:.2f} GiB")
    if dims == 2:
        side = max(round_down(int(budget ** 0.5), m), smallest)
        return (min(side, padded[0]), min(side, padded[1])), o
    tz = padded[0] if padded[0] * smallest * smallest <= budget else None
    if tz is not None:
        side = round_down(int((budget / tz) ** 0.5), m)
        return (tz, min(max(side, smallest), padded[1]), min(max(side, smallest), padded[2])), o
    side = max(round_down(int(budget ** (1 / 3)), m), smallest)
    return (min(side, padded[0]), min(side, padded[1]), min(side, padded[2])), o


def _pad_mode(shape, m: int) -> str:
    return "reflect" if all((-n) % m < n for n in shape) else "replicate"


def crop_padded(x: np.ndarray, window: tuple[tuple[int, int], ...], m: int) -> torch.Tensor:
    """pad_to_multiple(x)[window] as a 1 x 1 x (z x) y x x float32 tensor, reading and padding only the window."""
    shape = x.shape
    starts = []
    for (a, b), n in zip(window, shape):
        starts.append(min(a, max(n - m, 0)) if b > n else a)  # far padding reflects up to m voxels back
    part = np.array(x[tuple(slice(s, min(b, n)) for s, (_, b), n in zip(starts, window, shape))], dtype=np.float32)
    t = torch.from_numpy(np.ascontiguousarray(part))[None, None]
    pads = [max(b - n, 0) for (_, b), n in zip(window, shape)]
    if any(pads):
        spec: list[int] = []
        for p in reversed(pads):
            spec += [0, p]
        t = F.pad(t, tuple(spec), mode=_pad_mode(shape, m))
    return t[(..., *(slice(a - s, None) for (a, _), s in zip(window, starts)))]


def windows(shape, tile, overlap, m) -> list[tuple[tuple[int, int, int, int], ...]]:
    """Every tile of an array of `shape` (2 or 3 axes): per axis (start, end, core start, core end)."""
    per_axis = [tile_windows(round_up(n, m), t, overlap) for n, t in zip(shape, tile)]
    return list(itertools.product(*per_axis))


def denoise_volume(run: Callable[[torch.Tensor], torch.Tensor], x: np.ndarray, depth: int,
                   tile: tuple[int, ...] | None, overlap: int,
                   transform: Callable[[torch.Tensor], torch.Tensor] = lambda t: t,
                   progress: Callable[[Iterator], Iterator] = lambda it: it) -> np.ndarray:
    """Float32 output of `run` (a 1 x 1 x z x y x x -> same-shape function, e.g. a 3D U-Net's forward_aligned; one
    axis less for a 2D network) on `x` (a Z x Y x X volume or a Y x X section: any array or memory map), whole when
    `tile` is None or covers it, else in tiles (see the module docstring). `transform` maps each raw input tile
    first (normalisation)."""
    m = 2 ** depth
    shape = tuple(int(n) for n in x.shape)
    with torch.inference_mode():
        if tile is None or all(t >= round_up(n, m) for t, n in zip(tile, shape)):
            for _ in progress([shape]):  # one tile: the whole volume
                whole = transform(torch.from_numpy(np.array(x, dtype=np.float32))[None, None])
                out = run(pad_to_multiple(whole, m, len(shape)))[0, 0][tuple(slice(0, n) for n in shape)]
            return out.float().numpy()
        out = np.empty(shape, np.float32)
        for window in progress(windows(shape, tile, overlap, m)):
            crop = transform(crop_padded(x, tuple((w[0], w[1]) for w in window), m))
            pred = run(crop)[0, 0]
            core = [(w[2], min(w[3], n)) for w, n in zip(window, shape)]
            if any(a >= b for a, b in core):
                continue  # a core entirely in the padding
            out[tuple(slice(a, b) for a, b in core)] = pred[tuple(slice(a - w[0], b - w[0])
                                                                   for (a, b), w in zip(core, window))].numpy()
        return out
