"""Shareable weight files: the U-Net's tensors in safetensors, the config that builds it as plain JSON beside them.

A `.safetensors` file is a JSON header followed by raw tensor bytes: reading one never unpickles anything,
which is why the bundled models (n2n.pretrained) and `n2n export CKPT MODEL.safetensors` use it. The header's
metadata holds `n2n.model` (the `model` section of the training config, in today's schema) and
`n2n.format`, `n2n.method` for networks whose training method applies them in more than one pass (an
average over masks or re-corruptions, n2n/methods/), and `n2n.declip` for networks whose outputs on clipped
inputs are corrected (n2n/inference/declip.py); the network is rebuilt only through n2n's registries of
names, as from a checkpoint.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import torch

from n2n.atomic import atomic_output
from n2n.config_schema import TRAIN_OPTIONS, check_options
from n2n.errors import CheckpointError, ConfigError
from n2n.inference.checkpoints import SCALING_KEY, SCALINGS, check_finite, recorded
from n2n.models.unet import UNet, build_unet

SUFFIX = ".safetensors"
FORMAT = "n2n-unet/1"
_MODEL_KEY, _FORMAT_KEY, _METHOD_KEY = "n2n.model", "n2n.format", "n2n.method"


def save_weights(net: UNet, model_cfg: Mapping[str, Any], path: str | Path,
                 extra: Mapping[str, str] | None = None) -> Path:
    """Write `net`'s weights and the `model` config that builds it to `path` (atomically). A network wrapped in
    its method's inference rule (n2n.methods.AveragedInference) is saved as the U-Net plus that rule, and its
    declipping rule (n2n.inference.declip) goes with it."""
    from safetensors.torch import save_file

    from n2n.inference.declip import METADATA_KEY, rule_of

    path = Path(path)
    declip, scaling = rule_of(net), getattr(net, "normalize", None)  # both carried by the wrapper, if any
    method = getattr(net, "method_config", None)
    net = getattr(net, "net", net) if method is not None else net
    tensors = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    metadata = {_FORMAT_KEY: FORMAT, _MODEL_KEY: json.dumps(dict(model_cfg), sort_keys=True), **(extra or {})}
    if method is not None:
        metadata[_METHOD_KEY] = json.dumps(method, sort_keys=True)
    if declip is not None:
        metadata[METADATA_KEY] = declip
    if scaling is not None:
        metadata[SCALING_KEY] = scaling
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return path


def read_metadata(path: str | Path) -> dict[str, str]:
    """The header metadata of an n2n weight file; CheckpointError naming the file if it is not one."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read {path} as a safetensors weight file: {exc}") from None
    if metadata.get(_FORMAT_KEY) != FORMAT or _MODEL_KEY not in metadata:
        raise CheckpointError(f"{path} is a safetensors file but not n2n weights (no {_MODEL_KEY!r} in its "
                              f"metadata): write one with `n2n export CKPT MODEL{SUFFIX}`")
    return metadata


def load_weights(path: str | Path, map_location: str | torch.device = "cpu") -> torch.nn.Module:
    """Rebuild the U-Net of a weight file written by save_weights, in eval mode (wrapped in its method's inference
    rule where the file records one), carrying the file's declipping rule (n2n.inference.declip)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from n2n.inference.declip import ATTRIBUTE, METADATA_KEY, RULES

    path = Path(path)
    metadata = read_metadata(path)
    try:
        model_cfg = json.loads(metadata[_MODEL_KEY])
        if not isinstance(model_cfg, dict):
            raise ValueError(f"expected a JSON object, got {type(model_cfg).__name__}")
        check_options({"model": model_cfg}, TRAIN_OPTIONS)  # untrusted values: ranges before building
        net = build_unet(model_cfg)
        method = None
        if _METHOD_KEY in metadata:
            from n2n.methods import inference_method

            method_cfg = json.loads(metadata[_METHOD_KEY])
            if not isinstance(method_cfg, dict):
                raise ValueError(f"expected a JSON object for the method, got {type(method_cfg).__name__}")
            method = inference_method(method_cfg)
    except (ValueError, TypeError, ConfigError) as exc:
        raise CheckpointError(f"{path} holds a model config that n2n cannot build: {exc}") from None
    try:
        state = load_file(str(path))
        check_finite(state, path)
        net.load_state_dict(state)
    except (SafetensorError, RuntimeError) as exc:
        first = " ".join(str(exc).splitlines()[:3])
        raise CheckpointError(f"the weights of {path} do not fit the n2n U-Net built from its config: "
                              f"{first}") from None
    declip = recorded(metadata.get(METADATA_KEY), RULES, "declipping rule", str(path))
    scaling = recorded(metadata.get(SCALING_KEY), SCALINGS, "input scaling", str(path))
    net = net.to(map_location).eval()
    network = net if method is None else method.inference_network(net).eval()
    setattr(network, ATTRIBUTE, declip)
    network.normalize = scaling
    return network
