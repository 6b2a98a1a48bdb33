"""Volume files: MRC and TIFF round trips keep header and dtype; normalisation is undone; bad files refused."""
import mrcfile
import numpy as np
import pytest
import tifffile
import torch

from helpers.volumes import halves, write_mrc
from n2n.errors import DataError
from n2n.volumes import io
from n2n.volumes.denoise import VolumeModel, denoise_volume_array, normalization_for
from n2n.volumes.io import check_finite, read_float, read_volume, write_like


def test_mrc_round_trip_keeps_voxel_size_origin_and_extended_header(tmp_path):
    data = np.random.default_rng(0).normal(size=(6, 10, 12)).astype(np.float32)
    src = write_mrc(tmp_path / "in.mrc", data, extended=bytes(range(40)))
    with read_volume(src) as vol:
        assert vol.voxel_size == (2.0, 1.5, 1.5)
        write_like(tmp_path / "out.mrc", np.asarray(vol.data) * 3, vol)
    with mrcfile.open(tmp_path / "out.mrc") as a, mrcfile.open(src) as b:
        assert a.data.dtype == np.float32 and np.allclose(a.data, data * 3)
        assert a.voxel_size == b.voxel_size and a.header.origin == b.header.origin
        assert bytes(a.extended_header) == bytes(range(40)) and a.header.exttyp == b"SERI"
        assert a.header.nsymbt == 40 and a.header.mode == 2
        for field in ("nxstart", "nystart", "nzstart", "mx", "my", "mz", "ispg"):
            assert a.header[field] == b.header[field]
    assert list(tmp_path.glob(".*partial*")) == []  # written atomically


@pytest.mark.parametrize("dtype,mode", [(np.int8, 0), (np.int16, 1), (np.uint16, 6), (np.float16, 12)])
def test_integer_and_half_modes_read_as_float32(tmp_path, dtype, mode):
    data = (np.arange(4 * 5 * 6) % 100).reshape(4, 5, 6).astype(dtype)
    path = write_mrc(tmp_path / "v.mrc", data)
    with mrcfile.open(path) as mrc:
        assert mrc.header.mode == mode
    values, _ = read_float(path)
    assert values.dtype == np.float32 and np.array_equal(values, data.astype(np.float32))


def test_tiff_stack_round_trip_is_zyx_float32_with_spacing(tmp_path):
    data = np.random.default_rng(1).random((5, 7, 9)).astype(np.float32)
    tifffile.imwrite(tmp_path / "in.tif", data, imagej=True, resolution=(1 / 0.5, 1 / 0.5),
                     metadata={"axes": "ZYX", "spacing": 2.0, "unit": "um"})
    with read_volume(tmp_path / "in.tif") as vol:
        assert vol.shape == (5, 7, 9) and vol.voxel_size == pytest.approx((2.0, 0.5, 0.5))
        write_like(tmp_path / "out.tif", np.asarray(vol.data) + 1, vol)
    with read_volume(tmp_path / "out.tif") as out:
        assert out.data.dtype == np.float32 and np.allclose(out.data, data + 1)
        assert out.voxel_size == pytest.approx((2.0, 0.5, 0.5))


def test_memory_map_reads_lazily(tmp_path):
    path = write_mrc(tmp_path / "v.mrc", np.zeros((8, 8, 8), np.float32))
    with read_volume(path) as vol:
        assert isinstance(vol.data, np.memmap)


def test_voxel_limit_checked_from_the_header(tmp_path, monkeypatch):
    path = write_mrc(tmp_path / "v.mrc", np.zeros((4, 8, 8), np.float32))
    monkeypatch.setattr(io, "MAX_VOXELS", 255)
    with pytest.raises(DataError, match="4 x 8 x 8 = 256 voxels is more than n2n reads"):
        read_volume(path)


def test_nan_is_refused_with_its_position():
    data = np.zeros((40, 4, 4), np.float32)
    data[33, 2, 1] = np.inf
    with pytest.raises(DataError, match=r"voxel \(z=33, y=2, x=1\) is inf"):
        check_finite(data, "v.mrc")


class _Identity(torch.nn.Module):
    dims, depth = 3, 2

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward_aligned(self, x):
        return x


@pytest.mark.parametrize("scheme", ["mean_std", "range"])
def test_normalisation_is_undone(scheme):
    """An identity network gives back the input in its own units, whatever its range."""
    _, even, _ = halves(offset=5000.0, scale=300.0)
    model = VolumeModel(_Identity(), scheme, "identity")
    norm = normalization_for(model, even, where="v")
    assert abs(norm.apply(even).mean()) < (1e-3 if scheme == "mean_std" else 1)
    out = denoise_volume_array(model, even, norm, tile=None)
    assert out.dtype == np.float32 and np.allclose(out, even, rtol=1e-6, atol=1e-3)


def test_python_api_on_a_volume(tmp_path):
    """n2n.load(3D model)(Z x Y x X array): float32 out, same shape; a tensor comes back as a tensor."""
    import n2n
    from helpers.volumes import model_file

    model = n2n.load(str(model_file(tmp_path / "m.safetensors")), device="cpu")
    _, even, _ = halves(shape=(8, 20, 24))
    out = model(even.astype(np.int16))
    assert out.shape == (8, 20, 24) and out.dtype == np.float32 and abs(out.mean() - even.mean()) < 3 * even.std()
    again = model(torch.from_numpy(even))
    assert isinstance(again, torch.Tensor) and again.shape == (8, 20, 24)
    with pytest.raises(ValueError, match="a 3D model denoises Z x Y x X volumes"):
        model(even[0])
