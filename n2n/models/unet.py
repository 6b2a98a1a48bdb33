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

#: Spatial size must be divisible by this: five 2x2 max-pools (the paper's depth; `multiple_of(depth)` otherwise).
MULTIPLE = 32
#: Weight initialisations: `he` (He et al., for the activation's slope; zero biases), as in the Noise2Noise
#: paper; `torch`: PyTorch's own default for Conv2d, smaller weights, which the seed report's recipe (SGD at a
#: learning rate of 0.055) needs: with `he` that rate diverges within the first ten steps for some seeds.
INITS = ("he", "torch")
#: Spatial dimensions: 2 (images, the paper) or 3 (volumes: 3D convolutions, pooling and upsampling).
DIMS = (2, 3)
#: Pooling levels allowed (the paper: 5; thin volumes want 3 or 4, whose crops may then be 8 or 16 voxels). At most
#: 5, so that the 2D tiling's multiples of 32 (n2n.inference.tiling) are multiples of 2**depth for every model.
DEPTHS = range(1, 6)
#: Defaults of the options added with volumes: what every earlier checkpoint and weight file was built with.
DEFAULTS = {"dims": 2, "depth": 5, "features": 48}
_CONV = {2: nn.Conv2d, 3: nn.Conv3d}
_POOL = {2: F.max_pool2d, 3: F.max_pool3d}


def multiple_of(depth: int) -> int:
    """Each side must be divisible by this: `depth` 2x max-pools."""
    return 2 ** int(depth)


def receptive_reach(depth: int) -> int:
    """Pixels of context beyond which a pixel's output cannot change (up/left, the longer side): 2 + 2 + 4 + ...
    for the encoder's 3x3 convolutions at each scale, twice that for the decoder's, the bottleneck, the last
    three convolutions and the offset on the pooling grid: 5 * 2**depth - 2 (158 for the paper's depth 5)."""
    return 5 * multiple_of(depth) - 2


def pad_to_multiple(x: torch.Tensor, multiple: int = MULTIPLE, dims: int = 2) -> torch.Tensor:
    """Reflect-pad the far side of the last `dims` axes (bottom and right for images) to multiples of `multiple`.

    Reflection (the paper's choice) needs the pad to be smaller than the side; tiny inputs fall back to
    edge replication so that any size works.
    """
    sides = x.shape[-dims:]
    pads = [(-n) % multiple for n in sides]
    if not any(pads):
        return x
    mode = "reflect" if all(p < n for p, n in zip(pads, sides)) else "replicate"
    spec: list[int] = []
    for p in reversed(pads):  # F.pad lists the last axis first
        spec += [0, p]
    return F.pad(x, tuple(spec), mode=mode)


class ConvAct(nn.Sequential):
    """3x3 (3x3x3) convolution, optional normalisation, activation."""

    def __init__(self, cin: int, cout: int, act: ActivationFactory, norm: NormFactory | None, dims: int = 2):
        layers: list[nn.Module] = [_CONV[dims](cin, cout, 3, padding=1, bias=norm is None)]
        if norm is not None:
            layers.append(norm(cout))
        layers.append(act())
        super().__init__(*layers)


