"""Reading image files as H x W x C uint8/uint16 arrays, upright, with everything the file holds or a refusal.

Pillow reads most formats; tifffile reads TIFFs (Pillow reduces 16-bit colour TIFFs to 8 bits), with the
codecs of `imagecodecs` (LZW, JPEG, ...), Pillow taking over for any it lacks. 16-bit colour PNGs go through
n2n.image_files.png16 (libpng; Pillow reduces them to 8 bits).

Every path checks the declared size against the pixel limit (n2n.image_files.limits) before decoding. A file
is read whole or refused in one line: an animated or multi-page file (GIF, WebP, APNG, a TIFF of several
images) is refused by `read_image`, which reads one image; CMYK pixels with a colour profile are converted to
sRGB through that profile (littlecms) and tagged sRGB, not left tagged with the CMYK profile.
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import tifffile
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from n2n.errors import DataError
from n2n.image_files.limits import check_pixels
from n2n.image_files.png16 import EXIF_ORIENTATION, is_png16_colour, read_png16

#: Extensions of the image files n2n reads from a folder (training, eval.py, `n2n denoise`).
IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".ppm", ".pgm", ".pnm"}
)
TIFF_EXTENSIONS = frozenset({".tif", ".tiff"})
_TIFF_MAGIC = (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")
#: Formats whose extra frames are not further images of the scene: an MPO's are previews or a depth map
#: of the primary picture (phones write them), so its first frame is the whole photo.
_EXTRA_FRAMES_NOT_IMAGES = frozenset({"MPO"})


@dataclass(frozen=True)
class ImageInfo:
    """What `read_image` learnt about a file besides its pixels."""

    path: Path
    format: str  #: "PNG", "JPEG", "TIFF", ...
    has_alpha: bool  #: the last channel is alpha
    icc_profile: bytes | None = None  #: colour profile, to be written back with the output
    orientation: int = 1  #: the EXIF orientation that was applied on reading (1 = none)


def read_image(path: str | Path) -> tuple[np.ndarray, ImageInfo]:
    """The image as H x W x C uint8/uint16 (upright) and its ImageInfo; DataError if unreadable, larger than
    the pixel limit, or holding more than one image."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"image {path} does not exist or is not a file")
    with _decoder_errors(path):
        with path.open("rb") as f:
            head = f.read(33)
        if is_png16_colour(head):  # Pillow would reduce it to 8 bits
            arr, icc, orientation = read_png16(path)
            arr = apply_orientation(arr, orientation)
            info = ImageInfo(path, "PNG", arr.shape[2] in (2, 4), icc, orientation)
        elif path.suffix.lower() in TIFF_EXTENSIONS or head[:4] in _TIFF_MAGIC:
            arr, info = _read_tiff(path)
        else:
            arr, info = _read_pillow(path)
    if arr.ndim != 3 or arr.shape[0] == 0 or arr.shape[1] == 0 or arr.dtype not in (np.uint8, np.uint16):
        raise DataError(f"image {path} decoded to {arr.dtype} {arr.shape}: expected 8- or 16-bit H x W x C")
    return np.ascontiguousarray(arr), info


