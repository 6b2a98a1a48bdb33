"""Training methods, chosen by `method=` (conf/method/NAME.yaml): what a training batch needs, how it becomes the
network's input, target and mask, the loss, and how the trained network is applied (n2n/methods/base.py).

To add one: a `Method` subclass in its own module here, an entry in METHODS, `conf/method/NAME.yaml` with its
options and their defaults, and tests of the property that makes it right (docs/methods.md).
"""
from __future__ import annotations

from typing import Any, Mapping

from n2n.errors import ConfigError
from n2n.methods.base import CLEAN, PAIR, SINGLE, AveragedInference, Method
from n2n.methods.neighbor2neighbor import Neighbor2Neighbor
from n2n.methods.noise2self import Noise2Self
from n2n.methods.noise2void import Noise2Void
from n2n.methods.recorrupted import Recorrupted2Recorrupted
from n2n.methods.supervised_pairs import Noise2Clean, Noise2Noise
from n2n.methods.sure import SURE
from n2n.methods.zero_shot import ZeroShotNoise2Noise
from n2n.registry import build_from_registry

METHODS: dict[str, type[Method]] = {cls.name: cls for cls in (
    Noise2Noise, Noise2Clean, Neighbor2Neighbor, Noise2Void, Noise2Self, Recorrupted2Recorrupted, SURE,
    ZeroShotNoise2Noise)}

#: The old top-level `target` option, kept as an alias: target=noisy is method=n2n, target=clean method=n2c.
TARGET_ALIAS = {"noisy": "n2n", "clean": "n2c"}

__all__ = ["METHODS", "TARGET_ALIAS", "Method", "AveragedInference", "PAIR", "CLEAN", "SINGLE", "build_method",
           "method_section", "method_for_config",
           "inference_method"]


def method_section(config: Mapping[str, Any]) -> dict[str, Any]:
    """The `method` section of a training config. The old `target` option, where set, names the method instead
    (target=noisy: n2n, target=clean: n2c; it cannot be combined with another method); configs written before
    methods existed (checkpoints) have only `target`."""
    method, target = config.get("method"), config.get("target")
    if target is not None:
        if target not in TARGET_ALIAS:
            raise ConfigError(f"target={target!r} must be noisy or clean (the old spelling of method=n2n / n2c)")
        name = method.get("name") if isinstance(method, Mapping) else None
        if name not in (None, *TARGET_ALIAS.values()):
            raise ConfigError(f"target={target} is the old spelling of method={TARGET_ALIAS[target]}; it cannot be "
                              f"combined with method={name}: drop target=")
        return {"name": TARGET_ALIAS[target]}
    if isinstance(method, Mapping):
        return dict(method)
    return {"name": "n2n"}


def build_method(cfg: Mapping[str, Any]) -> Method:
    """`{"name": "n2v", "mask_ratio": 0.002, ...}` -> the method; a bad name or option raises ConfigError."""
    return build_from_registry(METHODS, cfg, "method")


def method_for_config(config: Mapping[str, Any]) -> Method:
    """The training config's method with the `loss` group's loss and, for methods that need it, the noise level
    (from `method.sigma`, else the `noise` group's on data with clean training images)."""
    from n2n.data.sources import SOURCES
    from n2n.losses import build_loss

    method = build_method(method_section(config))
    data = config.get("data") or {}
    synthetic = data.get("name") in SOURCES and SOURCES[data["name"]].clean_train
    loss = build_loss(config.get("loss") or {"name": "l2"})
    return method.bind(loss, noise_sigma(method, config.get("noise"), synthetic))


def inference_method(cfg: Mapping[str, Any]) -> Method:
    """A method rebuilt from its `inference_config` (exported weights, checkpoints): bound to the plain squared
    error, which inference never uses, and to the stored noise level."""
    from n2n.losses import build_loss

    method = build_method(cfg)
    return method.bind(build_loss({"name": "l2"}), getattr(method, "given_sigma", None))


def noise_sigma(method: Method, noise_cfg: Mapping[str, Any] | None, synthetic: bool) -> float | None:
    """The Gaussian noise level (0..255) a `needs_sigma` method works with: `method.sigma` where given, else the
    `noise` group's fixed sigma on synthetic data. None when neither says it (the method then refuses)."""
    given = getattr(method, "given_sigma", None)
    if given is not None or not method.needs_sigma:
        return given
    if not synthetic:
        return None
    noise_cfg = dict(noise_cfg or {})
    if noise_cfg.get("name") != "gaussian":
        raise ConfigError(f"method={method.name} is derived for Gaussian noise; noise={noise_cfg.get('name')} is not "
                          f"(use noise=gaussian, or another method)")
    sigma = noise_cfg.get("sigma")
    if not isinstance(sigma, (int, float)) or isinstance(sigma, bool):
        raise ConfigError(f"method={method.name} needs one known noise level, but noise.sigma={sigma} is a range "
                          f"(a blind model); give a single noise.sigma, or method.sigma=S")
    return float(sigma)
