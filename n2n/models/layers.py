"""Activation and normalisation factories, chosen by name so that configs never name Python objects.

Configs (and checkpoints, which store the config) only hold a name and numeric options; a crafted file
therefore cannot make us instantiate arbitrary classes, and an unknown name gets a message listing
what is allowed.
"""
from __future__ import annotations

from functools import partial
from typing import Any, Callable, Mapping

from torch import nn

from n2n.registry import build_from_registry

ActivationFactory = Callable[[], nn.Module]
NormFactory = Callable[[int], nn.Module]

ACTIVATIONS: dict[str, Callable[..., ActivationFactory]] = {
    "leaky_relu": lambda negative_slope=0.1: partial(nn.LeakyReLU, negative_slope, inplace=True),
    "relu": lambda: partial(nn.ReLU, inplace=True),
    "gelu": lambda: nn.GELU,
    "silu": lambda: partial(nn.SiLU, inplace=True),
    "prelu": lambda init=0.1: partial(nn.PReLU, init=init),
}

NORMS: dict[str, Callable[..., NormFactory | None]] = {
    "none": lambda: None,
    "batch": lambda momentum=0.1, eps=1e-5: partial(nn.BatchNorm2d, momentum=momentum, eps=eps),
}


def make_activation(cfg: Mapping[str, Any]) -> ActivationFactory:
    """`{"name": "leaky_relu", "negative_slope": 0.1}` -> a zero-argument factory of the activation."""
    return build_from_registry(ACTIVATIONS, cfg, "model.activation")


#: The 3D layer of each 2D normalisation layer, for `model.dims=3`.
_NORM_3D = {nn.BatchNorm2d: nn.BatchNorm3d}


def make_norm(cfg: Mapping[str, Any], dims: int = 2) -> NormFactory | None:
    """`{"name": "batch"}` -> a factory taking the channel count; `{"name": "none"}` -> None. `dims=3`: the
    3D layer of the same kind and options (volumes)."""
    factory = build_from_registry(NORMS, cfg, "model.norm")
    if dims == 3 and isinstance(factory, partial) and factory.func in _NORM_3D:
        return partial(_NORM_3D[factory.func], *factory.args, **factory.keywords)
    return factory
