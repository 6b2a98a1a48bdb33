"""`data=pairs`: two folders of aligned noisy captures of the same scenes, matched by file name (8- or 16-bit,
grey or RGB, PNG/TIFF/JPEG/...). Training draws random crops at the same position in both."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from n2n.data.sources.base import ValidationData
from n2n.data.sources.captures import (
    NoisyCaptures,
    check_scene,
    clean_references,
    read_capture,
    split,
    training_frames,
    val_fraction,
    validation_from_scenes,
)
from n2n.data.sources.folder import list_images
from n2n.errors import ConfigError, DataError


class NoisyPairs(NoisyCaptures):
    name = "pairs"
    options = frozenset({"dir_a", "dir_b", "val_dir_a", "val_dir_b", "val_clean_dir", "val_fraction", "crop_size"})

    def __init__(self, cfg, channels):
        super().__init__(cfg, channels)
        self.fraction = val_fraction(self.cfg)
        given = [self.cfg.get("val_dir_a"), self.cfg.get("val_dir_b")]
        if any(given) and not all(given):
            raise ConfigError("data.val_dir_a and data.val_dir_b go together: give both folders of held-out pairs")
        self.separate_val = all(given)
        if self.separate_val and self.fraction:
            raise ConfigError("data.val_fraction splits data.dir_a/dir_b for validation; with data.val_dir_a/val_dir_b "
                              "given, set data.val_fraction=null")
        if not self.separate_val and not self.fraction:
            raise ConfigError("data=pairs needs validation pairs: data.val_dir_a=DIR data.val_dir_b=DIR, or "
                              "data.val_fraction=0.1 to hold out a tenth of data.dir_a/dir_b")
        self._names: tuple[list[str], list[str]] | None = None

    def _split(self) -> tuple[list[str], list[str]]:
        if self._names is None:
            names = matched_names(self.cfg.get("dir_a"), self.cfg.get("dir_b"), "data.dir_a", "data.dir_b")
            self._names = split(names, self.fraction, "data.dir_a") if self.fraction else (names, [])
        return self._names

    def train_frames(self) -> list[torch.Tensor]:
        names = self._split()[0]
        scenes = read_pairs(self.cfg["dir_a"], self.cfg["dir_b"], names, self.channels, ("data.dir_a", "data.dir_b"))
        return training_frames(scenes, names, self.cfg["crop_size"], "data.dir_a")

    def val_data(self) -> ValidationData:
        if self.separate_val:
            a, b = self.cfg["val_dir_a"], self.cfg["val_dir_b"]
            names = matched_names(a, b, "data.val_dir_a", "data.val_dir_b")
            options = ("data.val_dir_a", "data.val_dir_b")
        else:
            a, b, names = self.cfg["dir_a"], self.cfg["dir_b"], self._split()[1]
            options = ("data.dir_a", "data.dir_b")
        scenes = read_pairs(a, b, names, self.channels, options)
        clean = clean_references(self.cfg.get("val_clean_dir"), names, self.channels, [s[0] for s in scenes])
        return validation_from_scenes(names, scenes, clean)


def matched_names(dir_a: str | Path, dir_b: str | Path, option_a: str, option_b: str) -> list[str]:
    """File names present in both folders; DataError naming the files that have no partner."""
    a = {p.name for p in list_images(dir_a, option_a)}
    b = {p.name for p in list_images(dir_b, option_b)}
    for only, here, there in ((sorted(a - b), option_a, option_b), (sorted(b - a), option_b, option_a)):
        if only:
            raise DataError(f"{len(only)} image(s) of {here}={dir_a if here == option_a else dir_b} have no partner of "
                            f"the same name in {there}: {', '.join(only[:5])}{' ...' if len(only) > 5 else ''}")
    return sorted(a)


def read_pairs(dir_a: str | Path, dir_b: str | Path, names: list[str], channels: int,
               options: tuple[str, str]) -> list[torch.Tensor]:
    """Each pair as one 2 x C x H x W tensor (uint8, or int32 holding 16-bit values)."""
    def read(name: str) -> torch.Tensor:
        (a, layout_a), (b, layout_b) = (read_capture(Path(d) / name, channels) for d in (dir_a, dir_b))
        check_scene([a, b], [f"{options[0]}/{name}", f"{options[1]}/{name}"], [layout_a, layout_b])
        return torch.stack([a, b])

    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(read, names))