class _decoder_errors:
    """Decoders raise anything from OSError to SyntaxError on corrupt files: one DataError naming the file."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if exc is None or isinstance(exc, DataError) or not isinstance(exc, Exception):
            return False
        if isinstance(exc, UnidentifiedImageError):
            raise DataError(f"cannot read image {self.path}: not a recognised image file (expected PNG, JPEG, "
                            f"TIFF, BMP or WebP)") from None
        if isinstance(exc, MemoryError):
            raise DataError(f"cannot read image {self.path}: not enough memory to decode it") from None
        raise DataError(f"cannot read image {self.path}: {exc}: it is truncated, corrupt or not an image in a "
                        f"format n2n reads (PNG, JPEG, TIFF, BMP, WebP, PNM); replace it or remove it") from None


def _read_pillow(path: Path) -> tuple[np.ndarray, ImageInfo]:
    with Image.open(path) as im:
        check_pixels(path, *im.size)  # from the header: nothing is decoded yet
        fmt = im.format or path.suffix.lstrip(".").upper()
        frames = int(getattr(im, "n_frames", 1) or 1)
        if frames > 1 and fmt not in _EXTRA_FRAMES_NOT_IMAGES:
            raise DataError(f"image {path} holds {frames} frames ({fmt}, animated or multi-page): n2n reads one "
                            f"image per file; save each frame as its own file (to train on the frames of a scene: "
                            f"data=stacks with a sub-folder of frames)")
        im.load()  # decode now: truncated files fail here rather than half-way through denoising
        icc = im.info.get("icc_profile")
        orientation = int(im.getexif().get(EXIF_ORIENTATION, 1) or 1)
        upright = ImageOps.exif_transpose(im)
        if upright.mode == "CMYK" and icc:
            upright, icc = _cmyk_to_srgb(upright, icc, path)
        arr = _pil_to_array(upright, path)
    has_alpha = arr.shape[2] in (2, 4)
    return arr, ImageInfo(path, fmt, has_alpha, icc, orientation)


def _cmyk_to_srgb(im: Image.Image, icc: bytes, path: Path) -> tuple[Image.Image, bytes]:
    """CMYK pixels through their own profile to sRGB (littlecms), and the sRGB profile to tag them with."""
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        rgb = ImageCms.profileToProfile(im, source, srgb, outputMode="RGB")
    except (ImageCms.PyCMSError, OSError, ValueError) as exc:
        raise DataError(f"image {path} is CMYK with a colour profile that cannot convert it to RGB ({exc}); "
                        f"convert it to sRGB first (e.g. ImageMagick: magick IN -colorspace sRGB OUT)") from None
    return rgb, srgb.tobytes()


def _pil_to_array(im: Image.Image, path: Path) -> np.ndarray:
    mode = im.mode
    if mode in ("1", "L", "LA", "RGB", "RGBA") or mode.startswith("I;16"):
        arr = np.asarray(im.convert("L") if mode == "1" else im)
        arr = arr.astype(np.uint16) if mode.startswith("I;16") else arr  # I;16B is big-endian
    elif mode == "I":  # 32-bit integers: what Pillow may use for 16-bit greyscale
        arr = np.asarray(im)
        if arr.size and (arr.min() < 0 or arr.max() > 65535):
            raise DataError(f"image {path} holds 32-bit integers outside 0..65535: only 8/16-bit is supported")
        arr = arr.astype(np.uint16)
    elif mode in ("P", "PA"):
        transparent = mode == "PA" or "transparency" in im.info
        arr = np.asarray(im.convert("RGBA" if transparent else "RGB"))
    elif mode in ("La", "RGBa"):  # premultiplied alpha
        arr = np.asarray(im.convert("LA" if mode == "La" else "RGBA"))
    elif mode in ("RGBX", "CMYK", "YCbCr", "LAB", "HSV"):
        arr = np.asarray(im.convert("RGB"))
    else:
        raise DataError(f"image {path} has Pillow mode {mode}: only 8/16-bit grey, RGB and RGBA are supported")
    return arr[:, :, None] if arr.ndim == 2 else arr


def _images(tif: tifffile.TiffFile) -> list[tifffile.TiffPageSeries]:
    """The series of a TIFF that are images of their own: not the reduced-resolution copies (thumbnails,
    NewSubfileType bit 0) that cameras and scanners add."""
    return [s for s in tif.series if not (int(getattr(s.keyframe, "subfiletype", 0) or 0) & 1)] or tif.series[:1]


def _series_pixels(series: tifffile.TiffPageSeries) -> tuple[int, int, int]:
    """(width, height, frames) as the series declares them. Up to 4 samples make one pixel (grey to RGBA);
    more samples count as further frames (a stack saved as one planar page), so that what is counted bounds
    what decoding allocates."""
    page = series.keyframe
    width, height = int(page.imagewidth), int(page.imagelength)
    values = math.prod(int(n) for n in series.shape)
    per_pixel = min(4, max(1, int(page.samplesperpixel)))
    return width, height, max(1, -(-values // max(1, width * height * per_pixel)))


def _read_tiff(path: Path) -> tuple[np.ndarray, ImageInfo]:
    with tifffile.TiffFile(path) as tif:
        images = _images(tif)
        if len(images) > 1:
            raise DataError(f"TIFF {path} holds {len(images)} images of different sizes or kinds: n2n reads one "
                            f"image per file; save each as its own file")
        series = images[0]
        page = series.keyframe
        check_pixels(path, *_series_pixels(series))  # before anything is decoded
        photometric = int(page.photometric)
        if photometric not in (1, 2):  # palette, min-is-white, CMYK, YCbCr...: Pillow converts these
            return _read_pillow(path)
        try:
            arr = series.asarray()
        except ValueError as exc:  # a compression tifffile cannot decode without imagecodecs
            if page.bitspersample <= 8 or page.samplesperpixel == 1:
                return _read_pillow(path)  # Pillow decodes these without losing depth
            raise DataError(f"cannot read TIFF {path}: {exc} (pip install imagecodecs)") from None
        axes = series.axes
        icc_tag = page.tags.get("InterColorProfile")
        orient_tag = page.tags.get("Orientation")
        icc = bytes(icc_tag.value) if icc_tag is not None else None  # tag values are read lazily
        orientation = int(orient_tag.value) if orient_tag is not None else 1
        has_alpha = any(int(s) in (1, 2) for s in page.extrasamples)
    arr = apply_orientation(_tiff_to_hwc(arr, axes, path), orientation)
    return arr, ImageInfo(path, "TIFF", has_alpha and arr.shape[2] in (2, 4), icc, orientation)


def _tiff_to_hwc(arr: np.ndarray, axes: str, path: Path) -> np.ndarray:
    """Samples last, whatever the planar configuration; refuse stacks (pages, Z, time)."""
    keep = [i for i, a in enumerate(axes) if a in "YX" or arr.shape[i] > 1]
    arr = arr.reshape([arr.shape[i] for i in keep])
    axes = "".join(axes[i] for i in keep)
    if axes == "YX":
        return arr[:, :, None]
    if axes == "YXS":
        return arr
    if axes in ("SYX", "CYX"):
        return np.moveaxis(arr, 0, -1)
    raise DataError(
        f"TIFF {path} has axes {axes} (shape {arr.shape}): only a single 2-D image with samples is "
        f"supported, not a stack of pages, planes or time points"
    )


def apply_orientation(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Make an H x W x C array upright given its EXIF/TIFF orientation (1..8), as ImageOps.exif_transpose."""
    ops: dict[int, Callable[[np.ndarray], np.ndarray]] = {
        1: lambda a: a,
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.transpose(1, 0, 2),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: np.rot90(a, 2).transpose(1, 0, 2),
        8: lambda a: np.rot90(a, 1),
    }
    return np.ascontiguousarray(ops.get(orientation, ops[1])(arr))


