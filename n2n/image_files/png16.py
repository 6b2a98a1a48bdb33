"""16-bit colour PNG (grey + alpha, RGB, RGBA), which Pillow reduces to 8 bits on reading and cannot write.

The declared size is checked against the pixel limit before anything is inflated, and the image data is
inflated no further than the declared size needs (a compressed stream may expand far beyond it).
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
#: (x0, y0, dx, dy) of the seven Adam7 interlacing passes.
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
_PNG16_CHANNELS = {4: 2, 2: 3, 6: 4}  # colour type -> samples per pixel (grey+alpha, RGB, RGBA)


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


def _inflate(data: bytes, limit: int, path: Path, what: str) -> bytes:
    """zlib data inflated to at most `limit` bytes (the rest, if any, is never produced)."""
    try:
        return zlib.decompressobj().decompress(data, limit)
    except zlib.error as exc:
        raise DataError(f"PNG {path} has corrupt {what}: {exc}") from None


def read_png16(path: Path) -> tuple[np.ndarray, bytes | None, int]:
    """(H x W x C uint16 as stored, ICC profile or None, EXIF orientation)."""
    data = path.read_bytes()
    width, height = struct.unpack(">II", data[16:24])
    check_pixels(path, width, height)  # before the image data is inflated
    if data[28] not in (0, 1):
        raise DataError(f"PNG {path} is corrupt: unknown interlace method {data[28]}")
    idat, icc, orientation = [], None, 1
    for kind, body in _png_chunks(data, path):
        if kind == b"IDAT":
            idat.append(body)
        elif kind == b"iCCP":
            icc = _inflate(body[body.index(b"\0") + 2:], 1 << 24, path, "colour profile")  # profiles are KBs
        elif kind == b"eXIf":
            exif = Image.Exif()
            exif.load(body)
            orientation = int(exif.get(EXIF_ORIENTATION, 1) or 1)
    channels = _PNG16_CHANNELS[data[25]]
    interlace = data[28]
    bpp = 2 * channels
    passes = [(x0, y0, dx, dy, -(-(width - x0) // dx), -(-(height - y0) // dy)) for x0, y0, dx, dy in _ADAM7]
    passes = [p for p in passes if p[4] > 0 and p[5] > 0]
    needed = sum(ph * (1 + pw * bpp) for *_, pw, ph in passes) if interlace else height * (1 + width * bpp)
    raw = _inflate(b"".join(idat), needed, path, "image data")
    if interlace:
        arr = np.zeros((height, width, channels), np.uint16)
        pos = 0
        for x0, y0, dx, dy, pw, ph in passes:
            size = ph * (1 + pw * bpp)
            arr[y0::dy, x0::dx] = _png_samples(raw[pos:pos + size], ph, pw, channels, path)
            pos += size
    else:
        arr = _png_samples(raw, height, width, channels, path)
    return arr, icc, orientation
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

    parts = [PNG_SIGNATURE, chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0))]
    if icc_profile:
        parts.append(chunk(b"iCCP", b"ICC profile\0\0" + zlib.compress(icc_profile)))
    parts += [chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)), chunk(b"IEND", b"")]
    return b"".join(parts)


