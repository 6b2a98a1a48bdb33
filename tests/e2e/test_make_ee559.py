"""`n2n make-ee559`: the course's pickles from a folder of images, read back by data=ee559."""
import argparse
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from helpers.images import write_images
from helpers.runs import ROOT
from n2n.cli import main, make_ee559
from n2n.data.datamodule import N2NDataModule
from n2n.data.sources import load_tensor_pair
from n2n.errors import DataError
from n2n.image_files import read_training_image


def make(*argv: str) -> int:
    """Run the subcommand as `n2n make-ee559 ...` parses it (without importing every other subcommand)."""
    parser = argparse.ArgumentParser(prog="n2n")
    make_ee559.add_parser(parser.add_subparsers())
    args = parser.parse_args(["make-ee559", *map(str, argv)])
    return args.func(args)


def windows(image: torch.Tensor, size: int) -> torch.Tensor:
    """Every size x size crop of a C x H x W image, as L x C x size x size."""
    c = image.shape[0]
    w = image.float().unfold(1, size, 1).unfold(2, size, 1)  # C x Ly x Lx x size x size
    return w.permute(1, 2, 0, 3, 4).reshape(-1, c, size, size)


def nearest_image(patches: torch.Tensor, images: list[torch.Tensor]) -> list[tuple[int, float]]:
    """For each patch, the image holding the closest crop and the RMS distance to it (0..255 scale)."""
    crops = [windows(im, patches.shape[-1]) for im in images]
    out = []
    for p in patches.float():
        dist = [((c - p) ** 2).mean(dim=(1, 2, 3)).min().sqrt().item() for c in crops]
        best = min(range(len(dist)), key=dist.__getitem__)
        out.append((best, dist[best]))
    return out


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    train, val = tmp_path / "images", tmp_path / "val_images"
    write_images(train, [(48, 48), (40, 56), (56, 40), (48, 44)], seed=0)
    write_images(val, [(40, 40), (36, 48)], seed=50)
    return train, val


def test_writes_the_course_format_that_data_ee559_reads(tmp_path, folders):
    images, val_images = folders
    out = tmp_path / "ee559"
    assert make("--images", images, "--val-images", val_images, "--out", out, "--train-count", 300,
                "--val-count", 20, "--seed", 3) == 0
    a, b = load_tensor_pair(out / "train_data.pkl", "train", ("noisy_imgs_1", "noisy_imgs_2"))
    noisy, clean = load_tensor_pair(out / "val_data.pkl", "val", ("noisy_imgs", "clean_imgs"))
    assert a.shape == b.shape == (300, 3, 32, 32) and a.dtype == b.dtype == torch.uint8
    assert noisy.shape == clean.shape == (20, 3, 32, 32) and clean.dtype == torch.uint8
    assert isinstance(torch.load(out / "train_data.pkl"), tuple)

    # two independent draws of sigma-25 noise: the difference has std 25 * sqrt(2) (a little less where clipped)
    diff = a.float() - b.float()
    assert abs(diff.mean().item()) < 1.0 and 30 < diff.std().item() < 37
    residual = noisy.float() - clean.float()
    assert 21 < residual.std().item() < 26.5

    # validation clean patches are exact crops of the validation images, never of the training ones
    val_list = [read_training_image(p, 3) for p in sorted(val_images.iterdir())]
    assert all(d == 0 for _, d in nearest_image(clean[:5], val_list))

    # data=ee559 trains on it: the config as train.py composes it
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=["experiment=seed_report", f"data.train_path={out / 'train_data.pkl'}",
                                          f"data.val_path={out / 'val_data.pkl'}"])
    dm = N2NDataModule(OmegaConf.to_container(cfg, resolve=True))
    dm.setup("fit")
    assert dm.num_train == 300 and len(dm.val_pairs) == 20
    source, target = dm.draw_train_batch(torch.device("cpu")).values()
    assert source.shape == target.shape == (8, 3, 32, 32) and 0 <= source.min() and source.max() <= 1


def test_same_seed_same_files_other_seed_other_files(tmp_path, folders):
    images, _ = folders
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        make("--images", images, "--out", tmp_path / name, "--train-count", 50, "--val-count", 5, "--seed", seed)
    load = lambda name: torch.load(tmp_path / name / "train_data.pkl")  # noqa: E731
    assert all(torch.equal(x, y) for x, y in zip(load("a"), load("b")))
    assert not torch.equal(load("a")[0], load("c")[0])


