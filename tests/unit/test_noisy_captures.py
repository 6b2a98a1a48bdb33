"""scripts/make_noisy_captures.py, the realistic-noise generator of the tests and the own-data benchmark:
signal-dependent Poisson-Gaussian noise, independent between captures, optionally spatially correlated."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import tifffile
import torch

from helpers.runs import ROOT
from n2n.image_files import read_image, write_image


@pytest.fixture(scope="module")
def gen():
    spec = importlib.util.spec_from_file_location("make_noisy_captures", ROOT / "scripts" / "make_noisy_captures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_noise_is_poisson_gaussian_and_independent(gen):
    clean = np.full((128, 128, 1), 128, np.uint8)
    a, b = gen.captures(clean, 2, lam=20.0, sigma=10.0, correlation=0.0, generator=torch.Generator().manual_seed(0))
    x = 128 / 255
    assert a.mean() == pytest.approx(x, abs=0.005)
    assert a.var() == pytest.approx(x / 20 + (10 / 255) ** 2, rel=0.05)
    assert abs(np.corrcoef(a.ravel() - x, b.ravel() - x)[0, 1]) < 0.03  # independent captures
    shifted = np.corrcoef((a[:, 1:] - x).ravel(), (a[:, :-1] - x).ravel())[0, 1]
    assert abs(shifted) < 0.03  # white by default


def test_correlated_noise_is_correlated_between_neighbours(gen):
    clean = np.full((128, 128, 1), 128, np.uint8)
    (a,) = gen.captures(clean, 1, lam=1e6, sigma=10.0, correlation=2.0, generator=torch.Generator().manual_seed(0))
    a = a - a.mean()
    assert np.corrcoef(a[:, 1:].ravel(), a[:, :-1].ravel())[0, 1] > 0.8
    assert a.std() == pytest.approx(10 / 255, rel=0.1)  # the same variance as white read noise


def test_writes_8_and_16_bit_pairs_stacks_and_clean(gen, tmp_path):
    clean = tmp_path / "clean_in"
    clean.mkdir()
    write_image(clean / "a.png", np.random.default_rng(0).integers(0, 256, (40, 50, 3)).astype(np.uint8))
    gen.make(clean, tmp_path / "p16", "pairs", bits=16, grey=True, write_clean=True)
    a, _ = read_image(tmp_path / "p16" / "A" / "a.tif")
    assert a.dtype == np.uint16 and a.shape == (40, 50, 1)
    assert read_image(tmp_path / "p16" / "clean" / "a.tif")[0].dtype == np.uint16
    gen.make(clean, tmp_path / "s8", "stacks", frames=4)
    stack = tifffile.imread(tmp_path / "s8" / "stacks" / "a.tif")
    assert stack.shape == (4, 40, 50, 3) and stack.dtype == np.uint8
    assert not np.array_equal(stack[0], stack[1])
