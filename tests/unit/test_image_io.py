"""Image reading/writing: bit depths, channels, alpha, orientation, corrupt files, model adaptation."""
from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from n2n.errors import DataError
from n2n.image_files import apply_orientation, read_image, to_model_input, write_image


def random_image(h: int, w: int, c: int, dtype, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, np.iinfo(dtype).max, (h, w, c), endpoint=True).astype(dtype)


@pytest.mark.parametrize("ext", [".png", ".tif"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_round_trip_is_exact(tmp_path, ext, dtype, channels):
    img = random_image(13, 21, channels, dtype)
    path = tmp_path / f"img{ext}"
    write_image(path, img)
    back, info = read_image(path)
    assert back.dtype == dtype and back.shape == img.shape
    np.testing.assert_array_equal(back, img)
    assert info.has_alpha == (channels in (2, 4))


def test_jpeg_round_trip_is_8_bit_and_close(tmp_path):
    img = np.repeat(np.linspace(0, 255, 40, dtype=np.uint8)[None, :, None], 30, 0).repeat(3, 2)
    write_image(tmp_path / "a.jpg", img)
    back, info = read_image(tmp_path / "a.jpg")
    assert info.format == "JPEG" and back.dtype == np.uint8 and back.shape == (30, 40, 3)
    assert np.abs(back.astype(int) - img).max() <= 3


def test_16_bit_grey_png_is_read_by_pillow_as_16_bit(tmp_path):
    img = random_image(9, 11, 1, np.uint16)
    Image.fromarray(img[:, :, 0]).save(tmp_path / "g.png")  # written by Pillow alone
    back, _ = read_image(tmp_path / "g.png")
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, img)


@pytest.mark.parametrize("channels", [2, 3, 4])
def test_our_16_bit_colour_png_is_valid_for_pillow(tmp_path, channels):
    """Pillow decodes 16-bit colour PNGs to their high bytes: an independent check of our encoder."""
    img = random_image(17, 23, channels, np.uint16)
    write_image(tmp_path / "c.png", img)
    with Image.open(tmp_path / "c.png") as im:
        high = np.asarray(im.convert("RGBA" if channels != 3 else "RGB"))
    expected = (img >> 8).astype(np.uint8)
    if channels == 2:  # Pillow shows grey + alpha as RGBA
        expected = expected[:, :, [0, 0, 0, 1]]
    np.testing.assert_array_equal(high, expected)


def _filtered_png16(img: np.ndarray, interlace: bool) -> bytes:
    """A 16-bit colour PNG using all five row filters (and Adam7 if asked), as other encoders write."""
    h, w, c = img.shape
    bpp = 2 * c

    def filtered(sub: np.ndarray) -> bytes:
        raw = sub.astype(">u2").view(np.uint8).reshape(sub.shape[0], -1).astype(np.int32)
        out = []
        for r, row in enumerate(raw):
            prev = raw[r - 1] if r else np.zeros_like(row)
            a = np.concatenate([np.zeros(bpp, np.int32), row[:-bpp]])
            cc = np.concatenate([np.zeros(bpp, np.int32), prev[:-bpp]])
            p = a + prev - cc
            pa, pb, pc = abs(p - a), abs(p - prev), abs(p - cc)
            paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, prev, cc))
            f = r % 5
            pred = [0 * a, a, prev, (a + prev) // 2, paeth][f]
            out.append(bytes([f]) + ((row - pred) % 256).astype(np.uint8).tobytes())
        return b"".join(out)

    if interlace:
        passes = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
        data = b"".join(filtered(img[y0::dy, x0::dx]) for x0, y0, dx, dy in passes if img[y0::dy, x0::dx].size)
    else:
        data = filtered(img)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    colour_type = {2: 4, 3: 2, 4: 6}[c]
    ihdr = struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, int(interlace))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(data)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("interlace", [False, True])
@pytest.mark.parametrize("channels", [3, 4])
def test_16_bit_colour_png_with_every_filter_and_interlacing(tmp_path, interlace, channels):
    img = random_image(19, 13, channels, np.uint16, seed=channels)
    path = tmp_path / "f.png"
    path.write_bytes(_filtered_png16(img, interlace))
    with Image.open(path) as im:  # the file itself is right: Pillow agrees on the high bytes
        np.testing.assert_array_equal(np.asarray(im)[..., :channels], (img >> 8).astype(np.uint8))
    back, _ = read_image(path)
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, img)


def test_rgba_alpha_survives_bit_exactly(tmp_path):
    for dtype in (np.uint8, np.uint16):
        img = random_image(20, 30, 4, dtype)
        x, restore = to_model_input(img, 3)
        assert x.shape == (1, 3, 20, 30)
        out = restore(1 - x)  # a "denoiser" that changes every colour value
        np.testing.assert_array_equal(out[:, :, 3], img[:, :, 3])
        assert out.dtype == dtype and not np.array_equal(out[:, :, :3], img[:, :, :3])
        write_image(tmp_path / "a.png", out)
        np.testing.assert_array_equal(read_image(tmp_path / "a.png")[0][:, :, 3], img[:, :, 3])


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("channels, model, batch", [(1, 3, 1), (3, 3, 1), (3, 1, 3), (1, 1, 1), (2, 3, 1), (4, 1, 3)])
def test_channel_adaptation_round_trips_exactly(channels, model, batch, dtype):
    img = random_image(7, 9, channels, dtype)
    x, restore = to_model_input(img, model)
    assert x.shape == (batch, model, 7, 9) and x.dtype == torch.float32
    assert 0 <= x.min() and x.max() <= 1
    back = restore(x.clone())  # identity network
    assert back.dtype == dtype
    np.testing.assert_array_equal(back, img)