class UNet(nn.Module):
    """Noise2Noise U-Net. Any input size works: it is padded to a multiple of 2**depth and cropped back.

    The defaults are the paper's network (2D, 5 pooling levels, 48 features); `dims=3` makes every convolution,
    pooling and upsampling 3D (volumes, N x C x D x H x W), `depth` sets the pooling levels and `features` the
    width (the decoder's 96/64/32 scale with it). Layers keep the paper's names (enc_conv0 ... enc_conv{depth+1},
    dec_conv{depth}a ... dec_conv1c) and are created in the paper's order, so the defaults build, initialise
    and load exactly the network and weights of earlier versions."""

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        activation: ActivationFactory | None = None,
        norm: NormFactory | None = None,
        init: str = "he",
        dims: int = 2,
        depth: int = 5,
        features: int = 48,
    ):
        super().__init__()
        if init not in INITS:
            raise ConfigError(f"model.init={init!r} is not known; choose one of: {', '.join(INITS)}")
        if dims not in DIMS:
            raise ConfigError(f"model.dims={dims!r} must be one of {', '.join(map(str, DIMS))}")
        if depth not in DEPTHS:
            raise ConfigError(f"model.depth={depth!r} must be an integer from {DEPTHS[0]} to {DEPTHS[-1]}")
        if isinstance(features, bool) or not isinstance(features, int) or features < 1:
            raise ConfigError(f"model.features={features!r} must be an integer >= 1")
        act = activation or make_activation({"name": "leaky_relu"})
        n, m, f = in_channels, out_channels, features
        self.in_channels, self.out_channels = n, m
        self.dims, self.depth, self.features = dims, depth, features
        self.multiple = multiple_of(depth)
        self._pool = _POOL[dims]

        def block(cin: int, cout: int) -> ConvAct:
            return ConvAct(cin, cout, act, norm, dims)

        # encoder: enc_conv0 and enc_conv1 at full resolution, enc_conv2..enc_conv{depth} one per pooled level,
        # enc_conv{depth+1} at the bottom
        self.enc_conv0 = block(n, f)
        for i in range(1, depth + 2):
            setattr(self, f"enc_conv{i}", block(f, f))
        # decoder: dec_conv{depth}a takes the bottom (f) and a skip (f), the others 2f from below and a skip
        for level in range(depth, 1, -1):
            setattr(self, f"dec_conv{level}a", block(2 * f if level == depth else 3 * f, 2 * f))
            setattr(self, f"dec_conv{level}b", block(2 * f, 2 * f))
        wide, narrow = (4 * f) // 3, (2 * f) // 3  # 64 and 32 for the paper's 48
        self.dec_conv1a = block((2 * f if depth > 1 else f) + n, wide)
        self.dec_conv1b = block(wide, narrow)
        self.dec_conv1c = _CONV[dims](narrow, m, 3, padding=1)  # linear output
        if init == "he":
            self._init_weights(act)

    def _init_weights(self, act: ActivationFactory) -> None:
        probe = act()
        slope = getattr(probe, "negative_slope", 0.0)
        for mod in self.modules():
            if isinstance(mod, (nn.Conv2d, nn.Conv3d)):
                nn.init.kaiming_normal_(mod.weight, a=slope, nonlinearity="leaky_relu")
                if mod.bias is not None:
                    nn.init.zeros_(mod.bias)
        nn.init.kaiming_normal_(self.dec_conv1c.weight, nonlinearity="linear")

    def forward_aligned(self, x: torch.Tensor) -> torch.Tensor:
        """Forward pass for inputs whose sides are already multiples of 2**depth (what export traces)."""
        pool = self._pool
        skips = [x]
        h = pool(self.enc_conv1(self.enc_conv0(x)), 2)
        for i in range(2, self.depth + 1):
            skips.append(h)
            h = pool(getattr(self, f"enc_conv{i}")(h), 2)
        h = getattr(self, f"enc_conv{self.depth + 1}")(h)
        for level in range(self.depth, 1, -1):
            h = F.interpolate(h, scale_factor=2.0, mode="nearest")
            h = torch.cat([h, skips.pop()], dim=1)
            h = getattr(self, f"dec_conv{level}b")(getattr(self, f"dec_conv{level}a")(h))
        h = F.interpolate(h, scale_factor=2.0, mode="nearest")
        h = torch.cat([h, skips.pop()], dim=1)
        return self.dec_conv1c(self.dec_conv1b(self.dec_conv1a(h)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != self.dims + 2:
            shape = "N x C x H x W" if self.dims == 2 else "N x C x D x H x W"
            raise ValueError(f"this {self.dims}D U-Net takes {shape} tensors, got shape {tuple(x.shape)}")
        sides = x.shape[2:]
        if all(s % self.multiple == 0 for s in sides):
            return self.forward_aligned(x)
        out = self.forward_aligned(pad_to_multiple(x, self.multiple, self.dims))
        return out[(..., *(slice(0, s) for s in sides))]


MODEL_KEYS = ("in_channels", "out_channels", "activation", "norm", "init", "dims", "depth", "features")


def build_unet(cfg: Mapping[str, Any]) -> UNet:
    """Build from the `model` config section: in/out channels, activation, norm and initialisation by name,
    dims, depth and features (the paper's 2, 5 and 48 where a config of an earlier version lacks them)."""
    unknown = sorted(set(cfg) - set(MODEL_KEYS))
    if unknown:
        raise ConfigError(f"model: unknown option(s) {unknown}; allowed: {', '.join(MODEL_KEYS)}")
    net = UNet(
        in_channels=int(require(cfg, "in_channels", "model")),
        out_channels=int(require(cfg, "out_channels", "model")),
        activation=make_activation(require(cfg, "activation", "model")),
        norm=make_norm(require(cfg, "norm", "model"), dims=cfg.get("dims", DEFAULTS["dims"])),
        init=require(cfg, "init", "model"),
        **{key: cfg.get(key, default) for key, default in DEFAULTS.items()},  # absent in earlier configs
    )
    # what rebuilds it: written beside exported weights (a config without dims/depth/features stays without)
    net.config = {key: cfg[key] for key in MODEL_KEYS if key in cfg}
    return net
