"""A folder of clean images of any sizes (PNG, JPEG, TIFF, BMP, WebP, PPM/PGM; 8- or 16-bit): random crops
are drawn from them and two independent noisy copies of each crop are synthesised on the device."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from n2n.data.sources.base import DataSource, ValidationData, check_min_size
from n2n.errors import DataError
from n2n.image_files import IMAGE_EXTENSIONS, read_training_image


class ImageFolder(DataSource):
    name = "folder"
    options = frozenset({"train_dir", "val_dir", "crop_size", "noise_draws"})

    def train_images(self) -> list[torch.Tensor]:
        names, images = load_image_folder(self.cfg.get("train_dir"), self.channels, "data.train_dir")
        check_min_size(images, names, self.cfg["crop_size"], "data.train_dir")
        return images

    def val_data(self) -> ValidationData:
        names, images = load_image_folder(self.cfg.get("val_dir"), self.channels, "data.val_dir")
        return ValidationData(names, images, origin=f"data.val_dir={self.cfg.get('val_dir')}")


def list_images(folder: str | Path, option: str, suffixes=IMAGE_EXTENSIONS, what: str = "images") -> list[Path]:
    """The image files of a folder (not recursive), by name (or the files of other `suffixes`, `what` they are)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{option}={folder} is not a folder (expected a folder of "
                        f"{', '.join(sorted(suffixes))} {what})")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
    if not files:
        raise DataError(f"{option}={folder} holds no {what} (looked for {', '.join(sorted(suffixes))})")
    return files


def load_image_folder(folder: str | Path, channels: int, option: str) -> tuple[list[str], list[torch.Tensor]]:
    """All images of a folder, decoded in parallel threads (the decoders release the GIL)."""
    files = list_images(folder, option)
    with ThreadPoolExecutor(max_workers=4) as pool:
        images = list(pool.map(lambda p: read_training_image(p, channels), files))
    return [p.name for p in files], images
