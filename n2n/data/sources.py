"""Data sources: each reads what the user has into uint8 tensors (C x H x W), once, with clear errors.

- the EE-559 course pickles (`train_data.pkl`: two noisy copies; `val_data.pkl`: noisy and clean),
- a folder of clean images (noise is synthesised later, on the device),
- the sample photos that ship inside scikit-image, so that a new user needs no data at all.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageOps

from n2n.errors import ConfigError, DataError
from n2n.safeload import safe_torch_load

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")

#: scikit-image's bundled photos that load offline. Validation photos are never trained on.
SAMPLE_TRAIN = ("astronaut", "rocket", "immunohistochemistry", "hubble_deep_field", "retina",
                "camera", "brick", "grass", "gravel", "coins")
SAMPLE_VAL = ("chelsea", "coffee")


# ---------------------------------------------------------------------------------------------- pickles
def load_tensor_pair(path: str | Path, what: str, names: tuple[str, str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Two uint8 tensors N x C x H x W of equal shape, as the course's pickles hold them."""
    try:
        obj = safe_torch_load(path, f"{what} file", DataError, "a pickle written with torch.save")
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - torch.load fails in many ways on garbage (IndexError, ...)
        raise DataError(f"{what} file {path} is not a readable torch pickle (a pickle written with torch.save): "
                        f"{type(exc).__name__}: {exc}") from None
    expected = f"a tuple ({names[0]}, {names[1]}) of two uint8 tensors of shape N x C x H x W"
    if not isinstance(obj, (tuple, list)) or len(obj) != 2:
        got = f"a {type(obj).__name__}" + (f" of length {len(obj)}" if isinstance(obj, (tuple, list, dict)) else "")
        raise DataError(f"{what} file {path} holds {got}; expected {expected}")
    a, b = obj
    for name, t in zip(names, (a, b)):
        if not isinstance(t, torch.Tensor):
            raise DataError(f"{what} file {path}: {name} is a {type(t).__name__}; expected {expected}")
        if t.dtype != torch.uint8:
            raise DataError(f"{what} file {path}: {name} has dtype {t.dtype}{_value_range(t)}; expected uint8 "
                            f"tensors (8-bit pixel values 0..255). {_uint8_advice(t)}")
        if t.dim() != 4 or t.shape[1] not in (1, 3) or t.shape[0] == 0:
            raise DataError(f"{what} file {path}: {name} has shape {tuple(t.shape)}; expected N x C x H x W "
                            f"with N >= 1 and C = 1 or 3")
    if a.shape != b.shape:
        raise DataError(f"{what} file {path}: {names[0]} {tuple(a.shape)} and {names[1]} {tuple(b.shape)} "
                        f"differ in shape; each image needs its partner")
    return a.contiguous(), b.contiguous()


def _value_range(t: torch.Tensor) -> str:
    if t.numel() == 0 or t.dtype == torch.bool or t.is_complex():
        return ""
    values = t.detach().double()
    nan = " and NaN" if values.isnan().any() else ""
    finite = values[values.isfinite()]
    if finite.numel() == 0:
        return f" and no finite values{nan}"
    return f" and values from {finite.min().item():g} to {finite.max().item():g}{nan}"


def _uint8_advice(t: torch.Tensor) -> str:
    """How to convert, or why it is refused: values outside 0..255 are not silently clipped or rescaled."""
    if t.numel() == 0 or t.dtype == torch.bool or t.is_complex():
        return "Save the images as uint8."
    values = t.detach().double()
    if not values.isfinite().all():
        return "It holds NaN or infinite values: it is not an image; refused."
    low, high = values.min().item(), values.max().item()
    if low < 0 or high > 255:
        return ("Values outside 0..255 are not 8-bit pixels (and rescaling them by guess would change the noise "
                "level): refused. Save the original 8-bit images as uint8 tensors")
    if t.is_floating_point() and high <= 1:
        return "The values look like [0, 1] floats: save (x * 255).round().to(torch.uint8)"
    return "Convert with x.round().to(torch.uint8) before torch.save"


# ----------------------------------------------------------------------------------------------- images
def _to_chw(array: np.ndarray, channels: int) -> torch.Tensor:
    """H x W (x C) uint8 array -> C x H x W uint8 tensor with the wanted channel count."""
    if array.ndim == 2:
        array = array[:, :, None]
    if array.shape[2] == 4:  # alpha carries no signal to denoise
        array = array[:, :, :3]
    if array.shape[2] == 1 and channels == 3:
        array = np.repeat(array, 3, axis=2)
    elif array.shape[2] == 3 and channels == 1:
        array = np.round(array @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)[:, :, None]
    return torch.from_numpy(np.array(array, copy=True)).permute(2, 0, 1).contiguous()


def read_image_file(path: Path, channels: int) -> torch.Tensor:
    """One image file as a C x H x W uint8 tensor, EXIF orientation applied; 16-bit is scaled to 8."""
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            im.load()
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                array = (np.asarray(im, dtype=np.float64) / 257.0).round().clip(0, 255).astype(np.uint8)
            else:
                array = np.asarray(im.convert("RGBA" if "A" in im.getbands() else "RGB"))
    except (OSError, ValueError, Image.DecompressionBombError, SyntaxError) as exc:
        raise DataError(f"image {path} cannot be read ({exc}): it is truncated, corrupt or not an image in a "
                        f"format Pillow decodes; replace it or remove it from the folder") from None
    return _to_chw(array, channels)


def list_images(folder: str | Path, option: str) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{option}={folder} is not a folder (expected a folder of "
                        f"{', '.join(IMAGE_SUFFIXES)} images)")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"{option}={folder} holds no images (looked for {', '.join(IMAGE_SUFFIXES)})")
    return files


def load_image_folder(folder: str | Path, channels: int, option: str) -> tuple[list[str], list[torch.Tensor]]:
    """All images of a folder (not recursive), decoded in parallel threads (PIL releases the GIL)."""
    files = list_images(folder, option)
    with ThreadPoolExecutor(max_workers=4) as pool:
        images = list(pool.map(lambda p: read_image_file(p, channels), files))
    return [p.name for p in files], images


def load_samples(names: Sequence[str], channels: int, option: str) -> list[torch.Tensor]:
    """scikit-image's bundled photos by name (they load offline)."""
    import skimage.data

    images = []
    for name in names:
        loader = getattr(skimage.data, str(name), None)
        if loader is None or not callable(loader):
            raise ConfigError(f"{option}: {name!r} is not a scikit-image sample; offline colour photos are "
                              f"{', '.join(SAMPLE_TRAIN + SAMPLE_VAL)}")
        try:
            array = np.asarray(loader())
        except Exception as exc:  # e.g. samples that need a download
            raise DataError(f"{option}: scikit-image sample {name!r} cannot be loaded offline: {exc}") from None
        if array.dtype != np.uint8:
            array = (array.astype(np.float64) / max(array.max(), 1) * 255).round().astype(np.uint8)
        images.append(_to_chw(array, channels))
    return images


def check_min_size(images: Sequence[torch.Tensor], names: Sequence[str], size: int, option: str) -> None:
    small = [f"{n} ({im.shape[2]}x{im.shape[1]})" for n, im in zip(names, images) if min(im.shape[1:]) < size]
    if small:
        raise DataError(f"{option}: {len(small)} image(s) are smaller than data.crop_size={size}: "
                        f"{', '.join(small[:5])}{' ...' if len(small) > 5 else ''}; lower data.crop_size "
                        f"or remove them")
