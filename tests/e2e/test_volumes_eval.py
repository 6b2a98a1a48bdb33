"""`python eval.py ckpt_path=... data=volumes data.dir_a=EVEN data.dir_b=ODD [data.val_clean_dir=CLEAN]`: a model
trained on volumes scored on other, whole test volumes, denoised as `n2n denoise` denoises them; and what it
refuses (one line, exit 2, nothing written)."""
import csv
import json
import math
import shutil

import mrcfile
import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from helpers.runs import ROOT, run_entry
from helpers.volumes import volume_checkpoint, write_mrc
from n2n.cli import main
from n2n.config import RunContext
from n2n.errors import N2NError
from n2n.inference.evaluate import evaluate
from n2n.volumes.phantom import noisy_halves, phantom

NAMES = ("t0.mrc", "t1.mrc")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("test_volumes")
    for i, name in enumerate(NAMES):
        clean = phantom((32, 32, 32), seed=i)
        even, odd = noisy_halves(clean, 0.5, seed=10 + i)
        write_mrc(root / "even" / name, even, extended=bytes(range(24)))
        write_mrc(root / "odd" / name, odd)
        write_mrc(root / "clean" / name, clean)
    volume_checkpoint(root / "m3d.ckpt", dims=3)
    volume_checkpoint(root / "m2d.ckpt", dims=2)
    return root


@pytest.fixture(scope="module")
def run_eval():
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        def run(run_dir, *overrides):
            return evaluate(compose("eval", overrides=["device=cpu", *map(str, overrides)]), RunContext(run_dir))
        yield run


def _args(root, model="m3d.ckpt", even="even", odd="odd", clean="clean"):
    args = [f"ckpt_path={root / model}", "data=volumes", f"data.dir_a={root / even}", f"data.dir_b={root / odd}"]
    return args + ([f"data.val_clean_dir={root / clean}"] if clean else [])


def test_whole_test_volumes_are_scored_as_n2n_denoise_denoises_them(root, run_eval, tmp_path, capsys):
    metrics = run_eval(tmp_path / "eval", *_args(root))
    with open(tmp_path / "eval" / "per_volume.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["volume"] for r in rows] == list(NAMES)
    assert set(rows[0]) == {"volume", "psnr_noisy", "psnr_denoised", "ssim_noisy", "ssim_denoised",
                            "n2n_loss_noisy", "n2n_loss_denoised"}
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text()) == metrics
    assert metrics["num_volumes"] == 2
    assert metrics["psnr_denoised"] == pytest.approx(np.mean([float(r["psnr_denoised"]) for r in rows]))
    assert "in tiles of 32 x 32 x 32 voxels" in capsys.readouterr().err  # the whole volume, not a slab

    # the same output as `n2n denoise` of the even half, and its PSNR computed here from that file
    assert main(["denoise", str(root / "even" / "t0.mrc"), "-m", str(root / "m3d.ckpt"), "-o",
                 str(tmp_path / "cli"), "--device", "cpu"]) == 0
    with mrcfile.open(tmp_path / "cli" / "t0.mrc") as cli, mrcfile.open(root / "clean" / "t0.mrc") as ref:
        out, clean = cli.data.astype(np.float64), ref.data.astype(np.float64)
    psnr = 10 * math.log10((clean.max() - clean.min()) ** 2 / ((out - clean) ** 2).mean())
    assert float(rows[0]["psnr_denoised"]) == pytest.approx(psnr, abs=1e-6)
    with mrcfile.open(tmp_path / "eval" / "denoised" / "t0.mrc") as written, \
            mrcfile.open(root / "even" / "t0.mrc") as src:
        np.testing.assert_array_equal(written.data, out.astype(np.float32))
        assert written.data.dtype == np.float32
        assert written.voxel_size == src.voxel_size and written.header.origin == src.header.origin
        assert bytes(written.extended_header) == bytes(range(24))


def test_without_clean_volumes_the_n2n_loss_and_a_2d_model_section_by_section(root, run_eval, tmp_path, capsys):
    metrics = run_eval(tmp_path / "eval", *_args(root, model="m2d.ckpt", clean=None), "save_images=false")
    assert set(metrics) == {"checkpoint", "num_volumes", "n2n_loss_noisy", "n2n_loss_denoised"}
    # in normalised units: the noisy halves differ by two noises of half the signal-plus-noise variance
    assert 1 < metrics["n2n_loss_noisy"] < 2.5
    assert "section by section (2D model)" in capsys.readouterr().err
    assert not (tmp_path / "eval" / "denoised").exists()


def _bad(root, tmp_path, case):
    """The overrides of a refused evaluation, with the files they need made in tmp_path."""
    if case == "mismatched halves":
        shutil.copytree(root / "odd", tmp_path / "odd")
        with mrcfile.open(root / "odd" / "t1.mrc") as src:
            write_mrc(tmp_path / "odd" / "t1.mrc", np.array(src.data[:, :, :28]))
        return _args(root, odd=tmp_path / "odd")
    if case == "unmatched names":
        (tmp_path / "odd").mkdir()
        shutil.copy(root / "odd" / "t0.mrc", tmp_path / "odd")
        return _args(root, odd=tmp_path / "odd")
    if case == "missing clean":
        (tmp_path / "clean").mkdir()
        shutil.copy(root / "clean" / "t0.mrc", tmp_path / "clean")
        return _args(root, clean=tmp_path / "clean")
    if case in ("too small", "2D files for a 3D model"):
        shape = (3, 32, 32) if case == "too small" else (1, 32, 32)
        for half in ("even", "odd"):
            write_mrc(tmp_path / half / "t0.mrc", np.random.default_rng(0).normal(size=shape).astype(np.float32))
        return _args(root, even=tmp_path / "even", odd=tmp_path / "odd", clean=None)
    return _args(root) + {"channels": ["data.channels=3"], "noise given": ["noise=gaussian"],
                          "tile given": ["tile=400"], "other spelling": [f"+data.clean_dir={root / 'clean'}"],
                          "max_memory too small": ["max_memory=1M"]}[case]


REFUSED = {"mismatched halves": "data.dir_b", "unmatched names": "no partner", "missing clean": "has no volume t1",
           "too small": "smaller than the network's minimum", "2D files for a 3D model": "not a volume",
           "channels": "one channel", "noise given": "noise=", "tile given": "max_memory",
           "other spelling": "unknown option", "max_memory too small": "max_memory"}


@pytest.mark.parametrize("case", REFUSED)
def test_refused_in_one_line_before_anything_is_written(root, run_eval, tmp_path, case):
    overrides = _bad(root, tmp_path, case)
    with pytest.raises(N2NError) as err:
        run_eval(tmp_path / "eval", *overrides)
    assert "\n" not in str(err.value) and REFUSED[case] in str(err.value), str(err.value)
    assert not (tmp_path / "eval").exists()


def test_eval_py_exits_2_and_leaves_no_folder(root, tmp_path):
    run = tmp_path / "eval"
    result = run_entry(["eval.py", *_bad(root, tmp_path, "mismatched halves"), f"hydra.run.dir={run}"])
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "eval.py: error:" in result.stderr, \
        result.stderr[-2000:]
    assert not run.exists()
