"""`init_from`: a run that starts from trained weights instead of a random initialisation (fine-tuning).

Only the network's weights are taken (a bundled model's name, a .safetensors file or a training .ckpt, read
as `n2n denoise` reads them); the optimiser, the learning-rate schedule and the step count start afresh, which
is what sets it apart from `ckpt_path` (resuming a run where it stopped).
"""
from __future__ import annotations

from n2n.errors import CheckpointError, ConfigError
from n2n.models.unet import DEFAULTS, UNet


def load_initial_weights(net: UNet, model: str) -> None:
    """Copy the weights of `model` into `net`; ConfigError naming `init_from` if they do not fit it."""
    from n2n.inference.runners import load_network

    try:
        source = load_network(model)
    except CheckpointError as exc:
        raise ConfigError(f"init_from={model}: {exc}") from None
    source = getattr(source, "net", source)  # weights only: not a method's inference rule around them
    # the initialisation scheme is all that may differ: the weights replace what it drew; 2D weight files
    # written before model.dims/depth/features existed hold the defaults
    theirs, ours = ({k: v for k, v in {**DEFAULTS, **c}.items() if k != "init"} for c in (source.config, net.config))
    if theirs != ours:
        differ = [f"model.{k}={theirs.get(k)!r} (this run: {ours.get(k)!r})" for k in sorted(set(theirs) | set(ours))
                  if theirs.get(k) != ours.get(k)]
        raise ConfigError(f"init_from={model} holds another network: {'; '.join(differ[:4])}; train with its model "
                          f"options (e.g. data.channels) or start from other weights")
    net.load_state_dict(source.state_dict())
