"""Training on the user's own noisy captures, as a user would: real image files written in tmp_path (pairs of
8-bit PNGs, 16-bit greyscale TIFF pairs, multi-page TIFF stacks, folders of numbered frames), `train.py`,
`eval.py` and `n2n denoise` run as commands; every bad layout stops with one line naming the files."""
from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import tifffile
import torch

from helpers.images import write_images
from helpers.runs import ROOT, resolved, run_entry, run_in_process
from n2n.data.datamodule import N2NDataModule
from n2n.errors import ConfigError, DataError
from n2n.image_files import write_image

TINY = ["data.crop_size=32", "data.batch_size=2", "data.steps_per_epoch=3", "trainer.max_epochs=2",
        "trainer.accelerator=cpu", "trainer.log_every_n_steps=1", "trainer.num_sanity_val_steps=0",
        "trainer.enable_progress_bar=false"]


def generator():
    spec = importlib.util.spec_from_file_location("make_noisy_captures", ROOT / "scripts" / "make_noisy_captures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clean")
    write_images(folder, [(64, 80), (72, 64), (64, 64), (80, 72)], seed=3)
    return folder


def test_pairs_of_8_bit_rgb_without_clean_images(clean, tmp_path, one_thread, capsys):
    generator().make(clean, tmp_path / "data", "pairs", bits=8)
    run = tmp_path / "run"
    run_in_process(["data=pairs", "data.channels=3", f"data.dir_a={tmp_path / 'data/A'}",
                    f"data.dir_b={tmp_path / 'data/B'}", "data.val_fraction=0.25", *TINY], run)
    assert "follows val/n2n_loss" in capsys.readouterr().out
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["monitor"] == "val/n2n_loss" and metrics["global_step"] == 6
    assert np.isfinite(metrics["best_score"]) and metrics["best_score"] == min(
        metrics["best_score"], metrics["val_n2n_loss"])
    assert (run / "checkpoints" / "last.ckpt").is_file() and list((run / "checkpoints").glob("best-*.ckpt"))


@pytest.mark.slow  # a subprocess run of half a minute: the suite must stay well under 10 minutes
def test_16_bit_grey_tiff_pairs_with_clean_references_train_eval_and_denoise(clean, tmp_path):
    data = tmp_path / "data"
    generator().make(clean, data, "pairs", bits=16, grey=True, write_clean=True)
    run = tmp_path / "run"
    result = run_entry(["train.py", "data=pairs", f"data.dir_a={data / 'A'}", f"data.dir_b={data / 'B'}",
                        f"data.val_dir_a={data / 'A'}", f"data.val_dir_b={data / 'B'}",
                        f"data.val_clean_dir={data / 'clean'}", *TINY, f"hydra.run.dir={run}"])
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["monitor"] == "val/psnr" and np.isfinite(metrics["val_psnr"]) and "val_n2n_loss" in metrics

    evaluation = tmp_path / "eval"
    result = run_entry(["eval.py", f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}", f"hydra.run.dir={evaluation}"])
    assert result.returncode == 0, result.stderr[-3000:]
    scores = json.loads((evaluation / "metrics.json").read_text())
    assert scores["num_images"] == 4 and {"psnr_denoised", "n2n_loss_denoised"} <= set(scores)
    assert tifffile.imread(data / "A" / "img00.tif").dtype == np.uint16
    from PIL import Image
    assert np.asarray(Image.open(evaluation / "denoised" / "img00.png")).dtype == np.uint16  # 16-bit kept

    result = run_entry(["-m", "n2n.cli", "denoise", str(run / "checkpoints" / "last.ckpt"),
                        str(data / "A" / "img00.tif"), "-o", str(tmp_path / "denoised")])
    assert result.returncode == 0, result.stderr[-3000:]
    out = tifffile.imread(tmp_path / "denoised" / "img00.tif")
    assert out.dtype == np.uint16 and out.shape == (64, 80)


def test_stacks_as_multipage_tiffs_and_folders_of_frames(clean, tmp_path, one_thread):
    data = tmp_path / "data"
    generator().make(clean, data, "stacks", frames=3, bits=8)
    frames = tifffile.imread(data / "stacks" / "img01.tif")
    (data / "stacks" / "img01.tif").unlink()
    (data / "stacks" / "img01").mkdir()
    for i, frame in enumerate(frames):  # one scene as a folder of numbered frames
        write_image(data / "stacks" / "img01" / f"frame{i + 1}.png", frame)
    run = tmp_path / "run"
    run_in_process(["data=stacks", "data.channels=3", f"data.dir={data / 'stacks'}", "data.val_fraction=0.25", *TINY],
                   run)
    assert json.loads((run / "metrics.json").read_text())["monitor"] == "val/n2n_loss"


def stacks_config(folder, *overrides):
    return resolved(["data=stacks", f"data.dir={folder}", "data.val_fraction=0.5", "data.crop_size=32",
                     "data.channels=1", *overrides])


def test_each_step_draws_two_different_frames_of_one_scene(tmp_path):
    """Frames of value k everywhere: a batch's two crops must be two different frames, and over many draws
    every ordered pair of the N frames occurs (N (N - 1) pairs)."""
    folder = tmp_path / "stacks"
    folder.mkdir()
    for scene in ("a", "b"):
        tifffile.imwrite(folder / f"{scene}.tif", np.stack([np.full((40, 40), 10 * k, np.uint8) for k in range(4)]))
    dm = N2NDataModule(stacks_config(folder, "aug=none", "data.batch_size=64"))
    dm.setup("fit")
    pairs = set()
    for _ in range(4):
        source, target = dm.draw_train_batch(torch.device("cpu")).values()
        a = (source[:, 0, 0, 0] * 255).round().long() // 10
        b = (target[:, 0, 0, 0] * 255).round().long() // 10
        assert bool((a != b).all())
        pairs |= set(zip(a.tolist(), b.tolist()))
    assert pairs == {(i, j) for i in range(4) for j in range(4) if i != j}
    assert dm.val_pairs[0]["other"].shape == (1, 40, 40)  # the mean of the other frames of the held-out scene


def test_even_odd_split_trains_on_half_averages(tmp_path):
    folder = tmp_path / "stacks"
    folder.mkdir()
    for scene in ("a", "b"):
        tifffile.imwrite(folder / f"{scene}.tif", np.stack([np.full((40, 40), 10 * k, np.uint8) for k in range(4)]))
    dm = N2NDataModule(stacks_config(folder, "aug=none", "data.batch_size=16", "data.frame_split=even_odd"))
    dm.setup("fit")
    source, target = dm.draw_train_batch(torch.device("cpu")).values()
    levels = {round(float(v) * 255) for v in torch.cat([source, target])[:, 0, 0, 0]}
    assert levels == {10, 20}  # (0 + 20) / 2 and (10 + 30) / 2
    with pytest.raises(ConfigError, match="data.frame_split=halves is not allowed: it must be random | even_odd"):
        N2NDataModule(stacks_config(folder, "data.frame_split=halves"))


def test_16_bit_values_keep_their_depth(tmp_path):
    """Values below 256 of 65535 (a dim 16-bit capture) are not flattened to 8 bits."""
    for side in "AB":
        (tmp_path / side).mkdir()
        for i in range(2):
            tifffile.imwrite(tmp_path / side / f"s{i}.tif", np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) % 200)
    dm = N2NDataModule(resolved(["data=pairs", f"data.dir_a={tmp_path / 'A'}", f"data.dir_b={tmp_path / 'B'}",
                                 "data.val_fraction=0.5", "data.crop_size=32", "aug=none"]))
    dm.setup("fit")
    source, _ = dm.draw_train_batch(torch.device("cpu")).values()
    levels = torch.unique((source * 65535).round())
    assert len(levels) > 100 and float(source.max()) < 200 / 65535 + 1e-6


