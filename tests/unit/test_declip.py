"""Declipping (n2n.inference.declip): the clipped mean is right, its inverse undoes it, sigma is measured, the rule
follows the training config and travels with the model files, and it leaves unclipped inputs alone."""
from __future__ import annotations

import pytest
import torch

from helpers.files import RGB_MODEL
from n2n.errors import CheckpointError
from n2n.inference.declip import (
    RULES,
    clipped_gaussian_mean,
    correct_clipping,
    estimate_sigma,
    rule_for_training,
    undo_gaussian_clipping,
)
from n2n.inference.weights import load_weights, read_metadata, save_weights
from n2n.models.unet import build_unet


@pytest.mark.parametrize("x", [0.0, 0.03, 0.5, 0.97, 1.0])
@pytest.mark.parametrize("sigma", [0.05, 0.2])
def test_clipped_mean_matches_monte_carlo(x, sigma):
    g = torch.Generator().manual_seed(0)
    samples = (x + sigma * torch.randn(2_000_000, generator=g, dtype=torch.float64)).clamp(0, 1)
    assert float(clipped_gaussian_mean(torch.tensor(x, dtype=torch.float64), sigma)) == pytest.approx(
        float(samples.mean()), abs=4 * sigma / 2_000_000 ** 0.5 + 1e-6)


def test_the_clipped_mean_of_black_is_sigma_over_root_two_pi():
    sigma = 25 / 255  # the lift the issue names: about 10/255 at sigma 25
    assert 255 * float(clipped_gaussian_mean(torch.tensor(0.0), sigma)) == pytest.approx(25 / (2 * torch.pi) ** 0.5,
                                                                                       rel=1e-4)


def test_undo_inverts_the_clipped_mean_in_any_memory_layout():
    sigma = 0.1
    x = torch.linspace(0, 1, 3 * 40 * 50).reshape(1, 3, 40, 50)
    lifted = clipped_gaussian_mean(x.double(), sigma).float().contiguous(memory_format=torch.channels_last)
    assert not lifted[0].is_contiguous()
    undone = undo_gaussian_clipping(lifted[0], sigma)
    assert (undone - x[0]).abs().max() < 2e-4
    assert undone.data_ptr() == lifted[0].data_ptr()  # in place


def test_values_beyond_the_clipped_range_go_to_black_and_white():
    sigma = 0.1
    floor = float(clipped_gaussian_mean(torch.tensor(0.0), sigma))
    out = undo_gaussian_clipping(torch.tensor([[[floor * 0.5, 0.5, 1.0]]]), sigma)
    assert out.flatten().tolist() == pytest.approx([0.0, 0.5, 1.0], abs=1e-4)


