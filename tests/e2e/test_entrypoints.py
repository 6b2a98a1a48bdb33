"""End to end: train.py, a 2-job multirun and eval.py run as a user runs them; then read what they wrote."""
import csv
import json
from pathlib import Path

import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from helpers.runs import TINY, run_entry
from n2n.inference.checkpoints import load_unet


def scalars(run_dir: Path) -> dict[str, list[float]]:
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    out = {tag: [e.value for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}
    out["_images"] = {tag: acc.Images(tag)[-1] for tag in acc.Tags()["images"]}
    out["_tensors"] = acc.Tags()["tensors"]
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny training run on a folder of images, shared by the tests that read its outputs."""
    from helpers.images import write_images

    root = tmp_path_factory.mktemp("e2e")
    write_images(root / "train", [(96, 128), (128, 96), (80, 80)], seed=0)
    write_images(root / "val", [(64, 96), (45, 70)], seed=100)
    run_dir = root / "run"
    result = run_entry(["train.py", "data=folder", f"data.train_dir={root / 'train'}", f"data.val_dir={root / 'val'}",
                        "data.crop_size=32", f"hydra.run.dir={run_dir}", *TINY,
                        "trainer.precision=bf16-mixed"])  # validation still scores as eval.py does (float32)
    assert result.returncode == 0, result.stderr[-3000:]
    return root, run_dir, result


def test_train_writes_config_checkpoints_tensorboard_and_metrics(trained):
    root, run_dir, result = trained
    assert "best val/psnr" in result.stdout
    assert (run_dir / "config.yaml").is_file() and (run_dir / ".hydra" / "config.yaml").is_file()
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert len(list((run_dir / "checkpoints").glob("best-*.ckpt"))) == 1
    logged = scalars(run_dir)
    assert len(logged["train/loss"]) >= 3 and all(v > 0 for v in logged["train/loss"])
    assert len(logged["val/psnr"]) == 2 and len(logged["val/ssim"]) == 2  # one per epoch
    assert "train/lr" in logged
    # events in the run folder itself: TensorBoard names the run after it
    assert list(run_dir.glob("events.out.tfevents.*")) and not (run_dir / "tensorboard").exists()
    assert "custom_scalars__config__" in logged["_tensors"]  # val/psnr and val/psnr_noisy on one chart
    # TensorBoard's Time Series tab opens its first two groups of charts (sorted by name): the curves
    groups = sorted({tag.split("/")[0] for tag in logged if not tag.startswith("_")})
    assert groups == ["train", "val", "whole_run"] and "epoch" not in logged
    # one labelled picture per validation image, the 45 to 96 px images enlarged
    assert sorted(logged["_images"]) == ["val/noisy|denoised|clean/1", "val/noisy|denoised|clean/2"]
    for grid in logged["_images"].values():
        assert grid.width > 3 * 192 and grid.height < grid.width / 2  # one row, not a column of rows
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["best_val_psnr"] == pytest.approx(max(logged["val/psnr"]), abs=1e-4)
    assert metrics["global_step"] == 8
    net = load_unet(run_dir / "checkpoints" / "last.ckpt")
    assert net(torch.rand(1, 3, 40, 40)).shape == (1, 3, 40, 40)


def test_eval_scores_a_checkpoint_and_writes_images(trained):
    root, run_dir, _ = trained
    out = root / "eval"
    ckpt = next((run_dir / "checkpoints").glob("best-*.ckpt"))
    result = run_entry(["eval.py", f"ckpt_path={ckpt}", f"hydra.run.dir={out}", "device=cpu"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "PSNR noisy" in result.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_images"] == 2
    rows = list(csv.DictReader(open(out / "per_image.csv")))
    assert [r["image"] for r in rows] == ["img00.png", "img01.png"]
    mean = sum(float(r["psnr_denoised"]) for r in rows) / 2
    assert metrics["psnr_denoised"] == pytest.approx(mean)
    assert 15 < metrics["psnr_noisy"] < 25  # sigma 25 on [0, 255]
    assert Image.open(out / "denoised" / "img01.png").size == (70, 45)
    assert (out / "comparison.png").is_file()
    # the training run's best val/psnr was measured on the same fixed noisy images, with the same arithmetic
    best = json.loads((run_dir / "metrics.json").read_text())["best_val_psnr"]
    assert metrics["psnr_denoised"] == pytest.approx(best, abs=1e-4)


def test_eval_on_another_folder_and_noise(trained):
    root, run_dir, _ = trained
    out = root / "eval2"
    result = run_entry(["eval.py", f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}", f"hydra.run.dir={out}",
                        "data=folder", f"data.val_dir={root / 'train'}", "noise=gaussian", "noise.sigma=50",
                        "save_images=false"])
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_images"] == 3 and metrics["psnr_noisy"] < 16  # sigma 50 is noisier
    assert not (out / "denoised").exists()


def test_multirun_runs_each_combination_in_its_own_folder(tmp_path, image_dirs):
    train, val = image_dirs
    sweep = tmp_path / "sweep"
    result = run_entry(["train.py", "-m", "activation=relu,leaky_relu", "data=folder", f"data.train_dir={train}",
                        f"data.val_dir={val}", "data.crop_size=32", f"hydra.sweep.dir={sweep}", *TINY,
                        "trainer.max_epochs=1"])
    assert result.returncode == 0, result.stderr[-3000:]
    for job, act in (("0", "relu"), ("1", "leaky_relu")):
        config = (sweep / job / "config.yaml").read_text()
        assert f"name: {act}" in config
        assert (sweep / job / "checkpoints" / "last.ckpt").is_file()
        assert json.loads((sweep / job / "metrics.json").read_text())["global_step"] == 4


def test_the_run_records_what_it_used(tmp_path):
    """config.yaml and the checkpoint say which precision ran, not `auto`."""
    import yaml

    from helpers.images import write_images

    write_images(tmp_path / "train", [(64, 64), (64, 64)])
    write_images(tmp_path / "val", [(64, 64)], seed=5)
    run = tmp_path / "run"
    result = run_entry(["train.py", "data=folder", f"data.train_dir={tmp_path / 'train'}",
                        f"data.val_dir={tmp_path / 'val'}", "data.crop_size=32", "trainer.max_epochs=1",
                        f"hydra.run.dir={run}",
                        *[o for o in TINY if not o.startswith("trainer.max_epochs")]])
    assert result.returncode == 0, result.stderr[-2000:]
    saved = yaml.safe_load((run / "config.yaml").read_text())
    from n2n.devices import fast_bf16

    expected = "bf16-mixed" if fast_bf16("cpu") else "32-true"
    assert saved["trainer"]["precision"] == expected
    assert saved["perf"]["channels_last"] is (expected == "bf16-mixed")
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["hyper_parameters"]["config"]["trainer"]["precision"] == expected


def test_eval_output_names_are_unique():
    from n2n.inference.evaluate import output_names

    assert output_names(["a.png", "b.jpg"]) == ["a.png", "b.png"]
    assert output_names(["photo.png", "photo.jpg", "x.tif"]) == ["photo_png.png", "photo_jpg.png", "x.png"]
    names = output_names(["a.PNG", "a.png", "a.jpg"])
    assert len(set(names)) == 3
