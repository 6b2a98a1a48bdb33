"""Reading and writing images for inference, keeping bit depth, alpha and orientation.

Images are numpy arrays H x W x C of uint8 or uint16, C = 1 (grey), 2 (grey + alpha), 3 (RGB) or
4 (RGBA); TIFFs may also hold other channel counts. Pillow reads most formats; tifffile reads TIFFs
(Pillow reduces 16-bit colour TIFFs to 8 bits) and Pillow takes over for TIFF compressions that tifffile
cannot decode without the optional `imagecodecs` package. Pillow also reduces 16-bit colour PNGs to 8
bits and cannot write them, so those go through the small PNG codec at the end of this module.

Pixels are returned the way they are meant to be displayed: the EXIF orientation is applied on reading
and the written files carry no orientation tag.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import tifffile
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from n2n.atomic import atomic_output
from n2n.errors import DataError

#: Extensions of the image files n2n reads from a folder (training, eval.py, `n2n denoise`).
IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".ppm", ".pgm", ".pnm"}
)
TIFF_EXTENSIONS = frozenset({".tif", ".tiff"})

_EXIF_ORIENTATION = 0x0112
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Pillow save options per format: denoised output should not lose quality to its container.
_SAVE_OPTIONS: dict[str, dict] = {
    "JPEG": {"quality": 95, "subsampling": 0},
    "WEBP": {"quality": 95},
    "PNG": {"compress_level": 6},
}


@dataclass(frozen=True)
class ImageInfo:
    """What `read_image` learnt about a file besides its pixels."""

    path: Path
    format: str  #: "PNG", "JPEG", "TIFF", ...
    has_alpha: bool  #: the last channel is alpha
    icc_profile: bytes | None = None  #: colour profile, to be written back with the output
    orientation: int = 1  #: the EXIF orientation that was applied on reading (1 = none)


# --------------------------------------------------------------------------------------------- reading


def read_image(path: str | Path) -> tuple[np.ndarray, ImageInfo]:
    """The image as H x W x C uint8/uint16 (upright) and its ImageInfo; DataError if unreadable."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"image {path} does not exist or is not a file")
    try:
        with path.open("rb") as f:
            head = f.read(33)
        if _is_png16_colour(head):  # Pillow would reduce it to 8 bits
            arr, info = _read_png16(path)
        elif path.suffix.lower() in TIFF_EXTENSIONS or head[:4] in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"):
            arr, info = _read_tiff(path)
        else:
            arr, info = _read_pillow(path)
    except DataError:
        raise
    except UnidentifiedImageError:
        raise DataError(
            f"cannot read image {path}: not a recognised image file (expected PNG, JPEG, TIFF, BMP or WebP)"
        ) from None
    except Exception as exc:  # decoders raise anything from OSError to SyntaxError on corrupt files
        raise DataError(
            f"cannot read image {path}: {exc}: it is truncated, corrupt or not an image in a format n2n reads "
            f"(PNG, JPEG, TIFF, BMP, WebP, PNM); replace it or remove it"
        ) from None
    if arr.ndim != 3 or arr.shape[0] == 0 or arr.shape[1] == 0 or arr.dtype not in (np.uint8, np.uint16):
        raise DataError(f"image {path} decoded to {arr.dtype} {arr.shape}: expected 8- or 16-bit H x W x C")
    return np.ascontiguousarray(arr), info


def _read_pillow(path: Path) -> tuple[np.ndarray, ImageInfo]:
    with Image.open(path) as im:
        im.load()  # decode now: truncated files fail here rather than half-way through denoising
        fmt = im.format or path.suffix.lstrip(".").upper()
        icc = im.info.get("icc_profile")
        orientation = int(im.getexif().get(_EXIF_ORIENTATION, 1) or 1)
        upright = ImageOps.exif_transpose(im)
        arr = _pil_to_array(upright, path)
    has_alpha = arr.shape[2] in (2, 4)
    return arr, ImageInfo(path, fmt, has_alpha, icc, orientation)


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


def _read_tiff(path: Path) -> tuple[np.ndarray, ImageInfo]:
    with tifffile.TiffFile(path) as tif:
        page, series = tif.pages[0], tif.series[0]
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


# --------------------------------------------------------------------------------------------- writing


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


# ----------------------------------------------------------------------------- adapting to the network


