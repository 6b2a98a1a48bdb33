"""What a training method is: how a batch becomes the network's input, target and mask, its loss, and how the
trained network is applied.

A method sees a training batch as a dict of float tensors N x C x H x W in [0, 1] (before noise clipping):

- `noisy`: a noisy capture of each scene, always there;
- `other`: an independent noisy capture of the same scenes (methods that need `PAIR`: Noise2Noise);
- `clean`: the clean image (methods that need `CLEAN`: Noise2Clean).

Methods that need `SINGLE` get `noisy` alone: Neighbor2Neighbor, Noise2Void, Noise2Self, R2R, SURE. The data
module draws what `needs` says and then calls `prepare` with its own generator (whose state checkpoints keep),
so every random choice of a method (masks, sub-samplers, re-corruptions) is drawn there, on the device, for the
whole batch, and a resumed run draws the same ones. `loss` is then deterministic given the prepared tensors, so
it can be replayed as one CUDA graph.
"""
from __future__ import annotations

from typing import Any, Callable, ClassVar

import torch
from torch import nn

from n2n.errors import ConfigError
from n2n.losses import Loss

#: What a method needs of each training scene.
PAIR, CLEAN, SINGLE = "pair", "clean", "single"

Forward = Callable[[torch.Tensor], torch.Tensor]
Batch = dict[str, torch.Tensor]


class Method(nn.Module):
    """Base class. Subclasses set the class attributes, take their options as keyword arguments and implement
    `loss` (and `prepare`, `inference_network` where they differ from the plain ones).

    - `needs`: PAIR, CLEAN or SINGLE (see the module docstring);
    - `needs_sigma`: the method is derived for Gaussian noise of a known level (R2R, SURE): `bind` receives it,
      from `noise.sigma` on synthetic data or `method.sigma` on real captures;
    - `even_size`: the method sub-samples 2 x 2 cells, so crops must have even sides;
    - `l2_only`: the method's theory holds for the squared error only (SURE), so `loss` must be `l2`.
    """

    name: ClassVar[str]
    needs: ClassVar[str] = SINGLE
    needs_sigma: ClassVar[bool] = False
    even_size: ClassVar[bool] = False
    l2_only: ClassVar[bool] = False
    trains: ClassVar[bool] = True  #: False for zero-shot methods, which fit one image at denoising time

    def __init__(self) -> None:
        super().__init__()
        self.loss_fn: Loss | None = None
        self.sigma: float | None = None  #: the noise level on the 0..1 scale, for `needs_sigma` methods

    def bind(self, loss_fn: Loss, sigma: float | None = None) -> "Method":
        """Attach the `loss` group's loss and, for `needs_sigma` methods, the noise level (0..255 scale)."""
        if self.l2_only and loss_fn.name != "l2":
            raise ConfigError(f"method={self.name} is derived for the squared error: use loss=l2 (got loss="
                              f"{loss_fn.name})")
        self.loss_fn = loss_fn
        if self.needs_sigma:
            if sigma is None:
                raise ConfigError(f"method={self.name} needs the Gaussian noise level: it comes from noise.sigma "
                                  f"(a single number) on synthetic data; for your own captures set method.sigma=S "
                                  f"(0..255 scale; docs/methods.md says how to estimate it)")
            self.sigma = float(sigma) / 255.0
        return self

    def set_progress(self, fraction: float) -> None:
        """`fraction` in [0, 1]: the share of training done (annealed losses and weights use it)."""
        if self.loss_fn is not None:
            self.loss_fn.set_progress(fraction)

    def prepare(self, batch: Batch, generator: torch.Generator | None) -> Batch:
        """The batch with the method's random draws added (masks, noise, indices); the plain batch by default."""
        return batch

    def loss(self, forward: Forward, batch: Batch) -> torch.Tensor:
        """The training loss of a prepared batch; `forward` runs the network being trained."""
        raise NotImplementedError

    def inference_network(self, net: nn.Module) -> nn.Module:
        """The network as validation, eval.py and `n2n denoise` apply it: the plain network by default."""
        return net

    def inference_config(self) -> dict[str, Any]:
        """What rebuilds this method's inference rule (stored beside exported weights): its options, and the noise
        level for methods that need one."""
        config = self.describe()
        if self.needs_sigma and self.sigma is not None:
            config["sigma"] = self.sigma * 255.0
        return config

    def describe(self) -> dict[str, Any]:
        """The method's options, for messages and the HParams view."""
        return {"name": self.name}

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.describe().items() if k != "name")


class AveragedInference(nn.Module):
    """A trained network applied several times and averaged (re-corruptions, masks): what `inference_network`
    returns for methods whose inference is not one plain pass. It keeps the network's `forward_aligned`,
    `in_channels` and `out_channels`, so tiling, runners and bf16 copies treat it as the network itself."""

    def __init__(self, net: nn.Module, method: Method):
        super().__init__()
        self.net = net
        self.method_config = method.inference_config()  #: stored with exported weights (n2n.inference.weights)
        self.in_channels = getattr(net, "in_channels", None)
        self.out_channels = getattr(net, "out_channels", None)

    def passes(self, x: torch.Tensor, forward: Forward) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.passes(x, self.net)

    def forward_aligned(self, x: torch.Tensor) -> torch.Tensor:
        return self.passes(x, getattr(self.net, "forward_aligned", self.net))


def number(option: str, value: Any, low: float, high: float, low_open: bool = False) -> float:
    """A method option that must be a number in [low, high] ((low, high] with `low_open`)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not (low < value if low_open else low <= value) or value > high:
        bound = f"{'(' if low_open else '['}{low:g}, {high:g}]"
        raise ConfigError(f"method.{option}={value!r} must be a number in {bound}")
    return float(value)


def integer(option: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"method.{option}={value!r} must be an integer from {low} to {high}")
    return value


def choice(option: str, value: Any, allowed: tuple) -> Any:
    if value not in allowed:
        raise ConfigError(f"method.{option}={value!r} must be one of: {', '.join(map(str, allowed))}")
    return value
