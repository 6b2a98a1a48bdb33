"""3D tiles (and 2D tiles of a 2D model's sections): stitched output equals the whole pass; tile sizes follow the
memory bound."""
import numpy as np
import pytest
import torch

from n2n.models.unet import UNet, receptive_reach
from n2n.volumes.tiling import BYTES_PER_VOXEL_48, denoise_volume, plan_tiles, windows


def _run(net):
    return lambda t: net.forward_aligned(t)


def test_tiled_equals_whole_volume():
    """With overlap >= the receptive reach, tiles see everything the whole pass sees: equal to float rounding,
    on odd sizes (padding at the far sides) and with tiles cut along y and x; the progress bar sees every tile."""
    torch.manual_seed(0)
    depth = 2
    net = UNet(1, 1, dims=3, depth=depth, features=2).eval()
    shape = (10, 50, 47)
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    overlap = receptive_reach(depth) + 2  # 20
    tile = (2 * 20 + 4,) * 3  # 44
    whole = denoise_volume(_run(net), x, depth, None, overlap)
    seen = []
    tiled = denoise_volume(_run(net), x, depth, tile, overlap, progress=lambda it: (seen.append(w) or w for w in it))
    assert np.abs(tiled - whole).max() <= 1e-5
    assert len(seen) == len(windows(shape, tile, 20, 4)) == 6  # 1 x 3 x 2 tiles


def test_tiles_fit_the_memory_bound():
    shape = (300, 1024, 1024)  # the 16 GB machine of issue 22
    (tz, ty, tx), overlap = plan_tiles(shape, depth=5, features=48, max_memory=8 * 2**30)
    used = 4 * np.prod(shape) + tz * ty * tx * BYTES_PER_VOXEL_48
    assert used <= 8 * 2**30 and tz % 32 == ty % 32 == tx % 32 == 0 and overlap == 32
    assert tz * ty * tx >= 128**3  # not needlessly small
    with pytest.raises(ValueError, match="--max-memory 1.00 GiB cannot hold the output"):
        plan_tiles(shape, depth=5, features=48, max_memory=2**30)


def test_thin_volume_takes_z_whole():
    (tz, ty, tx), _ = plan_tiles((128, 512, 512), depth=5, features=48, max_memory=8 * 2**30)
    assert tz == 128 and ty == tx and ty >= 160


def test_tiled_equals_whole_section_with_a_2d_network():
    """A 2D model's sections and micrographs go through the same tiler, one axis less."""
    torch.manual_seed(0)
    depth = 2
    net = UNet(1, 1, dims=2, depth=depth, features=4).eval()
    shape = (70, 61)
    x = np.random.default_rng(1).normal(size=shape).astype(np.float32)
    overlap = receptive_reach(depth) + 2  # 20
    whole = denoise_volume(_run(net), x, depth, None, overlap)
    seen = []
    tiled = denoise_volume(_run(net), x, depth, (44, 44), overlap,
                           progress=lambda it: (seen.append(w) or w for w in it))
    assert whole.shape == tiled.shape == shape
    assert np.abs(tiled - whole).max() <= 1e-5
    assert len(seen) == len(windows(shape, (44, 44), 20, 4)) == 8 * 6  # cores of 4 pixels but at the edges


def test_2d_tiles_fit_the_memory_bound():
    """A 4k x 4k micrograph (64 MB out) with 1 GiB: Y x X tiles with the image path's overlap of 128 pixels."""
    shape = (1, 4096, 4096)
    (ty, tx), overlap = plan_tiles(shape, depth=5, features=48, max_memory=2**30, dims=2)
    assert overlap == 128 and ty == tx and ty % 32 == 0 and 2 * overlap + 32 <= ty < 4096
    assert 4 * np.prod(shape) + ty * tx * BYTES_PER_VOXEL_48 + 512 * 2**20 <= 2**30
    (ty, tx), _ = plan_tiles((3, 300, 500), depth=5, features=48, max_memory=8 * 2**30, dims=2)
    assert (ty, tx) == (320, 512)  # small sections whole
    with pytest.raises(ValueError, match="cannot hold the output"):
        plan_tiles(shape, depth=5, features=48, max_memory=600 * 2**20, dims=2)
