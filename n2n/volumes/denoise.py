"""Denoising volumes: the Python API (`VolumeDenoiser`, `denoise_volume_array`) and `n2n denoise VOLUME ...`
(n2n.cli.denoise hands volume inputs here).

A model trained on volumes (data=volumes, or any 3D model) or on MRC micrographs (data=pairs, data.normalize
mean_std) normalises each input with its own mean and standard deviation, as in training (the checkpoint records
the scheme), and undoes it on the output. A 2D model denoises a single-section MRC (a micrograph) as one image,
volume only section by section (`--slices`); one trained on images in [0, 1] scales each input from its 0.1 and
99.9 percentiles to [0, 1] and back. Output: float32, MRC with the input's voxel size, origin and extended header,
TIFF for TIFF; written atomically after every check has passed, so a refused input leaves nothing behind.
"""
from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from n2n.cli.denoise_volume import DEFAULT_MAX_MEMORY
from n2n.errors import CheckpointError, DataError, N2NError
from n2n.volumes.io import (
    MRC_SUFFIXES,
    TIFF_SUFFIXES,
    VOLUME_SUFFIXES,
    ZARR_SUFFIXES,
    Volume,
    check_finite,
    check_partner,
    read_volume,
    split_name,
    write_like,
)
from n2n.volumes.normalize import Normalization, volume_stats

#: Percentiles mapped to 0 and 1 for a 2D model trained on images in [0, 1] (--slices).
RANGE_PERCENTILES = (0.1, 99.9)


def parse_memory(text: str) -> int:
    """'8G', '512M', '2.5G', '1000000' (bytes) -> bytes."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kKmMgGtT]?)i?[bB]?\s*", str(text))
    if not match:
        raise ValueError(f"--max-memory {text!r}: give a size such as 8G, 512M or a number of bytes")
    scale = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}[match.group(2).lower()]
    return int(float(match.group(1)) * scale)


@dataclass
class VolumeModel:
    """A loaded network and how inputs are scaled for it: `normalize` is "mean_std" (trained on volumes) or
    "range" (a 2D model trained on images in [0, 1])."""

    net: Any
    normalize: str
    name: str

    @property
    def dims(self) -> int:
        return int(getattr(self.net, "dims", 2))

    @property
    def depth(self) -> int:
        return int(getattr(self.net, "depth", 5))


def load_volume_model(model: str | Path, device: str = "auto") -> VolumeModel:
    """The U-Net of a .ckpt, .safetensors or bundled model, and its normalisation scheme."""
    import torch  # noqa: F401 - the loaders below need it

    from n2n import pretrained
    from n2n.devices import pick_device

    path = pretrained.resolve(model)
    dev = pick_device(device, "--device")
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        raise CheckpointError(f"{path}: volumes are denoised with a .ckpt or .safetensors model, not ONNX")
    from n2n.inference.runners import load_network

    return volume_model(load_network(path, dev), path, str(model))


def volume_model(net, path: str | Path, name: str) -> VolumeModel:
    """A loaded network with its normalisation scheme; CheckpointError for a model of more than one channel."""
    # data=volumes, and data=pairs of MRC micrographs: normalised per input (n2n.volumes.normalize), as the
    # checkpoint's config or the weight file's metadata says; 3D weights exported before that was recorded too
    scheme = getattr(net, "normalize", None) or ("mean_std" if getattr(net, "dims", 2) == 3 else "range")
    if int(getattr(net, "in_channels", 1)) != 1:
        raise CheckpointError(f"{path} is a {net.in_channels}-channel model; volumes have one channel (use a grey "
                              f"model, e.g. gaussian-blind-grey, or one trained with data=volumes)")
    return VolumeModel(net.eval(), scheme, name)


def normalization_for(model: VolumeModel, *volumes: np.ndarray, where: str) -> Normalization:
    if model.normalize == "mean_std":
        return volume_stats(*volumes, where=where)
    sample = np.concatenate([np.asarray(v[::max(1, v.shape[0] // 16)], dtype=np.float32).ravel() for v in volumes])
    lo, hi = (float(v) for v in np.percentile(sample, RANGE_PERCENTILES))
    if hi <= lo:
        raise DataError(f"{where} is constant ({lo:g}): there is nothing to denoise")
    return Normalization(lo, hi - lo)


def denoise_volume_array(model: VolumeModel, x: np.ndarray, norm: Normalization, tile=None, overlap: int = 32,
                         slices: bool = False, progress: Callable = lambda it: it) -> np.ndarray:
    """Z x Y x X float32 denoised volume in the input's units."""
    import torch

    from n2n.volumes.tiling import denoise_volume

    net = model.net
    device = next(net.parameters()).device

    def run(t: torch.Tensor) -> torch.Tensor:
        return net.forward_aligned(t.to(device)).float().cpu()

    to_model = lambda t: (t - norm.mean) / norm.std  # noqa: E731
    if model.dims == 3:
        out = denoise_volume(run, x, model.depth, tile, overlap, transform=to_model, progress=progress)
    else:
        if not slices and x.shape[0] > 1:  # one section (a micrograph) is an image to a 2D model
            raise DataError("a 2D model denoises volumes only section by section: add --slices")
        out = np.empty(x.shape, np.float32)
        # each section whole, or in Y x X tiles (plan_tiles with dims=2); the bar counts a micrograph's tiles
        one = x.shape[0] == 1
        for z in (range(1) if one else progress(range(x.shape[0]))):
            out[z] = denoise_volume(run, x[z], model.depth, tile, overlap, transform=to_model,
                                    progress=progress if one else lambda it: it)
    return norm.undo(out).astype(np.float32, copy=False)


