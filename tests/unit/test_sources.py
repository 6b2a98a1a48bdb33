"""Each data source on small files written in the test, and each bad input's message."""
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from helpers.files import Exploit
from helpers.images import smooth_image, write_images
from n2n.data.sources import check_min_size, load_image_folder, load_samples, load_tensor_pair
from n2n.errors import ConfigError, DataError

NAMES = ("noisy_imgs_1", "noisy_imgs_2")


def test_ee559_pickle_round_trip(ee559_files):
    train, val = ee559_files
    a, b = load_tensor_pair(train, "data.train_path", NAMES)
    assert a.shape == b.shape == (64, 3, 32, 32) and a.dtype == torch.uint8
    noisy, clean = load_tensor_pair(val, "data.val_path", ("noisy", "clean"))
    assert noisy.shape == clean.shape == (16, 3, 32, 32)


@pytest.mark.parametrize("content,message", [
    ({"a": 1}, "holds a dict"),
    ((torch.zeros(2, 3, 32, 32, dtype=torch.uint8),) * 3, "of length 3"),
    ((torch.zeros(2, 3, 32, 32), torch.zeros(2, 3, 32, 32)), "dtype torch.float32"),
    ((torch.zeros(2, 32, 32, dtype=torch.uint8),) * 2, r"shape \(2, 32, 32\)"),
    ((torch.zeros(2, 3, 32, 32, dtype=torch.uint8), torch.zeros(3, 3, 32, 32, dtype=torch.uint8)), "differ in shape"),
    ((torch.zeros(2, 3, 32, 32, dtype=torch.uint8), [1, 2]), "is a list"),
    ((torch.zeros(2, 3, 0, 32, dtype=torch.uint8),) * 2, r"shape \(2, 3, 0, 32\).*H, W >= 1"),
    ((torch.zeros(0, 3, 32, 32, dtype=torch.uint8),) * 2, r"shape \(0, 3, 32, 32\)"),
    ((torch.zeros(2, 3, 32, 32, dtype=torch.uint8).to_sparse(),) * 2, "sparse_coo tensor"),
])
def test_ee559_wrong_structure_is_named(tmp_path, content, message):
    path = tmp_path / "bad.pkl"
    torch.save(content, path)
    with pytest.raises(DataError, match=message) as err:
        load_tensor_pair(path, "data.train_path", NAMES)
    assert str(path) in str(err.value) and "data.train_path" in str(err.value)


