"""data=volumes: half volumes by name, 3D crops outside the validation slab, augmentation about the tilt axis."""
import numpy as np
import pytest
import torch

from helpers.volumes import write_mrc
from n2n.data.datamodule import build_source
from n2n.errors import ConfigError, DataError


def _cfg(tmp_path, **over):
    return {"name": "volumes", "dir_a": str(tmp_path / "even"), "dir_b": str(tmp_path / "odd"), "val_clean_dir": None,
            "val_slab": 0.25, "val_axis": "y", "tilt_axis": "y", "normalize": "mean_std", "crop_size": 8, "dims": 3,
            "depth": 2, "channels": 1, "batch_size": 4, "steps_per_epoch": 10, "val_batch_size": 1, "val_limit": None,
            "val_seed": 0, **over}


def _coordinate_volumes(tmp_path, shape=(16, 48, 20), names=("a.mrc", "b.mrc")):
    """Even half = the y index of each voxel, odd half = y + 1000: crops reveal where they came from and whether
    the halves were swapped."""
    y = np.broadcast_to(np.arange(shape[1], dtype=np.float32)[None, :, None], shape).copy()
    for name in names:
        write_mrc(tmp_path / "even" / name, y)
        write_mrc(tmp_path / "odd" / name, y + 1000)


def _raw(source, name, t):
    norm = source._norms[name]
    return norm.undo(t.double())


def test_crops_never_reach_the_validation_slab_and_keep_the_tilt_axis(tmp_path):
    _coordinate_volumes(tmp_path)
    source = build_source(_cfg(tmp_path))
    start = source.pairs()[0][2]
    assert start == 48 - 12
    g = torch.Generator().manual_seed(0)
    swapped = 0
    for _ in range(20):
        src, tgt = source.draw_batch(4, g, torch.device("cpu"), type("A", (), {"flip": True, "swap": True}))
        assert src.shape == tgt.shape == (4, 1, 8, 8, 8)
        a, b = _raw(source, "a.mrc", src), _raw(source, "a.mrc", tgt)
        even = torch.where(a < 500, a, b)
        assert float(even.max()) < start - 0.5  # no voxel of the slab
        # y stays along the crop's y axis (flips and turns are in the z-x plane): constant across z and x
        assert torch.allclose(even, even[:, :, :1, :, :1].expand_as(even), atol=1e-3)
        swapped += int((a > 500).sum() // 512)
    assert 20 < swapped < 60  # about half of the 80 crops


def test_validation_slab_is_the_held_out_voxels(tmp_path):
    _coordinate_volumes(tmp_path)
    write_mrc(tmp_path / "clean" / "a.mrc", np.zeros((16, 48, 20), np.float32))
    write_mrc(tmp_path / "clean" / "b.mrc", np.zeros((16, 48, 20), np.float32))
    source = build_source(_cfg(tmp_path, val_clean_dir=str(tmp_path / "clean")))
    val = source.val_data()
    assert val.names == ["a.mrc", "b.mrc"] and source.clean_validation
    noisy = _raw(source, "a.mrc", val.noisy[0])
    assert noisy.shape == (1, 16, 12, 20) and float(noisy.min()) > 36 - 0.5
    assert val.other is not None and val.clean is not None and val.clean[0].shape == (1, 16, 12, 20)


def test_two_dimensional_model_gets_sections(tmp_path):
    _coordinate_volumes(tmp_path)
    source = build_source(_cfg(tmp_path, dims=2, crop_size=16))
    src, _ = source.draw_batch(3, torch.Generator().manual_seed(0), torch.device("cpu"),
                               type("A", (), {"flip": True, "swap": False}))
    assert src.shape == (3, 1, 16, 16)


def test_draws_repeat_from_the_same_generator_state(tmp_path):
    _coordinate_volumes(tmp_path)
    source = build_source(_cfg(tmp_path))
    aug = type("A", (), {"flip": True, "swap": True})
    g = torch.Generator().manual_seed(3)
    state = g.get_state()
    first = source.draw_batch(4, g, torch.device("cpu"), aug)
    g.set_state(state)
    again = source.draw_batch(4, g, torch.device("cpu"), aug)
    assert all(torch.equal(x, y) for x, y in zip(first, again))


@pytest.mark.parametrize("over,error,message", [
    ({"crop_size": 10}, ConfigError, "10 along z is not a multiple of 4, the network.s minimum"),
    ({"crop_size": [8, 8, 6]}, ConfigError, "6 along x is not a multiple of 4"),
    ({"crop_size": 24}, DataError, r"data.dir_a/a.mrc \(16 x 48 x 20, Z x Y x X\) is smaller than "
                                   r"data.crop_size=\[24, 24, 24\] once its validation slab is held out \(z 16 < 24"),
    ({"val_slab": 0.7}, ConfigError, r"data.val_slab=0.7 must be a fraction in \(0, 0.5\]"),
    ({"channels": 3}, ConfigError, "volumes have one channel"),
])
def test_bad_options_are_refused(tmp_path, over, error, message):
    _coordinate_volumes(tmp_path)
    with pytest.raises(error, match=message):
        build_source(_cfg(tmp_path, **over)).pairs()


def test_mismatched_halves_are_refused(tmp_path):
    _coordinate_volumes(tmp_path)
    write_mrc(tmp_path / "odd" / "b.mrc", np.zeros((16, 48, 21), np.float32))
    with pytest.raises(DataError, match=r"data.dir_a/b.mrc=.* is 16 x 48 x 20 \(Z x Y x X\) but data.dir_b/b.mrc="):
        build_source(_cfg(tmp_path)).pairs()
    write_mrc(tmp_path / "odd" / "b.mrc", np.zeros((16, 48, 20), np.float32) + 1, voxel=(1.0, 1.0, 1.0))
    with pytest.raises(DataError, match="has voxel size 2 x 1.5 x 1.5 \\(z, y, x\\) but data.dir_b/b.mrc=.* has 1 x 1"):
        build_source(_cfg(tmp_path)).pairs()
    (tmp_path / "odd" / "b.mrc").unlink()
    with pytest.raises(DataError, match="1 volume\\(s\\) of data.dir_a=.* have no partner of the same name in "
                                        "data.dir_b: b.mrc"):
        build_source(_cfg(tmp_path)).pairs()
