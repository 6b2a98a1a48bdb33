"""Training, eval and `n2n denoise` read images through one reader (n2n.image_files). Before the two readers
were merged, training had its own; this pins what that reader produced, byte for byte, on every kind of file
both accept, so that merging them changed no training data. The one deliberate difference: 16-bit colour PNG
and TIFF, which the old reader let Pillow cut to 8 bits, are now scaled as 16-bit grey always was (v / 257,
rounded): at most one level apart."""
from __future__ import annotations

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image, ImageOps

from helpers.images import smooth_image
from n2n.image_files import encode_png16, read_training_image


def old_training_reader(path, channels: int) -> torch.Tensor:
    """n2n.data.sources.read_image_file and _to_chw as they were (v0.1), the reference."""
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        im.load()
        if im.mode in ("I;16", "I;16B", "I;16L", "I"):
            array = (np.asarray(im, dtype=np.float64) / 257.0).round().clip(0, 255).astype(np.uint8)
        else:
            array = np.asarray(im.convert("RGBA" if "A" in im.getbands() else "RGB"))
    if array.ndim == 2:
        array = array[:, :, None]
    if array.shape[2] == 4:
        array = array[:, :, :3]
    if array.shape[2] == 1 and channels == 3:
        array = np.repeat(array, 3, axis=2)
    elif array.shape[2] == 3 and channels == 1:
        array = np.round(array @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)[:, :, None]
    return torch.from_numpy(np.array(array, copy=True)).permute(2, 0, 1).contiguous()


def _files(folder):
    rgb = smooth_image(37, 53, 1)
    grey = rgb[:, :, 0]
    grey16 = (np.linspace(0, 65535, 37 * 53).reshape(37, 53)).astype(np.uint16)
    files = {}

    def save(name, image, **options):
        files[name] = folder / name
        image.save(files[name], **options)

    save("rgb.png", Image.fromarray(rgb))
    save("grey.png", Image.fromarray(grey))
    save("rgba.png", Image.fromarray(np.dstack([rgb, np.full(grey.shape, 200, np.uint8)])))
    save("grey_alpha.png", Image.fromarray(np.dstack([grey, np.full(grey.shape, 90, np.uint8)]), "LA"))
    save("palette.png", Image.fromarray(rgb).convert("P", palette=Image.ADAPTIVE, colors=64))
    save("palette_transparent.png", Image.fromarray(rgb).convert("P", palette=Image.ADAPTIVE, colors=64),
         transparency=3)
    save("grey16.png", Image.fromarray(grey16))
    save("rgb.bmp", Image.fromarray(rgb))
    save("rgb.tif", Image.fromarray(rgb))
    save("grey.tif", Image.fromarray(grey))
    files["grey16.tif"] = folder / "grey16.tif"
    tifffile.imwrite(files["grey16.tif"], grey16)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: the pixels are stored sideways
    save("rotated.jpg", Image.fromarray(rgb), exif=exif, quality=95)
    save("plain.jpg", Image.fromarray(rgb), quality=90)
    return files


@pytest.mark.parametrize("channels", [1, 3])
def test_the_merged_reader_gives_the_old_training_bytes(tmp_path, channels):
    files = _files(tmp_path)
    for name, path in files.items():
        old, new = old_training_reader(path, channels), read_training_image(path, channels)
        assert new.dtype == torch.uint8 and new.shape == old.shape, name
        assert torch.equal(new, old), name
    assert read_training_image(files["rotated.jpg"], 3).shape == (3, 53, 37)  # upright


def test_16_bit_colour_is_scaled_not_cut(tmp_path):
    rgb16 = (np.random.default_rng(0).integers(0, 65536, (20, 30, 3))).astype(np.uint16)
    png, tif = tmp_path / "rgb16.png", tmp_path / "rgb16.tif"
    png.write_bytes(encode_png16(rgb16))
    tifffile.imwrite(tif, rgb16, photometric="rgb")
    expected = torch.from_numpy((rgb16 / 257.0).round().astype(np.uint8)).permute(2, 0, 1)
    for path in (png, tif):
        new = read_training_image(path, 3)
        assert torch.equal(new, expected), path.name
    # what the old reader did with the PNG (Pillow's 8-bit cut): never more than one level away
    assert (old_training_reader(png, 3).int() - expected.int()).abs().max() <= 1
