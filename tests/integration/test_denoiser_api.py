"""The Python API (n2n.load, n2n.denoise): every input type comes back as the same type, shape and depth."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import n2n
from helpers.files import RGB_MODEL, random_rgb_denoiser
from n2n.inference.tiling import denoise_tensor

MODEL = RGB_MODEL


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return random_rgb_denoiser(tmp_path_factory.mktemp("api"))


@pytest.fixture
def rgb():
    return np.random.default_rng(0).integers(0, 256, (40, 70, 3), dtype=np.uint8)


def test_numpy_arrays_keep_shape_and_depth(model, rgb):
    out = model(rgb)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    expected = denoise_tensor(model.runner, torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255)[0]
    assert np.abs(out.astype(int) - np.rint(expected.permute(1, 2, 0).numpy() * 255)).max() <= 1
    assert model(rgb[:, :, 0]).shape == (40, 70)
    assert model(rgb.astype(np.uint16) * 257).dtype == np.uint16
    floats = model(rgb / 255.0)
    assert floats.dtype == np.float64 and floats.shape == rgb.shape  # the input's dtype
    assert np.abs(floats - out / 255.0).max() < 1.5 / 255
    rgba = np.dstack([rgb, np.arange(40 * 70, dtype=np.uint8).reshape(40, 70)])
    assert np.array_equal(model(rgba)[:, :, 3], rgba[:, :, 3])  # alpha untouched


def test_pil_images_keep_their_mode(model, rgb):
    image = Image.fromarray(rgb)
    for mode in ("RGB", "L", "RGBA", "LA"):
        out = model(image.convert(mode))
        assert isinstance(out, Image.Image) and out.mode == mode and out.size == image.size
    assert model(image.convert("P")).mode == "RGB"
    grey16 = Image.fromarray((rgb[:, :, 0].astype(np.uint16) * 257))
    assert model(grey16).mode == grey16.mode


def test_tensors_keep_shape_dtype_and_device(model):
    x = torch.rand(3, 33, 47)
    assert model(x).shape == x.shape
    assert model(x[None].double()).dtype == torch.float64
    with pytest.raises(ValueError, match="C = 3"):
        model(torch.rand(1, 33, 47))


def test_wrong_types_are_named(model):
    with pytest.raises(TypeError, match="list"):
        model([[1, 2]])
    with pytest.raises(ValueError, match="int32"):
        model(np.zeros((8, 8, 3), dtype=np.int32))
    with pytest.raises(ValueError, match="shape"):
        model(np.zeros((2, 8, 8, 3), dtype=np.uint8))


def test_large_images_are_tiled_to_the_same_result(model):
    x = torch.rand(1, 3, 420, 390)
    whole = denoise_tensor(model.runner, x)
    tiled = n2n.load(model.name, device="cpu", precision="fp32", tile=352, overlap=160)(x)  # overlap: the reach
    assert tiled.shape == whole.shape and (tiled - whole).abs().max() < 1e-4


def test_strength_blends_the_denoised_image_with_the_input(model, rgb):
    assert np.array_equal(model(rgb, strength=0), rgb)  # nothing of the network: the input, to the bit
    assert np.array_equal(model(Image.fromarray(rgb), strength=0.0), Image.fromarray(rgb))
    full = model(rgb).astype(float)
    half = model(rgb, strength=0.5).astype(float)
    assert np.abs(half - (full + rgb) / 2).max() <= 1  # the blend, up to 8-bit rounding
    assert model.strength == 1.0  # a per-call strength leaves the loaded model as it was
    softer = n2n.Denoiser(model.runner, model.name, strength=0.25)
    assert np.abs(softer(rgb).astype(float) - (0.25 * full + 0.75 * rgb)).max() <= 1
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="strength must be a number from 0"):
            model(rgb, strength=bad)
