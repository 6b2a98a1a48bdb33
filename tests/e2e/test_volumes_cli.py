"""`n2n denoise` on volumes (and single-section micrographs with a 2D model), and bad volume input: one line,
exit 2, nothing written."""
import warnings

import mrcfile
import numpy as np
import pytest
from PIL import Image

from helpers.volumes import halves, model_file, write_mrc
from n2n.cli import main
from n2n.volumes.tiling import windows


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("volumes")
    _, even, odd = halves(shape=(12, 40, 36))
    f = {
        "even": write_mrc(root / "even.mrc", even, extended=bytes(range(24))),
        "odd": write_mrc(root / "odd.mrc", odd),
        "model3d": model_file(root / "m3d.safetensors", dims=3),
        "model2d": model_file(root / "m2d.safetensors", dims=2),
        "other_shape": write_mrc(root / "shape.mrc", odd[:, :, :30]),
        "other_voxel": write_mrc(root / "voxel.mrc", odd, voxel=(1.0, 1.0, 1.0)),
        "single": write_mrc(root / "single.mrc", odd[:1]),
        "single_shape": write_mrc(root / "single_shape.mrc", even[0, :, :30]),  # micrographs (2D models)
        "single_voxel": write_mrc(root / "single_voxel.mrc", even[0], voxel=(1.0, 1.0, 1.0)),
        "single_nan": root / "single_nan.mrc",
        "single_truncated": root / "single_truncated.mrc",
        "png": root / "image.png",
        "nan": root / "nan.mrc",
        "truncated": root / "truncated.mrc",
        "complex": root / "complex.mrc",
    }
    Image.fromarray((np.random.default_rng(0).random((40, 40)) * 255).astype(np.uint8)).save(f["png"])
    bad = even.copy()
    bad[5, 6, 7] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mrcfile's own notice of the NaN this file is made to hold
        write_mrc(f["nan"], bad)
        write_mrc(f["single_nan"], bad[5])
    data = f["even"].read_bytes()
    f["truncated"].write_bytes(data[: len(data) - 4000])
    data = f["single_voxel"].read_bytes()
    f["single_truncated"].write_bytes(data[: len(data) - 800])
    with mrcfile.new(f["complex"]) as mrc:
        mrc.set_data(np.zeros((4, 8, 8), np.complex64))
    return f


def _run(capsys, *args):
    code = main(["denoise", *map(str, args)])
    return code, capsys.readouterr().err


def test_pair_is_denoised_averaged_and_keeps_the_header(files, tmp_path, capsys):
    code, err = _run(capsys, files["even"], "--pair", files["odd"], "-m", files["model3d"], "-o", tmp_path)
    assert code == 0, err
    assert "averaged with" in err and "denoising even.mrc" in err  # says what it does; progress over tiles
    with mrcfile.open(tmp_path / "even.mrc") as out, mrcfile.open(files["even"]) as src:
        assert out.data.dtype == np.float32 and out.data.shape == src.data.shape
        assert out.voxel_size == src.voxel_size and out.header.origin == src.header.origin
        assert bytes(out.extended_header) == bytes(range(24))
        assert np.isfinite(out.data).all()
        # output in the input's units (normalisation undone: inputs are around 100), not normalised ones
        assert abs(float(out.data.mean()) - float(src.data.mean())) < 3 * float(src.data.std())
        assert float(out.data.mean()) > 40


def test_tiled_cli_matches_whole(files, tmp_path, capsys):
    """--tile/--overlap in voxels: with the overlap at the receptive reach, tiles give the whole-volume output."""
    _, even, _ = halves(shape=(8, 64, 60), seed=3)
    src = write_mrc(tmp_path / "big.mrc", even)
    assert _run(capsys, src, "-m", files["model3d"], "-o", tmp_path / "whole")[0] == 0
    code, err = _run(capsys, src, "-m", files["model3d"], "-o", tmp_path / "tiled", "--tile", "44",
                     "--overlap", "20")
    count = len(windows((8, 64, 60), (8, 44, 44), 20, 4))
    assert code == 0 and "in tiles of 8 x 44 x 44 voxels, overlap 20" in err and f"{count}/{count}" in err
    with mrcfile.open(tmp_path / "whole" / "big.mrc") as a, mrcfile.open(tmp_path / "tiled" / "big.mrc") as b:
        assert np.abs(a.data - b.data).max() <= 1e-4 * max(1.0, float(np.abs(a.data).max()))


