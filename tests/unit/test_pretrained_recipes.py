"""The recipes of the bundled models (conf/experiment/pretrained_*.yaml): the paper's budget with weight
averaging, bf16 only where it is native, a readable validation curve, and inputs clipped as files hold them."""
from __future__ import annotations

import pytest
import torch

from helpers.runs import resolved
from n2n.data.datamodule import build_noises

RECIPES = {"pretrained_gaussian_blind": 3, "pretrained_gaussian_blind_grey": 1,
           "pretrained_poisson_gaussian_blind": 3}


def recipe(name: str) -> dict:
    return resolved([f"experiment={name}", "data.train_dir=train", "data.val_dir=val"])


@pytest.mark.parametrize("name", RECIPES)
def test_the_long_recipe(name):
    config = recipe(name)
    assert config["data"]["channels"] == RECIPES[name]
    assert (config["data"]["crop_size"], config["data"]["batch_size"], config["trainer"]["max_steps"]) == \
        (128, 32, 12000)
    assert config["callbacks"]["ema"] == 0.999
    assert config["data"]["val_limit"] <= 8
    train_noise, val_noise = build_noises(config["noise"])
    assert all(not level.is_range for level in val_noise._levels().values())  # one fixed level: a readable curve
    assert any(level.is_range for level in train_noise._levels().values())  # blind: levels drawn per image
    assert train_noise.file_like > 0
    assert config["aug"]["levels"] > 0  # pure black and white regions, which CBSD432 hardly has


@pytest.mark.parametrize("native", [True, False])
def test_bf16_mixed_only_where_bfloat16_is_native(monkeypatch, native):
    monkeypatch.setattr("n2n.config.fast_bf16", lambda device: native)
    precision = recipe("pretrained_gaussian_blind")["trainer"]["precision"]
    assert precision == ("bf16-mixed" if native else "32-true")


def test_the_sensor_noise_recipe_clips_every_input_and_no_target():
    noise, _ = build_noises(recipe("pretrained_poisson_gaussian_blind")["noise"])
    clean = torch.full((64, 3, 16, 16), 0.02)
    g = torch.Generator().manual_seed(0)
    inputs, targets = noise(clean, g), noise.target(clean, g)
    assert inputs.min() >= 0 and torch.allclose(inputs * 255, (inputs * 255).round(), atol=1e-4)
    assert targets.min() < 0  # read noise left unclipped below black
    assert (noise.lam.low, noise.lam.high, noise.sigma.low, noise.sigma.high) == (10, 200, 0, 10)
