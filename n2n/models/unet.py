"""The U-Net of the Noise2Noise paper (Lehtinen et al. 2018, appendix table 2).

Layer names follow the paper's table so that a reader can check one against the other.
Activation and normalisation are injected as factories; the class itself never changes for an ablation.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from n2n.config import require
from n2n.errors import ConfigError
from n2n.models.layers import ActivationFactory, NormFactory, make_activation, make_norm

#: Spatial size must be divisible by this: five 2x2 max-pools.
MULTIPLE = 32
#: Weight initialisations: `he` (He et al., for the activation's slope; zero biases), as in the Noise2Noise
#: paper; `torch`: PyTorch's own default for Conv2d, smaller weights, which the seed report's recipe (SGD at a
#: learning rate of 0.055) needs: with `he` that rate diverges within the first ten steps for some seeds.
INITS = ("he", "torch")

def pad_to_multiple(x: torch.Tensor, multiple: int = MULTIPLE) -> torch.Tensor:
    """Reflect-pad the bottom and right so height and width become multiples of `multiple`.

    Reflection (the paper's choice) needs the pad to be smaller than the side; tiny images fall back to
    edge replication so that any size works.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)


class ConvAct(nn.Sequential):
    """3x3 convolution, optional normalisation, activation."""

    def __init__(self, cin: int, cout: int, act: ActivationFactory, norm: NormFactory | None):
        layers: list[nn.Module] = [nn.Conv2d(cin, cout, 3, padding=1, bias=norm is None)]
        if norm is not None:
            layers.append(norm(cout))
        layers.append(act())
        super().__init__(*layers)


class UNet(nn.Module):
    """Noise2Noise U-Net. Any input size works: it is padded to a multiple of 32 and cropped back."""

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        activation: ActivationFactory | None = None,
        norm: NormFactory | None = None,
        init: str = "he",
    ):
        super().__init__()
        if init not in INITS:
            raise ConfigError(f"model.init={init!r} is not known; choose one of: {', '.join(INITS)}")
        act = activation or make_activation({"name": "leaky_relu"})
        n, m = in_channels, out_channels
        self.in_channels, self.out_channels = n, m

        def block(cin: int, cout: int) -> ConvAct:
            return ConvAct(cin, cout, act, norm)

        self.enc_conv0 = block(n, 48)
        self.enc_conv1 = block(48, 48)
        self.enc_conv2 = block(48, 48)
        self.enc_conv3 = block(48, 48)
        self.enc_conv4 = block(48, 48)
        self.enc_conv5 = block(48, 48)
        self.enc_conv6 = block(48, 48)
        self.dec_conv5a = block(96, 96)
        self.dec_conv5b = block(96, 96)
        self.dec_conv4a = block(144, 96)
        self.dec_conv4b = block(96, 96)
        self.dec_conv3a = block(144, 96)
        self.dec_conv3b = block(96, 96)
        self.dec_conv2a = block(144, 96)
        self.dec_conv2b = block(96, 96)
        self.dec_conv1a = block(96 + n, 64)
        self.dec_conv1b = block(64, 32)
        self.dec_conv1c = nn.Conv2d(32, m, 3, padding=1)  # linear output
        if init == "he":
            self._init_weights(act)

    def _init_weights(self, act: ActivationFactory) -> None:
        probe = act()
        slope = getattr(probe, "negative_slope", 0.0)
        for mod in self.modules():
            if isinstance(mod, nn.Conv2d):
                nn.init.kaiming_normal_(mod.weight, a=slope, nonlinearity="leaky_relu")
                if mod.bias is not None:
                    nn.init.zeros_(mod.bias)
        nn.init.kaiming_normal_(self.dec_conv1c.weight, nonlinearity="linear")

    def forward_aligned(self, x: torch.Tensor) -> torch.Tensor:
        """Forward pass for inputs whose sides are already multiples of 32 (what export traces)."""
        skips = [x]
        h = F.max_pool2d(self.enc_conv1(self.enc_conv0(x)), 2)
        skips.append(h)
        for conv in (self.enc_conv2, self.enc_conv3, self.enc_conv4):
            h = F.max_pool2d(conv(h), 2)
            skips.append(h)
        h = F.max_pool2d(self.enc_conv5(h), 2)
        h = self.enc_conv6(h)
        for conv_a, conv_b in (
            (self.dec_conv5a, self.dec_conv5b),
            (self.dec_conv4a, self.dec_conv4b),
            (self.dec_conv3a, self.dec_conv3b),
            (self.dec_conv2a, self.dec_conv2b),
        ):
            h = F.interpolate(h, scale_factor=2.0, mode="nearest")
            h = conv_b(conv_a(torch.cat([h, skips.pop()], dim=1)))
        h = F.interpolate(h, scale_factor=2.0, mode="nearest")
        h = torch.cat([h, skips.pop()], dim=1)
        return self.dec_conv1c(self.dec_conv1b(self.dec_conv1a(h)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h % MULTIPLE == 0 and w % MULTIPLE == 0:
            return self.forward_aligned(x)
        return self.forward_aligned(pad_to_multiple(x))[..., :h, :w]


MODEL_KEYS = ("in_channels", "out_channels", "activation", "norm", "init")


def build_unet(cfg: Mapping[str, Any]) -> UNet:
    """Build from the `model` config section: in/out channels, activation, norm and initialisation by name."""
    unknown = sorted(set(cfg) - set(MODEL_KEYS))
    if unknown:
        raise ConfigError(f"model: unknown option(s) {unknown}; allowed: {', '.join(MODEL_KEYS)}")
    net = UNet(
        in_channels=int(require(cfg, "in_channels", "model")),
        out_channels=int(require(cfg, "out_channels", "model")),
        activation=make_activation(require(cfg, "activation", "model")),
        norm=make_norm(require(cfg, "norm", "model")),
        init=require(cfg, "init", "model"),
    )
    net.config = {key: cfg[key] for key in MODEL_KEYS}  # what rebuilds it: written beside exported weights
    return net
