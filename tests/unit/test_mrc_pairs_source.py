"""data=pairs of MRC micrographs: float32 read faithfully, each pair normalised together, 2D crops of both halves at
one place, validation as one-section volumes, and every bad input one line naming the file."""
import warnings

import mrcfile
import numpy as np
import pytest
import torch

from helpers.runs import resolved
from helpers.volumes import micrographs, write_mrc
from n2n.data.datamodule import N2NDataModule
from n2n.data.sources.micrographs import MicrographPairs
from n2n.errors import ConfigError, DataError
from n2n.image_files import write_image


def _config(root, *extra):
    return resolved(["data=pairs", f"data.dir_a={root / 'even'}", f"data.dir_b={root / 'odd'}",
                     "data.val_fraction=0.25", "data.crop_size=32", "data.batch_size=3", *extra])


def _setup(config):
    dm = N2NDataModule(config)
    dm.setup("fit")
    return dm


def test_auto_normalize_is_recorded_and_mrc_pairs_train_in_their_units(tmp_path):
    micrographs(tmp_path, offset=1000.0, scale=30.0, noise=30.0)
    config = _config(tmp_path)
    assert config["data"]["normalize"] == "mean_std"  # what the checkpoint records: n2n denoise undoes it
    dm = _setup(config)
    assert isinstance(dm.source, MicrographPairs) and dm.validation_metric == "val/n2n_loss"
    noisy, other = dm.draw_train_batch(torch.device("cpu")).values()
    assert noisy.shape == other.shape == (3, 1, 32, 32) and noisy.dtype == torch.float32
    # normalised per pair (the micrographs are around 1000, std about 40): zero mean, unit standard deviation
    assert abs(float(noisy.mean())) < 0.5 and 0.5 < float(noisy.std()) < 1.5
    with mrcfile.open(tmp_path / "even" / "m1.mrc") as a, mrcfile.open(tmp_path / "odd" / "m1.mrc") as b:
        norm = dm.source._norms["m1.mrc"]
        both = np.stack([a.data, b.data]).astype(np.float64)
        assert norm.mean == pytest.approx(both.mean(), rel=1e-6) and norm.std == pytest.approx(both.std(), rel=1e-6)
    # validation: the held-out pair as a one-section volume (channel, section), in normalised units
    assert dm.val_names == ["m0.mrc"]
    item = dm.val_pairs[0]
    assert item["noisy"].shape == item["other"].shape == (1, 1, 64, 64) and "clean" not in item
    with mrcfile.open(tmp_path / "even" / "m0.mrc") as a:
        expected = dm.source._norms["m0.mrc"].apply(torch.from_numpy(a.data.astype(np.float32)))
    assert torch.allclose(item["noisy"][0, 0], expected, atol=1e-5)


def test_crops_take_the_same_place_in_both_halves(tmp_path):
    """Even half = a ramp, odd half = the same ramp: both crops of a pair are equal (up to the swap, which is a
    no-op here) and come from inside the micrograph."""
    ramp = np.arange(64 * 48, dtype=np.float32).reshape(48, 64)
    for name in ("a.mrc", "b.mrc"):
        write_mrc(tmp_path / "even" / name, ramp)
        write_mrc(tmp_path / "odd" / name, ramp)
    dm = _setup(resolved(["data=pairs", f"data.dir_a={tmp_path / 'even'}", f"data.dir_b={tmp_path / 'odd'}",
                          f"data.val_dir_a={tmp_path / 'even'}", f"data.val_dir_b={tmp_path / 'odd'}",
                          "data.crop_size=32", "data.batch_size=8"]))
    noisy, other = dm.draw_train_batch(torch.device("cpu")).values()
    assert torch.equal(noisy, other)
    assert dm.val_pairs[0]["noisy"].shape == (1, 1, 48, 64)


def test_clean_micrographs_give_val_psnr_in_the_pairs_units(tmp_path):
    micrographs(tmp_path)
    dm = _setup(_config(tmp_path, f"data.val_clean_dir={tmp_path / 'clean'}"))
    assert dm.validation_metric == "val/psnr"
    item = dm.val_pairs[0]
    with mrcfile.open(tmp_path / "clean" / "m0.mrc") as c:
        expected = dm.source._norms["m0.mrc"].apply(torch.from_numpy(c.data.astype(np.float32)))
    assert item["clean"].shape == (1, 1, 64, 64) and torch.allclose(item["clean"][0, 0], expected, atol=1e-5)


def test_large_validation_micrographs_are_scored_on_their_centre(tmp_path, monkeypatch):
    monkeypatch.setattr("n2n.data.sources.micrographs.VAL_MAX_SIDE", 40)
    micrographs(tmp_path, shape=(64, 72))
    assert _setup(_config(tmp_path)).val_pairs[0]["noisy"].shape == (1, 1, 40, 40)


def test_images_keep_their_pairs_source_and_normalize_null(tmp_path):
    _photos(tmp_path)
    config = _config(tmp_path)
    assert config["data"]["normalize"] is None
    assert not isinstance(N2NDataModule(config).source, MicrographPairs)


