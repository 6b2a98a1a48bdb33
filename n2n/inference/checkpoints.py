"""Loading trained networks from Lightning checkpoints, safely.

A checkpoint holds `hyper_parameters["config"]` (the resolved training config as plain dicts) and the
module's `state_dict` with the network under the `net.` prefix. Loading uses the weights-only unpickler
(n2n.safeload), so a crafted file cannot run code: only tensors and plain containers are accepted. The stored
config is untrusted input: the network is rebuilt only through n2n's registries of names.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import torch

from n2n.config_schema import TRAIN_OPTIONS, check_options
from n2n.errors import CheckpointError, ConfigError
from n2n.models.unet import UNet, build_unet
from n2n.safeload import safe_torch_load

NET_PREFIX = "net."
#: Keys of the `model` section added after the first checkpoints were written, with the value every
#: checkpoint without them was trained with.
_MODEL_KEYS_ADDED = {"init": "he"}


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint as a dict, refusing anything that is not tensors and plain Python containers."""
    ckpt = safe_torch_load(path, "checkpoint", CheckpointError, "a .ckpt file written by train.py")
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise CheckpointError(f"checkpoint {path} has no 'state_dict': it was not written by n2n's train.py")
    return ckpt


def training_config(ckpt: dict[str, Any], path: str | Path = "checkpoint") -> dict[str, Any]:
    """The resolved config the checkpoint was trained with."""
    config = ckpt.get("hyper_parameters", {}).get("config")
    if not isinstance(config, dict) or not isinstance(config.get("model"), dict):
        raise CheckpointError(f"{path} holds no n2n training config (hyper_parameters.config.model)")
    return config


def model_config(ckpt: dict[str, Any], path: str | Path = "checkpoint") -> dict[str, Any]:
    """The `model` section of the checkpoint's config, in today's schema."""
    return {**_MODEL_KEYS_ADDED, **training_config(ckpt, path)["model"]}


def check_finite(tensors: dict[str, Any], path: str | Path) -> None:
    """CheckpointError if a weight is NaN or infinite: such a network turns every image into NaN (black once
    converted to pixels) while looking like a model that worked."""
    bad = [name for name, t in tensors.items()
           if isinstance(t, torch.Tensor) and t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        raise CheckpointError(f"model {path} holds NaN or infinite weights ({', '.join(bad[:3])}"
                              f"{' ...' if len(bad) > 3 else ''}): the training it comes from diverged; use a "
                              f"checkpoint from before (train.py's divergence guard never saves such weights)")


def load_unet(path: str | Path, map_location: str | torch.device = "cpu") -> UNet:
    """Rebuild the U-Net from the checkpoint alone, in eval mode."""
    return unet_from_checkpoint(read_checkpoint(path), path, map_location)


def load_trained(path: str | Path, map_location: str | torch.device = "cpu") -> torch.nn.Module:
    """The checkpoint's network as its training method applies it (n2n/methods/: one plain pass, or an average
    over masks or re-corruptions), in eval mode."""
    ckpt = read_checkpoint(path)
    return inference_network(ckpt, unet_from_checkpoint(ckpt, path, map_location), path)


def inference_network(ckpt: dict[str, Any], net: UNet, path: str | Path = "checkpoint") -> torch.nn.Module:
    """`net` wrapped in the inference rule of the method the checkpoint was trained with, carrying the
    declipping rule its training calls for (n2n.inference.declip) and how its inputs are scaled (`normalize`)."""
    from n2n.inference.declip import ATTRIBUTE, rule_for_training
    from n2n.methods import method_for_config

    config = training_config(ckpt, path)
    try:
        method = method_for_config(config)
    except ConfigError as exc:  # the stored config is only read through n2n's registries
        raise CheckpointError(f"checkpoint {path} holds a method config that n2n cannot build: {exc}") from None
    network = method.inference_network(net).eval()
    setattr(network, ATTRIBUTE, rule_for_training(config))
    network.normalize = input_scaling(config)
    return network


#: Values of a network's `normalize` attribute (and of the `n2n.normalize` metadata of weight files) besides None
#: (inputs in [0, 1] as image files give them): "mean_std", each input scaled by its own mean and standard
#: deviation as in training (n2n.volumes.normalize), for volumes and MRC micrographs.
SCALINGS = ("mean_std",)
#: The metadata key of .safetensors and .onnx files that records it.
SCALING_KEY = "n2n.normalize"


def recorded(value: str | None, known: Iterable[str], kind: str, what: str) -> str | None:
    """A value a model file records for how it is applied (None: none), checked against the values this n2n
    knows; CheckpointError naming `what` (the file) and `kind` (what the value is) if it is not one of them."""
    known = tuple(known)
    if value is not None and value not in known:
        raise CheckpointError(f"{what} asks for the {kind} {value!r}, which this n2n does not know "
                              f"(known: {', '.join(known)}): update n2n")
    return value


#: What to give a micrograph or volume model instead of images, in check_image_model's message.
MRC_INSTEAD = "give it .mrc or TIFF-stack files (n2n denoise FILE.mrc; docs/volumes.md)"


def check_image_model(model: Any, name: str, instead: str = MRC_INSTEAD) -> None:
    """CheckpointError unless `model` (a network or runner) takes images in [0, 1]: one that normalises each input
    by its own mean and standard deviation (trained on MRC micrographs or volumes) would take an image's pixels
    as if they were electron counts, and must be given its own kind of file."""
    scaling = getattr(model, "normalize", None)
    if scaling is not None:
        raise CheckpointError(f"{name} was trained on MRC micrographs or volumes (each input normalised by its own "
                              f"mean and standard deviation, data.normalize={scaling}), not on images in [0, 1]: "
                              f"{instead}")


def input_scaling(config: dict[str, Any]) -> str | None:
    """How a network trained with `config` expects its inputs: "mean_std" for data=volumes and for data=pairs of
    MRC micrographs (data.normalize recorded at training), None for images in [0, 1]."""
    data = config.get("data") or {}
    scheme = data.get("normalize", "mean_std" if data.get("name") == "volumes" else None)
    return scheme if scheme in SCALINGS else None


def unet_from_checkpoint(ckpt: dict[str, Any], path: str | Path = "checkpoint",
                         map_location: str | torch.device = "cpu") -> UNet:
    """The U-Net of an already-read checkpoint, in eval mode."""
    try:
        model = model_config(ckpt, path)
        check_options({"model": model}, TRAIN_OPTIONS)  # its values are untrusted: ranges before building
        net = build_unet(model)
    except ConfigError as exc:  # the stored config is only read for names in n2n's registries
        raise CheckpointError(f"checkpoint {path} holds a model config that n2n cannot build: {exc}") from None
    state = {k[len(NET_PREFIX):]: v for k, v in ckpt["state_dict"].items() if k.startswith(NET_PREFIX)}
    check_finite(state, path)
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[:3]
        raise CheckpointError(
            f"checkpoint {path} does not match the n2n U-Net built from its own config: {' '.join(first)}"
        ) from None
    return net.to(map_location).eval()
