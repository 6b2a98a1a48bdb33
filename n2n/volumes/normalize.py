"""Per-volume normalisation: volumes come in any range (electron counts, int8 densities, arbitrary floats), so
each is shifted and scaled to zero mean and unit standard deviation before it meets the network, and the output
is scaled back. Mean and standard deviation come from a regular sample of at most SAMPLE voxels (a memory-mapped
volume is not read whole for them). A model trained on volumes records the scheme in its checkpoint (the `data`
section: `normalize`); inference applies it to each input with that input's own statistics and undoes it."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from n2n.errors import DataError

#: Voxels sampled for the statistics: the standard error of the mean is then < 0.1 % of the standard deviation.
SAMPLE = 2**20
SCHEMES = ("mean_std",)


@dataclass(frozen=True)
class Normalization:
    mean: float
    std: float

    def apply(self, x):
        return (x - self.mean) / self.std

    def undo(self, x):
        return x * self.std + self.mean


def _strides(shape: tuple[int, ...], budget: int) -> tuple[slice, ...]:
    """Slices taking every k-th voxel along each axis so that about `budget` voxels remain."""
    total = float(np.prod(shape))
    step = max(1, int(np.ceil((total / budget) ** (1.0 / len(shape)))))
    return tuple(slice(None, None, step) for _ in shape)


def volume_stats(*volumes: np.ndarray, where: str = "volume", sample: int = SAMPLE) -> Normalization:
    """Mean and standard deviation of a sample of the given arrays together (the two halves of one volume share
    one normalisation, so that input and target stay in the same units)."""
    parts = [np.asarray(v[_strides(v.shape, max(1, sample // len(volumes)))], dtype=np.float64).ravel()
             for v in volumes]
    values = np.concatenate(parts)
    mean, std = float(values.mean()), float(values.std())
    if not np.isfinite(std) or std <= 1e-12 * max(1.0, abs(mean)):
        raise DataError(f"{where} is constant ({mean:g} everywhere): there is nothing to denoise")
    return Normalization(mean, std)
