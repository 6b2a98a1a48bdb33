"""The Python API: `n2n.load(model)` and `n2n.denoise(image)` for notebooks and other programs.

    import n2n
    model = n2n.load("gaussian-blind")   # a bundled model's name, or a .ckpt / .safetensors / .onnx file
    clean = model(noisy)                 # NumPy array, PIL image or torch tensor in; the same type out

Images of any size are denoised whole up to `tile` pixels a side and in overlapping tiles beyond (the same
tiling as `n2n denoise`, within 1/255 of the whole-image result).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from n2n.image_files import to_model_input
from n2n.inference.runners import load_runner
from n2n.inference.tiling import DEFAULT_OVERLAP, DEFAULT_TILE, denoise_tensor

#: PIL modes taken as they are (the output has the same mode); palette images come back as RGB(A).
_PIL_MODES = {"L": np.uint8, "LA": np.uint8, "RGB": np.uint8, "RGBA": np.uint8, "I;16": np.uint16}


class Denoiser:
    """A loaded model: call it on an image to denoise it (see `denoise`)."""

    def __init__(self, runner: Callable[[torch.Tensor], torch.Tensor], name: str,
                 tile: int | None = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP):
        self.runner = runner
        self.name = name
        self.channels = int(runner.in_channels)
        self.tile = tile
        self.overlap = overlap

    def __repr__(self) -> str:
        return f"Denoiser({self.name!r}, channels={self.channels})"

    def __call__(self, image: Any) -> Any:
        return self.denoise(image)

    def denoise(self, image: Any) -> Any:
        """Denoise one image and return it in the type it came in.

        * NumPy array, H x W or H x W x C (grey, grey+alpha, RGB, RGBA): uint8 and uint16 keep their depth;
          float arrays are taken as values in [0, 1] and come back as float32 in [0, 1]. Alpha is kept as is.
        * PIL image (L, LA, RGB, RGBA, I;16, I with 16-bit values; P/PA are converted to RGB/RGBA): the same mode.
        * torch tensor, C x H x W or N x C x H x W float in [0, 1] with the model's channel count: the same
          shape, dtype and device.
        A grey image on a colour model is replicated to its three channels; a colour image on a grey model is
        denoised channel by channel. A 3D model (model.dims=3) takes Z x Y x X arrays or tensors of any range
        instead and returns float32 (n2n.volumes.denoise; docs/volumes.md).
        """
        if getattr(getattr(self.runner, "net", None), "dims", 2) == 3:  # a 3D model: Z x Y x X volumes
            from n2n.volumes.denoise import denoise_with_3d_net
            return denoise_with_3d_net(self.runner.net, image)
        if isinstance(image, torch.Tensor):
            return self._tensor(image)
        if isinstance(image, np.ndarray):
            return self._array(image)
        try:
            from PIL import Image
        except ImportError:  # pragma: no cover - Pillow is a dependency
            Image = None
        if Image is not None and isinstance(image, Image.Image):
            return self._pil(image)
        raise TypeError(f"expected a NumPy array, a PIL image or a torch tensor, got {type(image).__name__}")

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        return denoise_tensor(self.runner, x, tile=self.tile, overlap=self.overlap)

    def _array(self, array: np.ndarray) -> np.ndarray:
        if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 2, 3, 4)):
            raise ValueError(f"expected an H x W or H x W x C array with C in 1..4, got shape {array.shape}")
        if array.dtype in (np.uint8, np.uint16):
            x, restore = to_model_input(array, self.channels)
            out = restore(self._run(x))
            return out[:, :, 0] if array.ndim == 2 else out
        if not np.issubdtype(array.dtype, np.floating):
            raise ValueError(f"expected a uint8, uint16 or float array (values in [0, 1]), got {array.dtype}")
        # floats go through the 16-bit path: rounding to 1/65535 is far below any noise a model removes
        as16 = np.rint(np.clip(array, 0.0, 1.0) * 65535.0).astype(np.uint16)
        return (self._array(as16) / 65535.0).astype(np.float32)

    def _pil(self, image) -> Any:
        from PIL import Image

        mode = image.mode
        if mode in ("P", "PA"):
            image = image.convert("RGBA" if "transparency" in image.info or mode == "PA" else "RGB")
            mode = image.mode
        if mode == "I":  # how Pillow opens many 16-bit grey files
            array = np.asarray(image)
            if array.min() < 0 or array.max() > 65535:
                raise ValueError("a PIL image of mode I must hold 16-bit values (0..65535)")
            out = self._array(array.astype(np.uint16))
            return Image.fromarray(out.astype(np.int32))  # mode I
        if mode not in _PIL_MODES:
            raise ValueError(f"PIL images of mode {mode} are not supported: "
                             f"convert to one of {', '.join(_PIL_MODES)} (image.convert('RGB'))")
        out = self._array(np.asarray(image))
        return Image.fromarray(out)  # the mode follows from the array's shape and dtype: the input's

    def _tensor(self, tensor: torch.Tensor) -> torch.Tensor:
        if tensor.dim() not in (3, 4) or tensor.shape[-3] != self.channels or not tensor.is_floating_point():
            raise ValueError(f"expected a float C x H x W or N x C x H x W tensor with C = {self.channels} (the "
                             f"model's channels), values in [0, 1]; got {tuple(tensor.shape)} {tensor.dtype}")
        x = tensor[None] if tensor.dim() == 3 else tensor
        out = self._run(x)
        out = out[0] if tensor.dim() == 3 else out
        return out.to(tensor.device, tensor.dtype)


def load(model: str | Path = "gaussian-blind", device: str = "auto", precision: str = "auto",
         tile: int | None = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP) -> Denoiser:
    """A Denoiser for a bundled model's name (`n2n.pretrained.names()`), or a .ckpt / .safetensors / .onnx file.

    `device`: auto (CUDA when available), cpu or cuda. `precision`: auto, fp32 or bf16 (see `n2n denoise`).
    `tile`: images larger than this many pixels a side are denoised in tiles (None: always whole).
    """
    return Denoiser(load_runner(model, device, precision), str(model), tile, overlap)


_loaded: dict[str, Denoiser] = {}


def denoise(image: Any, model: str | Path | None = None) -> Any:
    """Denoise one image with `model` (default: the bundled model for its channels: gaussian-blind for colour,
    gaussian-blind-grey for grey), loaded once and kept for later calls. See Denoiser.denoise for the types."""
    from n2n import pretrained

    if model is None:
        model = pretrained.default_model(_colour_channels(image))
    key = str(model)
    if key not in _loaded:
        _loaded[key] = load(model)
    return _loaded[key](image)


def _colour_channels(image: Any) -> int:
    if isinstance(image, torch.Tensor):
        return int(image.shape[-3]) if image.dim() >= 3 else 1
    if isinstance(image, np.ndarray):
        channels = 1 if image.ndim == 2 else int(image.shape[2])
        return 1 if channels in (1, 2) else 3
    mode = getattr(image, "mode", "RGB")
    return 1 if mode in ("L", "LA", "I", "I;16") else 3
