"""Fixtures shared by the tests; helpers (functions) live in tests/helpers/.

Markers: `slow` (excluded by default: `python -m pytest -m slow`), `cuda` (skipped without a CUDA device).
"""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers.images import make_ee559, write_images


def _seed_every_generator() -> None:
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


def pytest_configure(config):
    # parametrize lists are built while collecting: seeded, a test sees the same data on every run and machine
    _seed_every_generator()


@pytest.fixture(autouse=True)
def _seeded_generators():
    """Each test starts from the same global random state, whatever ran before it (CI must not pass by chance)."""
    _seed_every_generator()
    yield


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def image_dirs(tmp_path: Path) -> tuple[Path, Path]:
    """A training folder of 4 photos-like images and a validation folder of 2 (one of odd size)."""
    train, val = tmp_path / "train", tmp_path / "val"
    write_images(train, [(96, 128), (128, 96), (80, 80), (100, 120)], seed=0)
    write_images(val, [(64, 96), (45, 70)], seed=100)
    return train, val


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> tuple[Path, Path]:
    """Like image_dirs, shared by the tests of a module (3 training images, 2 validation)."""
    root = tmp_path_factory.mktemp("images")
    write_images(root / "train", [(96, 128), (128, 96), (80, 80)], seed=0)
    write_images(root / "val", [(64, 96), (45, 70)], seed=100)
    return root / "train", root / "val"


@pytest.fixture
def ee559_files(tmp_path: Path) -> tuple[Path, Path]:
    return make_ee559(tmp_path / "ee559")


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread: the same numbers as the subprocesses (OMP_NUM_THREADS=1), and far faster than two
    threads fighting other processes for the CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
