"""Small files that declare huge images ("decompression bombs"), one per decoder path of n2n.image_files, and
a runner that reads each in a fresh process and reports the time and the memory the read took."""
from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import tifffile
import torch
from PIL import Image

#: Declared sides: 40000 x 40000 = 1.6 billion pixels, far above the default limit (250 million); decoding
#: any of them would allocate 1.6 to 19 GB.
SIDE = 40000


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png(path: Path, bits: int, colour_type: int, side: int = SIDE, idat: bytes | None = None) -> Path:
    """A valid PNG header declaring side x side pixels, with `idat` (default: a few compressed zero rows)."""
    data = idat if idat is not None else zlib.compress(b"\0" * 65536)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, bits, colour_type,
                                                                           0, 0, 0))
                     + _png_chunk(b"IDAT", data) + _png_chunk(b"IEND", b""))
    return path


def jpeg(path: Path, side: int = 65000) -> Path:
    """A real 16 x 16 JPEG whose frame header (SOF0) is patched to declare side x side."""
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (90, 120, 200)).save(buf, "JPEG")
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, side, side)
    path.write_bytes(bytes(data))
    return path


def _patch_tiff_sizes(path: Path, side: int) -> None:
    """Every page's ImageWidth and ImageLength set to `side` in place."""
    data = bytearray(path.read_bytes())
    with tifffile.TiffFile(path) as tif:
        for page in tif.pages:
            for code in (256, 257):
                tag = page.tags[code]
                fmt = "<I" if tag.dtype == 4 else "<H"
                struct.pack_into(fmt, data, tag.valueoffset, side)
    path.write_bytes(bytes(data))


def tiff(path: Path, pages: int = 1, channels: int = 3, side: int = SIDE, photometric: str | None = None) -> Path:
    """A small uint16 TIFF (one page or a stack of pages) patched to declare side x side pixels per page."""
    shape = (pages, 8, 8, channels) if channels > 1 else (pages, 8, 8)
    array = np.zeros(shape if pages > 1 else shape[1:], np.uint8 if photometric == "palette" else np.uint16)
    kw = {"photometric": photometric or ("rgb" if channels == 3 else "minisblack")}
    if photometric == "palette":
        kw["colormap"] = np.zeros((3, 256), np.uint16)
    tifffile.imwrite(path, array, **kw)
    _patch_tiff_sizes(path, side)
    return path


def gif(path: Path, side: int = 65000) -> Path:
    """A real 8 x 8 GIF whose logical screen and image descriptor declare side x side."""
    buf = io.BytesIO()
    Image.new("P", (8, 8)).save(buf, "GIF")
    data = bytearray(buf.getvalue())
    struct.pack_into("<HH", data, 6, side, side)
    desc = data.index(b"\x2c")
    struct.pack_into("<HH", data, desc + 5, side, side)
    path.write_bytes(bytes(data))
    return path


def bmp(path: Path, side: int = SIDE) -> Path:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "BMP")
    data = bytearray(buf.getvalue())
    struct.pack_into("<ii", data, 18, side, side)
    path.write_bytes(bytes(data))
    return path


def torch_zip_bomb(path: Path, declared: int = 8 * 2**30) -> Path:
    """A torch.save archive whose one tensor entry is deflated and declares `declared` bytes: torch.load
    would allocate them all."""
    small = path.with_suffix(".small")
    torch.save((torch.zeros(1, 3, 8, 8, dtype=torch.uint8), torch.zeros(1, 3, 8, 8, dtype=torch.uint8)), small)
    with zipfile.ZipFile(small) as src, zipfile.ZipFile(path, "w") as dst:
        for info in src.infolist():
            body = src.read(info)
            if "/data/" in info.filename:
                body = b"\0" * (1 << 22)  # 4 MB of zeros, deflated to a few KB
                dst.writestr(info.filename, body, compress_type=zipfile.ZIP_DEFLATED)
            else:
                dst.writestr(info, body)
    small.unlink()
    # declare far more than is there: patch both the local header and the central directory sizes
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            if "/data/" in info.filename:
                struct.pack_into("<I", data, info.header_offset + 22, min(declared, 0xFFFFFFFF))
    central = data.rfind(b"PK\x01\x02")
    while central != -1:
        name_len = struct.unpack_from("<H", data, central + 28)[0]
        if b"/data/" in bytes(data[central + 46:central + 46 + name_len]):
            struct.pack_into("<I", data, central + 24, min(declared, 0xFFFFFFFF))
        central = data.rfind(b"PK\x01\x02", 0, central)
    path.write_bytes(bytes(data))
    return path


_PROBE = r"""
import json, resource, sys, time
import n2n.image_files as images
from n2n.data.sources import load_tensor_pair
from n2n.errors import N2NError
readers = {"image": lambda p: images.read_image(p), "frames": lambda p: images.read_frames(p),
           "training": lambda p: images.read_training_image(p, 3, keep_16bit=True),
           "pickle": lambda p: load_tensor_pair(p, "data.train_path", ("a", "b"))}
out = []
for reader, path in json.loads(sys.argv[1]):
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    try:
        readers[reader](path)
        message = None
    except N2NError as exc:
        message = str(exc)
    except Exception as exc:
        message = "UNEXPECTED " + type(exc).__name__ + ": " + str(exc)
    out.append({"path": path, "message": message, "seconds": time.perf_counter() - start,
                "peak_mb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024})
print(json.dumps(out))
"""


def probe(cases: list[tuple[str, Path]], root: Path) -> list[dict]:
    """Read each (reader, file) in one fresh process: per case the error message (None if it was read),
    seconds, and how far the process's peak memory rose (MB; the peak only grows, so a case that allocated
    shows in its own row)."""
    result = subprocess.run([sys.executable, "-c", _PROBE, json.dumps([(r, str(p)) for r, p in cases])],
                            cwd=root, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])