def test_ee559_missing_and_non_pickle_files(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_tensor_pair(tmp_path / "nope.pkl", "data.train_path", NAMES)
    junk = tmp_path / "junk.pkl"
    junk.write_bytes(b"not a pickle at all")
    with pytest.raises(DataError, match="junk.pkl is not a readable torch file"):
        load_tensor_pair(junk, "data.train_path", NAMES)


def test_crafted_pickle_cannot_run_code(tmp_path):
    target = tmp_path / "pwned.txt"
    path = tmp_path / "train_data.pkl"
    with open(path, "wb") as f:
        pickle.dump((Exploit(str(target)), torch.zeros(1)), f)
    with pytest.raises(DataError, match="refused"):
        load_tensor_pair(path, "data.train_path", NAMES)
    assert not target.exists()


def test_folder_loads_all_formats_and_modes(tmp_path):
    folder = tmp_path / "imgs"
    write_images(folder, [(40, 50)], suffix=".png")
    write_images(folder, [(40, 50)], seed=1, suffix=".jpg")
    Image.fromarray(smooth_image(30, 20, 2)[:, :, 0]).save(folder / "grey.tif")
    Image.fromarray(np.dstack([smooth_image(30, 20, 3), np.full((30, 20), 128, np.uint8)])).save(folder / "rgba.png")
    Image.fromarray(smooth_image(16, 16, 4)).save(folder / "small.bmp")
    (folder / "notes.txt").write_text("not an image")
    names, images = load_image_folder(folder, 3, "data.train_dir")
    assert names == ["grey.tif", "img00.jpg", "img00.png", "rgba.png", "small.bmp"]
    assert all(im.shape[0] == 3 and im.dtype == torch.uint8 for im in images)
    assert images[0].shape == (3, 30, 20) and torch.equal(images[0][0], images[0][2])  # grey replicated
    _, grey = load_image_folder(folder, 1, "data.train_dir")
    assert all(im.shape[0] == 1 for im in grey)


def test_folder_errors_name_the_folder_or_file(tmp_path):
    with pytest.raises(DataError, match="data.train_dir=.*is not a folder"):
        load_image_folder(tmp_path / "missing", 3, "data.train_dir")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no images"):
        load_image_folder(tmp_path / "empty", 3, "data.train_dir")
    bad = tmp_path / "bad"
    write_images(bad, [(40, 40)])
    (bad / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(DataError, match="cannot read image .*broken.png"):
        load_image_folder(bad, 3, "data.train_dir")
    truncated = tmp_path / "trunc"
    paths = write_images(truncated, [(200, 200)], suffix=".jpg")
    data = paths[0].read_bytes()
    paths[0].write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="cannot read image .*img00.jpg"):
        load_image_folder(truncated, 3, "data.train_dir")


def test_images_smaller_than_the_crop_are_named():
    images = [torch.zeros(3, 100, 100, dtype=torch.uint8), torch.zeros(3, 20, 300, dtype=torch.uint8)]
    check_min_size(images[:1], ["a.png"], 64, "data.train_dir")  # large enough: no error
    with pytest.raises(DataError, match=r"crop_size=64: b.png \(300x20\)"):
        check_min_size(images, ["a.png", "b.png"], 64, "data.train_dir")


def test_samples_load_offline_and_unknown_names_are_refused():
    (chelsea,) = load_samples(["chelsea"], 3, "data.val_images")
    assert chelsea.shape == (3, 300, 451)
    (camera,) = load_samples(["camera"], 3, "data.train_images")  # greyscale photo, made RGB
    assert camera.shape == (3, 512, 512)
    with pytest.raises(ConfigError, match="not a scikit-image sample"):
        load_samples(["no_such_photo"], 3, "data.train_images")


def test_every_source_has_a_config_and_every_config_a_source():
    """conf/data/NAME.yaml exists for each registered source and holds only options it or the DataModule takes."""
    from pathlib import Path

    import yaml

    from n2n.data.datamodule import COMMON_KEYS
    from n2n.data.sources import SOURCES

    conf = Path(__file__).resolve().parents[2] / "conf" / "data"
    files = {p.stem: yaml.safe_load(p.read_text()) for p in conf.glob("*.yaml")}
    assert set(files) == set(SOURCES)
    for name, options in files.items():
        assert options["name"] == name
        assert set(options) <= COMMON_KEYS | SOURCES[name].options, name


def test_samples_never_call_other_functions_of_skimage_data(monkeypatch):
    import skimage.data

    monkeypatch.setattr(skimage.data, "download_all", lambda *a, **k: pytest.fail("called"))
    for name in ("download_all", "__getattr__", "lbp_frontal_face_cascade_filename"):
        with pytest.raises(ConfigError, match="not a scikit-image sample photo"):
            load_samples([name], 3, "data.train_images")


def test_validation_images_too_small_to_score_are_named(tmp_path):
    """Every source's validation images pass through ValidationData: a 4x4 one is refused with its name."""
    from n2n.data.sources import ValidationData

    with pytest.raises(DataError, match=r"smaller than 11x11.*tiny.png \(4x6\)"):
        ValidationData(["ok.png", "tiny.png"], [torch.zeros(3, 16, 16), torch.zeros(3, 6, 4)])
    write_images(tmp_path / "val", [(64, 64), (5, 40)], seed=0)
    from n2n.data.sources.folder import ImageFolder

    with pytest.raises(DataError, match=r"\(40x5\)"):
        ImageFolder({"val_dir": str(tmp_path / "val")}, 3).val_data()
