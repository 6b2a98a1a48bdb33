"""The Python API: `n2n.load(model)` and `n2n.denoise(image)` for notebooks and other programs.

    import n2n
    model = n2n.load("gaussian-blind")   # a bundled model's name, or a .ckpt / .safetensors / .onnx file
    clean = model(noisy)                 # NumPy array, PIL image or torch tensor in; the same type out
    softer = model(noisy, strength=0.7)  # 70 % denoised, 30 % the input: keeps some grain and texture
    raw = n2n.load("gaussian-blind", declip=False)  # the network's output, without the clipping correction

Images of any size are denoised whole up to `tile` pixels a side and in overlapping tiles beyond (the same
tiling as `n2n denoise`, within 1/255 of the whole-image result).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from n2n.image_files import to_model_input
from n2n.inference.checkpoints import check_image_model
from n2n.inference.runners import load_runner
from n2n.inference.tiling import DEFAULT_OVERLAP, DEFAULT_TILE, check_strength, denoise_tensor

#: PIL modes taken as they are (the output has the same mode); palette images come back as RGB(A).
_PIL_MODES = {"L": np.uint8, "LA": np.uint8, "RGB": np.uint8, "RGBA": np.uint8, "I;16": np.uint16}
#: How far float pixels may lie outside [0, 1] and still be taken (clipped, as an 8-bit file would hold them):
#: noise added to an image in [0, 1] overshoots a little; values beyond are another scale (0..255) or garbage.
FLOAT_SLACK = 0.5


def check_float_pixels(values: np.ndarray | torch.Tensor, what: str) -> None:
    """ValueError unless float pixels are finite and within [-FLOAT_SLACK, 1 + FLOAT_SLACK] (see `denoise`)."""
    if isinstance(values, torch.Tensor):
        values = values.detach().float().cpu().numpy()
    finite = np.isfinite(values)
    if not finite.all():
        raise ValueError(f"{what} holds {int((~finite).sum())} NaN or infinite value(s): replace them (e.g. "
                         f"np.nan_to_num) before denoising")
    low, high = float(values.min()), float(values.max())
    if low < -FLOAT_SLACK or high > 1 + FLOAT_SLACK:
        hint = " (it looks like 0..255 pixels: divide by 255, or pass uint8)" if high <= 255 and low >= 0 else ""
        raise ValueError(f"{what} holds values from {low:g} to {high:g}: float images must be in [0, 1] (a "
                         f"little noise beyond is clipped, values beyond [{-FLOAT_SLACK}, {1 + FLOAT_SLACK}] are "
                         f"refused){hint}")


def _check_size(shape: tuple[int, ...], what: str) -> None:
    if 0 in shape:
        raise ValueError(f"{what} of shape {tuple(shape)} has no pixels: nothing to denoise")


class Denoiser:
    """A loaded model: call it on an image to denoise it (see `denoise`). `strength` (0..1, default 1) is the
    share of the denoised image in the result, the rest being the input (see n2n.inference.tiling.denoise_tensor).
    `declip` (default True) corrects black and white for the clipping of the input's noise where the model was
    trained on unclipped noise (n2n.inference.declip); False returns the network's output as it is."""

    def __init__(self, runner: Callable[[torch.Tensor], torch.Tensor], name: str,
                 tile: int | None = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP, strength: float = 1.0,
                 declip: bool = True):
        self.runner = runner
        self.name = name
        self.channels = int(runner.in_channels)
        self.tile = tile
        self.overlap = overlap
        self.strength = check_strength(strength)
        self.declip = bool(declip)

    def __repr__(self) -> str:
        return f"Denoiser({self.name!r}, channels={self.channels})"

    def __call__(self, image: Any, strength: float | None = None) -> Any:
        return self.denoise(image, strength)

    def denoise(self, image: Any, strength: float | None = None) -> Any:
        """Denoise one image and return it in the type it came in; `strength` (0..1) overrides the Denoiser's for
        this call: strength x denoised + (1 - strength) x input, so 0 gives the input back.

        * NumPy array, H x W or H x W x C (grey, grey+alpha, RGB, RGBA): uint8 and uint16 keep their depth;
          float arrays (float16, 32 or 64) are taken as values in [0, 1] and come back in [0, 1] with the same
          dtype. Values a little outside (noise added to [0, 1], up to FLOAT_SLACK) are clipped; NaN, infinite
          or other-scale values (0..255) are refused with ValueError. Alpha is kept as is.
        * PIL image (L, LA, RGB, RGBA, I;16, I with 16-bit values; P/PA are converted to RGB/RGBA): the same mode.
        * torch tensor, C x H x W or N x C x H x W float in [0, 1] (the same range rule) with the model's channel
          count: the same shape, dtype and device.
        An image without pixels (a side of 0) is refused with ValueError.
        A grey image on a colour model is replicated to its three channels; a colour image on a grey model is
        denoised channel by channel. A 3D model (model.dims=3) takes Z x Y x X arrays or tensors of any range
        instead and returns float32, and a model trained on MRC micrographs Y x X ones (n2n.volumes.denoise;
        docs/volumes.md).
        """
        if strength is not None and strength != self.strength:  # a copy: a shared Denoiser stays as it was
            copy = Denoiser(self.runner, self.name, self.tile, self.overlap, strength, self.declip)
            return copy.denoise(image)
        net = getattr(self.runner, "net", None)
        if getattr(net, "dims", 2) == 3 or getattr(net, "normalize", None) is not None:  # volumes, micrographs
            from n2n.volumes.denoise import denoise_in_own_units
            return denoise_in_own_units(net, image)
        check_image_model(self.runner, self.name)  # an ONNX micrograph model: no volume path
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
        return denoise_tensor(self.runner, x, tile=self.tile, overlap=self.overlap, strength=self.strength,
                              declip=self.declip)

    def _array(self, array: np.ndarray) -> np.ndarray:
        if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 2, 3, 4)):
            raise ValueError(f"expected an H x W or H x W x C array with C in 1..4, got shape {array.shape}")
        _check_size(array.shape, "the array")
        if array.dtype in (np.uint8, np.uint16):
            x, restore = to_model_input(array, self.channels)
            out = restore(self._run(x))
            return out[:, :, 0] if array.ndim == 2 else out
        if not np.issubdtype(array.dtype, np.floating):
            raise ValueError(f"expected a uint8, uint16 or float array (values in [0, 1]), got {array.dtype}")
        check_float_pixels(array, "the float array")
        # floats go through the 16-bit path: rounding to 1/65535 is far below any noise a model removes. In
        # float64, whatever the input's precision: float16 cannot hold 65535 (it would overflow to inf).
        as16 = np.rint(np.clip(array.astype(np.float64), 0.0, 1.0) * 65535.0).astype(np.uint16)
        return (self._array(as16) / 65535.0).astype(array.dtype)

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
        _check_size(tuple(tensor.shape), "the tensor")
        check_float_pixels(tensor, "the tensor")
        x = tensor[None] if tensor.dim() == 3 else tensor
        out = self._run(x.detach().float().clamp(0, 1))
        out = out[0] if tensor.dim() == 3 else out
        return out.to(tensor.device, tensor.dtype)


