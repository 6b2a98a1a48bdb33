"""Class: a reader keeps all of what a file holds, converts it correctly, or refuses it in one line. Multi-frame
files (animated GIF, WebP and PNG, multi-page and multi-series TIFFs) are never reduced to their first frame;
CMYK pixels with a colour profile are converted through it and tagged sRGB; captures of one scene whose files
hold different channels (grey and RGB) are refused, as docs/own-data.md says."""
from __future__ import annotations

import io

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageCms

from helpers.icc import cmyk_profile
from n2n.data.sources.pairs import read_pairs
from n2n.data.sources.stacks import read_stack
from n2n.errors import DataError
from n2n.image_files import read_frames, read_image, write_image


def _frames(mode: str = "RGB", n: int = 3, size=(24, 16)) -> list[Image.Image]:
    return [Image.new(mode, size, (40 * i, 80, 200 - 40 * i) if mode == "RGB" else 60 * i) for i in range(n)]


def _pillow_multi(fmt: str, **kw):
    def make(path):
        first, *rest = _frames("RGB")
        first.save(path, fmt, save_all=True, append_images=rest, **kw)
    return make


def _tiff_pages(path):
    tifffile.imwrite(path, np.zeros((3, 16, 24), np.uint16), photometric="minisblack")  # 3 pages


def _tiff_two_series(path):
    tifffile.imwrite(path, np.zeros((16, 24), np.uint16))
    tifffile.imwrite(path, np.zeros((8, 12, 3), np.uint8), append=True, photometric="rgb")


def _tiff_palette_pages(path):
    colormap = np.zeros((3, 256), np.uint16)
    tifffile.imwrite(path, np.zeros((2, 16, 24), np.uint8), photometric="palette", colormap=colormap)


MULTI_FRAME = [  # (file name, maker): read_image must refuse each, never return its first frame
    ("anim.gif", _pillow_multi("GIF")),
    ("anim.webp", _pillow_multi("WEBP", lossless=True)),
    ("anim.png", _pillow_multi("PNG")),  # APNG
    ("pages.tif", _tiff_pages),
    ("two_series.tif", _tiff_two_series),
    ("palette_pages.tif", _tiff_palette_pages),  # Pillow's TIFF path
]


@pytest.mark.parametrize("name,make", MULTI_FRAME, ids=[n for n, _ in MULTI_FRAME])
def test_multi_frame_files_are_refused_not_cut_to_one_frame(tmp_path, name, make):
    path = tmp_path / name
    make(path)
    with pytest.raises(DataError) as err:
        read_image(path)
    message = str(err.value)
    assert str(path) in message and "\n" not in message
    assert any(w in message for w in ("frames", "images", "stack")), message