def to_model_input(
    array: np.ndarray, model_channels: int, has_alpha: bool | None = None
) -> tuple[torch.Tensor, Callable[[torch.Tensor], np.ndarray]]:
    """The network input for an image, and the function turning the network output back into an image.

    Returns (x, restore): x is N x model_channels x H x W float in [0, 1]; restore(output) is an array
    with the image's own channels and dtype. Alpha (the last channel of grey+alpha and RGBA images, or
    as `has_alpha` says) is never sent to the network and comes back bit-exact. Channel adaptation:

    * image channels == model channels: as is (N = 1);
    * grey image, RGB model: the grey plane is replicated to 3 channels and the 3 outputs averaged (N = 1);
    * colour image, grey model: each colour channel is denoised separately as its own grey image
      (N = number of channels). Unlike denoising luminance only, this also removes chroma noise, and
      per-channel noise is what a grey model was trained on.
    """
    if array.ndim == 2:
        array = array[:, :, None]
    if array.dtype not in (np.uint8, np.uint16):
        raise DataError(f"expected a uint8 or uint16 image, got {array.dtype}")
    channels = array.shape[2]
    if has_alpha is None:
        has_alpha = channels in (2, 4)
    colour = array[:, :, : channels - 1] if has_alpha else array
    alpha = array[:, :, channels - 1 :].copy() if has_alpha else None
    dtype, scale = array.dtype, float(np.iinfo(array.dtype).max)
    n = colour.shape[2]
    planes = torch.from_numpy(colour.astype(np.float32) / scale).permute(2, 0, 1)  # n x H x W

    if n == model_channels:
        x, merge = planes[None], (lambda y: y[0])
    elif n == 1 and model_channels == 3:
        x, merge = planes.expand(3, -1, -1)[None], (lambda y: y[0].mean(0, keepdim=True))
    elif model_channels == 1:
        x, merge = planes[:, None], (lambda y: y[:, 0])
    else:
        raise DataError(
            f"cannot adapt an image with {n} colour channel(s){' plus alpha' if has_alpha else ''} to a "
            f"network with {model_channels} input channels (supported: equal counts, grey image on an RGB "
            f"network, any image on a grey network)"
        )

    def restore(output: torch.Tensor) -> np.ndarray:
        y = merge(output.detach().float().cpu()).clamp(0.0, 1.0)  # C x H x W
        out = np.rint(y.permute(1, 2, 0).numpy() * scale).astype(dtype)
        return np.concatenate([out, alpha], axis=2) if alpha is not None else np.ascontiguousarray(out)

    return x.contiguous(), restore


# ------------------------------------------------------------------- 16-bit colour PNG (Pillow lacks it)

#: (x0, y0, dx, dy) of the seven Adam7 interlacing passes.
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
_PNG16_CHANNELS = {4: 2, 2: 3, 6: 4}  # colour type -> samples per pixel (grey+alpha, RGB, RGBA)


def _is_png16_colour(head: bytes) -> bool:
    """16-bit PNGs with more than one channel: Pillow reads these as 8-bit."""
    return (
        len(head) >= 29 and head[:8] == _PNG_SIGNATURE and head[12:16] == b"IHDR"
        and head[24] == 16 and head[25] in _PNG16_CHANNELS
    )


def _png_chunks(data: bytes, path: Path):
    pos = len(_PNG_SIGNATURE)
    while True:
        if pos + 8 > len(data):
            raise DataError(f"PNG {path} is truncated: it ends before its IEND chunk")
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        crc = data[pos + 8 + length:pos + 12 + length]
        if len(body) < length or len(crc) < 4:
            raise DataError(f"PNG {path} is truncated inside its {kind.decode('latin-1')} chunk")
        if struct.unpack(">I", crc)[0] != zlib.crc32(kind + body) & 0xFFFFFFFF:
            raise DataError(f"PNG {path} is corrupt: CRC mismatch in its {kind.decode('latin-1')} chunk")
        yield kind, body
        if kind == b"IEND":
            return
        pos += 12 + length


