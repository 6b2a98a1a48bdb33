"""Optimisers and learning-rate schedules, chosen by name from the `optimizer` and `scheduler` config groups."""
from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Mapping

import torch

from n2n.errors import ConfigError
from n2n.registry import build_from_registry

OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
}


def build_optimizer(cfg: Mapping[str, Any], params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """`{"name": "adam", "lr": 3e-4, "betas": [0.9, 0.99], "fused": "auto"}` -> the optimiser.

    `fused: auto` uses PyTorch's fused kernels where the parameters live on a GPU (one kernel for all
    parameters instead of one per tensor); CPU runs keep the default implementation.
    """
    options = dict(cfg)
    name = options.pop("name", None)
    if name not in OPTIMIZERS:
        raise ConfigError(f"optimizer.name={name!r} is not known; choose one of: {', '.join(OPTIMIZERS)}")
    lr = options.get("lr")
    if not isinstance(lr, (int, float)) or isinstance(lr, bool) or not lr > 0:
        raise ConfigError(f"optimizer.lr={lr!r} must be a number > 0")
    if "momentum" in options and not 0 <= float(options["momentum"]) < 1:
        raise ConfigError(f"optimizer.momentum={options['momentum']} must be in [0, 1)")
    if "betas" in options:
        options["betas"] = tuple(float(b) for b in options["betas"])
        if len(options["betas"]) != 2 or not all(0 <= b < 1 for b in options["betas"]):
            raise ConfigError(f"optimizer.betas={list(options['betas'])} must be two numbers in [0, 1)")
    params = list(params)
    fused = options.pop("fused", "auto")
    if fused not in ("auto", True, False):
        raise ConfigError(f"optimizer.fused={fused!r} must be auto, true or false")
    on_gpu = all(p.is_cuda for p in params)
    if fused is True or (fused == "auto" and on_gpu):
        options["fused"] = True
    try:
        return OPTIMIZERS[name](params, **options)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ConfigError(f"optimizer={name}: bad options {sorted(options)}: {exc}") from None


def _rampdown(fraction: float = 0.3) -> Callable[[float], float]:
    """The Noise2Noise paper's schedule: constant, then a cosine-squared ramp to zero over the last part."""
    if not 0 < fraction <= 1:
        raise ConfigError(f"scheduler.fraction={fraction} must be in (0, 1]")

    def factor(progress: float) -> float:
        start = 1 - fraction
        if progress <= start:
            return 1.0
        t = min(1.0, (progress - start) / fraction)
        return (0.5 + 0.5 * math.cos(math.pi * t)) ** 2

    return factor


def _cosine(min_factor: float = 0.0, warmup: float = 0.0) -> Callable[[float], float]:
    if not 0 <= min_factor <= 1 or not 0 <= warmup < 1:
        raise ConfigError("scheduler=cosine: min_factor must be in [0, 1] and warmup in [0, 1)")

    def factor(progress: float) -> float:
        if progress < warmup:
            return max(progress / warmup, 1e-3)
        t = (progress - warmup) / (1 - warmup)
        return min_factor + (1 - min_factor) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))

    return factor


SCHEDULES: dict[str, Callable[..., Callable[[float], float] | None]] = {
    "none": lambda: None,
    "rampdown": _rampdown,
    "cosine": _cosine,
}


def lr_factor(cfg: Mapping[str, Any]) -> Callable[[float], float] | None:
    """The learning-rate multiplier as a function of training progress in [0, 1], or None for constant."""
    return build_from_registry(SCHEDULES, cfg or {"name": "none"}, "scheduler")


def build_scheduler(cfg: Mapping[str, Any], optimizer: torch.optim.Optimizer, total_steps: int):
    """A per-step LambdaLR over `total_steps`, or None."""
    factor = lr_factor(cfg)
    if factor is None:
        return None
    total = max(1, int(total_steps))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: factor(step / total))