def _clipped_photo(sigma: float, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    clean = torch.linspace(0, 1, 256).repeat(3, 256, 1)  # a ramp from black to white
    noisy = (clean + sigma * torch.randn(clean.shape, generator=g)).clamp(0, 1)
    return clean, noisy


@pytest.mark.parametrize("sigma", [10 / 255, 25 / 255, 50 / 255])
def test_sigma_is_measured_on_the_mid_tones_of_a_clipped_image(sigma):
    clean, noisy = _clipped_photo(sigma)
    assert estimate_sigma(noisy, clean) == pytest.approx(sigma, rel=0.05)


def test_an_image_without_mid_tones_is_left_alone():
    black = torch.zeros(1, 3, 64, 64)
    noisy = (black + 0.1 * torch.randn(black.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    denoised = torch.full_like(black, 0.04)
    assert estimate_sigma(noisy[0], denoised[0]) is None
    assert torch.equal(correct_clipping(denoised.clone(), noisy, "gaussian"), denoised)


def test_correction_brings_the_clipped_mean_back_and_keeps_mid_tones():
    """An ideal mean estimator of a clipped ramp outputs m(x); the correction gives x back, at black and white
    and (unchanged) in between."""
    sigma = 25 / 255
    clean, noisy = _clipped_photo(sigma)
    ideal = clipped_gaussian_mean(clean, sigma)  # what a perfect local-mean denoiser returns on clipped data
    assert 255 * float(ideal[..., :8].mean()) > 8  # lifted black
    corrected = correct_clipping(ideal.clone()[None], noisy[None], "gaussian")[0]
    assert 255 * (corrected - clean).abs().max() < 1.0
    mid = slice(100, 156)
    assert torch.allclose(corrected[..., mid], ideal[..., mid], atol=1e-4)


def test_unclipped_inputs_and_models_without_a_rule_are_left_alone():
    sigma = 25 / 255
    clean, _ = _clipped_photo(sigma)
    unclipped = clean + sigma * torch.randn(clean.shape, generator=torch.Generator().manual_seed(1))
    lifted = clipped_gaussian_mean(clean, sigma)[None]
    assert torch.equal(correct_clipping(lifted.clone(), unclipped[None], "gaussian"), lifted)  # benchmark noise
    assert torch.equal(correct_clipping(lifted.clone(), unclipped.clamp(0, 1)[None], None), lifted)


GAUSSIAN_RUN = {"noise": {"name": "gaussian", "sigma": [0, 50]}, "loss": {"name": "l2"},
                "data": {"name": "folder"}, "model": {"dims": 2}}


@pytest.mark.parametrize("change, rule", [
    ({}, "gaussian"),
    ({"noise": {"name": "gaussian", "sigma": 25, "file_like": 0.5}}, None),  # learnt clipped inputs itself
    ({"noise": {"name": "poisson", "lam": 30}}, None),                       # not the Gaussian clipped mean
    ({"loss": {"name": "l1"}}, None),                                        # a median, not a mean
    ({"data": {"name": "pairs"}}, None),                                     # users' noisy files: unknown noise
    ({"data": {"name": "volumes"}, "model": {"dims": 3}}, None),
    ({"data": {"name": "samples"}}, "gaussian"),
])
def test_the_rule_follows_the_training_config(change, rule):
    assert rule_for_training({**GAUSSIAN_RUN, **change}) == rule


def test_the_rule_travels_in_weight_files_and_an_unknown_one_is_refused(tmp_path):
    net = build_unet(RGB_MODEL)
    net.declip = "gaussian"
    path = save_weights(net, net.config, tmp_path / "m.safetensors")
    assert read_metadata(path)["n2n.declip"] == "gaussian"
    assert load_weights(path).declip == "gaussian"
    del net.declip
    plain = save_weights(net, net.config, tmp_path / "plain.safetensors")
    assert "n2n.declip" not in read_metadata(plain) and load_weights(plain).declip is None

    from safetensors.torch import load_file, save_file

    save_file(load_file(str(path)), str(tmp_path / "future.safetensors"),
              metadata={**read_metadata(path), "n2n.declip": "poisson-someday"})
    with pytest.raises(CheckpointError, match="future.safetensors.*'poisson-someday'.*known: gaussian"):
        load_weights(tmp_path / "future.safetensors")


def test_every_rule_is_a_function_of_denoised_and_noisy():
    x = torch.rand(1, 3, 64, 64)
    for rule in RULES:
        assert correct_clipping(x.clone(), x, rule).shape == x.shape


@pytest.mark.parametrize("noise, rule", [({"name": "gaussian", "sigma": [0, 50]}, "gaussian"),
                                         ({"name": "gaussian", "sigma": 25, "file_like": 0.5}, None)])
def test_a_checkpoint_carries_the_rule_of_its_training_config(tmp_path, noise, rule):
    from n2n.inference.checkpoints import load_trained

    net = build_unet(RGB_MODEL)
    config = {**GAUSSIAN_RUN, "noise": noise, "model": RGB_MODEL, "method": {"name": "n2n"}}
    torch.save({"state_dict": {f"net.{k}": v for k, v in net.state_dict().items()},
                "hyper_parameters": {"config": config}}, tmp_path / "m.ckpt")
    assert load_trained(tmp_path / "m.ckpt").declip == rule


def test_each_bundled_model_carries_the_rule_of_its_training():
    """A bundled model trained on unclipped Gaussian noise is declipped; one trained with clipped inputs
    (noise.file_like in its models.json entry) learnt black itself and is not."""
    import n2n
    from n2n import pretrained

    for name in pretrained.names():
        noise = pretrained.card(name)["noise"]
        expected = rule_for_training({**GAUSSIAN_RUN, "noise": noise})
        assert n2n.load(name, device="cpu").runner.declip == expected, name


def test_the_input_scaling_of_a_micrograph_model_travels_in_its_weight_file(tmp_path):
    """A model trained on MRC micrographs (data.normalize=mean_std) keeps that scaling when exported, so that
    `n2n denoise micrograph.mrc -m model.safetensors` normalises its input as training did."""
    from n2n.inference.checkpoints import load_trained

    grey = {**RGB_MODEL, "in_channels": 1, "out_channels": 1}
    net = build_unet(grey)
    config = {"data": {"name": "pairs", "normalize": "mean_std"}, "noise": {}, "model": grey,
              "method": {"name": "n2n"}, "loss": {"name": "l2"}}
    torch.save({"state_dict": {f"net.{k}": v for k, v in net.state_dict().items()},
                "hyper_parameters": {"config": config}}, tmp_path / "m.ckpt")
    trained = load_trained(tmp_path / "m.ckpt")
    assert trained.normalize == "mean_std" and trained.declip is None
    path = save_weights(trained, grey, tmp_path / "m.safetensors")
    assert read_metadata(path)["n2n.normalize"] == "mean_std"
    assert load_weights(path).normalize == "mean_std"
    from n2n.volumes.denoise import load_volume_model
    assert load_volume_model(path, device="cpu").normalize == "mean_std"
    assert load_volume_model(tmp_path / "m.ckpt", device="cpu").normalize == "mean_std"
