"""ONNX export of the U-Net, and a runner that serves the exported model like the PyTorch one.

Only `UNet.forward_aligned` is exported: the padding to a multiple of 32 and the tiling live in
n2n.inference and run in front of either runner, so the graph stays a plain stack of convolutions with
dynamic batch, height and width (any multiples of 32).
"""
from __future__ import annotations

import copy
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from n2n.atomic import atomic_output
from n2n.errors import CheckpointError
from n2n.extras import require_extra
from n2n.inference.checkpoints import SCALING_KEY, SCALINGS, recorded
from n2n.inference.declip import METADATA_KEY, RULES, rule_of
from n2n.models.unet import MULTIPLE

INPUT_NAME, OUTPUT_NAME = "noisy", "denoised"


class _Aligned(nn.Module):
    """Exposes `forward_aligned` as `forward`, which is what the exporter traces."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.forward_aligned(x)


def export_onnx(net: nn.Module, path: str | Path, opset: int = 17) -> Path:
    """Write `net` as ONNX taking N x C x H x W float32 with H and W any multiples of 32; its declipping rule
    (n2n.inference.declip) and input scaling (n2n.inference.checkpoints.SCALINGS), if any, go into the model's
    metadata."""
    if getattr(net, "dims", 2) != 2:  # volumes (model.dims=3): n2n denoise runs them from .ckpt/.safetensors
        raise CheckpointError("ONNX export is for 2D models; export a 3D model as .safetensors instead")
    require_extra("onnx", "export", "ONNX export")  # torch.onnx.export needs it; one line if it is missing
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = _Aligned(copy.deepcopy(net).cpu().eval())
    # Odd multiples of 32 in the example so that no size gets specialised into the graph.
    example = torch.rand(1, int(net.in_channels), 2 * MULTIPLE, 3 * MULTIPLE)
    with warnings.catch_warnings(), atomic_output(path) as tmp:
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            model, (example,), str(tmp),
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_axes={name: {0: "batch", 2: "height", 3: "width"} for name in (INPUT_NAME, OUTPUT_NAME)},
            opset_version=opset,
            # The TorchScript exporter: the dynamo one needs onnxscript, which n2n does not depend on.
            dynamo=False,
        )
        props = {key: value for key, value in ((METADATA_KEY, rule_of(net)),
                                               (SCALING_KEY, getattr(net, "normalize", None))) if value is not None}
        if props:
            import onnx

            exported = onnx.load(str(tmp))
            onnx.helper.set_model_props(exported, props)
            onnx.save(exported, str(tmp))
    return path


def onnx_providers(device: str = "auto") -> list[str]:
    """ONNX Runtime execution providers for "auto", "cpu" or "cuda" (CUDA only when it is installed)."""
    ort = require_extra("onnxruntime", "export", "running an ONNX model")

    available = ort.get_available_providers()
    if device == "cuda" and "CUDAExecutionProvider" not in available:
        raise CheckpointError(
            "--device cuda was asked for, but this onnxruntime has no CUDA provider (install onnxruntime-gpu)"
        )
    if device in ("auto", "cuda") and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class OnnxRunner:
    """Runs an exported n2n model with ONNX Runtime; called like n2n.inference.TorchRunner."""

    def __init__(self, path: str | Path, device: str = "auto"):
        ort = require_extra("onnxruntime", "export", "running an ONNX model")

        self.path = Path(path)
        if not self.path.is_file():
            raise CheckpointError(f"ONNX model {self.path} does not exist (expected a file from `n2n export`)")
        try:
            self.session = ort.InferenceSession(str(self.path), providers=onnx_providers(device))
        except CheckpointError:
            raise
        except Exception as exc:  # onnxruntime raises its own exception types for invalid files
            raise CheckpointError(f"ONNX model {self.path} cannot be loaded: {exc}") from None
        _check_finite_initializers(self.path)
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4 or not isinstance(inputs[0].shape[1], int):
            raise CheckpointError(
                f"ONNX model {self.path} is not an n2n export: expected one N x C x H x W input with a fixed C"
            )
        self.input_name = inputs[0].name
        self.in_channels = int(inputs[0].shape[1])
        out_c = outputs[0].shape[1]
        self.out_channels = int(out_c) if isinstance(out_c, int) else self.in_channels
        props = self.session.get_modelmeta().custom_metadata_map
        self.declip = recorded(props.get(METADATA_KEY), RULES, "declipping rule", f"ONNX model {self.path}")
        self.normalize = recorded(props.get(SCALING_KEY), SCALINGS, "input scaling", f"ONNX model {self.path}")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        feed = {self.input_name: np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)}
        return torch.from_numpy(self.session.run(None, feed)[0])


def _check_finite_initializers(path: Path) -> None:
    """The ONNX model's weights (initializers) are finite, as check_finite asks of PyTorch weights; skipped
    without the `onnx` package (ONNX Runtime alone cannot list them)."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        return
    from n2n.inference.checkpoints import check_finite

    try:
        graph = onnx.load(str(path), load_external_data=False).graph
    except Exception:  # noqa: BLE001 - ONNX Runtime has loaded it: what it runs is checked by use
        return
    check_finite({i.name: torch.from_numpy(np.array(numpy_helper.to_array(i), copy=True)) for i in graph.initializer
                  if i.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE)},
                 path)


def max_abs_diff(net: nn.Module, path: str | Path, shapes=((1, 64, 96), (1, 96, 64)), seed: int = 0) -> float:
    """Largest |ONNX - PyTorch| over random inputs of the given (N, H, W) shapes: checks an export. NaN when
    either output holds a non-finite value: a comparison must be able to fail (max() skips NaN)."""
    runner = OnnxRunner(path, device="cpu")
    gen = torch.Generator().manual_seed(seed)
    worst = 0.0
    net = net.cpu().eval()
    for n, h, w in shapes:
        x = torch.rand(n, runner.in_channels, h, w, generator=gen)
        with torch.inference_mode():
            ref = net.forward_aligned(x)
        diff = (runner(x) - ref).abs()
        if not bool(torch.isfinite(diff).all()):
            return float("nan")
        worst = max(worst, float(diff.max()))
    return worst
