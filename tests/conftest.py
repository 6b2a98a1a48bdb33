"""Shared fixtures: small real files written in each test's tmp_path, and a way to run the entry points
as a user would (a subprocess in the repository root)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


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


@pytest.fixture
def image_dirs(tmp_path: Path) -> tuple[Path, Path]:
    """A training folder of 4 photos-like images and a validation folder of 2 (one of odd size)."""
    train, val = tmp_path / "train", tmp_path / "val"
    write_images(train, [(96, 128), (128, 96), (80, 80), (100, 120)], seed=0)
    write_images(val, [(64, 96), (45, 70)], seed=100)
    return train, val


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


@pytest.fixture
def ee559_files(tmp_path: Path) -> tuple[Path, Path]:
    return make_ee559(tmp_path / "ee559")


def run_entry(args: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    """Run `python <script> args...` (or `-m module`) from the repository root, CPU only."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "CUDA_VISIBLE_DEVICES": "", "HYDRA_FULL_ERROR": "0"}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


#: Overrides that make a training run take seconds on a CPU.
TINY = ["trainer.accelerator=cpu", "trainer.max_epochs=2", "data.steps_per_epoch=4", "data.batch_size=4",
        "trainer.log_every_n_steps=2", "trainer.num_sanity_val_steps=0", "trainer.enable_progress_bar=false"]


def save_checkpoint(path, net) -> None:
    """A checkpoint as training writes it: the network under `net.` and the model config."""
    torch.save({
        "state_dict": {f"net.{k}": v for k, v in net.state_dict().items()},
        "hyper_parameters": {"config": {"model": {
            "in_channels": net.in_channels, "out_channels": net.out_channels,
            "activation": {"name": "leaky_relu", "negative_slope": 0.1}, "norm": {"name": "none"},
        }}},
    }, path)
