"""The `n2n denoise` and `n2n export` commands end to end, through the `n2n` entry point (n2n.cli.main)."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from PIL import Image

from helpers.files import save_checkpoint
from n2n.cli import main
from n2n.devices import fast_bf16
from n2n.image_files import read_image, write_image
from n2n.inference.onnx import export_onnx
from n2n.models.unet import UNet


def n2n(*argv: str) -> int:
    """`n2n ARGV...` in this process: the exit code the command would have."""
    return main([str(a) for a in argv])


def digest(folder) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    torch.manual_seed(0)
    net = UNet(3, 3)
    path = tmp_path_factory.mktemp("ckpt") / "model.ckpt"
    save_checkpoint(path, net)
    return path


@pytest.fixture
def inputs(tmp_path):
    """A folder with the kinds of files users have, one of them corrupt, plus a non-image."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "in"
    folder.mkdir()
    write_image(folder / "good.png", rng.integers(0, 256, (40, 50, 3), dtype=np.uint8))
    write_image(folder / "deep.png", rng.integers(0, 65536, (33, 45, 3), dtype=np.uint16))
    write_image(folder / "deepgrey.png", rng.integers(0, 65536, (30, 20, 1), dtype=np.uint16))
    write_image(folder / "grey.png", rng.integers(0, 256, (35, 47, 1), dtype=np.uint8))
    write_image(folder / "rgba.png", rng.integers(0, 256, (36, 44, 4), dtype=np.uint8))
    write_image(folder / "deep.tif", rng.integers(0, 65536, (20, 30, 4), dtype=np.uint16))
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    (folder / "notes.txt").write_text("not an image")
    return folder


EXPECTED = {  # name: (shape, dtype)
    "good.png": ((40, 50, 3), np.uint8),
    "deep.png": ((33, 45, 3), np.uint16),
    "deepgrey.png": ((30, 20, 1), np.uint16),
    "grey.png": ((35, 47, 1), np.uint8),
    "rgba.png": ((36, 44, 4), np.uint8),
    "deep.tif": ((20, 30, 4), np.uint16),
}


def test_folder_with_a_corrupt_file(ckpt, inputs, tmp_path, capsys):
    before = digest(inputs)
    out = tmp_path / "out"
    code = n2n("denoise", ckpt, inputs, "-o", out, "--device", "cpu", "--tile", "64", "--overlap", "0")
    err = capsys.readouterr().err
    assert code == 1
    assert "corrupt.png" in err and "1 failed" in err
    assert sorted(p.name for p in out.iterdir()) == sorted(EXPECTED)  # no partial files, no notes.txt
    for name, (shape, dtype) in EXPECTED.items():
        image, _ = read_image(out / name)
        assert image.shape == shape and image.dtype == dtype, name
        original, _ = read_image(inputs / name)
        assert not np.array_equal(image[..., :3], original[..., :3]), f"{name} was copied, not denoised"
    for name in ("rgba.png", "deep.tif"):
        np.testing.assert_array_equal(read_image(out / name)[0][..., -1], read_image(inputs / name)[0][..., -1])
    assert digest(inputs) == before, "inputs must never be modified"


def test_all_good_exits_zero_and_tiling_matches_whole_image(ckpt, tmp_path):
    rng = np.random.default_rng(1)
    (tmp_path / "in").mkdir()
    smooth = np.linspace(0, 1, 400)[None, :, None] * np.linspace(0.2, 0.8, 100)[:, None, None]
    write_image(tmp_path / "in" / "wide.png", (smooth * 60000 + rng.integers(0, 5000, (100, 400, 3))).astype(np.uint16))
    assert n2n("denoise", ckpt, tmp_path / "in", "-o", tmp_path / "whole", "--tile", "0") == 0
    assert n2n("denoise", ckpt, tmp_path / "in", "-o", tmp_path / "tiled", "--tile", "288") == 0  # 416 > 288
    whole = read_image(tmp_path / "whole" / "wide.png")[0].astype(float)
    tiled = read_image(tmp_path / "tiled" / "wide.png")[0].astype(float)
    assert np.abs(whole - tiled).max() <= 65535 / 255


def test_refuses_to_overwrite_inputs(ckpt, inputs, capsys):
    before = digest(inputs)
    code = n2n("denoise", ckpt, inputs, "-o", inputs)
    assert code == 2
    assert "refusing" in capsys.readouterr().err
    assert digest(inputs) == before


def test_suffix_allows_writing_next_to_the_inputs(ckpt, inputs):
    (inputs / "corrupt.png").unlink()
    before = digest(inputs)
    assert n2n("denoise", ckpt, inputs / "good.png", "-o", inputs, "--suffix", "_dn") == 0
    assert read_image(inputs / "good_dn.png")[0].shape == (40, 50, 3)
    after = digest(inputs)
    assert {k: after[k] for k in before} == before


