"""16-bit colour PNG (grey + alpha, RGB, RGBA), which Pillow reduces to 8 bits on reading and cannot write:
the pixels go through libpng (the `imagecodecs` package); n2n only reads the chunks around them (colour
profile, EXIF orientation, animation) and writes the colour profile.

The declared size is checked against the pixel limit before libpng allocates anything.
scripts/bench_png16.py measures this codec against the numpy one n2n had before (docs/denoising.md).
"""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from n2n.errors import DataError
from n2n.image_files.limits import check_pixels

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EXIF_ORIENTATION = 0x0112
_PNG16_CHANNELS = {4: 2, 2: 3, 6: 4}  # colour type -> samples per pixel (grey+alpha, RGB, RGBA)
_IHDR_END = len(PNG_SIGNATURE) + 8 + 13 + 4  # signature, then the IHDR chunk: length, type, 13 bytes, CRC


def is_png16_colour(head: bytes) -> bool:
    """16-bit PNGs with more than one channel: Pillow reads these as 8-bit."""
    return (
        len(head) >= 29 and head[:8] == PNG_SIGNATURE and head[12:16] == b"IHDR"
        and head[24] == 16 and head[25] in _PNG16_CHANNELS
    )


def _png_chunks(data: bytes, path: Path):
    pos = len(PNG_SIGNATURE)
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


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def read_png16(path: Path) -> tuple[np.ndarray, bytes | None, int]:
    """(H x W x C uint16 as stored, ICC profile or None, EXIF orientation)."""
    import imagecodecs

    data = path.read_bytes()
    width, height = struct.unpack(">II", data[16:24])
    check_pixels(path, width, height)  # before libpng allocates the image
    icc, orientation = None, 1
    for kind, body in _png_chunks(data, path):
        if kind == b"acTL":
            frames = struct.unpack(">I", body[:4])[0] if len(body) >= 4 else 0
            raise DataError(f"image {path} holds {frames} frames (animated PNG): n2n reads one image per file; "
                            f"save each frame as its own file")
        if kind == b"iCCP":
            icc = zlib.decompressobj().decompress(body[body.index(b"\0") + 2:], 1 << 24)  # profiles are KBs
        elif kind == b"eXIf":
            exif = Image.Exif()
            exif.load(body)
            orientation = int(exif.get(EXIF_ORIENTATION, 1) or 1)
    try:
        arr = imagecodecs.png_decode(data)
    except imagecodecs.PngError as exc:
        raise DataError(f"PNG {path} has corrupt image data: {exc}") from None
    if arr.ndim != 3 or arr.dtype != np.uint16 or arr.shape[:2] != (height, width):
        raise DataError(f"PNG {path} decoded to {arr.dtype} {arr.shape}, not the {width}x{height} 16-bit image "
                        f"its header declares")
    return arr, icc, orientation


def encode_png16(arr: np.ndarray, icc_profile: bytes | None = None) -> bytes:
    """A 16-bit grey+alpha, RGB or RGBA PNG of an H x W x 2/3/4 uint16 array, with its colour profile."""
    import imagecodecs

    data = imagecodecs.png_encode(np.ascontiguousarray(arr, dtype=np.uint16), level=6)
    if not icc_profile:
        return data
    iccp = _chunk(b"iCCP", b"ICC profile\0\0" + zlib.compress(icc_profile))
    return data[:_IHDR_END] + iccp + data[_IHDR_END:]  # iCCP must come before the image data
