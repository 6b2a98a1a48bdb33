"""Reading and writing volumes: MRC (mrcfile, memory-mapped, header checked), TIFF stacks (tifffile, Z x Y x X) and
Zarr / OME-Zarr folders (n2n.volumes.zarr_io).

Every problem with a file is one DataError naming the file (and the option it came from) and what is allowed:
an MRC mode that is not real-valued, a header or data block that mrcfile refuses (a truncated file), a volume
with more voxels than MAX_VOXELS (checked from the header, before anything is allocated), NaN or infinite
voxels. Written volumes are float32 and keep the input's voxel size, origin and extended header (MRC) or
resolution and ImageJ spacing (TIFF); they are written atomically (n2n.atomic), so nothing half-written is left.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from n2n.atomic import atomic_folder, atomic_output
from n2n.errors import DataError
from n2n.volumes import zarr_io

MRC_SUFFIXES = (".mrc", ".mrcs", ".rec", ".st", ".ali", ".map")
TIFF_SUFFIXES = (".tif", ".tiff")
ZARR_SUFFIXES = (zarr_io.SUFFIX,)  # folders
VOLUME_SUFFIXES = MRC_SUFFIXES + TIFF_SUFFIXES + ZARR_SUFFIXES
#: MRC modes holding real numbers: 0 int8, 1 int16, 2 float32, 6 uint16, 12 float16.
MRC_MODES = {0: "int8", 1: "int16", 2: "float32", 6: "uint16", 12: "float16"}
#: Largest volume read (2**32 voxels: 16 GiB as float32), checked from the header before any allocation.
MAX_VOXELS = 2**32
#: MRC header fields copied to a written volume besides its data (voxel size = cella / mx..mz, origin, ...).
_MRC_KEPT = ("nxstart", "nystart", "nzstart", "mx", "my", "mz", "cella", "cellb", "mapc", "mapr", "maps", "ispg",
             "origin", "exttyp", "nlabl", "label")


def is_volume_file(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VOLUME_SUFFIXES


def is_volume_path(path: Path) -> bool:
    """A volume on disk: an MRC or TIFF file, or a Zarr folder."""
    suffix = path.suffix.lower()
    return path.is_dir() if suffix in ZARR_SUFFIXES else suffix in VOLUME_SUFFIXES and path.is_file()


def split_name(path: Path) -> tuple[str, str]:
    """(stem, suffix) of a volume's name, with OME-Zarr's two-part suffix kept whole (tomo.ome.zarr)."""
    name = path.name
    if name.lower().endswith(".ome.zarr"):
        return name[:-len(".ome.zarr")], name[-len(".ome.zarr"):]
    return path.stem, path.suffix


@dataclass
class Volume:
    """`data`: Z x Y x X (a memory map for MRC: read lazily); `meta`: what writing it back keeps."""

    path: Path
    data: np.ndarray
    kind: str  # "mrc", "tiff" or "zarr"
    voxel_size: tuple[float, float, float] | None = None  # z, y, x (None: not recorded)
    meta: dict[str, Any] = field(default_factory=dict)
    _handle: Any = None

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(n) for n in self.data.shape)  # type: ignore[return-value]

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> "Volume":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _where(path: Path, option: str | None) -> str:
    return f"{option}={path}" if option else str(path)


def read_volume(path: str | Path, option: str | None = None, allow_2d: bool = False) -> Volume:
    """The volume of an MRC or TIFF file. A single image (one section) is refused unless `allow_2d` (it then has
    Z = 1). Close it (or use it as a context manager) when done: MRC data stay memory-mapped."""
    path = Path(path)
    where = _where(path, option)
    suffix = path.suffix.lower()
    if not (path.is_dir() if suffix in ZARR_SUFFIXES else path.is_file()):
        raise DataError(f"{where}: no such {'Zarr folder' if suffix in ZARR_SUFFIXES else 'file'}")
    if suffix in ZARR_SUFFIXES:
        data, voxel, meta = zarr_io.read_zarr(path, where)
        volume = Volume(path, data, "zarr", voxel, meta)
    elif suffix in MRC_SUFFIXES:
        volume = _read_mrc(path, where)
    elif suffix in TIFF_SUFFIXES:
        volume = _read_tiff(path, where)
    else:
        raise DataError(f"{where}: not a volume file; volumes are MRC ({', '.join(MRC_SUFFIXES)}), TIFF stacks "
                        f"({', '.join(TIFF_SUFFIXES)}) or Zarr folders (.zarr)")
    if volume.shape[0] == 1 and not allow_2d:
        volume.close()
        raise DataError(f"{where} is a single {volume.shape[1]} x {volume.shape[2]} image, not a volume: a 3D model "
                        f"denoises Z x Y x X volumes (use a 2D model for images)")
    return volume


def _read_mrc(path: Path, where: str) -> Volume:
    import mrcfile

    try:
        mrc = mrcfile.mmap(path, mode="r", permissive=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{where}: {_mrc_problem(path, exc)}") from None
    header = mrc.header
    mode = int(header.mode)
    if mode not in MRC_MODES or mrc.data is None:
        mrc.close()
        raise DataError(f"{where}: {_mode_message(mode)}")
    data = mrc.data if mrc.data.ndim == 3 else mrc.data.reshape(1, *mrc.data.shape[-2:])
    _check_voxels(data.shape, where, mrc)
    vs = mrc.voxel_size
    voxel = (float(vs.z), float(vs.y), float(vs.x))
    meta = {"header": header.copy(), "extended_header": np.array(mrc.extended_header).copy()}
    return Volume(path, data, "mrc", voxel if any(voxel) else None, meta, mrc)


def _mrc_problem(path: Path, exc: Exception) -> str:
    """Why mrcfile refused a file, in words: a mode it has no type for, or its own message (truncated data,
    bad map ID, ...)."""
    import mrcfile

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with mrcfile.open(path, mode="r", permissive=True, header_only=True) as mrc:
                mode = int(mrc.header.mode) if mrc.header is not None else None
    except Exception:  # noqa: BLE001 - only a diagnosis; the original message is used instead
        mode = None
    if mode is not None and mode not in MRC_MODES:
        return _mode_message(mode)
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"not a readable MRC file (truncated or damaged?): {message}"


def _mode_message(mode: int) -> str:
    kinds = {3: "complex int16", 4: "complex float32", 101: "4-bit packed"}
    what = f" ({kinds[mode]})" if mode in kinds else ""
    return (f"MRC mode {mode}{what} cannot be denoised; readable modes: "
            f"{', '.join(f'{m} ({t})' for m, t in MRC_MODES.items())}")


def _read_tiff(path: Path, where: str) -> Volume:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            shape = tuple(int(n) for n in series.shape)
            squeezed = tuple(n for n in shape if n != 1) or (1,)
            if len(squeezed) > 3 or len(squeezed) < 2:
                raise DataError(f"{where}: a TIFF of shape {shape} ({series.axes}) is not a single-channel Z x Y x X "
                                f"stack")
            _check_voxels(squeezed, where)
            data = series.asarray().reshape(squeezed if len(squeezed) == 3 else (1, *squeezed))
            page = tif.pages[0]
            meta = {"imagej": dict(tif.imagej_metadata or {}), "resolution": _tiff_resolution(page)}
    except DataError:
        raise
    except Exception as exc:  # tifffile raises many kinds for damaged files
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{where}: not a readable TIFF stack: {message}") from None
    if not (np.issubdtype(data.dtype, np.integer) or np.issubdtype(data.dtype, np.floating)):
        raise DataError(f"{where}: TIFF data of type {data.dtype} cannot be denoised; integer or float voxels only")
    voxel = None
    res = meta["resolution"]
    if res is not None and all(res):
        z = float(meta["imagej"].get("spacing", 1.0 / res[0]))
        voxel = (z, 1.0 / res[1], 1.0 / res[0])
    return Volume(path, data, "tiff", voxel, meta)


def _tiff_resolution(page) -> tuple[float, float] | None:
    try:
        x, y = page.tags["XResolution"].value, page.tags["YResolution"].value
        return (x[0] / x[1], y[0] / y[1])
    except (KeyError, ZeroDivisionError, TypeError, IndexError):
        return None


def _check_voxels(shape, where: str, handle=None) -> None:
    count = int(np.prod([int(n) for n in shape], dtype=np.int64))
    if count > MAX_VOXELS:
        if handle is not None:
            handle.close()
        dims = " x ".join(str(int(n)) for n in shape)
        raise DataError(f"{where}: {dims} = {count:,} voxels is more than n2n reads ({MAX_VOXELS:,}); crop or bin "
                        f"the volume first")


def check_finite(data: np.ndarray, where: str, slab: int = 16) -> None:
    """DataError at the first NaN or infinite voxel; reads a few sections at a time (memory-mapped volumes)."""
    if np.issubdtype(data.dtype, np.integer):
        return
    for z0 in range(0, data.shape[0], slab):
        part = np.asarray(data[z0:z0 + slab])
        bad = ~np.isfinite(part)
        if bad.any():
            z, y, x = (int(i) for i in np.argwhere(bad)[0])
            raise DataError(f"{where}: voxel (z={z0 + z}, y={y}, x={x}) is {part[z, y, x]}; NaN and infinite values "
                            f"cannot be denoised (fill or mask them first)")


def check_partner(a: Volume, b: Volume, option_a: str, option_b: str) -> None:
    """Two halves of one volume: the same shape and voxel size."""
    if a.shape != b.shape:
        raise DataError(f"{option_a}={a.path} is {_dims(a.shape)} but {option_b}={b.path} is {_dims(b.shape)}: the "
                        f"two halves of a volume must have the same shape")
    if a.voxel_size and b.voxel_size and not np.allclose(a.voxel_size, b.voxel_size, rtol=1e-4):
        raise DataError(f"{option_a}={a.path} has voxel size {_size(a.voxel_size)} but {option_b}={b.path} has "
                        f"{_size(b.voxel_size)}: the two halves must be reconstructed alike")


def _dims(shape) -> str:
    return " x ".join(str(int(n)) for n in shape) + " (Z x Y x X)"


def _size(voxel) -> str:
    return " x ".join(f"{v:g}" for v in voxel) + " (z, y, x)"


def read_float(path: str | Path, option: str | None = None, micrograph: bool = False) -> tuple[np.ndarray, Volume]:
    """The whole volume as a float32 array in memory (training), checked for NaN/inf; the file is closed.
    `micrograph`: the file must be a single section (a 2D micrograph, read as 1 x Y x X); a volume is refused
    before its data are read."""
    with read_volume(path, option, allow_2d=micrograph) as volume:
        if micrograph and volume.shape[0] != 1:
            raise DataError(f"{_where(Path(path), option)} holds {volume.shape[0]} sections of {volume.shape[1]} x "
                            f"{volume.shape[2]}, not one micrograph: train on volumes with data=volumes, or write each "
                            f"micrograph to a file of its own")
        data = np.array(volume.data, dtype=np.float32)
        volume.data = data
    check_finite(data, _where(Path(path), option))
    return data, volume


def write_like(path: str | Path, data: np.ndarray, like: Volume | None = None) -> Path:
    """Write a float32 Z x Y x X volume to `path` (its suffix chooses MRC, TIFF or Zarr), keeping `like`'s voxel
    size, origin and extended header (MRC), resolution and spacing (TIFF) or format, chunks and OME metadata
    (Zarr), atomically."""
    path = Path(path)
    data = np.ascontiguousarray(data, dtype=np.float32)
    suffix = path.suffix.lower()
    if suffix in ZARR_SUFFIXES:
        with atomic_folder(path) as tmp:
            zarr_io.write_zarr(tmp, data, like)
        return path
    with atomic_output(path) as tmp:
        if suffix in MRC_SUFFIXES:
            _write_mrc(tmp, data, like)
        elif suffix in TIFF_SUFFIXES:
            _write_tiff(tmp, data, like)
        else:
            raise DataError(f"{path}: cannot write a volume with suffix {path.suffix!r}; use one of "
                            f"{', '.join(VOLUME_SUFFIXES)}")
    return path


def _write_mrc(tmp: Path, data: np.ndarray, like: Volume | None) -> None:
    import mrcfile

    with mrcfile.new(tmp, overwrite=True) as mrc:
        mrc.set_data(data[0] if data.shape[0] == 1 else data)  # one section: an image (a micrograph), as read
        if like is not None and like.kind == "mrc":
            source = like.meta["header"]
            for name in _MRC_KEPT:
                mrc.header[name] = source[name]
            ext = like.meta.get("extended_header")
            if ext is not None and ext.nbytes:
                mrc.set_extended_header(ext)
                mrc.header.exttyp = source.exttyp
        elif like is not None and like.voxel_size:
            z, y, x = like.voxel_size
            mrc.voxel_size = (x, y, z)
        mrc.update_header_stats()


def _write_tiff(tmp: Path, data: np.ndarray, like: Volume | None) -> None:
    import tifffile

    kwargs: dict[str, Any] = {}
    if like is not None and like.voxel_size:
        z, y, x = like.voxel_size
        kwargs["resolution"] = (1.0 / x, 1.0 / y)
        unit = (like.meta.get("imagej") or {}).get("unit")
        kwargs["metadata"] = {"axes": "ZYX", "spacing": z, **({"unit": unit} if unit else {})}
    else:
        kwargs["metadata"] = {"axes": "ZYX"}
    tifffile.imwrite(tmp, data, imagej=True, **kwargs)
