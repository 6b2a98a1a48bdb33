"""Writing H x W x C uint8/uint16 arrays as image files, atomically, keeping bit depth, alpha and colour
profile; the format follows the extension."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

from n2n.atomic import atomic_output
from n2n.errors import DataError
from n2n.image_files.png16 import encode_png16
from n2n.image_files.reading import TIFF_EXTENSIONS

#: Pillow save options per format: denoised output should not lose quality to its container.
_SAVE_OPTIONS: dict[str, dict] = {
    "JPEG": {"quality": 95, "subsampling": 0},
    "WEBP": {"quality": 95},
    "PNG": {"compress_level": 6},
}


def write_image(path: str | Path, array: np.ndarray, *, icc_profile: bytes | None = None) -> None:
    """Write H x W x C (or H x W) uint8/uint16; the format follows the extension.

    PNG and TIFF take 8 and 16 bits, grey/grey+alpha/RGB/RGBA; other formats (JPEG, BMP, WebP...) 8 bits.
    Written atomically (n2n.atomic): an interrupted write never leaves a partial file under `path`.
    """
    path = Path(path)
    with atomic_output(path) as tmp:
        _write_image(path, tmp, array, icc_profile)


def _write_image(path: Path, target: Path, array: np.ndarray, icc_profile: bytes | None) -> None:
    arr = np.ascontiguousarray(array[:, :, None] if array.ndim == 2 else array)
    if arr.ndim != 3 or arr.dtype not in (np.uint8, np.uint16):
        raise DataError(f"cannot write {path}: expected an H x W x C uint8/uint16 array, got {arr.dtype} {arr.shape}")
    channels = arr.shape[2]
    ext = path.suffix.lower()
    if ext in TIFF_EXTENSIONS:
        tifffile.imwrite(
            target, arr[:, :, 0] if channels == 1 else arr,
            photometric="rgb" if channels in (3, 4) else "minisblack",
            extrasamples=["unassalpha"] if channels in (2, 4) else None,
            compression="zlib", iccprofile=icc_profile,
        )
        return
    fmt = Image.registered_extensions().get(ext)
    if fmt is None:
        raise DataError(f"cannot write {path}: unknown image extension {ext!r} (use .png, .tif, .jpg...)")
    if channels not in (1, 2, 3, 4):
        raise DataError(f"cannot write {path}: {fmt} holds 1 to 4 channels, the image has {channels}")
    if arr.dtype == np.uint16:
        if fmt != "PNG":
            raise DataError(f"cannot write {path}: {fmt} stores only 8-bit images; use .png or .tif for 16-bit")
        if channels > 1:  # Pillow has no 16-bit colour mode
            target.write_bytes(encode_png16(arr, icc_profile))
            return
        im = Image.fromarray(arr[:, :, 0])  # uint16 becomes mode I;16, written as a 16-bit grey PNG
    else:
        if fmt == "JPEG" and channels in (2, 4):
            raise DataError(f"cannot write {path}: JPEG cannot store alpha; use .png or .tif")
        im = Image.fromarray(arr[:, :, 0] if channels == 1 else arr)
    options = dict(_SAVE_OPTIONS.get(fmt, {}))
    if icc_profile and fmt in ("PNG", "JPEG", "WEBP"):
        options["icc_profile"] = icc_profile
    im.save(target, format=fmt, **options)


