"""`data=pairs`: two folders of aligned noisy captures of the same scenes, matched by file name (8- or 16-bit,
grey or RGB, PNG/TIFF/JPEG/...). Training draws random crops at the same position in both. Folders of MRC
micrographs (float, any range) are read by the variant n2n.data.sources.micrographs.MicrographPairs."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Mapping

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
    options = frozenset({"dir_a", "dir_b", "val_dir_a", "val_dir_b", "val_clean_dir", "val_fraction", "crop_size",
                         "normalize"})
    #: The files of a folder that are halves of pairs (the micrograph variant lists MRC files).
    list_files: Callable[[str | Path, str], list[Path]] = staticmethod(list_images)

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

    @classmethod
    def resolve(cls, cfg: dict[str, Any]) -> None:
        """`data.normalize=auto`: mean_std for folders of MRC micrographs, null for images (checked against the
        files when given)."""
        from n2n.data.sources.micrographs import pairs_variant

        kind = pairs_variant(cfg)
        if cfg.get("normalize", "auto") == "auto":
            cfg["normalize"] = "mean_std" if kind == "mrc" else None

    @classmethod
    def for_config(cls, cfg: Mapping[str, Any]) -> type[NoisyPairs]:
        from n2n.data.sources.micrographs import MicrographPairs, pairs_variant

        return MicrographPairs if pairs_variant(cfg) == "mrc" else cls

    def _split(self) -> tuple[list[str], list[str]]:
        if self._names is None:
            names = matched_names(self.cfg.get("dir_a"), self.cfg.get("dir_b"), "data.dir_a", "data.dir_b",
                                  self.list_files)
            self._names = split(names, self.fraction, "data.dir_a") if self.fraction else (names, [])
        return self._names

    def train_frames(self) -> list[torch.Tensor]:
        names = self._split()[0]
        scenes = read_pairs(self.cfg["dir_a"], self.cfg["dir_b"], names, self.channels, ("data.dir_a", "data.dir_b"))
        return training_frames(scenes, names, self.cfg["crop_size"], "data.dir_a")

    def val_data(self) -> ValidationData:
        a, b, names, options = self.val_names()
        scenes = read_pairs(a, b, names, self.channels, options)
        clean = clean_references(self.cfg.get("val_clean_dir"), names, self.channels, [s[0] for s in scenes])
        return validation_from_scenes(names, scenes, clean)

    def val_names(self) -> tuple[str, str, list[str], tuple[str, str]]:
        """(folder a, folder b, names, their options): the held-out pairs."""
        if self.separate_val:
            a, b = self.cfg["val_dir_a"], self.cfg["val_dir_b"]
            options = ("data.val_dir_a", "data.val_dir_b")
            return a, b, matched_names(a, b, *options, self.list_files), options
        return self.cfg["dir_a"], self.cfg["dir_b"], self._split()[1], ("data.dir_a", "data.dir_b")


def matched_names(dir_a: str | Path, dir_b: str | Path, option_a: str, option_b: str,
                  lister: Callable[[str | Path, str], list[Path]] | None = None) -> list[str]:
    """File names present in both folders (images, or the files `lister` finds); DataError naming the files that
    have no partner."""
    lister = lister or list_images
    a, b = ({p.name for p in lister(d, o)} for d, o in ((dir_a, option_a), (dir_b, option_b)))
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
