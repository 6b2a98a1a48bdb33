"""`data=pairs` of MRC micrographs: the even/odd (or any two independent) sums of cryo-EM movies, float32 MRC files
of any range, in two folders matched by file name as pairs of images are (what `topaz denoise -a EVEN -b ODD` reads).

A micrograph is read as a one-section volume (n2n.volumes.io: mrcfile, its header, mode, size and data checked, NaN
and infinite pixels refused; a file of several sections is refused); the two halves of a pair must have the same
shape and pixel size, and each pair is normalised with one mean and standard deviation from a sample of both halves
(n2n.volumes.normalize), as half volumes are. `data.normalize` (`auto`: `mean_std` for folders of MRC files, null
for images) records the scheme in the checkpoint, and `n2n denoise MICROGRAPH.mrc` applies it to each input with the
input's own statistics and undoes it on the output.

Training draws 2D crops of `data.crop_size` with the volume machinery (n2n.volumes.batches on one-section volumes:
flips and the swap of the halves); validation scores the centre (at most VAL_MAX_SIDE pixels a side) of each
held-out pair (`data.val_fraction`, or `data.val_dir_a`/`val_dir_b`) as volumes are scored, in normalised units:
val/n2n_loss, and val/psnr and val/ssim against clean micrographs of the same names in `data.val_clean_dir`.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from n2n.data.sources.base import ValidationData, check_min_size
from n2n.data.sources.folder import list_images
from n2n.data.sources.pairs import NoisyPairs
from n2n.data.sources.volumes import centre, clean_reference
from n2n.errors import ConfigError, DataError
from n2n.image_files import IMAGE_EXTENSIONS
from n2n.volumes.batches import VolumeBatches
from n2n.volumes.io import MRC_SUFFIXES, check_partner, read_float
from n2n.volumes.normalize import Normalization, volume_stats

#: Validation scores at most this many pixels a side of each held-out pair (its centre): a whole 4k x 4k micrograph
#: would take minutes per validation on a CPU, and the U-Net's activations at that size many GB of a GPU's memory.
VAL_MAX_SIDE = 512
#: The folders of a data=pairs section: one training reads one kind of file in all of them.
FOLDERS = ("dir_a", "dir_b", "val_dir_a", "val_dir_b", "val_clean_dir")

list_micrographs = functools.partial(list_images, suffixes=frozenset(MRC_SUFFIXES), what="MRC micrographs")


def _kinds(folder: Any) -> dict[str, str]:
    """The kinds of file a folder holds, each with its first file: {"mrc": NAME, "images": NAME} (or less)."""
    path = Path(folder) if folder else None
    found: dict[str, str] = {}
    if path is None or not path.is_dir():
        return found
    for p in sorted(path.iterdir()):
        suffix = p.suffix.lower()
        kind = "mrc" if suffix in MRC_SUFFIXES else "images" if suffix in IMAGE_EXTENSIONS else None
        if kind is not None and kind not in found and p.is_file():
            found[kind] = p.name
    return found


def pairs_variant(cfg: Mapping[str, Any]) -> str:
    """"mrc" or "images": what the folders of a data=pairs section hold, checked against `data.normalize`. MRC
    micrographs and 8/16-bit images in one training are refused, naming a file of each; folders that hold neither
    (or do not exist) decide nothing (the reader reports them)."""
    seen: dict[str, tuple[str, str]] = {}  # kind -> (its folder's option, a file)
    for key in FOLDERS:
        for kind, name in _kinds(cfg.get(key)).items():
            seen.setdefault(kind, (f"data.{key}={cfg[key]}", name))
    if len(seen) > 1:
        (mrc_where, mrc), (image_where, image) = seen["mrc"], seen["images"]
        raise DataError(f"data=pairs mixes MRC micrographs ({mrc_where}: {mrc}) with 8/16-bit images ({image_where}: "
                        f"{image}): one training reads one kind of file; convert one kind or move it out")
    normalize = cfg.get("normalize", "auto")
    if "images" in seen and normalize == "mean_std":
        raise ConfigError(f"data.normalize=mean_std is for MRC micrographs, but {seen['images'][0]} holds images "
                          f"({seen['images'][1]}), scaled to [0, 1] by their bit depth: set data.normalize=auto")
    if "mrc" in seen and normalize is None:
        raise ConfigError(f"data.normalize=null scales 8/16-bit images by their bit depth, but {seen['mrc'][0]} holds "
                          f"MRC micrographs ({seen['mrc'][1]}) of any range: set data.normalize=auto (or mean_std)")
    if seen:
        return next(iter(seen))
    return "mrc" if normalize == "mean_std" else "images"


class MicrographPairs(NoisyPairs):
    """data=pairs whose folders hold MRC micrographs (chosen by NoisyPairs.for_config)."""

    volumetric = True  # batches from n2n.volumes.batches (draw_batch); validated and evaluated as volumes are
    list_files = staticmethod(list_micrographs)

    def __init__(self, cfg, channels):
        super().__init__(cfg, channels)
        if channels != 1:
            raise ConfigError(f"data.channels={channels}: MRC micrographs have one channel; set data.channels=1")
        self.cfg["normalize"] = "mean_std"
        self._norms: dict[str, Normalization] = {}  # by file name: eval.py writes its outputs in the input's units
        self._train: list[torch.Tensor] | None = None
        self._batches: VolumeBatches | None = None

    def read_pairs(self, dir_a: str, dir_b: str, names: list[str], options: tuple[str, str]) -> list[torch.Tensor]:
        """Each pair as a 2 x 1 x Y x X float32 tensor (two one-section volumes), normalised together."""
        pairs = []
        for name in names:
            (a, meta_a), (b, meta_b) = (read_float(Path(d) / name, o, micrograph=True)
                                        for d, o in ((dir_a, options[0]), (dir_b, options[1])))
            check_partner(meta_a, meta_b, f"{options[0]}/{name}", f"{options[1]}/{name}")
            norm = self._norms[name] = volume_stats(a, b, where=f"{options[0]}/{name}")
            pairs.append(torch.from_numpy(norm.apply(np.stack([a, b])).astype(np.float32)))
        return pairs

    def train_frames(self) -> list[torch.Tensor]:
        if self._train is None:
            names = self._split()[0]
            pairs = self.read_pairs(self.cfg["dir_a"], self.cfg["dir_b"], names, ("data.dir_a", "data.dir_b"))
            check_min_size([p[0] for p in pairs], names, int(self.cfg["crop_size"]), "data.dir_a")
            self._train = pairs
        return self._train

    def draw_batch(self, n: int, generator: torch.Generator, device: torch.device,
                   augment) -> tuple[torch.Tensor, torch.Tensor]:
        """The DataModule's training batch: N x 1 x crop x crop sections of both halves (`aug.flip`, `aug.swap`)."""
        if self._batches is None:
            crop = int(self.cfg["crop_size"])
            self._batches = VolumeBatches(self.train_frames(), (1, crop, crop), 2, None, bool(augment.flip),
                                          bool(augment.swap))
        return self._batches.draw(n, generator, device)

    def val_data(self) -> ValidationData:
        self.train_frames()  # the DataModule reads a volumetric source here, in setup: every file before training
        a, b, names, options = self.val_names()
        whole = self.read_pairs(a, b, names, options)
        folder = self.cfg.get("val_clean_dir")
        clean = [centre(clean_reference(folder, name, tuple(p.shape[1:]), self._norms[name], micrograph=True),
                        VAL_MAX_SIDE).clone() for name, p in zip(names, whole)] if folder else None
        pairs = [centre(p, VAL_MAX_SIDE) for p in whole]
        # 1 x 1 x Y x X each (channel, section): the DataModule batches them as volumes (N x 1 x 1 x Y x X)
        return ValidationData(names, clean, [p[0:1].clone() for p in pairs], [p[1:2].clone() for p in pairs],
                              origin=f"data=pairs validation micrographs ({options[0]})")
