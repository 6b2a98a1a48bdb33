"""Losses: hand-computed values on tiny tensors, the L0 schedule, configs."""
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from n2n.errors import ConfigError
from n2n.losses import LOSSES, build_loss

CONF = Path(__file__).resolve().parents[2] / "conf" / "loss"

# Errors pred - target = [-1, 0, 2, 3].
PRED = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]])
TARGET = torch.tensor([[[[1.0, 1.0], [0.0, 0.0]]]])


def test_l2_is_mean_squared_error():
    assert build_loss({"name": "l2"})(PRED, TARGET).item() == pytest.approx((1 + 0 + 4 + 9) / 4)


def test_l1_is_mean_absolute_error():
    assert build_loss({"name": "l1"})(PRED, TARGET).item() == pytest.approx((1 + 0 + 2 + 3) / 4)


@pytest.mark.parametrize("name", ["l2", "l1"])
def test_progress_is_a_no_op_for_l2_and_l1(name):
    loss = build_loss({"name": name})
    before = loss(PRED, TARGET)
    loss.set_progress(0.7)
    assert torch.equal(loss(PRED, TARGET), before)


@pytest.mark.parametrize("progress, gamma", [(0.0, 2.0), (0.25, 1.5), (0.5, 1.0), (1.0, 0.0), (1.5, 0.0), (-1, 2.0)])
def test_l0_anneals_gamma_linearly(progress, gamma):
    eps = 0.5  # large enough to show up in a hand computation
    loss = build_loss({"name": "l0", "eps": eps})
    loss.set_progress(progress)
    expected = sum((abs(e) + eps) ** gamma for e in (-1, 0, 2, 3)) / 4
    assert loss(PRED, TARGET).item() == pytest.approx(expected)


def test_l0_default_starts_as_l2():
    loss = build_loss({"name": "l0"})
    assert loss(PRED, TARGET).item() == pytest.approx(3.5)  # eps = 1e-8 is invisible here
    loss.set_progress(0.5)
    assert loss(PRED, TARGET).item() == pytest.approx(1.5)


def test_l0_custom_schedule():
    loss = build_loss({"name": "l0", "eps": 0.5, "gamma_start": 1.0, "gamma_end": 3.0})
    loss.set_progress(0.5)
    assert loss.gamma.item() == pytest.approx(2.0)


def test_l0_gamma_updates_in_place_and_stays_out_of_checkpoints():
    loss = build_loss({"name": "l0"})
    gamma = loss.gamma
    loss.set_progress(0.5)
    assert loss.gamma is gamma and gamma.item() == 1.0
    assert "gamma" not in loss.state_dict()


def test_l0_is_finite_in_half_precision_at_small_gamma():
    # In float16 the default eps flushes to 0 and |0| ** (gamma - 1) would give an infinite gradient.
    pred = torch.tensor([0.5, 0.25], dtype=torch.float16, requires_grad=True)
    loss = build_loss({"name": "l0"})
    loss.set_progress(0.75)
    value = loss(pred, torch.tensor([0.5, 0.0], dtype=torch.float16))
    value.backward()
    assert value.dtype == torch.float32 and torch.isfinite(value)
    assert torch.isfinite(pred.grad).all()


def test_l2_ignore_dropped_skips_pixels_zero_in_every_channel():
    pred = torch.tensor([1.0, 2.0, 3.0]).view(1, 1, 1, 3).expand(1, 2, 1, 3)
    target = torch.tensor([[[[0.0, 0.0, 1.0]], [[0.0, 1.0, 1.0]]]])  # pixel 0 dropped; pixel 1 only partly 0
    loss = build_loss({"name": "l2", "ignore_dropped": True})(pred, target)
    # Errors of the valid pixels, both channels: (2, 2) and (2, 1).
    assert loss.item() == pytest.approx((4 + 1 + 4 + 4) / 4)


def test_l2_ignore_dropped_with_nothing_valid_is_zero():
    loss = build_loss({"name": "l2", "ignore_dropped": True})(torch.ones(1, 3, 2, 2), torch.zeros(1, 3, 2, 2))
    assert loss.item() == 0.0


@pytest.mark.parametrize("cfg", [{"name": "l2"}, {"name": "l2", "ignore_dropped": True}, {"name": "l1"},
                                 {"name": "l0"}])
def test_losses_are_scalars_with_gradients(cfg):
    pred = torch.rand(2, 3, 4, 4, requires_grad=True)
    value = build_loss(cfg)(pred, torch.rand(2, 3, 4, 4))
    value.backward()
    assert value.dim() == 0 and pred.grad is not None and pred.grad.abs().sum() > 0


def test_registry_and_names():
    assert set(LOSSES) == {"l2", "l1", "l0"}
    assert all(build_loss({"name": n}).name == n for n in LOSSES)
    assert "gamma_start=2" in repr(build_loss({"name": "l0"}))


@pytest.mark.parametrize("path", sorted(CONF.glob("*.yaml")), ids=lambda p: p.stem)
def test_config_files_build(path):
    cfg = OmegaConf.load(path)
    assert "_target_" not in cfg
    assert build_loss(cfg).name == path.stem


def test_config_files_cover_every_loss():
    assert {p.stem for p in CONF.glob("*.yaml")} == set(LOSSES)


@pytest.mark.parametrize("cfg, message", [
    ({"name": "l3"}, r"loss.name='l3' is not known; choose one of: l0, l1, l2"),
    ({}, "loss.name=None"),
    ({"name": "l1", "eps": 1e-8}, "loss.eps is not an option of loss 'l1'"),
    ({"name": "l0", "gamma": 2}, "loss.gamma is not an option of loss 'l0'"),
    ({"name": "l0", "eps": 0}, "loss.eps"),
    ({"name": "l0", "eps": -1e-8}, "loss.eps"),
    ({"name": "l0", "eps": "1e-8"}, "loss.eps"),
    ({"name": "l0", "gamma_start": -1}, "loss.gamma_start"),
    ({"name": "l0", "gamma_end": float("inf")}, "loss.gamma_end"),
    ({"name": "l2", "ignore_dropped": "yes"}, "loss.ignore_dropped"),
])
def test_bad_configs_name_the_option(cfg, message):
    with pytest.raises(ConfigError, match=message):
        build_loss(cfg)
