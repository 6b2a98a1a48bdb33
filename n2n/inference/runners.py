"""Runners: what inference calls to run a trained network.

A *runner* is a callable that takes a float tensor N x C x h x w with h and w multiples of 32 (on the CPU)
and returns the network's output on the CPU. `TorchRunner` wraps the PyTorch U-Net and
`n2n.inference.onnx.OnnxRunner` an ONNX Runtime session, so the tiling and padding of
n2n.inference.tiling serve both.

Precision: `TorchRunner(net, precision="bf16")` runs a channels-last bfloat16 copy of the network on
bfloat16 inputs; only the last convolution stays float32, so that the output values are not rounded to
bf16's 8 significant bits (input pixels are: at most 0.5/255 on 8-bit images, far below the noise). On
CPUs with AMX or AVX512-BF16, oneDNN makes this several times faster than float32, with half the
activation memory, at the same PSNR to 0.05 dB (docs/denoising.md);
`precision="auto"` picks it where the hardware has it and float32 elsewhere.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Callable, Protocol, Union

import torch
from torch import nn

from n2n.devices import fast_bf16, pick_device
from n2n.errors import CheckpointError
from n2n.inference.declip import rule_of

#: Values of `precision`: "auto" = "bf16" where bfloat16 is fast (see fast_bf16), else "fp32".
PRECISIONS = ("auto", "fp32", "bf16")


def resolve_precision(precision: str, device: str | torch.device = "cpu") -> str:
    """"fp32" or "bf16" for a `precision` of "auto", "fp32" or "bf16" on `device`."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        return "bf16" if fast_bf16(device) else "fp32"
    return precision


def _cast_input_to_weight(module: nn.Module, args: tuple) -> tuple:
    dtype = module.weight.dtype
    return tuple(a.to(dtype) if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args)


def bf16_network(net: nn.Module) -> nn.Module:
    """A channels-last bfloat16 copy of `net` whose last convolution stays float32 (`net` is not changed).

    Every module with weights casts its input to its own dtype, so the float32 output layer takes the
    bf16 features of the layer before it and returns float32 values that were never rounded to bf16's
    8 significant bits. Feed the copy bf16 channels-last inputs (as TorchRunner does): a float32 input
    would also reach the U-Net's last skip connection, where concatenating it with bf16 features makes
    a float32 copy of the largest activation (measured: 2x the memory of a 1024 px tile, 1.7x the time).
    """
    model = copy.deepcopy(net).eval().to(torch.bfloat16, memory_format=torch.channels_last)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if convs:
        convs[-1].float()  # registration order = the U-Net's forward order: dec_conv1c
    for module in model.modules():
        weight = getattr(module, "weight", None)
        if isinstance(weight, torch.Tensor) and weight.is_floating_point():
            module.register_forward_pre_hook(_cast_input_to_weight)
    return model


class Runner(Protocol):
    """Anything that maps N x C x h x w (h, w multiples of 32, CPU float32) to the network output on CPU."""

    in_channels: int
    out_channels: int

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...


class TorchRunner:
    """Runs a U-Net (anything with `forward_aligned`) on one device; inputs and outputs stay on the CPU.

    `precision`: "fp32", "bf16" (bf16_network on bf16 channels-last inputs) or "auto"
    (bf16 where fast_bf16 says the device has native bfloat16, else fp32). `self.precision` holds the
    resolved choice. Outputs are float32 either way. On the CPU, float32 inputs are also given to the
    network channels-last (the weights are left as they are): same values to ~1e-6, and oneDNN no
    longer reorders each activation (measured on a 1024 px tile: 1.6x faster, 756 instead of 1243 MB).
    """

    def __init__(self, net: nn.Module, device: str | torch.device | None = None, precision: str = "fp32"):
        if device is None:
            device = next(net.parameters()).device
        self.device = torch.device(device)
        self.precision = resolve_precision(precision, self.device)
        self.net = net.to(self.device).eval()
        self.in_channels = getattr(net, "in_channels", None)
        self.out_channels = getattr(net, "out_channels", None)
        self.declip = rule_of(net)  # how outputs on clipped inputs are corrected (n2n.inference.declip)
        self.normalize = getattr(net, "normalize", None)  # inputs scaled per file (checkpoints.SCALINGS), if any
        self.model = bf16_network(self.net) if self.precision == "bf16" else self.net

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            forward = getattr(self.model, "forward_aligned", self.model)
            if self.precision == "bf16":
                x = x.to(self.device, torch.bfloat16, memory_format=torch.channels_last)
            elif self.device.type == "cpu":
                # oneDNN then skips its reorders of every activation: 1.2-1.6x faster, 40 % less memory
                x = x.to(torch.float32, memory_format=torch.channels_last)
            else:
                x = x.to(self.device, torch.float32)
            return forward(x).float().cpu()


RunnerLike = Union[nn.Module, Runner, Callable[[torch.Tensor], torch.Tensor]]


def as_runner(net: RunnerLike, precision: str | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """A module becomes a TorchRunner on the device its weights are on, in `precision` (default fp32).

    A runner is used as it is: `precision` "auto" or None leaves it alone, and an explicit "fp32" or
    "bf16" must match the runner's own (its `precision` attribute; fp32 if it has none, like OnnxRunner).
    """
    if isinstance(net, nn.Module):
        return TorchRunner(net, precision=precision or "fp32")
    if precision not in (None, "auto"):
        own = getattr(net, "precision", "fp32")
        if resolve_precision(precision) != own:
            raise ValueError(f"precision={precision!r} was asked for, but the runner given runs in {own}: "
                             f"build it with that precision (TorchRunner(net, precision=...)) or pass the network")
    return net


def load_network(model: str | Path, map_location: str | torch.device = "cpu") -> nn.Module:
    """The U-Net of a bundled model's name (n2n.pretrained), a .safetensors weight file or a training .ckpt."""
    from n2n import pretrained

    path = pretrained.resolve(model)
    if path.suffix.lower() == ".onnx":
        raise CheckpointError(f"{path} is an ONNX model: it runs through ONNX Runtime only (`n2n denoise`), "
                              f"not as a PyTorch network; give its .ckpt or .safetensors instead")
    if path.suffix.lower() == ".safetensors":
        from n2n.inference.weights import load_weights

        return load_weights(path, map_location)
    from n2n.inference.checkpoints import load_trained

    return load_trained(path, map_location)


def load_runner(model: str | Path, device: str = "auto",
                precision: str = "auto") -> Callable[[torch.Tensor], torch.Tensor]:
    """A runner for a bundled model's name, a .safetensors file or a .ckpt written by training (PyTorch, in
    `precision`: see TorchRunner), or an .onnx file from `n2n export` (ONNX Runtime, float32 only)."""
    from n2n import pretrained

    path = pretrained.resolve(model)
    if path.suffix.lower() == ".onnx":
        if precision == "bf16":
            raise CheckpointError("--precision bf16 needs a .ckpt or .safetensors model: ONNX models run in fp32 "
                                  "(leave --precision at auto or fp32)")
        from n2n.inference.onnx import OnnxRunner  # onnxruntime is only imported when it is used

        return OnnxRunner(path, device)
    dev = pick_device(device, "--device")
    return TorchRunner(load_network(path, dev), dev, precision=precision)