def _read_png16(path: Path) -> tuple[np.ndarray, ImageInfo]:
    data = path.read_bytes()
    idat, icc, orientation, header = [], None, 1, None
    for kind, body in _png_chunks(data, path):
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"iCCP":
            icc = zlib.decompress(body[body.index(b"\0") + 2:])
        elif kind == b"eXIf":
            exif = Image.Exif()
            exif.load(body)
            orientation = int(exif.get(_EXIF_ORIENTATION, 1) or 1)
    assert header is not None  # _is_png16_colour checked that IHDR comes first
    width, height, _, colour_type, _, _, interlace = header
    channels = _PNG16_CHANNELS[colour_type]
    try:
        raw = zlib.decompress(b"".join(idat))
    except zlib.error as exc:
        raise DataError(f"PNG {path} has corrupt image data: {exc}") from None
    bpp = 2 * channels
    if interlace:
        arr = np.zeros((height, width, channels), np.uint16)
        pos = 0
        for x0, y0, dx, dy in _ADAM7:
            pw, ph = -(-(width - x0) // dx), -(-(height - y0) // dy)
            if pw <= 0 or ph <= 0:
                continue
            size = ph * (1 + pw * bpp)
            arr[y0::dy, x0::dx] = _png_samples(raw[pos:pos + size], ph, pw, channels, path)
            pos += size
    else:
        arr = _png_samples(raw, height, width, channels, path)
    arr = apply_orientation(arr, orientation)
    return arr, ImageInfo(path, "PNG", channels in (2, 4), icc, orientation)


def _png_samples(raw: bytes, height: int, width: int, channels: int, path: Path) -> np.ndarray:
    bpp = 2 * channels
    expected = height * (1 + width * bpp)
    if len(raw) < expected:
        raise DataError(f"PNG {path} is truncated: {len(raw)} bytes of image data, expected {expected}")
    rows = np.frombuffer(raw, np.uint8, count=expected).reshape(height, 1 + width * bpp)
    filters = rows[:, 0]
    if filters.max(initial=0) > 4:
        raise DataError(f"PNG {path} is corrupt: unknown row filter {int(filters.max())}")
    pixels = _unfilter(rows[:, 1:].reshape(height, width, bpp), filters)
    return pixels.reshape(height, width * bpp).view(">u2").reshape(height, width, channels).astype(np.uint16)


def _unfilter(x: np.ndarray, filters: np.ndarray) -> np.ndarray:
    """Undo PNG row filters on H x W x bpp bytes.

    Sub/Up/None rows are undone a row at a time with numpy. Average and Paeth make each pixel depend on
    its left neighbour, so those images are undone along anti-diagonals (all pixels with the same r + c
    at once): every pixel's left, upper and upper-left neighbours lie on earlier diagonals.
    """
    h, w, bpp = x.shape
    if np.all(filters <= 2):
        out = np.empty_like(x)
        prev = np.zeros((w, bpp), np.uint8)
        for r in range(h):
            row = x[r]
            if filters[r] == 1:
                row = np.cumsum(row, axis=0, dtype=np.uint8)  # uint8 arithmetic wraps mod 256
            elif filters[r] == 2:
                row = row + prev
            out[r] = prev = row
        return out
    # Reconstructed bytes with a zero row above and a zero column on the left, flattened so that one
    # anti-diagonal is a strided slice: moving one row down and one column left is a step of w.
    rec = np.zeros(((h + 1) * (w + 1), bpp), np.int16)
    xf = x.reshape(h * w, bpp).astype(np.int16)
    ff = filters.astype(np.int16)
    for d in range(h + w - 1):
        r0, r1 = max(0, d - w + 1), min(h - 1, d)  # rows on this diagonal
        n = r1 - r0 + 1
        c0 = d - r0
        at = (r0 + 1) * (w + 1) + c0 + 1
        here = slice(at, at + (n - 1) * w + 1, w)
        left = slice(at - 1, at - 1 + (n - 1) * w + 1, w)
        up = slice(at - w - 1, at - w - 1 + (n - 1) * w + 1, w)
        upleft = slice(at - w - 2, at - w - 2 + (n - 1) * w + 1, w)
        a, b, c = rec[left], rec[up], rec[upleft]
        p = a + b - c
        pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
        paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
        f = ff[r0:r1 + 1, None]
        pred = np.where(f == 1, a, np.where(f == 2, b, np.where(f == 3, (a + b) >> 1, np.where(f == 4, paeth, 0))))
        step = max(w - 1, 1)  # w == 1: every diagonal holds one pixel, any step will do
        xs = xf[r0 * w + c0: r0 * w + c0 + (n - 1) * step + 1: step]
        rec[here] = (xs + pred) & 255
    return rec.reshape(h + 1, w + 1, bpp)[1:, 1:].astype(np.uint8)


def encode_png16(arr: np.ndarray, icc_profile: bytes | None = None) -> bytes:
    """A 16-bit grey+alpha, RGB or RGBA PNG (H x W x 2/3/4 uint16), rows Sub-filtered for compression."""
    h, w, channels = arr.shape
    colour_type = {2: 4, 3: 2, 4: 6}[channels]
    raw = np.ascontiguousarray(arr, dtype=">u2").view(np.uint8).reshape(h, w, 2 * channels)
    sub = raw.copy()
    sub[:, 1:] -= raw[:, :-1]  # Sub filter: difference to the left pixel, byte-wise mod 256
    rows = np.concatenate([np.ones((h, 1), np.uint8), sub.reshape(h, -1)], axis=1)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    parts = [_PNG_SIGNATURE, chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0))]
    if icc_profile:
        parts.append(chunk(b"iCCP", b"ICC profile\0\0" + zlib.compress(icc_profile)))
    parts += [chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)), chunk(b"IEND", b"")]
    return b"".join(parts)