class VolumeDenoiser:
    """`n2n.volumes.denoise.VolumeDenoiser("model.ckpt")(array)`: a Z x Y x X NumPy array (any real dtype, any
    range) in, a float32 array of the same shape out. `other`: the second half of the same volume (both are
    denoised and averaged)."""

    def __init__(self, model: str | Path, device: str = "auto", max_memory: str | int = DEFAULT_MAX_MEMORY,
                 tile: int | None = None, overlap: int | None = None, slices: bool = False):
        self.model = load_volume_model(model, device)
        self.max_memory = parse_memory(max_memory) if isinstance(max_memory, str) else int(max_memory)
        self.tile, self.overlap, self.slices = tile, overlap, slices

    def __call__(self, volume: np.ndarray, other: np.ndarray | None = None) -> np.ndarray:
        from n2n.volumes.tiling import plan_tiles

        arrays = [volume] if other is None else [volume, other]
        for a in arrays:
            if a.ndim != 3:
                raise ValueError(f"expected a Z x Y x X array, got shape {a.shape}")
            check_finite(a, "volume")
        if other is not None and other.shape != volume.shape:
            raise ValueError(f"the two halves differ in shape: {volume.shape} and {other.shape}")
        norm = normalization_for(self.model, *arrays, where="volume")
        extra = 0 if other is None else 4 * volume.size  # the first half's output is kept while the second runs
        tile, overlap = plan_tiles(volume.shape, self.model.depth, getattr(self.model.net, "features", 48),
                                   self.max_memory - extra, self.overlap, self.tile, self.model.dims)
        outs = [denoise_volume_array(self.model, a, norm, tile, overlap, self.slices) for a in arrays]
        return outs[0] if other is None else (outs[0] + outs[1]) / 2


# ------------------------------------------------------------------------------------------ command line


