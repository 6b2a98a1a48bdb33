import math

import pytest
import torch

from n2n.errors import ConfigError
from n2n.optim import build_optimizer, build_scheduler, lr_factor


def _params():
    return [torch.nn.Parameter(torch.zeros(3))]


def test_rampdown_is_flat_then_cosine_squared_to_zero():
    f = lr_factor({"name": "rampdown", "fraction": 0.3})
    assert f(0.0) == 1.0 and f(0.7) == 1.0
    assert f(0.85) == pytest.approx(0.25)  # half-way down the ramp: (0.5 + 0.5 cos(pi/2))^2
    assert f(1.0) == pytest.approx(0.0, abs=1e-12)


def test_cosine_with_warmup():
    f = lr_factor({"name": "cosine", "min_factor": 0.1, "warmup": 0.1})
    assert f(0.05) == pytest.approx(0.5)
    assert f(0.1) == pytest.approx(1.0)
    assert f(1.0) == pytest.approx(0.1)


def test_scheduler_steps_the_learning_rate():
    opt = build_optimizer({"name": "sgd", "lr": 0.1, "momentum": 0.9}, _params())
    sched = build_scheduler({"name": "rampdown", "fraction": 0.5}, opt, total_steps=10)
    rates = []
    for _ in range(10):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert rates[:6] == [0.1] * 6 and rates[6] < 0.1 and rates[-1] < 0.01
    assert build_scheduler({"name": "none"}, opt, 10) is None


def test_optimizers_by_name_with_their_options():
    adam = build_optimizer({"name": "adam", "lr": 3e-4, "betas": [0.9, 0.99], "fused": "auto"}, _params())
    assert isinstance(adam, torch.optim.Adam) and adam.defaults["betas"] == (0.9, 0.99)
    assert not adam.defaults.get("fused")  # CPU parameters: no fused kernels
    assert isinstance(build_optimizer({"name": "adamw", "lr": 1e-3}, _params()), torch.optim.AdamW)


@pytest.mark.parametrize("cfg,message", [
    ({"name": "rmsprop", "lr": 1}, "optimizer.name='rmsprop'"),
    ({"name": "sgd", "lr": -1}, "optimizer.lr"),
    ({"name": "sgd", "lr": 0.1, "momentum": 1.5}, "optimizer.momentum"),
    ({"name": "adam", "lr": 0.1, "betas": [0.9, 1.2]}, "optimizer.betas"),
    ({"name": "sgd", "lr": 0.1, "beta": 3}, "bad options"),
])
def test_bad_optimizer_options(cfg, message):
    with pytest.raises(ConfigError, match=message):
        build_optimizer(cfg, _params())


def test_bad_scheduler_options():
    with pytest.raises(ConfigError, match="scheduler.name"):
        lr_factor({"name": "linear"})
    with pytest.raises(ConfigError, match="fraction"):
        lr_factor({"name": "rampdown", "fraction": 0})
    assert lr_factor({"name": "none"}) is None
    assert math.isclose(lr_factor(None or {"name": "rampdown"})(0.5), 1.0)
