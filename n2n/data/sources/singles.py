"""`data=singles`: one folder of noisy images, one capture per scene (8- or 16-bit, grey or RGB), for the methods
that learn from single captures (method=nb2nb, n2v, n2s, r2r, sure). Training draws random crops. Validation
scores val/psnr against clean references where `data.val_clean_dir` gives them; without them, the method's own
self-supervised loss on held-out images (val/self_loss), which the checkpoints then follow."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from n2n.data.sources.base import ValidationData
from n2n.data.sources.captures import NoisyCaptures, clean_references, held_out_fraction, split, training_frames
from n2n.data.sources.folder import list_images
from n2n.image_files import read_training_image


class SingleCaptures(NoisyCaptures):
    name = "singles"
    options = frozenset({"dir", "val_dir", "val_fraction", "val_clean_dir", "crop_size"})
    frames_per_scene = 1

    def __init__(self, cfg, channels):
        super().__init__(cfg, channels)
        self.fraction = held_out_fraction(self.cfg, self.name, "images")
        self._names: tuple[list[str], list[str]] | None = None

    def _split(self) -> tuple[list[str], list[str]]:
        if self._names is None:
            names = [p.name for p in list_images(self.cfg.get("dir"), "data.dir")]
            self._names = split(names, self.fraction, "data.dir") if self.fraction else (names, [])
        return self._names

    def train_frames(self) -> list[torch.Tensor]:
        names = self._split()[0]
        images = read_images(self.cfg["dir"], names, self.channels)
        return training_frames([im[None] for im in images], names, self.cfg["crop_size"], "data.dir")

    def val_data(self) -> ValidationData:
        if self.cfg.get("val_dir"):
            folder, names = self.cfg["val_dir"], [p.name for p in list_images(self.cfg["val_dir"], "data.val_dir")]
        else:
            folder, names = self.cfg["dir"], self._split()[1]
        noisy = read_images(folder, names, self.channels)
        clean = clean_references(self.cfg.get("val_clean_dir"), names, self.channels, noisy)
        return ValidationData(names, clean, noisy, origin=f"data.val_dir={folder}")


def read_images(folder: str | Path, names: list[str], channels: int) -> list[torch.Tensor]:
    """The named images of a folder at full bit depth (uint8, or int32 holding 16-bit values)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda n: read_training_image(Path(folder) / n, channels, keep_16bit=True), names))