def is_volume_input(path: str | Path) -> bool:
    """Whether `n2n denoise` treats a file as a volume: MRC and Zarr always, TIFF when it holds more than one
    section."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in MRC_SUFFIXES or suffix in ZARR_SUFFIXES:
        return True
    if suffix in TIFF_SUFFIXES and p.is_file():
        try:
            import tifffile

            with tifffile.TiffFile(p) as tif:  # Z x Y x X, not colour samples or up to 4 channels (RGB, RGBA)
                series = tif.series[0]
                spatial = [n for n, a in zip(series.shape, series.axes) if n > 1 and a != "S" and
                           not (a == "C" and n <= 4)]
                return len(spatial) >= 3
        except Exception:  # noqa: BLE001 - unreadable: the image path reports it
            return False
    return False


def wants_volumes(args: argparse.Namespace) -> bool:
    """Route `n2n denoise` here: volume inputs, --pair/--slices, or a 3D model."""
    if getattr(args, "pair", None) or getattr(args, "slices", False):
        return True
    items = list(args.inputs) + ([args.model] if args.model else [])
    if any(is_volume_input(i) for i in items):
        return True
    model = args.model or (args.inputs[0] if Path(args.inputs[0]).suffix.lower() in (".ckpt", ".safetensors")
                           else None)
    return model is not None and _model_dims(model) == 3


def _model_dims(model: str) -> int:
    """model.dims from the file's stored config, without building the network (the image path loads it)."""
    import json

    try:
        path = Path(model)
        if path.suffix.lower() == ".safetensors":
            from n2n.inference.weights import read_metadata

            return int(json.loads(read_metadata(path)["n2n.model"]).get("dims", 2))
        if path.suffix.lower() == ".ckpt":
            from n2n.inference.checkpoints import model_config, read_checkpoint

            return int(model_config(read_checkpoint(path), path).get("dims", 2))
    except (N2NError, OSError, ValueError, TypeError, KeyError):
        pass  # the image path reports the problem
    return 2


def run_volumes(args: argparse.Namespace) -> int:
    """`n2n denoise` on volumes: every input checked before the first is written; exit 2 on any bad input."""
    from tqdm import tqdm

    from n2n.cli import EXIT_OK, EXIT_USAGE
    from n2n.volumes.tiling import plan_tiles

    def fail(message: str) -> int:
        print(f"n2n denoise: error: {message}", file=sys.stderr, flush=True)
        return EXIT_USAGE

    opened: list[Volume] = []
    try:
        inputs = list(args.inputs)
        model_arg = args.model
        if model_arg is None and Path(inputs[0]).suffix.lower() in (".ckpt", ".safetensors", ".onnx"):
            model_arg, inputs = inputs[0], inputs[1:]
        if not inputs:
            raise DataError("no input volume given")
        model = load_volume_model(model_arg or "gaussian-blind-grey", args.device)
        max_memory = parse_memory(getattr(args, "max_memory", None) or DEFAULT_MAX_MEMORY)
        if args.pair and len(inputs) != 1:
            raise DataError(f"--pair {args.pair} goes with one input volume (its other half), got {len(inputs)}")
        if model.dims == 3 and args.slices:
            raise DataError(f"--slices is for 2D models; {model.name} is a 3D model and denoises volumes whole")
        jobs = []
        suffix = args.suffix if args.suffix is not None else ("" if args.outdir else "_denoised")
        for item in inputs:
            src = Path(item)
            if src.suffix.lower() not in VOLUME_SUFFIXES:
                kind = "a 2D image" if src.suffix else "not a volume file"
                raise DataError(f"{src} is {kind}; {model.name} is a {model.dims}D model for volumes "
                                f"({', '.join(VOLUME_SUFFIXES)})" + (": denoise images with a 2D model" if
                                                                      model.dims == 3 else ""))
            volume = read_volume(src, allow_2d=model.dims == 2)  # a 2D model takes single sections (micrographs)
            opened.append(volume)
            if model.dims == 2 and volume.shape[0] > 1 and not args.slices:
                raise DataError(f"{src} is a volume and {model.name} is a 2D model: add --slices to denoise it "
                                f"section by section, or use a 3D model (model.dims=3)")
            halves = [volume]
            if args.pair:
                other = read_volume(args.pair, "--pair", allow_2d=model.dims == 2)
                opened.append(other)
                check_partner(volume, other, "INPUT", "--pair")
                halves.append(other)
            for h in halves:
                check_finite(h.data, str(h.path))
            small = min(volume.shape) < 2 and model.dims == 3
            if small:
                raise DataError(f"{src} is {volume.shape} (Z x Y x X): too thin for a 3D model")
            stem, kind = split_name(src)
            dst = (Path(args.outdir) if args.outdir else src.parent) / f"{stem}{suffix}{kind}"
            if dst.exists() and any(dst.resolve() == h.path.resolve() for h in halves):
                raise DataError(f"refusing to write {dst}: it is an input; choose another -o OUTDIR or a --suffix")
            jobs.append((volume, halves, dst))
        tile_arg = None if args.tile in (None, 0, _image_default("tile")) else args.tile
        overlap_arg = None if args.overlap == _image_default("overlap") else args.overlap
        # with --pair the first half's output is kept while the second half runs
        plans = [plan_tiles(v.shape, model.depth, int(getattr(model.net, "features", 48)),
                            max_memory - 4 * int(np.prod(v.shape)) * (len(h) - 1), overlap_arg, tile_arg, model.dims)
                 for v, h, _ in jobs]
        if args.outdir:
            Path(args.outdir).mkdir(parents=True, exist_ok=True)
    except (N2NError, ValueError, OSError) as exc:
        for v in opened:
            v.close()
        return fail(str(exc))

    try:
        for (volume, halves, dst), (tile, overlap) in zip(jobs, plans):
            norm = normalization_for(model, *(h.data for h in halves), where=str(volume.path))
            tiles = ("whole" if all(t >= n for t, n in zip(tile, volume.shape[-model.dims:])) else
                     f"in tiles of {' x '.join(map(str, tile))} {'voxels' if model.dims == 3 else 'pixels'}, "
                     f"overlap {overlap}")
            how = (f"as one micrograph (2D model), {tiles}" if volume.shape[0] == 1 and model.dims == 2 else
                   f"section by section (2D model, --slices), {tiles}" if model.dims == 2 else tiles)
            print(f"n2n denoise: {volume.path} ({' x '.join(map(str, volume.shape))}, Z x Y x X) {how}"
                  + (f", averaged with {args.pair}" if args.pair else ""), file=sys.stderr, flush=True)
            outs = []
            for h in halves:
                unit = "tile" if model.dims == 3 or h.shape[0] == 1 else "section"
                bar = lambda it, name=h.path.name, unit=unit: tqdm(  # noqa: E731
                    it, desc=f"denoising {name}", unit=unit, file=sys.stderr)
                outs.append(denoise_volume_array(model, h.data, norm, tile, overlap, model.dims == 2, progress=bar))
            out = outs[0] if len(outs) == 1 else (outs[0] + outs[1]) / 2
            write_like(dst, out, volume)
            print(f"wrote {dst}", file=sys.stderr, flush=True)
    except N2NError as exc:
        return fail(str(exc))
    finally:
        for v in opened:
            v.close()
    return EXIT_OK


