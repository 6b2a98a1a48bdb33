"""MRC micrographs as `data=pairs`: a 2D model trains on even/odd micrograph pairs through the real config, gets
better against the clean image, and `n2n denoise MICROGRAPH.mrc` with it writes a float32 MRC in the input's units
that keeps the header; bad input is one line, exit 2, nothing written (n2n denoise's bad micrographs:
test_volumes_cli.py)."""
import json
import math
import re

import mrcfile
import numpy as np
import pytest
import torch

from helpers.runs import run_entry, run_in_process, scalars
from helpers.volumes import micrographs, write_mrc
from n2n.cli import main
from n2n.volumes.tiling import windows

HEADER = {"voxel": (1.25, 1.25, 1.25), "origin": (5.0, 6.0, 0.0), "extended": bytes(range(32))}


def _train_args(root):
    return ["data=pairs", f"data.dir_a={root / 'even'}", f"data.dir_b={root / 'odd'}", "data.val_fraction=0.25",
            f"data.val_clean_dir={root / 'clean'}", "data.crop_size=32", "data.batch_size=4", "data.steps_per_epoch=20",
            "model.depth=2", "model.features=8", "trainer.accelerator=cpu", "trainer.max_epochs=3",
            "trainer.log_every_n_steps=5", "trainer.num_sanity_val_steps=0", "trainer.enable_progress_bar=false",
            "print_config=false"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """60 steps (about 2 s) of a small 2D U-Net on four 64 x 64 micrograph pairs around 1000 (noise sigma 30)."""
    root = tmp_path_factory.mktemp("micrographs")
    clean = micrographs(root, offset=1000.0, scale=30.0, noise=30.0, **HEADER)
    torch.set_num_threads(1)
    run_in_process(_train_args(root), root / "run")
    return root, clean


def _psnr(x, clean):
    peak = float(clean.max() - clean.min())
    return 10 * math.log10(peak ** 2 / float(((x.astype(np.float64) - clean) ** 2).mean()))


def test_training_gets_better_against_the_clean_micrograph(trained):
    root, _ = trained
    logged = scalars(root / "run")
    psnr = [v for _, v in logged["val/psnr"]]
    noisy = logged["val/psnr_noisy"][0][1]
    assert len(psnr) == 3 and psnr[-1] > psnr[0] and psnr[-1] > noisy + 6, (psnr, noisy)
    loss = [v for _, v in logged["val/n2n_loss"]]
    assert loss[-1] < loss[0]
    assert all(0 < v <= 1 for _, v in logged["val/ssim"])  # 2D SSIM on a single section
    ckpt = torch.load(root / "run" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    data = ckpt["hyper_parameters"]["config"]["data"]
    assert data["name"] == "pairs" and data["normalize"] == "mean_std"
    assert json.loads((root / "run" / "metrics.json").read_text())["monitor"] == "val/psnr"


def _denoise(capsys, *args):
    code = main(["denoise", *map(str, args)])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("pair", [False, True], ids=["one half", "--pair"])
def test_denoised_micrograph_keeps_header_and_units(trained, tmp_path, capsys, pair):
    root, clean = trained
    ckpt = root / "run" / "checkpoints" / "last.ckpt"
    extra = ["--pair", root / "odd" / "m1.mrc"] if pair else []
    code, err = _denoise(capsys, root / "even" / "m1.mrc", *extra, "-m", ckpt, "-o", tmp_path)
    assert code == 0, err
    assert "as one micrograph (2D model), whole" in err
    with mrcfile.open(tmp_path / "m1.mrc") as out, mrcfile.open(root / "even" / "m1.mrc") as src:
        assert out.data.dtype == np.float32 and out.data.shape == src.data.shape == (64, 64)
        assert out.voxel_size == src.voxel_size and out.header.origin == src.header.origin
        assert bytes(out.extended_header) == HEADER["extended"] and out.header.exttyp == src.header.exttyp
        # the normalisation is undone: the output is in the input's units (around 1000), with the clean image's
        # spread (std 15) rather than the noisy one's (34) or the normalised one's (about 1)
        assert abs(float(out.data.mean()) - float(clean["m1.mrc"].mean())) < 3
        assert 8 < float(out.data.std()) < 25 and float(src.data.std()) > 30
        assert _psnr(out.data, clean["m1.mrc"]) > _psnr(src.data, clean["m1.mrc"]) + 6


def test_a_large_micrograph_is_denoised_in_tiles_equal_to_the_whole_pass(trained, tmp_path, capsys):
    """--tile/--overlap (or a small --max-memory) cut a micrograph into 2D tiles; with the overlap at the network's
    receptive reach (18 pixels at model.depth=2) the result is the whole pass's."""
    root, _ = trained
    ckpt, src = root / "run" / "checkpoints" / "last.ckpt", root / "even" / "m1.mrc"
    code, err = _denoise(capsys, src, "-m", ckpt, "-o", tmp_path / "whole")
    assert code == 0, err
    code, err = _denoise(capsys, src, "-m", ckpt, "-o", tmp_path / "tiled", "--tile", 44, "--overlap", 20)
    assert code == 0 and "as one micrograph (2D model), in tiles of 44 x 44 pixels, overlap 20" in err, err
    count = len(windows((64, 64), (44, 44), 20, 4))
    assert count > 1 and re.search(rf"{count}/{count} \[[^\]]*tile", err), err  # the bar counts tiles
    with mrcfile.open(tmp_path / "whole" / "m1.mrc") as whole, mrcfile.open(tmp_path / "tiled" / "m1.mrc") as tiled:
        assert np.abs(tiled.data - whole.data).max() <= 2e-3  # values around 1000: float32 rounding


def test_python_api_denoises_a_micrograph_array(trained):
    from n2n.volumes.denoise import VolumeDenoiser

    root, clean = trained
    with mrcfile.open(root / "even" / "m2.mrc") as src:
        noisy = src.data.astype(np.float32)[None]
    out = VolumeDenoiser(root / "run" / "checkpoints" / "last.ckpt", device="cpu")(noisy)
    assert out.shape == (1, 64, 64) and out.dtype == np.float32
    assert _psnr(out[0], clean["m2.mrc"]) > _psnr(noisy[0], clean["m2.mrc"]) + 6


def test_the_python_api_takes_a_micrograph_in_its_units(trained):
    """n2n.load on a micrograph model normalises the array as n2n denoise does (not as pixels in [0, 1])."""
    import n2n

    root, clean = trained
    with mrcfile.open(root / "even" / "m2.mrc") as src:
        noisy = src.data.astype(np.float32)
    out = n2n.load(root / "run" / "checkpoints" / "last.ckpt", device="cpu")(noisy)
    assert out.shape == (64, 64) and out.dtype == np.float32
    assert _psnr(out, clean["m2.mrc"]) > _psnr(noisy, clean["m2.mrc"]) + 6
    as_tensor = n2n.load(root / "run" / "checkpoints" / "last.ckpt", device="cpu")(torch.from_numpy(noisy))
    assert np.abs(as_tensor.numpy() - out).max() < 1e-3


@pytest.mark.parametrize("kind", ["ckpt", "onnx"])
def test_an_image_given_to_a_micrograph_model_is_refused(trained, tmp_path, capsys, kind):
    """Its pixels are not in the model's units: one line naming the model and what to give it, nothing written;
    an ONNX export keeps the model's input scaling, so it is refused in the same way."""
    from PIL import Image

    root, _ = trained
    model = root / "run" / "checkpoints" / "last.ckpt"
    if kind == "onnx":
        assert main(["export", str(model), str(tmp_path / "mic.onnx")]) == 0
        model = tmp_path / "mic.onnx"
    photo = tmp_path / "photo.png"
    Image.fromarray(np.full((40, 40), 128, np.uint8)).save(photo)
    capsys.readouterr()
    code, err = _denoise(capsys, photo, "-m", model, "-o", tmp_path / "out")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "trained on MRC micrographs or volumes" in lines[0], err
    assert "data.normalize=mean_std" in lines[0] and "give it .mrc" in lines[0]
    assert not (tmp_path / "out").exists()


def test_eval_py_refuses_to_score_a_micrograph_model_on_images(trained, tmp_path):
    from PIL import Image

    root, _ = trained
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(np.full((64, 64), 128, np.uint8)).save(photos / "a.png")
    out = tmp_path / "eval"
    result = run_entry(["eval.py", f"ckpt_path={root / 'run' / 'checkpoints' / 'last.ckpt'}", "data=folder",
                        f"data.val_dir={photos}", "data.channels=1", "noise=gaussian", f"hydra.run.dir={out}"])
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-2000:]
    assert "trained on MRC micrographs or volumes" in lines[0] and "data=volumes data.dir_a=EVEN" in lines[0]
    assert not out.exists()


def test_a_bad_micrograph_stops_train_py_in_one_line_writing_nothing(tmp_path):
    micrographs(tmp_path)
    write_mrc(tmp_path / "odd" / "m2.mrc", np.zeros((2, 64, 64), np.float32))
    run = tmp_path / "run"
    result = run_entry(["train.py", "data=pairs", f"data.dir_a={tmp_path / 'even'}", f"data.dir_b={tmp_path / 'odd'}",
                        "data.val_fraction=0.25", f"hydra.run.dir={run}"])
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith("train.py: error: data.dir_b=") and "m2.mrc holds 2 sections" in lines[0]
    assert not run.exists()


@pytest.mark.slow
def test_train_py_resumes_and_eval_py_scores_micrographs(tmp_path):
    """The user's commands as subprocesses: train.py on a micrograph folder, resumed, then eval.py on its
    checkpoint (the held-out pair, written as MRC in the input's units)."""
    micrographs(tmp_path, **HEADER)
    run = tmp_path / "run"
    args = ["train.py", *_train_args(tmp_path), f"hydra.run.dir={run}"]
    first = run_entry([*args, "trainer.max_steps=20"])
    assert first.returncode == 0, first.stderr[-2000:]
    resumed = run_entry([*args, "trainer.max_steps=40", "ckpt_path=last"])
    assert resumed.returncode == 0 and "best val/psnr" in resumed.stdout + resumed.stderr, resumed.stderr[-2000:]
    evaluation = tmp_path / "eval"
    result = run_entry(["eval.py", f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}", f"hydra.run.dir={evaluation}"])
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((evaluation / "metrics.json").read_text())
    assert metrics["num_volumes"] == 1 and metrics["psnr_denoised"] > metrics["psnr_noisy"]
    with mrcfile.open(evaluation / "denoised" / "m0_slab.mrc") as out:
        assert out.data.shape == (64, 64) and abs(float(out.data.mean()) - 1000) < 10
