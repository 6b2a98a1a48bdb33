"""Small volumes and models for the volume tests."""
from __future__ import annotations

from pathlib import Path

import mrcfile
import numpy as np

from n2n.inference.weights import save_weights
from n2n.models.unet import build_unet

MODEL3D = {"in_channels": 1, "out_channels": 1, "activation": {"name": "leaky_relu", "negative_slope": 0.1},
           "norm": {"name": "none"}, "init": "he", "dims": 3, "depth": 2, "features": 4}


def write_mrc(path: Path, data: np.ndarray, voxel=(1.5, 1.5, 2.0), origin=(10.0, 20.0, 30.0),
              extended: bytes = b"") -> Path:
    """An MRC file with a voxel size (x, y, z), an origin and optionally an extended header."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(data)
        mrc.voxel_size = voxel
        mrc.header.origin = origin
        if extended:
            mrc.set_extended_header(np.frombuffer(extended, dtype=np.uint8).copy())
            mrc.header.exttyp = b"SERI"
    return path


def halves(shape=(24, 40, 40), seed: int = 0, offset: float = 100.0, scale: float = 20.0):
    """(clean, even, odd) float32 volumes in a range far from [0, 1] (as electron counts are)."""
    rng = np.random.default_rng(seed)
    z, y, x = np.meshgrid(*(np.linspace(0, 3, n) for n in shape), indexing="ij")
    clean = (offset + scale * np.sin(z * 2) * np.cos(y * 3) * np.sin(x + 1)).astype(np.float32)
    return (clean, (clean + rng.normal(0, scale, shape)).astype(np.float32),
            (clean + rng.normal(0, scale, shape)).astype(np.float32))


def model_file(path: Path, dims: int = 3, seed: int = 0) -> Path:
    import torch

    torch.manual_seed(seed)
    cfg = {**MODEL3D, "dims": dims}
    net = build_unet(cfg)
    return save_weights(net, net.config, path)


def micrographs(root: Path, names=("m0.mrc", "m1.mrc", "m2.mrc", "m3.mrc"), shape=(64, 64), offset: float = 1000.0,
                scale: float = 30.0, noise: float = 30.0, **header) -> dict[str, np.ndarray]:
    """Even/odd sums of cryo-EM-like micrographs (single-section float32 MRC files around `offset`, far from
    [0, 1]) in root/even and root/odd, and their clean image in root/clean; returns the clean images by name."""
    clean_images = {}
    for i, name in enumerate(names):
        rng = np.random.default_rng(i)
        y, x = np.meshgrid(*(np.linspace(0, 4, n) for n in shape), indexing="ij")
        phase = rng.uniform(0, 3, 2)
        clean = (offset + scale * np.sin(2 * y + phase[0]) * np.cos(1.5 * x + phase[1])).astype(np.float32)
        for half in ("even", "odd"):
            write_mrc(root / half / name, (clean + rng.normal(0, noise, shape)).astype(np.float32), **header)
        write_mrc(root / "clean" / name, clean, **header)
        clean_images[name] = clean
    return clean_images


def volume_checkpoint(path: Path, dims: int = 3, seed: int = 0) -> Path:
    """A checkpoint as `train.py data=volumes model.dims=DIMS model.depth=2 model.features=4` writes it (its
    resolved config and the network's weights under `net.`), without training: random weights."""
    import torch

    from helpers.runs import resolved

    config = resolved(["data=volumes", f"model.dims={dims}", "model.depth=2", "model.features=4",
                       "data.dir_a=even", "data.dir_b=odd", "data.crop_size=8", "trainer.accelerator=cpu"])
    torch.manual_seed(seed)
    net = build_unet(config["model"])
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": {f"net.{k}": v for k, v in net.state_dict().items()},
                "hyper_parameters": {"config": config}}, path)
    return path