def _pairs(tmp_path, **changes):
    for side in "AB":
        (tmp_path / side).mkdir(parents=True, exist_ok=True)
        for name in ("x.png", "y.png"):
            write_image(tmp_path / side / name, np.full((48, 48, 1), 100, np.uint8))
    for path, content in changes.items():
        target = tmp_path / path
        if content is None:
            target.unlink()
        elif isinstance(content, bytes):
            target.write_bytes(content)
        else:
            write_image(target, content)
    return resolved(["data=pairs", f"data.dir_a={tmp_path / 'A'}", f"data.dir_b={tmp_path / 'B'}",
                     "data.val_fraction=0.5", "data.crop_size=32"])


@pytest.mark.parametrize("changes,message", [
    ({"B/y.png": None}, r"1 image\(s\) of data.dir_a=.* have no partner of the same name in data.dir_b: y.png"),
    ({"A/y.png": np.full((48, 40, 1), 1, np.uint8)},
     r"data.dir_a/y.png is 40x48 8-bit .* but data.dir_b/y.png is 48x48"),
    ({"B/x.png": np.full((48, 48, 1), 1, np.uint16)},
     r"data.dir_a/x.png is 48x48 8-bit .* but data.dir_b/x.png is 48x48 16-bit"),
    ({"A/x.png": b"not an image"}, r"cannot read image .*A/x.png"),
])
def test_bad_pair_layouts_name_the_files(tmp_path, changes, message):
    with pytest.raises(DataError, match=message):
        N2NDataModule(_pairs(tmp_path, **changes)).setup("fit")


def test_bad_stacks_and_missing_validation_are_refused(tmp_path):
    folder = tmp_path / "stacks"
    folder.mkdir()
    tifffile.imwrite(folder / "one.tif", np.zeros((40, 40), np.uint8))
    tifffile.imwrite(folder / "two.tif", np.zeros((2, 40, 40), np.uint8))
    with pytest.raises(DataError, match=r"stack .*one.tif holds 1 frame\(s\): a scene needs at least 2"):
        N2NDataModule(stacks_config(folder)).setup("fit")
    with pytest.raises(ConfigError, match="data=stacks needs validation stacks"):
        N2NDataModule(resolved(["data=stacks", f"data.dir={folder}"]))
    with pytest.raises(ConfigError, match="data=pairs needs validation pairs"):
        N2NDataModule(resolved(["data=pairs", "data.dir_a=A", "data.dir_b=B"]))
    with pytest.raises(ConfigError, match="method=n2c \\(Noise2Clean\\) needs clean training images"):
        N2NDataModule(stacks_config(folder, "target=clean"))


def test_a_bad_layout_is_one_line_from_train_py(tmp_path):
    config_dir = tmp_path / "pairs"
    _pairs(config_dir, **{"B/y.png": None})
    result = run_entry(["train.py", "data=pairs", f"data.dir_a={config_dir / 'A'}", f"data.dir_b={config_dir / 'B'}",
                        "data.val_fraction=0.5", f"hydra.run.dir={tmp_path / 'run'}"])
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "train.py: error: 1 image(s) of data.dir_a=" in result.stderr and "y.png" in result.stderr
