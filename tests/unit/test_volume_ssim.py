"""SSIM of volumes slab by slab: torchmetrics' value (3D window, reflected borders; 2D for one section) whatever the
slab, from arrays, memory maps or tensors, without a volume-sized copy."""
import mrcfile
import numpy as np
import pytest
import torch
from torchmetrics.functional.image import structural_similarity_index_measure

from n2n.volumes.metrics import SSIM_BYTES_PER_VOXEL, data_range, ssim


def _pair(shape, seed=0):
    rng = np.random.default_rng(seed)
    clean = (np.cumsum(rng.normal(size=shape), axis=-1) * 3 + 100).astype(np.float32)
    return (clean + rng.normal(0, 4, shape)).astype(np.float32), clean


def _torchmetrics64(x, clean):
    dims = 2 if x.shape[0] == 1 else 3
    t = lambda a: torch.from_numpy(a).double().reshape(1, 1, *a.shape[-dims:])  # noqa: E731
    return float(structural_similarity_index_measure(t(x), t(clean), data_range=data_range(clean)))


@pytest.mark.parametrize("shape", [(24, 30, 33), (11, 11, 11), (1, 40, 37)], ids=["volume", "smallest", "section"])
def test_equals_torchmetrics_for_any_slab(shape):
    x, clean = _pair(shape)
    expected = _torchmetrics64(x, clean)
    section = shape[1] * shape[2] * SSIM_BYTES_PER_VOXEL
    # one slab, slabs of 3 sections, one section at a time (each with its reflected halo)
    for memory in (2**30, section * 13, 1):
        assert abs(ssim(x, clean, memory) - expected) < 2e-5, memory
    assert abs(ssim(torch.from_numpy(x), torch.from_numpy(clean)) - expected) < 2e-5


def test_reads_memory_maps_and_ignores_nothing(tmp_path):
    """An MRC memory map gives the value of the array; a change in the first or last section moves it (those
    sections are scored, with their reflected context)."""
    x, clean = _pair((16, 24, 24), seed=1)
    path = tmp_path / "clean.mrc"
    with mrcfile.new(path) as m:
        m.set_data(clean)
    with mrcfile.mmap(path, mode="r") as m:
        assert isinstance(m.data, np.memmap)
        assert abs(ssim(x, m.data, 1) - ssim(x, clean)) < 1e-9
    for z in (0, 15):
        worse = x.copy()
        worse[z] += np.random.default_rng(2).normal(0, 20, worse[z].shape).astype(np.float32)
        assert ssim(worse, clean, 1) < ssim(x, clean, 1) - 1e-3


def test_below_the_window_is_nan():
    x, clean = _pair((12, 10, 30))
    assert np.isnan(ssim(x, clean))