def load(model: str | Path = "gaussian-blind", device: str = "auto", precision: str = "auto",
         tile: int | None = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP, strength: float = 1.0,
         declip: bool = True) -> Denoiser:
    """A Denoiser for a bundled model's name (`n2n.pretrained.names()`), or a .ckpt / .safetensors / .onnx file.

    `device`: auto (CUDA when available), cpu or cuda. `precision`: auto, fp32 or bf16 (see `n2n denoise`).
    `tile`: images larger than this many pixels a side are denoised in tiles (None: always whole).
    `strength`: 0..1, the share of the denoised image in the result (the rest is the input).
    `declip`: correct black and white for clipped noise where the model calls for it (n2n.inference.declip).
    """
    check_strength(strength)  # before the model loads
    return Denoiser(load_runner(model, device, precision), str(model), tile, overlap, strength, declip)


def denoise_zero_shot(image: Any, steps: int | None = None, progress: bool = False) -> Any:
    """Denoise one image with Zero-Shot Noise2Noise (Mansour & Heckel 2023): a small network fitted to this image
    alone (no trained model; `steps` fitting steps, 2 000 by default), grey or colour as the image is. The types
    are Denoiser.denoise's; the image is fitted whole, never in tiles."""
    from n2n.inference.zero_shot import ZeroShotRunner

    runner = ZeroShotRunner(_colour_channels(image), steps, progress)
    return Denoiser(runner, "zsn2n", tile=None)(image)


_loaded: dict[str, Denoiser] = {}


def denoise(image: Any, model: str | Path | None = None, strength: float = 1.0) -> Any:
    """Denoise one image with `model` (default: the bundled model for its channels: gaussian-blind for colour,
    gaussian-blind-grey for grey), loaded once and kept for later calls. `strength` (0..1): the share of the
    denoised image in the result, the rest being the input. See Denoiser.denoise for the types."""
    from n2n import pretrained

    check_strength(strength)
    if model is None:
        model = pretrained.default_model(_colour_channels(image))
    key = str(model)
    if key not in _loaded:
        _loaded[key] = load(model)
    return _loaded[key](image, strength=strength)


def _colour_channels(image: Any) -> int:
    if isinstance(image, torch.Tensor):
        return int(image.shape[-3]) if image.dim() >= 3 else 1
    if isinstance(image, np.ndarray):
        channels = 1 if image.ndim == 2 else int(image.shape[2])
        return 1 if channels in (1, 2) else 3
    mode = getattr(image, "mode", "RGB")
    return 1 if mode in ("L", "LA", "I", "I;16") else 3
