"""A synthetic tomogram for tests and the benchmark (scripts/volume_benchmark.py): randomly placed solid spheres
(dense particles), hollow shells (vesicles, membranes) and filaments (actin, microtubules) of different densities,
blurred by a Gaussian point-spread, and two independent noisy halves of it as even/odd reconstructions give."""
from __future__ import annotations

import numpy as np


def phantom(shape: tuple[int, int, int], seed: int = 0, blur: float = 1.0, density: float = 1.0) -> np.ndarray:
    """Z x Y x X float32, background 0, objects of contrast 0.3 to 1; `density` scales the number of objects."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    z, y, x = np.meshgrid(*(np.arange(n, dtype=np.float32) for n in shape), indexing="ij")
    vol = np.zeros(shape, np.float32)
    volume = float(np.prod(shape))
    scale = min(shape)
    for _ in range(max(1, int(density * volume / 6000))):  # spheres
        c = rng.uniform(0, shape)
        r = rng.uniform(0.04, 0.12) * scale
        inside = (z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2 <= r * r
        vol[inside] = rng.uniform(0.3, 1.0)
    for _ in range(max(1, int(density * volume / 12000))):  # shells
        c = rng.uniform(0, shape)
        r = rng.uniform(0.08, 0.2) * scale
        d = np.sqrt((z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2)
        vol[np.abs(d - r) <= 1.0] = rng.uniform(0.5, 1.0)
    for _ in range(max(1, int(density * volume / 10000))):  # filaments: straight tubes through the volume
        p = rng.uniform(0, shape)
        u = rng.normal(size=3)
        u /= np.linalg.norm(u)
        rel = np.stack([z - p[0], y - p[1], x - p[2]])
        along = np.tensordot(u, rel, axes=1)
        dist2 = (rel ** 2).sum(0) - along ** 2
        vol[dist2 <= rng.uniform(0.8, 2.0) ** 2] = rng.uniform(0.4, 0.9)
    return gaussian_filter(vol, blur).astype(np.float32)


def noisy_halves(clean: np.ndarray, sigma: float, seed: int = 1, poisson_peak: float | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Two independent noisy copies: Gaussian noise of `sigma` (in the phantom's units), after Poisson noise at
    `poisson_peak` counts for the brightest voxel where given (Poisson-Gaussian)."""
    rng = np.random.default_rng(seed)
    halves = []
    for _ in range(2):
        signal = clean
        if poisson_peak:
            signal = rng.poisson(np.clip(clean, 0, None) * poisson_peak).astype(np.float32) / poisson_peak
        halves.append((signal + rng.normal(0, sigma, clean.shape)).astype(np.float32))
    return halves[0], halves[1]