def _image_default(name: str) -> int:
    from n2n.cli import denoise

    return {"tile": denoise.DEFAULT_TILE, "overlap": denoise.DEFAULT_OVERLAP}[name]


def denoise_in_own_units(net, volume: Any, max_memory: str | int = DEFAULT_MAX_MEMORY) -> Any:
    """What `n2n.load(MODEL)(array)` does for a model that normalises its inputs (a 3D model, or a 2D one trained
    on MRC micrographs): a Z x Y x X volume (for a 2D model also a Y x X micrograph, or sections Z x Y x X) as a
    NumPy array of any real dtype and range or a float tensor in, float32 of the same shape and type out,
    normalised per input and tiled within `max_memory`."""
    import torch

    from n2n.volumes.tiling import plan_tiles

    model = VolumeModel(net, "mean_std", "model")
    tensor = isinstance(volume, torch.Tensor)
    array = volume.detach().float().cpu().numpy() if tensor else np.asarray(volume)
    what = ("a 3D model denoises Z x Y x X volumes" if model.dims == 3 else
            "a 2D model trained on MRC micrographs denoises Y x X micrographs or Z x Y x X sections")
    if array.ndim not in ((3,) if model.dims == 3 else (2, 3)) or not (
            np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ValueError(f"{what} of real numbers, got shape {array.shape} {array.dtype}")
    flat = array.ndim == 2
    array = array[None] if flat else array
    check_finite(array, "volume")
    norm = normalization_for(model, array, where="volume")
    memory = parse_memory(max_memory) if isinstance(max_memory, str) else int(max_memory)
    tile, overlap = plan_tiles(array.shape, model.depth, int(getattr(net, "features", 48)), memory, dims=model.dims)
    out = denoise_volume_array(model, array, norm, tile, overlap, slices=True)
    out = out[0] if flat else out
    return torch.from_numpy(out).to(volume.device) if tensor else out
