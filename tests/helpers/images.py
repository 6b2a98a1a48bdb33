"""Small real image files and course-format pickles, written where a test asks."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image


def smooth_image(h: int, w: int, seed: int, channels: int = 3) -> np.ndarray:
    """A photo-like uint8 image: smooth gradients and a few edges, so that denoising has signal to keep."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    planes = []
    for c in range(channels):
        a, b, f = rng.uniform(0.5, 2.0, 3)
        p = 0.5 + 0.3 * np.sin(2 * np.pi * (a * x + b * y) * f) + 0.2 * (x > rng.uniform(0.3, 0.7))
        planes.append(p)
    img = np.clip(np.stack(planes, -1), 0, 1)
    return (img * 255).round().astype(np.uint8)


def write_images(folder: Path, sizes: list[tuple[int, int]], seed: int = 0, suffix: str = ".png") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (h, w) in enumerate(sizes):
        path = folder / f"img{i:02d}{suffix}"
        Image.fromarray(smooth_image(h, w, seed + i)).save(path)
        paths.append(path)
    return paths


def make_ee559(folder: Path, n_train: int = 64, n_val: int = 16) -> tuple[Path, Path]:
    """Course-format pickles: two noisy copies for training, noisy and clean for validation."""
    folder.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    clean = torch.from_numpy(np.stack([smooth_image(32, 32, i) for i in range(n_train + n_val)])).permute(0, 3, 1, 2)
    noisy = lambda x: (x.float() + 25 * torch.randn(x.shape, generator=g)).round().clamp(0, 255).to(torch.uint8)  # noqa: E731
    train, val = folder / "train_data.pkl", folder / "val_data.pkl"
    torch.save((noisy(clean[:n_train]), noisy(clean[:n_train])), train)
    torch.save((noisy(clean[n_train:]), clean[n_train:].contiguous()), val)
    return train, val
