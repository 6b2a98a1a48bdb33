import pytest
import torch

from helpers.runs import resolved
from n2n.data.crops import CropBank
from n2n.data.datamodule import N2NDataModule
from n2n.errors import ConfigError, DataError


def folder_config(train, val, *overrides, **data):
    """conf/train.yaml with data=folder on these folders, 6 crops of 32 px, composed and resolved."""
    return resolved(["data=folder", f"data.train_dir={train}", f"data.val_dir={val}", "data.crop_size=32",
                     "data.batch_size=6", "data.steps_per_epoch=3", *(f"data.{k}={v}" for k, v in data.items()),
                     *overrides])


def ee559_config(train, val, *overrides):
    return resolved(["data=ee559", f"data.train_path={train}", f"data.val_path={val}", *overrides])


def test_crop_bank_gathers_the_same_pixels_as_slicing():
    images = [torch.randint(0, 256, (3, h, w), dtype=torch.uint8) for h, w in [(40, 50), (33, 90), (64, 32)]]
    bank = CropBank(images)
    g = torch.Generator().manual_seed(0)
    crops = bank.sample(200, 32, g)
    assert crops.shape == (200, 3, 32, 32)
    for crop in crops[:50]:
        assert any(crop[0, 0, 0] in im for im in images)
        found = False
        for im in images:
            for y in range(im.shape[1] - 31):
                for x in range(im.shape[2] - 31):
                    if torch.equal(im[:, y:y + 32, x:x + 32], crop):
                        found = True
                        break
                if found:
                    break
            if found:
                break
        assert found


def test_folder_batches_are_noisy_pairs_of_one_clean_crop(image_dirs):
    dm = N2NDataModule(folder_config(*image_dirs))
    dm.setup("fit")
    src, tgt = dm.draw_train_batch(torch.device("cpu")).values()
    assert src.shape == tgt.shape == (6, 3, 32, 32) and src.dtype == torch.float32
    diff = (src - tgt).std().item()
    assert abs(diff - (2 ** 0.5) * 25 / 255) < 0.02  # two independent sigma-25 noises
    assert len(dm.train_dataloader()) == 3


def test_file_like_clips_the_input_of_each_pair_and_leaves_its_target_unclipped(image_dirs):
    """noise.file_like=1: every input as an 8-bit file holds it, every target unclipped (Noise2Noise learns the
    targets' mean, and clipping them would bias it near black and white)."""
    dm = N2NDataModule(folder_config(*image_dirs, "noise.sigma=50", "noise.file_like=1", batch_size=32))
    dm.setup("fit")
    src, tgt = dm.draw_train_batch(torch.device("cpu")).values()
    assert src.min() >= 0 and src.max() <= 1 and torch.allclose(src * 255, (src * 255).round(), atol=1e-4)
    assert tgt.min() < 0 and tgt.max() > 1  # sigma 50 leaves [0, 1] somewhere in 32 crops


def test_noise2clean_target_is_the_clean_crop(image_dirs):
    dm = N2NDataModule({**folder_config(*image_dirs), "target": "clean"})
    dm.setup("fit")
    src, tgt = dm.draw_train_batch(torch.device("cpu")).values()
    assert abs((src - tgt).std().item() - 25 / 255) < 0.015
    assert tgt.min() >= 0 and tgt.max() <= 1
    assert torch.allclose(tgt * 255, (tgt * 255).round(), atol=1e-4)  # clean pixels are 8-bit values


def test_validation_noise_is_fixed_across_runs(image_dirs):
    a = N2NDataModule(folder_config(*image_dirs))
    b = N2NDataModule({**folder_config(*image_dirs), "seed": 123})
    a.setup("validate")
    b.setup("validate")
    assert a.val_names == ["img00.png", "img01.png"]
    for x, y in zip(a.val_pairs, b.val_pairs):
        assert torch.equal(x["noisy"], y["noisy"]) and torch.equal(x["clean"], y["clean"])
    assert a.val_pairs[1]["clean"].shape == (3, 45, 70)
    c = N2NDataModule(folder_config(*image_dirs, val_seed=1))
    c.setup("validate")
    assert not torch.equal(a.val_pairs[0]["noisy"], c.val_pairs[0]["noisy"])


def test_ee559_epoch_visits_every_pair_once(ee559_files):
    train, val = ee559_files
    dm = N2NDataModule(ee559_config(train, val, "data.batch_size=8", "aug=none"))
    dm.setup("fit")
    a, b = dm.train_stack.unbind(1)
    assert len(dm.train_dataloader()) == 8
    seen = []
    for _ in range(8):
        src, tgt = dm.draw_train_batch(torch.device("cpu")).values()
        for s in src:
            seen.append(next(i for i in range(len(a)) if torch.equal((s * 255).round().to(torch.uint8), a[i])))
    assert sorted(seen) == list(range(64))
    assert len(dm.val_pairs) == 16


