"""The EE-559 course's pickles: `train_data.pkl` holds two noisy copies (N x C x H x W uint8 each),
`val_data.pkl` noisy and clean images. Read with the weights-only unpickler: tensors only, no code."""
from __future__ import annotations

from pathlib import Path

import torch

from n2n.data.sources.base import DataSource, ValidationData
from n2n.errors import ConfigError, DataError
from n2n.image_files.limits import HOW_TO_RAISE, max_pixels
from n2n.safeload import safe_torch_load


class CoursePickles(DataSource):
    name = "ee559"
    options = frozenset({"train_path", "val_path", "train_limit"})
    clean_train = False
    random_crops = False

    def train_pairs(self) -> torch.Tensor:
        a, b = load_tensor_pair(self.cfg.get("train_path"), "data.train_path", ("noisy_imgs_1", "noisy_imgs_2"))
        self.check_channels(a, "train_path")
        limit = self.cfg.get("train_limit")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise ConfigError(f"data.train_limit={limit!r} must be an integer >= 1 (use only the first N pairs), "
                              f"or null")
        # stacked, so that a batch is one gather and each augmentation one operation on both copies
        return torch.stack([a[:limit], b[:limit]] if limit else [a, b], dim=1)

    def val_data(self) -> ValidationData:
        noisy, clean = load_tensor_pair(self.cfg.get("val_path"), "data.val_path", ("noisy_imgs", "clean_imgs"))
        self.check_channels(noisy, "val_path")
        return ValidationData([f"{i:05d}" for i in range(len(noisy))], list(clean), list(noisy),
                              origin=f"data.val_path={self.cfg.get('val_path')}")


def load_tensor_pair(path: str | Path, what: str, names: tuple[str, str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Two uint8 tensors N x C x H x W of equal shape, as the course's pickles hold them."""
    limit = 3 * max_pixels()  # bytes: uint8 values, up to 3 per pixel
    obj = safe_torch_load(path, f"{what} file", DataError, "a pickle written with torch.save", max_bytes=limit,
                          limit_hint=f"at most {max_pixels():,} RGB pixels (data.max_pixels) as uint8; {HOW_TO_RAISE}")
    expected = f"a tuple ({names[0]}, {names[1]}) of two uint8 tensors of shape N x C x H x W"
    if not isinstance(obj, (tuple, list)) or len(obj) != 2:
        got = f"a {type(obj).__name__}" + (f" of length {len(obj)}" if isinstance(obj, (tuple, list, dict)) else "")
        raise DataError(f"{what} file {path} holds {got}; expected {expected}")
    a, b = obj
    for name, t in zip(names, (a, b)):
        if not isinstance(t, torch.Tensor):
            raise DataError(f"{what} file {path}: {name} is a {type(t).__name__}; expected {expected}")
        if t.layout != torch.strided:
            raise DataError(f"{what} file {path}: {name} is a {str(t.layout).replace('torch.', '')} tensor; "
                            f"expected {expected} (dense: tensor.to_dense())")
        if t.dtype != torch.uint8:
            raise DataError(f"{what} file {path}: {name} has dtype {t.dtype}{_value_range(t)}; expected uint8 "
                            f"tensors (8-bit pixel values 0..255). {_uint8_advice(t)}")
        if t.dim() != 4 or t.shape[1] not in (1, 3) or min(t.shape[0], t.shape[2], t.shape[3]) == 0:
            raise DataError(f"{what} file {path}: {name} has shape {tuple(t.shape)}; expected N x C x H x W "
                            f"with N, H, W >= 1 and C = 1 or 3")
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
