"""Zarr and OME-Zarr volumes (`.zarr` folders): a plain Zarr array, or an OME-Zarr image (NGFF 0.4 on Zarr v2,
0.5 on Zarr v3) whose first (full-resolution) dataset is taken. Axes other than z, y and x (t, c) must hold one
element; the voxel size comes from the dataset's scale. The data are read whole, as a TIFF stack is (MRC is the
memory-mapped format). Written back in the input's Zarr format and chunks, with its attributes: an OME-Zarr
image keeps its metadata, its multiscales reduced to the full-resolution dataset (the other levels would be
downsampled copies of the noisy input), and its singleton axes."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np

from n2n.errors import DataError
from n2n.extras import require_extra

SUFFIX = ".zarr"
SPATIAL = ("z", "y", "x")


def _zarr():
    return require_extra("zarr", "volumes", "reading and writing Zarr volumes")


def _multiscales(attrs: dict[str, Any]) -> list | None:
    """The NGFF multiscales list of a group's attributes (0.4: at the top; 0.5: under "ome")."""
    ome = attrs.get("ome")
    found = ome.get("multiscales") if isinstance(ome, dict) else attrs.get("multiscales")
    return found if isinstance(found, list) and found else None


def read_zarr(path: Path, where: str) -> tuple[np.ndarray, tuple[float, float, float] | None, dict[str, Any]]:
    """(Z x Y x X data, voxel size (z, y, x) or None, what writing it back keeps). DataError naming `where`."""
    zarr = _zarr()
    try:
        node = zarr.open(str(path), mode="r")
    except Exception as exc:  # noqa: BLE001 - zarr raises many kinds for a folder that is not a store
        raise DataError(f"{where}: not a readable Zarr store: {str(exc).splitlines()[0] if str(exc) else exc!r}") \
            from None
    attrs = dict(node.attrs)
    meta: dict[str, Any] = {"zarr_format": int(node.metadata.zarr_format), "attrs": attrs}
    axes, scale = None, None
    if isinstance(node, zarr.Array):
        array = node
    else:
        multiscales = _multiscales(attrs)
        if multiscales is None:
            raise DataError(f"{where}: a Zarr group without OME-Zarr multiscales metadata; give the array's own "
                            f"folder (e.g. {path.name}/0) or an OME-Zarr image")
        first = multiscales[0]
        dataset = first["datasets"][0]
        meta["dataset"] = str(dataset["path"])
        try:
            array = node[meta["dataset"]]
        except KeyError:
            raise DataError(f"{where}: its multiscales name the dataset {meta['dataset']!r}, which is missing") \
                from None
        axes = [a["name"] if isinstance(a, dict) else str(a) for a in first.get("axes", [])] or None
        for t in dataset.get("coordinateTransformations", []):
            if t.get("type") == "scale":
                scale = [float(s) for s in t["scale"]]
    shape = tuple(int(n) for n in array.shape)
    axes = axes or (["?"] * (len(shape) - 3) + list(SPATIAL) if len(shape) >= 3 else list(SPATIAL[-len(shape):]))
    if len(axes) != len(shape):
        raise DataError(f"{where}: {len(axes)} axes named for an array of {len(shape)}")
    spatial = [i for i, name in enumerate(axes) if name in SPATIAL]
    others = [f"{axes[i]} {n}" for i, n in enumerate(shape) if i not in spatial and n != 1]
    if others or len(spatial) < 2:
        raise DataError(f"{where}: a Zarr array of shape {shape} (axes {', '.join(axes)}) is not a single-channel "
                        f"Z x Y x X volume" + (f" ({', '.join(others)}: save one channel or time point)"
                                               if others else ""))
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise DataError(f"{where}: Zarr data of type {array.dtype} cannot be denoised; integer or float voxels only")
    from n2n.volumes.io import _check_voxels

    _check_voxels([shape[i] for i in spatial], where)
    meta.update(shape=shape, chunks=tuple(int(c) for c in array.chunks), array_attrs=dict(array.attrs))
    data = np.asarray(array[...]).reshape([shape[i] for i in spatial])
    data = data if data.ndim == 3 else data[None]
    voxel = None
    if scale is not None and len(scale) == len(shape):
        by_axis = dict(zip(axes, scale))
        voxel = tuple(by_axis.get(a, 1.0) for a in SPATIAL)
    return data, voxel, meta  # type: ignore[return-value]


def write_zarr(path: Path, data: np.ndarray, like) -> None:
    """Write float32 Z x Y x X `data` as a Zarr folder at `path` (a fresh folder: atomic_folder's temporary one),
    in `like`'s format, chunks and metadata when it was read from Zarr, else Zarr v3 with its voxel size as an
    OME-Zarr 0.5 scale."""
    zarr = _zarr()
    meta = like.meta if like is not None and like.kind == "zarr" else None
    if meta is None:
        group = zarr.open_group(str(path), mode="w", zarr_format=3)
        scale = list(like.voxel_size) if like is not None and like.voxel_size else [1.0, 1.0, 1.0]
        group.attrs["ome"] = {"version": "0.5", "multiscales": [{
            "axes": [{"name": a, "type": "space"} for a in SPATIAL],
            "datasets": [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": scale}]}]}]}
        array = group.create_array("0", shape=data.shape, chunks=_chunks(data.shape), dtype="float32")
        array[...] = data
        return
    full = data.reshape(meta["shape"])
    chunks = tuple(min(c, n) for c, n in zip(meta["chunks"], meta["shape"]))
    if "dataset" not in meta:  # a plain array
        array = zarr.create_array(store=str(path), shape=full.shape, chunks=chunks, dtype="float32",
                                  zarr_format=meta["zarr_format"], attributes=meta["array_attrs"])
        array[...] = full
        return
    attrs = copy.deepcopy(meta["attrs"])
    multiscales = _multiscales(attrs)
    for scales in multiscales:  # only the full-resolution level: the others would be the noisy input's
        scales["datasets"] = scales["datasets"][:1]
    group = zarr.open_group(str(path), mode="w", zarr_format=meta["zarr_format"])
    group.attrs.update(attrs)
    array = group.create_array(meta["dataset"], shape=full.shape, chunks=chunks, dtype="float32",
                               attributes=meta["array_attrs"])
    array[...] = full


def _chunks(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(min(n, 64) for n in shape)
