"""`python train.py data=volumes model.dims=3` trains on small MRC half volumes, resumes, and its checkpoint
denoises a volume with `n2n denoise --pair` and scores the validation slab with eval.py."""
import json

import mrcfile
import numpy as np
import pytest
import torch

from helpers.runs import run_entry
from helpers.volumes import halves, write_mrc


def _volumes(root):
    for i in range(2):
        clean, even, odd = halves(shape=(16, 40, 36), seed=i)
        write_mrc(root / "even" / f"t{i}.mrc", even)
        write_mrc(root / "odd" / f"t{i}.mrc", odd)
        write_mrc(root / "clean" / f"t{i}.mrc", clean)


@pytest.mark.slow
def test_train_resume_denoise_and_evaluate(tmp_path):
    _volumes(tmp_path)
    run = tmp_path / "run"
    args = ["train.py", "data=volumes", "model.dims=3", "model.depth=2", "model.features=4",
            f"data.dir_a={tmp_path / 'even'}", f"data.dir_b={tmp_path / 'odd'}",
            f"data.val_clean_dir={tmp_path / 'clean'}", "data.crop_size=8", "data.batch_size=2",
            "data.steps_per_epoch=3", "trainer.accelerator=cpu", "trainer.num_sanity_val_steps=0",
            "trainer.enable_progress_bar=false", "print_config=false", f"hydra.run.dir={run}"]
    first = run_entry([*args, "trainer.max_steps=3"])
    assert first.returncode == 0, first.stderr[-2000:]
    assert "best val/psnr" in first.stdout + first.stderr
    resumed = run_entry([*args, "trainer.max_steps=6", "ckpt_path=last"])
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["global_step"] == 6 and ckpt["hyper_parameters"]["config"]["data"]["normalize"] == "mean_std"
    assert ckpt["hyper_parameters"]["config"]["model"]["dims"] == 3

    out = tmp_path / "denoised"
    result = run_entry(["-m", "n2n.cli", "denoise", str(tmp_path / "even" / "t0.mrc"), "--pair",
                        str(tmp_path / "odd" / "t0.mrc"), "-m", str(run / "checkpoints" / "last.ckpt"), "-o", str(out)])
    assert result.returncode == 0, result.stderr[-2000:]
    with mrcfile.open(out / "t0.mrc") as a, mrcfile.open(tmp_path / "even" / "t0.mrc") as b:
        assert a.data.dtype == np.float32 and a.voxel_size == b.voxel_size and a.header.origin == b.header.origin

    evaluation = tmp_path / "eval"
    result = run_entry(["eval.py", f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}", f"hydra.run.dir={evaluation}"])
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((evaluation / "metrics.json").read_text())
    assert metrics["num_volumes"] == 2 and metrics["psnr_noisy"] < 30
    assert (evaluation / "denoised" / "t0_slab.mrc").is_file()


@pytest.mark.parametrize("dims", [3, 2])
def test_even_odd_halves_alone_train_and_follow_the_n2n_loss(tmp_path, dims):
    """The everyday cryo-ET case: two half volumes and no clean one. Validation scores the loss against the other
    half, the checkpoint follows it, and the run is not refused before it starts (for a 3D model, and for a 2D
    one on the sections)."""
    from helpers.runs import run_in_process, scalars

    _volumes(tmp_path)
    run = tmp_path / "run"
    crop = "8" if dims == 3 else "16"
    torch.set_num_threads(1)
    run_in_process(["data=volumes", f"model.dims={dims}", "model.depth=2", "model.features=4",
                    f"data.dir_a={tmp_path / 'even'}", f"data.dir_b={tmp_path / 'odd'}", f"data.crop_size={crop}",
                    "data.batch_size=2", "data.steps_per_epoch=3", "trainer.max_epochs=2", "trainer.accelerator=cpu",
                    "trainer.num_sanity_val_steps=0", "trainer.enable_progress_bar=false", "print_config=false"], run)
    logged = scalars(run)
    assert len(logged["val/n2n_loss"]) == 2 and "val/psnr" not in logged
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["monitor"] == "val/n2n_loss" and metrics["status"] == "finished"
    assert (run / "checkpoints" / "last.ckpt").is_file()
