"""scikit-image's bundled photos, which load offline: real training data for a user who has none."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from n2n.data.sources.base import DataSource, ValidationData, check_min_size
from n2n.errors import ConfigError, DataError
from n2n.image_files import to_uint8_chw

#: The photos `data=samples` may name: bundled with scikit-image (no download). Only these names are ever
#: looked up in `skimage.data`, so a config cannot call its other functions.
PHOTOS = ("astronaut", "brick", "camera", "chelsea", "coffee", "coins", "grass", "gravel", "hubble_deep_field",
          "immunohistochemistry", "moon", "retina", "rocket")


class SamplePhotos(DataSource):
    name = "samples"
    options = frozenset({"train_images", "val_images", "crop_size", "noise_draws"})

    def train_images(self) -> list[torch.Tensor]:
        names = list(self.cfg.get("train_images") or [])
        images = load_samples(names, self.channels, "data.train_images")
        check_min_size(images, names, self.cfg["crop_size"], "data.train_images")
        return images

    def val_data(self) -> ValidationData:
        names = [str(n) for n in self.cfg.get("val_images") or []]
        return ValidationData(names, load_samples(names, self.channels, "data.val_images"))


def load_samples(names: Sequence[str], channels: int, option: str) -> list[torch.Tensor]:
    """scikit-image's bundled photos by name, as uint8 C x H x W tensors."""
    import skimage.data

    if not names:
        raise ConfigError(f"{option} is empty; name at least one of: {', '.join(PHOTOS)}")
    images = []
    for name in names:
        if name not in PHOTOS:
            raise ConfigError(f"{option}: {name!r} is not a scikit-image sample photo; allowed (they load "
                              f"offline): {', '.join(PHOTOS)}")
        try:
            array = np.asarray(getattr(skimage.data, name)())
        except Exception as exc:  # noqa: BLE001 - e.g. a scikit-image that wants to download it
            raise DataError(f"{option}: scikit-image sample {name!r} cannot be loaded offline: {exc}") from None
        if array.dtype != np.uint8:
            array = (array.astype(np.float64) / max(array.max(), 1) * 255).round().astype(np.uint8)
        images.append(to_uint8_chw(array, channels))
    return images
