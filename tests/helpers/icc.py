"""A small but real CMYK ICC profile (ICC v2 printer profile with a lut8 A2B0 table to Lab), since Pillow can
only create RGB and Lab profiles: CMYK files with a profile are then testable offline."""
from __future__ import annotations

import itertools
import struct

import numpy as np


def _s15(x: float) -> bytes:
    return struct.pack(">i", round(x * 65536))


def _lab_of_cmyk(c: float, m: float, y: float, k: float) -> tuple[float, float, float]:
    """Lab (D50) of the naive RGB of a CMYK ink mix: what the lookup table stores at the grid's corners."""
    from skimage.color import rgb2lab

    rgb = np.array([[[(1 - c) * (1 - k), (1 - m) * (1 - k), (1 - y) * (1 - k)]]], dtype=np.float64)
    return tuple(rgb2lab(rgb, illuminant="D50")[0, 0])


def cmyk_profile() -> bytes:
    identity = bytes(range(256))
    clut = bytearray()
    for c, m, y, k in itertools.product((0, 1), repeat=4):  # the first input varies slowest
        L, a, b = _lab_of_cmyk(c, m, y, k)
        clut += bytes([round(L / 100 * 255), round(min(max(a + 128, 0), 255)), round(min(max(b + 128, 0), 255))])
    lut = (b"mft1" + b"\0" * 4 + bytes([4, 3, 2, 0])
           + b"".join(_s15(v) for v in (1, 0, 0, 0, 1, 0, 0, 0, 1))
           + identity * 4 + bytes(clut) + identity * 3)
    white = b"XYZ " + b"\0" * 4 + _s15(0.9642) + _s15(1.0) + _s15(0.8249)
    text = b"n2n test CMYK\0"
    desc = b"desc" + b"\0" * 4 + struct.pack(">I", len(text)) + text + b"\0" * 8 + b"\0" * 3 + b"\0" * 67
    tags = [(b"A2B0", lut), (b"wtpt", white), (b"desc", desc)]
    offset = 128 + 4 + 12 * len(tags)
    table, body = struct.pack(">I", len(tags)), b""
    for sig, data in tags:
        data += b"\0" * (-len(data) % 4)
        table += sig + struct.pack(">II", offset + len(body), len(data))
        body += data
    size = offset + len(body)
    header = (struct.pack(">I", size) + b"lcms" + struct.pack(">I", 0x02100000) + b"prtr" + b"CMYK" + b"Lab "
              + b"\0" * 12 + b"acsp" + b"\0" * 4 + b"\0" * 4 + b"\0" * 4 + b"\0" * 4 + b"\0" * 8 + b"\0" * 4
              + _s15(0.9642) + _s15(1.0) + _s15(0.8249) + b"\0" * 4 + b"\0" * 16 + b"\0" * 28)
    assert len(header) == 128
    return header + table + body