def _photos(root):
    for side in ("even", "odd"):
        (root / side).mkdir(parents=True, exist_ok=True)
        for name in ("x.png", "y.png"):
            write_image(root / side / name, np.full((48, 48, 1), 100, np.uint8))


def _bad(tmp_path, case):
    """The micrograph folders with one problem of each kind."""
    micrographs(tmp_path)
    even, odd = tmp_path / "even", tmp_path / "odd"
    data = np.zeros((64, 64), np.float32) + np.arange(64, dtype=np.float32)
    if case == "shape":
        write_mrc(odd / "m2.mrc", data[:, :60])
    elif case == "pixel size":
        write_mrc(odd / "m2.mrc", data, voxel=(1.0, 1.0, 1.0))
    elif case == "sections":
        write_mrc(odd / "m2.mrc", np.stack([data, data]))
    elif case == "nan":
        data[5, 7] = np.nan
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # mrcfile's own notice of the NaN this file is made to hold
            write_mrc(odd / "m2.mrc", data)
    elif case == "mode":
        (odd / "m2.mrc").unlink()
        with mrcfile.new(odd / "m2.mrc") as mrc:
            mrc.set_data(np.zeros((8, 8), np.complex64))
    elif case == "truncated":
        raw = (odd / "m2.mrc").read_bytes()
        (odd / "m2.mrc").write_bytes(raw[: len(raw) - 1000])
    elif case == "mixed":
        write_image(even / "photo.png", np.full((64, 64, 1), 100, np.uint8))
    elif case == "mixed folders":
        for name in ("m0", "m1", "m2", "m3"):
            (odd / f"{name}.mrc").unlink()
            write_image(odd / f"{name}.png", np.full((64, 64, 1), 100, np.uint8))
    elif case == "small":
        write_mrc(even / "m2.mrc", data[:20, :20])
        write_mrc(odd / "m2.mrc", data[:20, :20])
    elif case == "constant":
        write_mrc(even / "m2.mrc", np.ones((64, 64), np.float32))
        write_mrc(odd / "m2.mrc", np.ones((64, 64), np.float32))
    return tmp_path


BAD = [
    ("shape", DataError, r"data.dir_a/m2.mrc=.* is 1 x 64 x 64 \(Z x Y x X\) but data.dir_b/m2.mrc=.* is 1 x 64 x 60"),
    ("pixel size", DataError, r"data.dir_a/m2.mrc=.* has voxel size 2 x 1.5 x 1.5 \(z, y, x\) but data.dir_b/m2.mrc"),
    ("sections", DataError, r"data.dir_b=.*m2.mrc holds 2 sections of 64 x 64, not one micrograph: train on volumes "
                            r"with data=volumes"),
    ("nan", DataError, r"data.dir_b=.*m2.mrc: voxel \(z=0, y=5, x=7\) is nan"),
    ("mode", DataError, r"data.dir_b=.*m2.mrc: MRC mode 4 \(complex float32\) cannot be denoised"),
    ("truncated", DataError, r"data.dir_b=.*m2.mrc: not a readable MRC file \(truncated or damaged\?\)"),
    ("mixed", DataError, r"data=pairs mixes MRC micrographs \(data.dir_a=.*: m0.mrc\) with 8/16-bit images "
                         r"\(data.dir_a=.*: photo.png\)"),
    ("mixed folders", DataError, r"mixes MRC micrographs \(data.dir_a=.*: m0.mrc\) with 8/16-bit images "
                                 r"\(data.dir_b=.*: m0.png\)"),
    ("small", DataError, r"data.dir_a: 1 image\(s\) are smaller than data.crop_size=32: m2.mrc \(20x20\)"),
    ("constant", DataError, r"data.dir_a/m2.mrc is constant \(1 everywhere\)"),
]


@pytest.mark.parametrize("case,error,message", BAD, ids=[c[0] for c in BAD])
def test_bad_micrographs_are_one_line_naming_the_file(tmp_path, case, error, message):
    root = _bad(tmp_path, case)
    with pytest.raises(error, match=message) as err:
        _setup(_config(root))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("extra,error,message", [
    (["data.normalize=null"], ConfigError, r"data.normalize=null scales 8/16-bit images by their bit depth, but "
                                           r"data.dir_a=.* holds MRC micrographs \(m0.mrc\)"),
    (["data.channels=3"], ConfigError, "MRC micrographs have one channel; set data.channels=1"),
    (["method=nb2nb"], ConfigError, r"data=pairs trains Noise2Noise between two MRC micrographs \(method=n2n\); "
                                    r"method=nb2nb is not available for micrographs yet"),
])
def test_bad_options_for_micrographs(tmp_path, extra, error, message):
    micrographs(tmp_path)
    with pytest.raises(error, match=message):
        _setup(_config(tmp_path, *extra))


def test_mean_std_is_refused_for_images(tmp_path):
    _photos(tmp_path)
    with pytest.raises(ConfigError, match=r"data.normalize=mean_std is for MRC micrographs, but data.dir_a=.* holds "
                                          r"images \(x.png\)"):
        _config(tmp_path, "data.normalize=mean_std")