def read_frames(path: str | Path) -> np.ndarray:
    """The frames of a TIFF stack (pages, or the planes of one planar page) as F x H x W x C uint8/uint16;
    another image file is one frame. The whole stack counts against the pixel limit."""
    path = Path(path)
    if path.suffix.lower() not in TIFF_EXTENSIONS:
        return read_image(path)[0][None]
    try:
        with tifffile.TiffFile(path) as tif:
            images = _images(tif)
            if len(images) > 1:
                shapes = ", ".join(f"{len(s.pages)} x {s.shape}" for s in images[:4])
                raise DataError(f"TIFF stack {path} holds {len(images)} series of pages that differ in size or kind "
                                f"({shapes}): the frames of a stack must all be alike; split it into one stack "
                                f"per series")
            series = images[0]
            check_pixels(path, *_series_pixels(series))
            arr, axes = series.asarray(), series.axes
            colour = int(tif.pages[0].photometric) == 2  # RGB
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - corrupt files raise anything
        raise DataError(f"cannot read TIFF stack {path}: {exc}") from None
    if arr.dtype not in (np.uint8, np.uint16):
        raise DataError(f"TIFF stack {path} holds {arr.dtype} samples: only 8- and 16-bit are supported")
    if axes.startswith("S") and (not colour or axes == "SYX"):
        # a stack saved as one planar image of N samples (what tifffile.imwrite(path, stack) writes without
        # photometric=, calling 3 or 4 of them RGB): one page is no stack, so its samples are the frames
        axes = "Q" + axes[1:]
    if "S" in axes:  # samples last, whatever the planar configuration
        arr = np.moveaxis(arr, axes.index("S"), -1)
        axes = axes.replace("S", "") + "S"
    frame_axes = [i for i, a in enumerate(axes) if a not in "YXS"]
    if len(frame_axes) > 1:
        raise DataError(f"TIFF stack {path} has axes {axes}: expected one frame axis (pages), Y, X and "
                        f"optionally samples")
    if not frame_axes:
        arr, axes = arr[None], "I" + axes
    else:
        arr = np.moveaxis(arr, frame_axes[0], 0)
        axes = axes[frame_axes[0]] + axes.replace(axes[frame_axes[0]], "")
    return np.ascontiguousarray(arr if axes.endswith("S") else arr[..., None])
