"""`data=stacks`: one folder where each multi-page TIFF, or each sub-folder of numbered frames, holds N >= 2
noisy captures of one scene (microscopy and cryo-EM frames, astrophotography and burst stacks). Every step
draws two different frames of a scene as input and target: N frames give N (N - 1) ordered pairs."""
from __future__ import annotations

import re
from pathlib import Path

import torch

from n2n.data.sources.base import ValidationData
from n2n.data.sources.captures import (
    NoisyCaptures,
    check_scene,
    clean_references,
    held_out_fraction,
    read_capture,
    split,
    training_frames,
    validation_from_scenes,
)
from n2n.errors import ConfigError, DataError
from n2n.image_files import IMAGE_EXTENSIONS, TIFF_EXTENSIONS, as_float, read_frames, to_chw


class FrameStacks(NoisyCaptures):
    name = "stacks"
    options = frozenset({"dir", "val_dir", "val_clean_dir", "val_fraction", "crop_size", "frame_split"})
    SPLITS = ("random", "even_odd")

    def __init__(self, cfg, channels):
        super().__init__(cfg, channels)
        self.fraction = held_out_fraction(self.cfg, self.name, "stacks")
        self.frame_split = self.cfg.get("frame_split") or "random"
        if self.frame_split not in self.SPLITS:
            raise ConfigError(f"data.frame_split={self.frame_split!r} must be one of {', '.join(self.SPLITS)} (random: "
                              f"two different frames per sample; even_odd: the mean of the even frames against the "
                              f"mean of the odd ones)")
        self._names: tuple[list[str], list[str]] | None = None

    def _split(self) -> tuple[list[str], list[str]]:
        if self._names is None:
            names = list(scene_entries(self.cfg.get("dir"), "data.dir"))
            self._names = split(names, self.fraction, "data.dir") if self.fraction else (names, [])
        return self._names

    def train_frames(self) -> list[torch.Tensor]:
        names = self._split()[0]
        entries = scene_entries(self.cfg["dir"], "data.dir")
        scenes = [self._split_frames(read_stack(entries[n], self.channels)) for n in names]
        return training_frames(scenes, names, self.cfg["crop_size"], "data.dir")

    def _split_frames(self, stack: torch.Tensor) -> torch.Tensor:
        """even_odd: two half-averages (floats in [0, 1]), as cryo-EM tools train on; random: the frames."""
        if self.frame_split == "random":
            return stack
        frames = as_float(stack)
        return torch.stack([frames[0::2].mean(0), frames[1::2].mean(0)])

    def val_data(self) -> ValidationData:
        if self.cfg.get("val_dir"):
            entries = scene_entries(self.cfg["val_dir"], "data.val_dir")
            names = list(entries)
        else:
            entries, names = scene_entries(self.cfg["dir"], "data.dir"), self._split()[1]
        stacks = [read_stack(entries[n], self.channels) for n in names]
        clean = clean_references(self.cfg.get("val_clean_dir"), names, self.channels, [s[0] for s in stacks])
        return validation_from_scenes(names, [self._split_frames(s) for s in stacks], clean)


def scene_entries(folder: str | Path, option: str) -> dict[str, Path]:
    """Scene name -> its multi-page TIFF or its sub-folder of frames, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{option}={folder} is not a folder (expected a folder of multi-page TIFFs or of "
                        f"sub-folders of numbered frames)")
    entries = {}
    for p in sorted(folder.iterdir()):
        if p.is_dir() or (p.is_file() and p.suffix.lower() in TIFF_EXTENSIONS):
            entries[p.name] = p
    if not entries:
        raise DataError(f"{option}={folder} holds no stacks (looked for .tif/.tiff files and sub-folders of frames)")
    return entries


def _natural(name: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def read_stack(entry: Path, channels: int) -> torch.Tensor:
    """One scene as F x C x H x W (uint8, or int32 holding 16-bit values), F >= 2."""
    if entry.is_dir():
        files = sorted((p for p in entry.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS),
                       key=lambda p: _natural(p.name))
        frames, layouts = map(list, zip(*(read_capture(f, channels) for f in files))) if files else ([], [])
        labels = [str(f) for f in files]
    else:
        frames = [to_chw(a, channels) for a in read_frames(entry)]
        labels = [f"{entry} page {i}" for i in range(len(frames))]
        layouts = None  # one file: its frames share their channels
    if len(frames) < 2:
        raise DataError(f"stack {entry} holds {len(frames)} frame(s): a scene needs at least 2 noisy captures")
    check_scene(frames, labels, layouts)
    return torch.stack(frames)