def test_grey_image_on_rgb_model_averages_the_outputs():
    img = np.full((4, 4, 1), 100, np.uint8)
    x, restore = to_model_input(img, 3)
    y = torch.stack([x[0, 0] * 0 + 0.2, x[0, 1] * 0 + 0.4, x[0, 2] * 0 + 0.6])[None]
    assert (restore(y) == round(0.4 * 255)).all()


def test_unadaptable_channels_are_refused():
    with pytest.raises(DataError, match="2 colour channel"):
        to_model_input(random_image(4, 4, 2, np.uint8), 3, has_alpha=False)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_matches_pillow(tmp_path, orientation):
    img = random_image(5, 7, 3, np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(img).save(tmp_path / "o.png", exif=exif)
    with Image.open(tmp_path / "o.png") as im:
        expected = np.asarray(ImageOps.exif_transpose(im))
    np.testing.assert_array_equal(apply_orientation(img, orientation), expected)
    back, info = read_image(tmp_path / "o.png")
    np.testing.assert_array_equal(back, expected)
    assert info.orientation == orientation


def test_jpeg_exif_orientation_rotates(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.fromarray(random_image(20, 40, 3, np.uint8)).save(tmp_path / "r.jpg", exif=exif)
    back, info = read_image(tmp_path / "r.jpg")
    assert back.shape == (40, 20, 3)
    assert info.orientation == 6


def test_tiff_orientation_tag_is_applied(tmp_path):
    import tifffile

    img = random_image(6, 10, 1, np.uint16)
    tifffile.imwrite(tmp_path / "o.tif", img[:, :, 0], extratags=[(274, "H", 1, 8, True)])
    back, _ = read_image(tmp_path / "o.tif")
    np.testing.assert_array_equal(back, np.rot90(img, 1))


def test_lzw_tiff_falls_back_to_pillow(tmp_path):
    img = random_image(8, 12, 3, np.uint8)
    Image.fromarray(img).save(tmp_path / "l.tif", compression="tiff_lzw")
    back, _ = read_image(tmp_path / "l.tif")
    np.testing.assert_array_equal(back, img)


def test_palette_and_bilevel_images_become_rgb_and_grey(tmp_path):
    Image.fromarray(random_image(6, 6, 3, np.uint8)).convert("P").save(tmp_path / "p.png")
    Image.new("1", (5, 4), 1).save(tmp_path / "b.png")
    assert read_image(tmp_path / "p.png")[0].shape == (6, 6, 3)
    bilevel, _ = read_image(tmp_path / "b.png")
    assert bilevel.shape == (4, 5, 1) and (bilevel == 255).all()


@pytest.mark.parametrize("name, make", [
    ("garbage.png", lambda p: p.write_bytes(b"this is not an image")),
    ("empty.jpg", lambda p: p.write_bytes(b"")),
    ("cut.png", lambda p: p.write_bytes(_png_bytes(np.uint8)[:-60])),
    ("cut16.png", lambda p: p.write_bytes(_png_bytes(np.uint16)[:-60])),
    ("cut.jpg", lambda p: p.write_bytes(_jpeg_bytes()[: len(_jpeg_bytes()) // 2])),
])
def test_unreadable_images_raise_data_error_naming_the_file(tmp_path, name, make):
    make(tmp_path / name)
    with pytest.raises(DataError, match=name):
        read_image(tmp_path / name)


def test_missing_file_and_unsupported_writes_raise_data_error(tmp_path):
    with pytest.raises(DataError, match="nope.png"):
        read_image(tmp_path / "nope.png")
    with pytest.raises(DataError, match="8-bit"):
        write_image(tmp_path / "x.jpg", random_image(4, 4, 3, np.uint16))
    with pytest.raises(DataError, match="alpha"):
        write_image(tmp_path / "x.jpg", random_image(4, 4, 4, np.uint8))
    with pytest.raises(DataError, match="extension"):
        write_image(tmp_path / "x.unknown", random_image(4, 4, 3, np.uint8))


def _png_bytes(dtype) -> bytes:
    import io

    img = random_image(64, 64, 3, dtype)
    if dtype == np.uint16:
        from n2n.image_files import encode_png16

        return encode_png16(img)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def _jpeg_bytes() -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(random_image(64, 64, 3, np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


@pytest.mark.parametrize("ext, dtype",
                         [(".png", np.uint8), (".png", np.uint16), (".tif", np.uint16), (".jpg", np.uint8)])
def test_colour_profile_is_kept(tmp_path, ext, dtype):
    profile = b"\0\0\x02\x0cfake icc profile" * 8
    write_image(tmp_path / f"p{ext}", random_image(8, 8, 3, dtype), icc_profile=profile)
    assert read_image(tmp_path / f"p{ext}")[1].icc_profile == profile