@pytest.mark.parametrize("fmt,ext", [("GIF", ".gif"), ("WEBP", ".webp"), ("PNG", ".png")])
def test_single_frame_files_of_the_same_formats_are_read(tmp_path, fmt, ext):
    path = tmp_path / f"one{ext}"
    _frames("RGB", 1)[0].save(path, fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    assert read_image(path)[0].shape == (16, 24, 3)


def test_a_tiff_with_a_thumbnail_is_one_image(tmp_path):
    path = tmp_path / "scan.tif"
    image = np.arange(16 * 24, dtype=np.uint16).reshape(16, 24)
    tifffile.imwrite(path, image)
    tifffile.imwrite(path, np.zeros((4, 6), np.uint16), append=True, subfiletype=1)  # reduced-resolution copy
    np.testing.assert_array_equal(read_image(path)[0][:, :, 0], image)


def test_a_stack_of_several_series_is_refused_whole(tmp_path):
    path = tmp_path / "scene.tif"
    tifffile.imwrite(path, np.zeros((3, 16, 24), np.uint16))
    tifffile.imwrite(path, np.zeros((2, 8, 12), np.uint16), append=True)  # 2 more pages of another size
    with pytest.raises(DataError, match="scene.tif holds 2 series of pages"):
        read_frames(path)
    with pytest.raises(DataError, match="scene.tif holds 2 series"):
        read_stack(path, 1)
    one = tmp_path / "ok.tif"
    tifffile.imwrite(one, np.zeros((3, 16, 24), np.uint16))
    assert read_frames(one).shape == (3, 16, 24, 1)


def _cmyk(path, fmt: str, profile: bytes | None):
    im = Image.new("CMYK", (32, 32), (0, 0, 0, 0))  # white paper
    im.paste((0, 0, 0, 255), (0, 0, 16, 32))  # black ink on the left half
    im.paste((255, 0, 0, 0), (16, 16, 32, 32))  # cyan bottom right
    kw = {"icc_profile": profile} if profile else {}
    im.save(path, fmt, **({"quality": 100} if fmt == "JPEG" else {}), **kw)


@pytest.mark.parametrize("fmt,ext", [("JPEG", ".jpg"), ("TIFF", ".tif")])
def test_cmyk_with_a_profile_is_converted_through_it_and_tagged_srgb(tmp_path, fmt, ext):
    path = tmp_path / f"print{ext}"
    _cmyk(path, fmt, cmyk_profile())
    rgb, info = read_image(path)
    assert rgb.shape == (32, 32, 3)
    profile = ImageCms.ImageCmsProfile(io.BytesIO(info.icc_profile))
    assert profile.profile.xcolor_space.strip() == "RGB" and "sRGB" in ImageCms.getProfileDescription(profile)
    np.testing.assert_allclose(rgb[4:12, 20:28].mean((0, 1)), [255, 255, 255], atol=6)  # white stays white
    np.testing.assert_allclose(rgb[4:28, 2:12].mean((0, 1)), [0, 0, 0], atol=6)  # black ink is black
    assert rgb[20:28, 20:28, 0].mean() < 40 and rgb[20:28, 20:28, 1:].mean() > 200  # cyan
    write_image(tmp_path / "out.png", rgb, icc_profile=info.icc_profile)  # written back tagged sRGB, not CMYK
    with Image.open(tmp_path / "out.png") as out:
        assert "sRGB" in ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(out.info["icc_profile"])))


def test_cmyk_with_a_broken_profile_is_refused(tmp_path):
    path = tmp_path / "bad.jpg"
    _cmyk(path, "JPEG", b"\0" * 200)
    with pytest.raises(DataError, match="bad.jpg is CMYK with a colour profile that cannot convert it"):
        read_image(path)


def test_cmyk_without_a_profile_is_converted_and_untagged(tmp_path):
    path = tmp_path / "plain.jpg"
    _cmyk(path, "JPEG", None)
    rgb, info = read_image(path)
    assert rgb.shape == (32, 32, 3) and info.icc_profile is None


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("layout_a,layout_b", [("grey", "rgb"), ("rgb", "grey"), ("rgb", "rgba")])
def test_pairs_with_different_channels_are_refused(tmp_path, channels, layout_a, layout_b):
    shapes = {"grey": (40, 40, 1), "rgb": (40, 40, 3), "rgba": (40, 40, 4)}
    for folder, layout in (("A", layout_a), ("B", layout_b)):
        (tmp_path / folder).mkdir()
        write_image(tmp_path / folder / "s.png", np.full(shapes[layout], 100, np.uint8))
    with pytest.raises(DataError, match="dir_a/s.png is .* but data.dir_b/s.png is .*same channels"):
        read_pairs(tmp_path / "A", tmp_path / "B", ["s.png"], channels, ("data.dir_a", "data.dir_b"))


def test_pairs_with_the_same_channels_are_read(tmp_path):
    for folder in ("A", "B"):
        (tmp_path / folder).mkdir()
        write_image(tmp_path / folder / "s.png", np.full((40, 40, 1), 100, np.uint8))
    [pair] = read_pairs(tmp_path / "A", tmp_path / "B", ["s.png"], 3, ("data.dir_a", "data.dir_b"))
    assert pair.shape == (2, 3, 40, 40)


def test_a_folder_stack_with_grey_and_rgb_frames_is_refused(tmp_path):
    scene = tmp_path / "scene"
    scene.mkdir()
    write_image(scene / "f1.png", np.full((40, 40, 3), 100, np.uint8))
    write_image(scene / "f2.png", np.full((40, 40, 1), 100, np.uint8))
    with pytest.raises(DataError, match="f1.png is RGB but .*f2.png is grey"):
        read_stack(scene, 1)
