"""Images as the network takes them: float tensors in [0, 1] with the network's channels, and back; and the
C x H x W tensors that training holds."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch

from n2n.errors import DataError
from n2n.image_files.reading import read_image


def to_model_input(
    array: np.ndarray, model_channels: int, has_alpha: bool | None = None
) -> tuple[torch.Tensor, Callable[[torch.Tensor], np.ndarray]]:
    """The network input for an image, and the function turning the network output back into an image.

    Returns (x, restore): x is N x model_channels x H x W float in [0, 1]; restore(output) is an array
    with the image's own channels and dtype. Alpha (the last channel of grey+alpha and RGBA images, or
    as `has_alpha` says) is never sent to the network and comes back bit-exact. Channel adaptation:

    * image channels == model channels: as is (N = 1);
    * grey image, RGB model: the grey plane is replicated to 3 channels and the 3 outputs averaged (N = 1);
    * colour image, grey model: each colour channel is denoised separately as its own grey image
      (N = number of channels). Unlike denoising luminance only, this also removes chroma noise, and
      per-channel noise is what a grey model was trained on.
    """
    if array.ndim == 2:
        array = array[:, :, None]
    if array.dtype not in (np.uint8, np.uint16):
        raise DataError(f"expected a uint8 or uint16 image, got {array.dtype}")
    channels = array.shape[2]
    if has_alpha is None:
        has_alpha = channels in (2, 4)
    colour = array[:, :, : channels - 1] if has_alpha else array
    alpha = array[:, :, channels - 1 :].copy() if has_alpha else None
    dtype, scale = array.dtype, float(np.iinfo(array.dtype).max)
    n = colour.shape[2]
    planes = torch.from_numpy(colour.astype(np.float32) / scale).permute(2, 0, 1)  # n x H x W

    if n == model_channels:
        x, merge = planes[None], (lambda y: y[0])
    elif n == 1 and model_channels == 3:
        x, merge = planes.expand(3, -1, -1)[None], (lambda y: y[0].mean(0, keepdim=True))
    elif model_channels == 1:
        x, merge = planes[:, None], (lambda y: y[:, 0])
    else:
        raise DataError(
            f"cannot adapt an image with {n} colour channel(s){' plus alpha' if has_alpha else ''} to a "
            f"network with {model_channels} input channels (supported: equal counts, grey image on an RGB "
            f"network, any image on a grey network)"
        )

    def restore(output: torch.Tensor) -> np.ndarray:
        y = merge(output.detach().float().cpu()).clamp(0.0, 1.0)  # C x H x W
        out = np.rint(y.permute(1, 2, 0).numpy() * scale).astype(dtype)
        return np.concatenate([out, alpha], axis=2) if alpha is not None else np.ascontiguousarray(out)

    return x.contiguous(), restore


def to_uint8_chw(array: np.ndarray, channels: int) -> torch.Tensor:
    """An H x W (x C) uint8/uint16 image as a C x H x W uint8 tensor with `channels` channels, as training on
    clean images uses it: 16-bit values are scaled to 8 bits (v / 257, rounded), alpha is dropped (it carries
    no signal to denoise), grey is replicated to RGB and RGB made grey with ITU-R 601 luma weights."""
    if array.ndim == 2:
        array = array[:, :, None]
    if array.dtype == np.uint16:
        array = (array.astype(np.float64) / 257.0).round().clip(0, 255).astype(np.uint8)
    return to_chw(array, channels)


def to_chw(array: np.ndarray, channels: int) -> torch.Tensor:
    """An H x W (x C) image as a C x H x W tensor with `channels` channels, keeping its bit depth: uint8 stays
    uint8; uint16 becomes int32 (PyTorch cannot index uint16 tensors), to be divided by PIXEL_MAX[dtype]."""
    if array.ndim == 2:
        array = array[:, :, None]
    if array.dtype not in (np.uint8, np.uint16):
        raise DataError(f"expected a uint8 or uint16 image, got {array.dtype}")
    if array.shape[2] in (2, 4):  # alpha carries no signal to denoise
        array = array[:, :, :-1]
    if array.shape[2] == 1 and channels == 3:
        array = np.repeat(array, 3, axis=2)
    elif array.shape[2] == 3 and channels == 1:
        luma = np.round(array @ np.array([0.299, 0.587, 0.114]))
        array = luma.astype(array.dtype)[:, :, None]
    elif array.shape[2] != channels:
        raise DataError(f"cannot use an image with {array.shape[2]} channels as {channels}-channel data")
    if array.dtype == np.uint16:
        array = array.astype(np.int32)
    return torch.from_numpy(np.array(array, copy=True)).permute(2, 0, 1).contiguous()


#: What the largest pixel value of a tensor of each dtype stands for (see as_float).
PIXEL_MAX = {torch.uint8: 255.0, torch.int32: 65535.0}


def as_float(x: torch.Tensor) -> torch.Tensor:
    """Pixels as floats in [0, 1]: uint8 / 255, 16-bit (held as int32) / 65535; floats as they are."""
    if x.is_floating_point():
        return x.float()
    return x.float().div_(PIXEL_MAX[x.dtype])


def read_training_image(path: str | Path, channels: int, keep_16bit: bool = False) -> torch.Tensor:
    """One image file as a C x H x W tensor for training (see to_uint8_chw, or to_chw with `keep_16bit`);
    DataError naming the file."""
    array, _ = read_image(path)
    try:
        return to_chw(array, channels) if keep_16bit else to_uint8_chw(array, channels)
    except DataError as exc:
        raise DataError(f"image {path}: {exc}") from None