# ------------------------------------------------------------------------------------ training images


def to_uint8_chw(array: np.ndarray, channels: int) -> torch.Tensor:
    """An H x W (x C) uint8/uint16 image as a C x H x W uint8 tensor with `channels` channels, as training on
    clean images uses it: 16-bit values are scaled to 8 bits (v / 257, rounded), alpha is dropped (it carries
    no signal to denoise), grey is replicated to RGB and RGB made grey with ITU-R 601 luma weights."""
    if array.ndim == 2:
        array = array[:, :, None]
    if array.dtype == np.uint16:
        array = (array.astype(np.float64) / 257.0).round().clip(0, 255).astype(np.uint8)
    return to_chw(array, channels)


def to_chw(array: np.ndarray, channels: int) -> torch.Tensor:
    """An H x W (x C) image as a C x H x W tensor with `channels` channels, keeping its bit depth: uint8 stays
    uint8; uint16 becomes int32 (PyTorch cannot index uint16 tensors), to be divided by PIXEL_MAX[dtype]."""
    if array.ndim == 2:
        array = array[:, :, None]
    if array.dtype not in (np.uint8, np.uint16):
        raise DataError(f"expected a uint8 or uint16 image, got {array.dtype}")
    if array.shape[2] in (2, 4):  # alpha carries no signal to denoise
        array = array[:, :, :-1]
    if array.shape[2] == 1 and channels == 3:
        array = np.repeat(array, 3, axis=2)
    elif array.shape[2] == 3 and channels == 1:
        luma = np.round(array @ np.array([0.299, 0.587, 0.114]))
        array = luma.astype(array.dtype)[:, :, None]
    elif array.shape[2] != channels:
        raise DataError(f"cannot use an image with {array.shape[2]} channels as {channels}-channel data")
    if array.dtype == np.uint16:
        array = array.astype(np.int32)
    return torch.from_numpy(np.array(array, copy=True)).permute(2, 0, 1).contiguous()


#: What the largest pixel value of a tensor of each dtype stands for (see as_float).
PIXEL_MAX = {torch.uint8: 255.0, torch.int32: 65535.0}


def as_float(x: torch.Tensor) -> torch.Tensor:
    """Pixels as floats in [0, 1]: uint8 / 255, 16-bit (held as int32) / 65535; floats as they are."""
    if x.is_floating_point():
        return x.float()
    return x.float().div_(PIXEL_MAX[x.dtype])


def read_training_image(path: str | Path, channels: int, keep_16bit: bool = False) -> torch.Tensor:
    """One image file as a C x H x W tensor for training (see to_uint8_chw, or to_chw with `keep_16bit`);
    DataError naming the file."""
    array, _ = read_image(path)
    try:
        return to_chw(array, channels) if keep_16bit else to_uint8_chw(array, channels)
    except DataError as exc:
        raise DataError(f"image {path}: {exc}") from None


def read_frames(path: str | Path) -> np.ndarray:
    """The frames of a TIFF stack (pages, or the planes of one planar page) as F x H x W x C uint8/uint16;
    another image file is one frame."""
    path = Path(path)
    if path.suffix.lower() in TIFF_EXTENSIONS:
        try:
            with tifffile.TiffFile(path) as tif:
                series = tif.series[0]
                arr, axes = series.asarray(), series.axes
                colour = int(tif.pages[0].photometric) == 2  # RGB
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
    array, _ = read_image(path)
    return array[None]