def test_2d_model_denoises_sections_with_slices(files, tmp_path, capsys):
    code, err = _run(capsys, files["even"], "-m", files["model2d"], "--slices", "-o", tmp_path)
    assert code == 0 and "section by section (2D model, --slices)" in err
    with mrcfile.open(tmp_path / "even.mrc") as out:
        assert out.data.shape == (12, 40, 36)


@pytest.mark.parametrize("case,args,needle", [
    ("shapes differ", ["even", "--pair", "other_shape", "-m", "model3d"], "the two halves of a volume must have the "
                                                                          "same shape"),
    ("voxel sizes differ", ["even", "--pair", "other_voxel", "-m", "model3d"], "has voxel size 2 x 1.5 x 1.5"),
    ("complex MRC mode", ["complex", "-m", "model3d"], "MRC mode 4 (complex float32) cannot be denoised"),
    ("truncated MRC", ["truncated", "-m", "model3d"], "not a readable MRC file (truncated or damaged?)"),
    ("NaN voxel", ["nan", "-m", "model3d"], "voxel (z=5, y=6, x=7) is nan"),
    ("2D image to a 3D model", ["png", "-m", "model3d"], "is a 2D image; "),
    ("single section to a 3D model", ["single", "-m", "model3d"], "is a single 40 x 36 image, not a volume"),
    ("volume to a 2D model", ["even", "-m", "model2d"], "is a 2D model: add --slices"),
    ("--slices with a 3D model", ["even", "-m", "model3d", "--slices"], "--slices is for 2D models"),
    ("memory too small", ["even", "-m", "model3d", "--max-memory", "1M"], "--max-memory 0.00 GiB cannot hold"),
    ("micrographs' shapes differ", ["single", "--pair", "single_shape", "-m", "model2d"],
     "is 1 x 40 x 36 (Z x Y x X) but --pair="),
    ("micrographs' pixel sizes differ", ["single", "--pair", "single_voxel", "-m", "model2d"],
     "has voxel size 2 x 1.5 x 1.5"),
    ("NaN pixel of a micrograph", ["single_nan", "-m", "model2d"], "voxel (z=0, y=6, x=7) is nan"),
    ("truncated micrograph", ["single_truncated", "-m", "model2d"], "not a readable MRC file (truncated or damaged?)"),
    ("complex MRC mode to a 2D model", ["complex", "-m", "model2d"], "MRC mode 4 (complex float32) cannot be"),
])
def test_bad_volume_input(files, tmp_path, capsys, case, args, needle):
    argv = [str(files[a]) if a in files else a for a in args]
    code, err = _run(capsys, *argv, "-o", tmp_path / "out")
    assert code == 2, (case, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("n2n denoise: error: ") and needle in lines[0], (case, err)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_tiff_stack_in_gives_tiff_out_and_colour_tiffs_stay_images(tmp_path, files, capsys):
    import tifffile

    from n2n.volumes.denoise import is_volume_input

    _, even, _ = halves(shape=(6, 24, 20))
    tifffile.imwrite(tmp_path / "stack.tif", even, imagej=True, metadata={"axes": "ZYX"})
    code, err = _run(capsys, tmp_path / "stack.tif", "-m", files["model3d"], "-o", tmp_path / "out")
    assert code == 0, err
    out = tifffile.imread(tmp_path / "out" / "stack.tif")
    assert out.dtype == np.float32 and out.shape == (6, 24, 20)
    tifffile.imwrite(tmp_path / "rgba.tif", np.zeros((20, 30, 4), np.uint16))
    assert not is_volume_input(tmp_path / "rgba.tif") and is_volume_input(tmp_path / "stack.tif")