def test_without_val_images_every_tenth_image_is_held_out(tmp_path, folders):
    images, _ = folders  # 4 images: img00 is held out, img01..img03 are cut for training
    out = tmp_path / "ee559"
    make("--images", images, "--out", out, "--train-count", 12, "--val-count", 6, "--sigma", 5)
    files = sorted(images.iterdir())
    all_images = [read_training_image(p, 3) for p in files]
    _, clean = torch.load(out / "val_data.pkl")
    assert {i for i, d in nearest_image(clean, all_images)} == {0}
    a, _ = torch.load(out / "train_data.pkl")  # sigma 5: the closest crop is still the source image's
    owners = nearest_image(a, all_images)
    assert all(i != 0 and d < 7 for i, d in owners), owners


def test_refuses_to_overwrite_unless_forced(tmp_path, folders, capsys):
    images, _ = folders
    out = tmp_path / "ee559"
    args = ("--images", images, "--out", out, "--train-count", 20, "--val-count", 4)
    make(*args)
    assert "train with: python train.py experiment=seed_report" in capsys.readouterr().out
    before = (out / "train_data.pkl").stat().st_mtime_ns
    first = torch.load(out / "train_data.pkl")[0]
    with pytest.raises(DataError, match="already exist.*--force"):
        make(*args, "--seed", 1)
    assert (out / "train_data.pkl").stat().st_mtime_ns == before
    make(*args, "--seed", 1, "--force")
    assert not torch.equal(torch.load(out / "train_data.pkl")[0], first)  # the seed-1 files replaced them
    assert sorted(p.name for p in out.iterdir()) == ["train_data.pkl", "val_data.pkl"]  # no leftovers


def test_small_images_are_skipped_and_named(tmp_path, capsys):
    images = tmp_path / "images"
    write_images(images, [(48, 48), (20, 20), (40, 40)], seed=0)  # img00 is held out for validation
    make("--images", images, "--out", tmp_path / "out", "--train-count", 10, "--val-count", 2)
    assert "training patches: skipping 1 image(s) of --images smaller than 32x32" in capsys.readouterr().err


@pytest.mark.parametrize("extra,error,message", [
    (["--patch", 64], DataError,
     r"--images: none of the 2 image\(s\) for training patches is at least 64x64.*lower --patch"),
    (["--images", "/nonexistent/folder"], DataError, r"--images=/nonexistent/folder is not a folder"),
])
def test_bad_input_is_named(tmp_path, extra, error, message):
    images = tmp_path / "images"
    write_images(images, [(48, 48), (48, 48), (48, 48)], seed=0)
    with pytest.raises(error, match=message):
        make("--images", images, "--out", tmp_path / "out", "--train-count", 10, "--val-count", 2, *extra)
    assert not (tmp_path / "out").exists()


def test_patches_too_small_to_score_are_refused_before_any_work(tmp_path, capsys):
    """Patches below SSIM's 11-pixel window would make training crash at its first validation."""
    with pytest.raises(SystemExit) as exit_:
        main(["make-ee559", "--images", str(tmp_path), "--out", str(tmp_path / "out"), "--patch", "1"])
    assert exit_.value.code == 2 and "--patch: 1 is not allowed: it must be an integer >= 11" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_one_image_needs_a_validation_folder(tmp_path):
    write_images(tmp_path / "one", [(48, 48)])
    with pytest.raises(DataError, match="only 1 image.*--val-images"):
        make("--images", tmp_path / "one", "--out", tmp_path / "out")


def test_through_the_n2n_command(tmp_path, folders, capsys):
    from n2n.cli import main

    images, _ = folders
    assert main(["make-ee559", "--images", str(images), "--out", str(tmp_path / "o"), "--train-count", "8",
                 "--val-count", "2"]) == 0
    assert (tmp_path / "o" / "train_data.pkl").is_file()
    with pytest.raises(SystemExit) as exit_:
        main(["make-ee559", "--images", str(images), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.startswith("n2n: error: ") and "pass --force to overwrite" in err
