"""The most pixels one image file may declare, checked from its header before anything is decoded.

A few kilobytes of compressed data can declare an image of billions of pixels (a "decompression bomb"):
decoding it allocates the declared size first. Every reader in n2n.image_files compares the declared size
with this limit before it allocates, and Pillow's own check (a warning, then an error above twice its
limit) is replaced by this one so that one limit, set by `--max-pixels` or `data.max_pixels`, holds for
every format.
"""
from __future__ import annotations

from pathlib import Path

from PIL import Image

from n2n.errors import ConfigError, DataError

#: 250 million pixels: a 16-bit RGB image of that size takes 1.5 GB as read, 3 GB as float32 for the network.
DEFAULT_MAX_PIXELS = 250_000_000
#: How the user raises the limit, for the messages.
HOW_TO_RAISE = "raise the limit: n2n denoise --max-pixels N, eval.py max_pixels=N, train.py data.max_pixels=N"

_max_pixels = DEFAULT_MAX_PIXELS
Image.MAX_IMAGE_PIXELS = None  # replaced by check_pixels, which every reader calls before decoding


def set_max_pixels(value: int | None, option: str = "data.max_pixels") -> None:
    """Set the process's limit; None restores the default. ConfigError naming `option` if not an integer >= 1."""
    global _max_pixels
    if value is None:
        _max_pixels = DEFAULT_MAX_PIXELS
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{option}={value!r} must be an integer >= 1 (the most pixels one image file may "
                          f"declare; default {DEFAULT_MAX_PIXELS:,}), or null for the default")
    _max_pixels = value


def max_pixels() -> int:
    return _max_pixels


def check_pixels(path: str | Path, width: int, height: int, frames: int = 1, limit: int | None = None) -> None:
    """DataError naming the file if `frames` images of width x height exceed the limit (or have no pixels)."""
    limit = _max_pixels if limit is None else limit
    width, height, frames = int(width), int(height), int(frames)
    what = f"{width}x{height}" + (f" x {frames} frames" if frames != 1 else "")
    if width < 1 or height < 1 or frames < 1:
        raise DataError(f"image {path} declares {what} pixels: it is corrupt (an image has at least one pixel)")
    total = width * height * frames
    if total > limit:
        raise DataError(f"image {path} declares {what} = {total:,} pixels, more than the limit of {limit:,}: "
                        f"refused before decoding (a small file can declare a size that would exhaust memory); "
                        f"if the file is genuine, {HOW_TO_RAISE}")