def test_resumed_state_draws_the_same_batches(image_dirs):
    dm = N2NDataModule(folder_config(*image_dirs))
    dm.setup("fit")
    dm.draw_train_batch(torch.device("cpu"))
    state = dm.state_dict()
    expected = dm.draw_train_batch(torch.device("cpu"))
    other = N2NDataModule(folder_config(*image_dirs))
    other.setup("fit")
    other.load_state_dict(state)
    got = other.draw_train_batch(torch.device("cpu"))
    assert torch.equal(expected["noisy"], got["noisy"]) and torch.equal(expected["other"], got["other"])


@pytest.mark.parametrize("change,message", [
    ({"crop_size": 48}, "multiple of 32"),
    ({"batch_size": 0}, "data.batch_size"),
    ({"+colour": 3}, "unknown option"),
    ({"channels": 4}, "data.channels"),
])
def test_bad_data_options_are_refused(image_dirs, change, message):
    with pytest.raises(ConfigError, match=message):
        N2NDataModule(folder_config(*image_dirs, *(f"{'+' if k[0] == '+' else ''}data.{k.lstrip('+')}={v}"
                                                   for k, v in change.items())))


def test_bad_method_and_clean_target_without_clean_data(image_dirs, ee559_files):
    with pytest.raises(ConfigError, match="method.name='both' is not known"):
        N2NDataModule({**folder_config(*image_dirs), "method": {"name": "both"}})
    with pytest.raises(ConfigError, match="data=ee559 does not have"):
        N2NDataModule(ee559_config(*ee559_files, "method=n2c"))


def test_too_small_images_and_channel_mismatch(tmp_path, image_dirs, ee559_files):
    dm = N2NDataModule(folder_config(*image_dirs, crop_size=128))
    with pytest.raises(DataError, match="smaller than data.crop_size=128"):
        dm.setup("fit")
    train, val = ee559_files
    grey = N2NDataModule(ee559_config(train, val, "data.channels=1"))
    with pytest.raises(DataError, match="3-channel images but data.channels=1"):
        grey.setup("fit")


def test_resumed_data_parallel_processes_draw_different_batches(image_dirs):
    """A checkpoint holds process 0's generator only; the other processes must not replay its batches."""
    from types import SimpleNamespace

    def process(rank, state):
        dm = N2NDataModule(folder_config(*image_dirs))
        dm.trainer = SimpleNamespace(global_rank=rank, global_step=5,
                                     strategy=SimpleNamespace(root_device=torch.device("cpu")))
        dm.setup("fit")
        dm.load_state_dict(state)
        return dm.draw_train_batch(torch.device("cpu"))["noisy"]

    first = N2NDataModule(folder_config(*image_dirs))
    first.setup("fit")
    first.draw_train_batch(torch.device("cpu"))
    state = first.state_dict()
    expected = first.draw_train_batch(torch.device("cpu"))["noisy"]
    assert torch.equal(process(0, state), expected)  # process 0 continues exactly
    assert not torch.equal(process(1, state), expected)
    assert torch.equal(process(1, state), process(1, state))  # and the others reseed deterministically


def test_levels_reach_the_clean_images_of_a_folder_and_are_refused_on_noisy_captures(image_dirs, ee559_files):
    crops = {}
    for levels in (0, 1):  # without noise the inputs are the clean crops, drawn alike up to the stretch
        dm = N2NDataModule(folder_config(*image_dirs, f"aug.levels={levels}", "noise.sigma=0", batch_size=32))
        dm.setup("fit")
        crops[levels] = dm.draw_train_batch(torch.device("cpu"))["noisy"]
    assert (crops[1] != crops[0]).flatten(1).any(1).all()  # every crop stretched
    extremes = {k: int(((v == 0) | (v == 1)).sum()) for k, v in crops.items()}
    assert extremes[1] > extremes[0] + 1000  # pure black and white where there was none
    with pytest.raises(ConfigError, match="aug.levels=0.5 stretches clean images.*not data=ee559"):
        N2NDataModule(ee559_config(*ee559_files, "aug.levels=0.5"))
    with pytest.raises(ConfigError, match="with fixed draws"):
        N2NDataModule(folder_config(*image_dirs, "aug.levels=0.5", noise_draws="fixed"))
