"""Checkpoints as training writes them, and crafted files that would run code if unpickled."""
from __future__ import annotations

from pathlib import Path

import torch

#: A checkpoint written by n2n before the package was reorganised (v0.1 layout, 2026-12-01): 3 SGD steps of
#: the default config with optimizer.momentum=0, data.crop_size=32, data.batch_size=2. Kept to prove that
#: checkpoints of earlier versions still resume and still load in `n2n denoise`.
LEGACY_CHECKPOINT = Path(__file__).resolve().parents[1] / "data" / "legacy_v0.1_last.ckpt"


def save_checkpoint(path, net) -> None:
    """A checkpoint as training writes it: the network under `net.` and the model config."""
    torch.save({
        "state_dict": {f"net.{k}": v for k, v in net.state_dict().items()},
        "hyper_parameters": {"config": {"model": {
            "in_channels": net.in_channels, "out_channels": net.out_channels,
            "activation": {"name": "leaky_relu", "negative_slope": 0.1}, "norm": {"name": "none"},
        }}},
    }, path)


class Exploit:
    """Unpickling this creates the file `target`: a stand-in for any code a crafted file could run."""

    def __init__(self, target: str):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


#: The paper's RGB U-Net as a `model` config section.
RGB_MODEL = {"in_channels": 3, "out_channels": 3, "activation": {"name": "leaky_relu", "negative_slope": 0.1},
             "norm": {"name": "none"}, "init": "he"}


def random_rgb_denoiser(folder):
    """A seeded, untrained RGB U-Net saved as weights in `folder` and loaded through the Python API (fp32, CPU)."""
    import torch

    import n2n
    from n2n.inference.weights import save_weights
    from n2n.models.unet import build_unet

    torch.manual_seed(0)
    net = build_unet(RGB_MODEL)
    return n2n.load(save_weights(net, net.config, folder / "rgb.safetensors"), device="cpu", precision="fp32")
