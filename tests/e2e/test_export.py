"""ONNX export: agreement with PyTorch, dynamic sizes, the runner, the `export` command."""
from __future__ import annotations

import argparse

import pytest
import torch

from helpers.files import save_checkpoint
from n2n.cli.export import run_export
from n2n.errors import CheckpointError
from n2n.inference.onnx import OnnxRunner, export_onnx, max_abs_diff
from n2n.inference.runners import TorchRunner
from n2n.inference.tiling import denoise_tensor
from n2n.models.unet import UNet


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    net = UNet(3, 3).eval()
    path = export_onnx(net, tmp_path_factory.mktemp("onnx") / "model.onnx")
    return net, path


def test_onnx_matches_pytorch_on_both_orientations(exported):
    net, path = exported
    runner = OnnxRunner(path, device="cpu")
    assert (runner.in_channels, runner.out_channels) == (3, 3)
    for h, w in [(64, 96), (96, 64)]:
        x = torch.rand(1, 3, h, w)
        with torch.inference_mode():
            ref = net.forward_aligned(x)
        out = runner(x)
        assert out.shape == ref.shape
        assert (out - ref).abs().max() <= 1e-4


def test_dynamic_batch_and_sizes(exported):
    net, path = exported
    assert max_abs_diff(net, path, shapes=((3, 32, 160), (2, 128, 32))) <= 1e-4


def test_onnx_runner_serves_tiled_inference_like_pytorch(exported):
    net, path = exported
    x = torch.rand(1, 3, 70, 150)
    via_onnx = denoise_tensor(OnnxRunner(path, device="cpu"), x, tile=96, overlap=32)
    via_torch = denoise_tensor(TorchRunner(net), x, tile=96, overlap=32)
    assert via_onnx.shape == x.shape
    assert (via_onnx - via_torch).abs().max() <= 1e-4


def test_grey_network_exports_with_its_channels(tmp_path):
    net = UNet(1, 1).eval()
    path = export_onnx(net, tmp_path / "grey.onnx")
    assert OnnxRunner(path).in_channels == 1
    assert max_abs_diff(net, path, shapes=((1, 64, 96),)) <= 1e-4


def test_not_an_onnx_file_is_a_checkpoint_error_naming_it(tmp_path):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(CheckpointError, match="broken.onnx"):
        OnnxRunner(bad)
    with pytest.raises(CheckpointError, match="absent.onnx"):
        OnnxRunner(tmp_path / "absent.onnx")


def test_export_command_writes_a_checked_model(tmp_path, capsys):
    net = UNet(3, 3).eval()
    save_checkpoint(tmp_path / "m.ckpt", net)
    code = run_export(argparse.Namespace(checkpoint=str(tmp_path / "m.ckpt"), output=str(tmp_path / "m.onnx"),
                                         opset=17))
    assert code == 0
    assert "max |ONNX - PyTorch|" in capsys.readouterr().err
    assert max_abs_diff(net, tmp_path / "m.onnx") <= 1e-4


def test_export_command_reports_a_bad_checkpoint(tmp_path, capsys):
    (tmp_path / "bad.ckpt").write_bytes(b"junk")
    code = run_export(argparse.Namespace(checkpoint=str(tmp_path / "bad.ckpt"), output=str(tmp_path / "m.onnx"),
                                         opset=17))
    assert code == 2
    assert "bad.ckpt" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()


def test_the_declipping_rule_travels_in_the_onnx_metadata(tmp_path):
    net = UNet(1, 1).eval()
    assert OnnxRunner(export_onnx(net, tmp_path / "plain.onnx"), device="cpu").declip is None
    net.declip = "gaussian"
    assert OnnxRunner(export_onnx(net, tmp_path / "rule.onnx"), device="cpu").declip == "gaussian"
