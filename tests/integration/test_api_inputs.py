"""Class: the Python API and weight files never return silent garbage. Inputs out of their documented range,
non-finite inputs or weights and empty images are refused with one clear message; inputs the API takes come
back in the type and dtype the docstring promises; an export check that meets NaN fails."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import n2n
from helpers.files import RGB_MODEL, random_rgb_denoiser, save_checkpoint
from n2n.errors import CheckpointError
from n2n.inference.weights import save_weights
from n2n.models.unet import build_unet

MODEL = RGB_MODEL


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return random_rgb_denoiser(tmp_path_factory.mktemp("api"))


@pytest.fixture(scope="module")
def photo():
    yy, xx = np.mgrid[0:40, 0:56]
    return np.dstack([(xx / 55), (yy / 39), np.full_like(xx, 0.5, dtype=float)])  # float64 in [0, 1]


REFUSED = [  # (input, what the message says)
    (lambda p: p * 255, r"values from 0 to 255: float images must be in \[0, 1\].*divide by 255"),
    (lambda p: (p * 255).astype(np.float32), "divide by 255"),
    (lambda p: np.where(p > 0.9, np.nan, p), "NaN or infinite"),
    (lambda p: np.where(p > 0.9, np.inf, p), "NaN or infinite"),
    (lambda p: p - 2.0, "values from -2 to -1"),
    (lambda p: np.zeros((0, 56, 3)), "has no pixels"),
    (lambda p: np.zeros((40, 0), np.uint8), "has no pixels"),
    (lambda p: torch.from_numpy(p * 255).permute(2, 0, 1).float(), "tensor holds values from 0 to 255"),
    (lambda p: torch.full((3, 32, 32), float("nan")), "tensor holds 3072 NaN"),
    (lambda p: torch.zeros(1, 3, 0, 32), "tensor of shape \\(1, 3, 0, 32\\) has no pixels"),
]


@pytest.mark.parametrize("make,message", REFUSED)
def test_inputs_out_of_range_non_finite_or_empty_are_refused(model, photo, make, message):
    with pytest.raises(ValueError, match=message) as err:
        model(make(photo))
    assert "\n" not in str(err.value)


KEPT = [  # (input dtype, values added to the photo): comes back in that dtype, in [0, 1], close to the uint8 path
    (np.float16, 0.0), (np.float32, 0.0), (np.float64, 0.0),
    (np.float32, 0.2),  # noise overshoot beyond 1: clipped, as an 8-bit file would hold it
]


@pytest.mark.parametrize("dtype,shift", KEPT)
def test_float_arrays_come_back_in_their_dtype_and_scale(model, photo, dtype, shift):
    x = (photo + shift).astype(dtype)
    out = model(x)
    assert out.dtype == dtype and out.shape == photo.shape
    reference = model(np.rint(np.clip(photo + shift, 0, 1) * 255).astype(np.uint8)) / 255.0
    assert np.abs(out.astype(np.float64) - reference).max() < 2.5 / 255  # not near 0 (float16 overflow), not white


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_tensors_of_every_float_dtype_come_back_in_it(model, photo, dtype):
    x = torch.from_numpy(photo).permute(2, 0, 1).to(dtype)
    out = model(x)
    assert out.dtype == dtype and out.shape == x.shape
    reference = model(torch.from_numpy(photo).permute(2, 0, 1).float())
    assert (out.float() - reference).abs().max() < 0.02


@pytest.mark.parametrize("kind", ["ckpt", "safetensors"])
def test_weights_with_nan_are_refused_at_load(tmp_path, kind):
    torch.manual_seed(0)
    net = build_unet(MODEL)
    with torch.no_grad():
        next(net.parameters())[0, 0, 0, 0] = float("nan")
    path = tmp_path / f"diverged.{kind}"
    save_checkpoint(path, net) if kind == "ckpt" else save_weights(net, net.config, path)
    with pytest.raises(CheckpointError, match="diverged.* holds NaN or infinite weights"):
        n2n.load(path, device="cpu")


def test_the_export_comparison_fails_on_nan(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from n2n.inference import onnx as onnx_module

    torch.manual_seed(0)
    net = build_unet(MODEL)
    path = onnx_module.export_onnx(net, tmp_path / "m.onnx")
    assert onnx_module.max_abs_diff(net, path) < 1e-3
    with torch.no_grad():
        next(net.parameters()).fill_(float("nan"))  # the PyTorch side now gives NaN
    assert np.isnan(onnx_module.max_abs_diff(net, path))
