"""Class: a small file declaring a huge image is refused before anything is allocated, on every decoder path
(16-bit colour PNG, Pillow's PNG/JPEG/GIF/BMP, tifffile's TIFF and Pillow's TIFF fallback, TIFF stacks,
training reads, the course's pickles), in one line naming the file, within a second and a few hundred MB."""
from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch

from helpers import bombs
from n2n.data.sources import load_tensor_pair
from n2n.errors import ConfigError, DataError
from n2n.image_files import (
    DEFAULT_MAX_PIXELS,
    max_pixels,
    read_frames,
    read_image,
    set_max_pixels,
    write_image,
)

ROOT = Path(__file__).resolve().parents[2]

BOMBS = [  # (reader, file name, maker)
    ("image", "rgb16.png", lambda p: bombs.png(p, 16, 2)),
    ("image", "rgba16.png", lambda p: bombs.png(p, 16, 6)),
    ("image", "grey16.png", lambda p: bombs.png(p, 16, 0)),
    ("image", "rgb8.png", lambda p: bombs.png(p, 8, 2)),
    ("image", "photo.jpg", bombs.jpeg),
    ("image", "anim.gif", bombs.gif),
    ("image", "old.bmp", bombs.bmp),
    ("image", "rgb16.tif", lambda p: bombs.tiff(p)),
    ("image", "palette.tif", lambda p: bombs.tiff(p, channels=1, photometric="palette")),  # Pillow's TIFF path
    ("frames", "stack.tif", lambda p: bombs.tiff(p, pages=3, channels=1, side=10000)),  # 3 x 100 MP
    ("frames", "frame.png", lambda p: bombs.png(p, 16, 2)),
    ("training", "train16.png", lambda p: bombs.png(p, 16, 2)),
    ("training", "train.jpg", bombs.jpeg),
    ("pickle", "train_data.pkl", bombs.torch_zip_bomb),
]


@pytest.fixture(scope="module")
def probed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bombs")
    cases = [(reader, make(folder / name)) for reader, name, make in BOMBS]
    sizes = {str(p): p.stat().st_size for _, p in cases}
    return {Path(row["path"]).name: {**row, "size": sizes[row["path"]]} for row in bombs.probe(cases, ROOT)}


@pytest.mark.parametrize("name", [name for _, name, _ in BOMBS])
def test_declared_size_refused_before_decoding(probed, name):
    row = probed[name]
    assert row["size"] < 3_000_000  # the file itself is small
    assert row["message"] is not None and not row["message"].startswith("UNEXPECTED"), row["message"]
    assert name in row["message"] and "\n" not in row["message"]
    assert row["seconds"] < 1.0, row
    assert row["peak_mb"] < 300, row  # decoding any of them would take 1.6 GB or more


def test_the_message_says_the_limit_and_how_to_raise_it(probed):
    message = probed["rgb16.png"]["message"]
    assert "40000x40000" in message and f"{DEFAULT_MAX_PIXELS:,}" in message
    assert "--max-pixels" in message and "data.max_pixels" in message


def test_inflation_stops_at_the_declared_size(tmp_path):
    """A 16-bit PNG of a small declared size whose image data inflates to 64 MB: only what the size needs is
    inflated (the rest is ignored, as PNG decoders do), so memory follows the declared size."""
    rows = 64 * (1 + 64 * 6)
    path = bombs.png(tmp_path / "small.png", 16, 2, side=64, idat=zlib.compress(b"\0" * (64 << 20), 9))
    [row] = bombs.probe([("image", path)], ROOT)
    assert row["message"] is None and row["peak_mb"] < 40, row
    assert rows < 64 << 20


def test_the_limit_is_settable_and_applies_to_real_files(tmp_path):
    image = np.zeros((100, 120, 3), np.uint16)
    write_image(tmp_path / "a.png", image)
    write_image(tmp_path / "a.tif", image)
    tifffile.imwrite(tmp_path / "s.tif", np.zeros((5, 50, 50), np.uint8))
    try:
        set_max_pixels(12_000)
        assert read_image(tmp_path / "a.png")[0].shape == (100, 120, 3)  # exactly at the limit
        set_max_pixels(11_999)
        for name in ("a.png", "a.tif"):
            with pytest.raises(DataError, match=f"{name} declares 120x100 = 12,000 pixels"):
                read_image(tmp_path / name)
        with pytest.raises(DataError, match="s.tif declares 50x50 x 5 frames"):  # a stack counts all its frames
            read_frames(tmp_path / "s.tif")
    finally:
        set_max_pixels(None)
    assert max_pixels() == DEFAULT_MAX_PIXELS


@pytest.mark.parametrize("value", [0, -5, 2.5, "many", True])
def test_bad_limits_are_refused(value):
    with pytest.raises(ConfigError, match="data.max_pixels"):
        set_max_pixels(value)


def test_pickle_limit_counts_rgb_pixels(tmp_path):
    path = tmp_path / "val.pkl"
    torch.save((torch.zeros(2, 3, 40, 40, dtype=torch.uint8), torch.zeros(2, 3, 40, 40, dtype=torch.uint8)), path)
    try:
        set_max_pixels(2 * 2 * 40 * 40)  # exactly the two tensors' pixels
        assert load_tensor_pair(path, "data.val_path", ("a", "b"))[0].shape == (2, 3, 40, 40)
        set_max_pixels(1000)
        with pytest.raises(DataError, match="val.pkl holds 19,200 bytes of tensors, more than the limit"):
            load_tensor_pair(path, "data.val_path", ("a", "b"))
    finally:
        set_max_pixels(None)


def test_n2n_denoise_skips_the_bomb_and_takes_max_pixels(tmp_path, capsys):
    from n2n.cli import main

    inputs = tmp_path / "in"
    inputs.mkdir()
    bombs.png(inputs / "bomb.png", 16, 2)
    write_image(inputs / "small.png", np.full((40, 50, 3), 128, np.uint8))
    assert main(["denoise", str(inputs), "-o", str(tmp_path / "out")]) == 1  # some inputs failed
    err = capsys.readouterr().err
    assert "bomb.png declares 40000x40000" in err and "Traceback" not in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["small.png"]
    assert main(["denoise", str(inputs / "small.png"), "-o", str(tmp_path / "o2"), "--max-pixels", "1999"]) == 1
    assert "small.png declares 50x40 = 2,000 pixels, more than the limit of 1,999" in capsys.readouterr().err
    assert max_pixels() == 1999
    set_max_pixels(None)
    with pytest.raises(SystemExit) as exit_:
        main(["denoise", str(inputs / "small.png"), "-o", str(tmp_path / "o3"), "--max-pixels", "0"])
    assert exit_.value.code == 2


def test_training_config_takes_data_max_pixels(tmp_path):
    from n2n.config_schema import TRAIN_OPTIONS, check_options
    from n2n.data.datamodule import build_source

    check_options({"data": {"max_pixels": 1000}}, TRAIN_OPTIONS)
    with pytest.raises(ConfigError, match="data.max_pixels=abc is not allowed"):
        check_options({"data": {"max_pixels": "abc"}}, TRAIN_OPTIONS)
    write_image(tmp_path / "a.png", np.zeros((64, 64, 3), np.uint8))
    source = build_source({"name": "folder", "train_dir": str(tmp_path), "val_dir": str(tmp_path), "channels": 3,
                           "crop_size": 32, "max_pixels": 4000})
    try:
        with pytest.raises(DataError, match="a.png declares 64x64 = 4,096 pixels"):
            source.train_images()
    finally:
        set_max_pixels(None)