def test_globs_and_missing_inputs(ckpt, inputs, tmp_path, capsys):
    out = tmp_path / "out"
    code = n2n("denoise", ckpt, str(inputs / "g*.png"), inputs / "nothing_here.png", "-o", out)
    assert code == 1
    assert "nothing_here.png" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["good.png", "grey.png"]


def test_two_inputs_with_the_same_name_are_refused(ckpt, inputs, tmp_path, capsys):
    other = tmp_path / "other"
    other.mkdir()
    write_image(other / "good.png", np.zeros((8, 8, 3), np.uint8))
    assert n2n("denoise", ckpt, inputs / "good.png", other / "good.png", "-o", tmp_path / "out") == 2
    assert "both be written" in capsys.readouterr().err


def test_exif_orientation_is_applied_to_the_output(ckpt, tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6
    (tmp_path / "in").mkdir()
    Image.fromarray(np.full((20, 40, 3), 128, np.uint8)).save(tmp_path / "in" / "photo.jpg", exif=exif)
    assert n2n("denoise", ckpt, tmp_path / "in" / "photo.jpg", "-o", tmp_path / "out") == 0
    with Image.open(tmp_path / "out" / "photo.jpg") as im:
        assert im.size == (20, 40)  # width x height: rotated, and no orientation tag left to rotate again
        assert im.getexif().get(0x0112) in (None, 1)


def test_onnx_model_gives_the_same_output_as_the_checkpoint(ckpt, inputs, tmp_path):
    from n2n.inference.checkpoints import load_unet

    onnx_path = export_onnx(load_unet(ckpt), tmp_path / "model.onnx")
    assert n2n("denoise", ckpt, inputs / "good.png", "-o", tmp_path / "a", "--precision", "fp32") == 0
    assert n2n("denoise", onnx_path, inputs / "good.png", "-o", tmp_path / "b") == 0
    a = read_image(tmp_path / "a" / "good.png")[0].astype(int)
    b = read_image(tmp_path / "b" / "good.png")[0].astype(int)
    assert np.abs(a - b).max() <= 1


def test_grey_model_on_colour_images(tmp_path, inputs):
    save_checkpoint(tmp_path / "grey.ckpt", UNet(1, 1))
    assert n2n("denoise", tmp_path / "grey.ckpt", inputs / "good.png", inputs / "rgba.png", "-o", tmp_path / "o") == 0
    assert read_image(tmp_path / "o" / "good.png")[0].shape == (40, 50, 3)
    np.testing.assert_array_equal(read_image(tmp_path / "o" / "rgba.png")[0][..., 3],
                                  read_image(inputs / "rgba.png")[0][..., 3])


def test_bad_tiling_is_reported_before_any_work(ckpt, inputs, tmp_path, capsys):
    assert n2n("denoise", ckpt, inputs, "-o", tmp_path / "out", "--tile", "64", "--overlap", "32") == 2
    assert "no centre" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_reported(ckpt, inputs, tmp_path, capsys):
    assert n2n("denoise", ckpt, inputs, "-o", tmp_path / "out", "--device", "cuda") == 2
    assert "cuda" in capsys.readouterr().err.lower()


def test_bad_checkpoint_is_reported(inputs, tmp_path, capsys):
    (tmp_path / "bad.ckpt").write_bytes(b"junk")
    assert n2n("denoise", tmp_path / "bad.ckpt", inputs, "-o", tmp_path / "out") == 2
    assert "bad.ckpt" in capsys.readouterr().err


def test_export_subcommand(ckpt, tmp_path):
    assert n2n("export", ckpt, tmp_path / "m.onnx") == 0
    assert (tmp_path / "m.onnx").stat().st_size > 1_000_000  # the weights are in the file


def test_precision_option(ckpt, inputs, tmp_path, capsys):
    src = inputs / "good.png"
    for precision in ("fp32", "bf16", "auto"):
        assert n2n("denoise", ckpt, src, "-o", tmp_path / precision, "--device", "cpu", "--precision", precision) == 0
    a, b = (read_image(tmp_path / p / "good.png")[0].astype(int) for p in ("fp32", "bf16"))
    assert a.shape == b.shape == (40, 50, 3)
    diff = np.abs(a - b)
    assert diff.max() > 0, "--precision bf16 ran in float32"
    # random weights (the test checkpoint) amplify rounding: measured 7 levels at most, 0.65 on average
    assert diff.mean() <= 1 and diff.max() <= 12
    auto = read_image(tmp_path / "auto" / "good.png")[0].astype(int)
    assert np.array_equal(auto, b if fast_bf16("cpu") else a), "auto must pick bf16 exactly where it is native"
    with pytest.raises(SystemExit):
        n2n("denoise", ckpt, src, "-o", tmp_path / "x", "--precision", "fp16")
    assert "invalid choice" in capsys.readouterr().err


def test_bf16_is_refused_for_onnx_models(ckpt, inputs, tmp_path, capsys):
    from n2n.inference.checkpoints import load_unet

    onnx_path = export_onnx(load_unet(ckpt), tmp_path / "model.onnx")
    assert n2n("denoise", onnx_path, inputs / "good.png", "-o", tmp_path / "out", "--precision", "bf16") == 2
    assert "ONNX models run in fp32" in capsys.readouterr().err
    assert n2n("denoise", onnx_path, inputs / "good.png", "-o", tmp_path / "out", "--precision", "auto") == 0


def test_strength_0_gives_every_input_back_unchanged(ckpt, inputs, tmp_path):
    (inputs / "corrupt.png").unlink()
    out = tmp_path / "out"
    assert n2n("denoise", ckpt, inputs, "-o", out, "--strength", "0", "--device", "cpu") == 0
    for name in EXPECTED:  # 8 and 16 bits, grey, RGB, alpha: the blend at 0 is the input itself
        np.testing.assert_array_equal(read_image(out / name)[0], read_image(inputs / name)[0], err_msg=name)


def test_strength_blends_between_input_and_denoised(ckpt, inputs, tmp_path):
    src = inputs / "good.png"
    assert n2n("denoise", ckpt, src, "-o", tmp_path / "full") == 0
    assert n2n("denoise", ckpt, src, "-o", tmp_path / "part", "--strength", "0.3") == 0
    noisy = read_image(src)[0].astype(float)
    full = read_image(tmp_path / "full" / "good.png")[0].astype(float)
    part = read_image(tmp_path / "part" / "good.png")[0].astype(float)
    assert np.abs(part - (0.3 * full + 0.7 * noisy)).max() <= 1
    with pytest.raises(SystemExit) as stop:  # argparse's error: one line, exit 2
        n2n("denoise", ckpt, src, "-o", tmp_path / "bad", "--strength", "1.5")
    assert stop.value.code == 2 and not (tmp_path / "bad").exists()


def test_output_names_each_file_written_and_the_model(ckpt, inputs, tmp_path, capsys):
    out = tmp_path / "out"
    assert n2n("denoise", "--model", ckpt, inputs / "good.png", inputs / "grey.png", "-o", out,
               "--strength", "0.5") == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines == [f"wrote {out / 'good.png'} (from {inputs / 'good.png'}; model {ckpt}, strength 0.5)",
                     f"wrote {out / 'grey.png'} (from {inputs / 'grey.png'}; model {ckpt}, strength 0.5)"]
    assert captured.err.strip().splitlines()[-1] == f"wrote 2 image(s) to {out} with model {ckpt}, strength 0.5"


def test_a_missing_input_is_named_as_missing(ckpt, inputs, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert n2n("denoise", "--model", ckpt, "nofile.png") == 2
    err = capsys.readouterr().err
    assert err.strip() == "n2n denoise: error: nofile.png: no such file or folder", err
    (tmp_path / "empty").mkdir()
    assert n2n("denoise", "--model", ckpt, "empty", "nothing*.png") == 2
    err = capsys.readouterr().err
    assert "empty: a folder with no image files" in err and "nothing*.png: no file matches this pattern" in err
    assert n2n("denoise", "--model", ckpt, inputs / "good.png", "nofile.png", "-o", tmp_path / "out") == 1
    captured = capsys.readouterr()
    assert "skipped nofile.png: no such file or folder" in captured.err
    assert captured.out.startswith(f"wrote {tmp_path / 'out' / 'good.png'}")


def test_a_bundled_model_keeps_black_black_in_a_file_unless_told_not_to(tmp_path):
    """A black square under sigma-25 noise, clipped and rounded in an 8-bit PNG (mean about 10): the bundled
    model's output is declipped (n2n.inference.declip) to below 2/255; --no-declip gives the lifted mean back."""
    rng = np.random.default_rng(0)
    clean = np.full((128, 128, 3), 128.0)
    clean[32:96, 32:96] = 0
    noisy = np.clip(np.rint(clean + rng.normal(0, 25, clean.shape)), 0, 255).astype(np.uint8)
    write_image(tmp_path / "square.png", noisy)
    assert n2n("denoise", tmp_path / "square.png", "-o", tmp_path / "fixed", "--device", "cpu") == 0
    assert n2n("denoise", tmp_path / "square.png", "-o", tmp_path / "raw", "--no-declip", "--device", "cpu") == 0
    inner = (slice(40, 88), slice(40, 88))
    assert read_image(tmp_path / "fixed" / "square.png")[0][inner].mean() < 2
    assert read_image(tmp_path / "raw" / "square.png")[0][inner].mean() > 8
    mid = (slice(4, 28), slice(4, 124))  # the grey surround: the correction leaves mid-tones as they are
    np.testing.assert_allclose(read_image(tmp_path / "fixed" / "square.png")[0][mid].astype(float),
                               read_image(tmp_path / "raw" / "square.png")[0][mid].astype(float), atol=1)
