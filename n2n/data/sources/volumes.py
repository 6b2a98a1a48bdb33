"""`data=volumes`: two folders of half volumes (even/odd frame reconstructions of the same tomograms, or any two
independent noisy acquisitions) matched by file name, MRC or TIFF stacks, any number of volumes.

Each pair is normalised with one mean and standard deviation (n2n.volumes.normalize). Training draws 3D crops from
everything but a slab at the far end of each volume along `data.val_axis` (`data.val_slab` of its length), and
validation scores that slab: training and validation never share a voxel. Validation reports val/n2n_loss against
the other half, and val/psnr and val/ssim where `data.val_clean_dir` holds clean volumes of the same names.
`data.dims` and `data.depth` follow the model (a 2D model trains on single sections of the volumes).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from n2n.config import require
from n2n.data.sources.base import DataSource, ValidationData
from n2n.errors import ConfigError, DataError
from n2n.volumes.batches import AXES, VolumeBatches
from n2n.volumes.io import VOLUME_SUFFIXES, check_partner, is_volume_path, read_float
from n2n.volumes.normalize import SCHEMES, Normalization, volume_stats

#: The validation slab is at least this thick (voxels): SSIM's window, and a few tiles of context.
MIN_SLAB = 11
#: Validation scores at most this many voxels per axis of each slab (its centre): a whole slab of a large
#: tomogram would take minutes per validation on a CPU.
VAL_MAX_SIDE = 128


def crop_sizes(value: Any, dims: int) -> tuple[int, int, int]:
    """`data.crop_size`: one size for every axis, or [z, y, x]; a 2D model crops single sections (z = 1)."""
    if isinstance(value, (list, tuple)):
        if len(value) != 3 or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value):
            raise ConfigError(f"data.crop_size={list(value)} must be one integer or three [z, y, x], each >= 1")
        sizes = tuple(int(v) for v in value)
    elif isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        sizes = (value, value, value)
    else:
        raise ConfigError(f"data.crop_size={value!r} must be one integer or three [z, y, x], each >= 1")
    return (1, sizes[1], sizes[2]) if dims == 2 else sizes  # type: ignore[return-value]


def list_volumes(folder: str | None, option: str) -> dict[str, Path]:
    if not folder:
        raise ConfigError(f"data=volumes needs {option}=DIR (a folder of MRC or TIFF half volumes)")
    path = Path(folder)
    if not path.is_dir():
        raise DataError(f"{option}={folder}: no such folder")
    found = {p.name: p for p in sorted(path.iterdir()) if is_volume_path(p)}
    if not found:
        raise DataError(f"{option}={folder} holds no volumes ({', '.join(VOLUME_SUFFIXES)})")
    return found


def matched_halves(cfg) -> tuple[dict[str, Path], dict[str, Path]]:
    """The volumes of `data.dir_a` and `data.dir_b` by name; DataError when a name is in only one of them."""
    a = list_volumes(cfg.get("dir_a"), "data.dir_a")
    b = list_volumes(cfg.get("dir_b"), "data.dir_b")
    for only, here, there in ((sorted(set(a) - set(b)), "data.dir_a", "data.dir_b"),
                              (sorted(set(b) - set(a)), "data.dir_b", "data.dir_a")):
        if only:
            raise DataError(f"{len(only)} volume(s) of {here}={cfg[here[5:]]} have no partner of the same name in "
                            f"{there}: {', '.join(only[:5])}")
    return a, b


class HalfVolumes(DataSource):
    name = "volumes"
    options = frozenset({"dir_a", "dir_b", "val_clean_dir", "val_slab", "val_axis", "tilt_axis", "crop_size",
                         "normalize", "dims", "depth"})
    clean_train = False
    random_crops = False  # its own crops, in 3D (n2n.volumes.batches), not the 2D CropBank
    volumetric = True
    copy_validation = True  # the other half's slab

    def __init__(self, cfg, channels):
        super().__init__(cfg, channels)
        if channels != 1:
            raise ConfigError(f"data.channels={channels}: volumes have one channel; set data.channels=1")
        self.dims = int(require(self.cfg, "dims", "data"))
        self.depth = int(require(self.cfg, "depth", "data"))
        self.crop = crop_sizes(require(self.cfg, "crop_size", "data"), self.dims)
        multiple = 2 ** self.depth
        for axis, size in zip("zyx", self.crop):
            if (self.dims == 3 or axis != "z") and size % multiple:
                raise ConfigError(f"data.crop_size: {size} along {axis} is not a multiple of {multiple}, the "
                                  f"network's minimum (model.depth={self.depth} pools {self.depth} times); use "
                                  f"multiples of {multiple} or a smaller model.depth")
        self.val_axis = require(self.cfg, "val_axis", "data")
        self.tilt_axis = self.cfg.get("tilt_axis")  # null: flips only
        if self.val_axis not in AXES:
            raise ConfigError(f"data.val_axis={self.val_axis!r} must be one of z, y, x")
        if self.tilt_axis is not None and self.tilt_axis not in AXES:
            raise ConfigError(f"data.tilt_axis={self.tilt_axis!r} must be one of z, y, x or null")
        slab = require(self.cfg, "val_slab", "data")
        if isinstance(slab, bool) or not isinstance(slab, (int, float)) or not 0 < slab <= 0.5:
            raise ConfigError(f"data.val_slab={slab!r} must be a fraction in (0, 0.5] of each volume along "
                              f"data.val_axis")
        self.val_slab = float(slab)
        if require(self.cfg, "normalize", "data") not in SCHEMES:
            raise ConfigError(f"data.normalize={self.cfg.get('normalize')!r} must be one of {', '.join(SCHEMES)}")
        self._pairs: list[tuple[str, torch.Tensor, int]] | None = None
        self._norms: dict[str, Any] = {}
        self._batches: VolumeBatches | None = None

    @property
    def clean_validation(self) -> bool:
        return bool(self.cfg.get("val_clean_dir"))

    # ------------------------------------------------------------------------------------------ reading
    def pairs(self) -> list[tuple[str, torch.Tensor, int]]:
        """(name, 2 x Z x Y x X normalised halves, first voxel of the validation slab along val_axis), read once."""
        if self._pairs is None:
            a, b = matched_halves(self.cfg)
            axis = AXES[self.val_axis]
            pairs = []
            for name in sorted(a):
                va, meta_a = read_float(a[name], "data.dir_a")
                vb, meta_b = read_float(b[name], "data.dir_b")
                check_partner(meta_a, meta_b, f"data.dir_a/{name}", f"data.dir_b/{name}")
                norm = volume_stats(va, vb, where=f"data.dir_a/{name}")
                self._norms[name] = norm
                length = va.shape[axis]
                start = length - max(MIN_SLAB, int(round(self.val_slab * length)))
                train_shape = list(va.shape)
                train_shape[axis] = start
                small = [f"{ax} {n} < {c}" for ax, n, c in zip("zyx", train_shape, self.crop) if n < c]
                if small:
                    raise DataError(f"data.dir_a/{name} ({' x '.join(map(str, va.shape))}, Z x Y x X) is smaller than "
                                    f"data.crop_size={list(self.crop)} once its validation slab is held out "
                                    f"({', '.join(small)}): lower data.crop_size or data.val_slab, or remove it")
                pair = torch.from_numpy(norm.apply(np.stack([va, vb])).astype(np.float32))
                pairs.append((name, pair, start))
            self._pairs = pairs
        return self._pairs

    def batches(self, flip: bool, swap: bool) -> VolumeBatches:
        if self._batches is None:
            axis = AXES[self.val_axis] + 1
            regions = [pair.narrow(axis, 0, start) for _, pair, start in self.pairs()]
            self._batches = VolumeBatches(regions, self.crop, self.dims, self.tilt_axis, flip, swap)
        return self._batches

    def draw_batch(self, n: int, generator: torch.Generator, device: torch.device,
                   augment) -> tuple[torch.Tensor, torch.Tensor]:
        """The DataModule's training batch for volumes (`aug.flip`, `aug.swap` choose the augmentation)."""
        return self.batches(bool(augment.flip), bool(augment.swap)).draw(n, generator, device)

    def val_data(self) -> ValidationData:
        axis = AXES[self.val_axis] + 1
        names, noisy, other, clean = [], [], [], []
        clean_dir = self.cfg.get("val_clean_dir")
        for name, pair, start in self.pairs():
            slab = centre(pair.narrow(axis, start, pair.shape[axis] - start), VAL_MAX_SIDE)
            names.append(name)
            noisy.append(slab[0:1].clone())
            other.append(slab[1:2].clone())
            if clean_dir:
                ref = clean_reference(clean_dir, name, tuple(pair.shape[1:]), self._norms[name])
                clean.append(centre(ref.narrow(axis, start, pair.shape[axis] - start), VAL_MAX_SIDE).clone())
        return ValidationData(names, clean or None, noisy, other, origin="data=volumes validation slab")


def clean_reference(folder: str, name: str, shape: tuple[int, ...], norm: Normalization,
                    micrograph: bool = False) -> torch.Tensor:
    """The clean volume (or micrograph) `name` of `data.val_clean_dir`, 1 x Z x Y x X, in the normalised units of
    the noisy pair of that name (`norm`), whose halves are `shape`."""
    reference, _ = read_float(Path(folder) / name, "data.val_clean_dir", micrograph)
    if reference.shape != shape:
        raise DataError(f"data.val_clean_dir/{name} is {' x '.join(map(str, reference.shape))} but its noisy halves "
                        f"are {' x '.join(map(str, shape))} (Z x Y x X)")
    return torch.from_numpy(norm.apply(reference).astype(np.float32))[None]


def centre(x: torch.Tensor, side: int) -> torch.Tensor:
    """The centre of x (1 or 2 x Z x Y x X), at most `side` voxels along each spatial axis."""
    for axis in (1, 2, 3):
        n = x.shape[axis]
        if n > side:
            x = x.narrow(axis, (n - side) // 2, side)
    return x
