"""Zarr and OME-Zarr volumes: read as Z x Y x X with their voxel size, written back in their own format, chunks and
metadata (multiscales reduced to the full-resolution level, singleton axes kept), atomically; bad stores refused
in one line; `n2n denoise` and data=volumes take them like MRC files."""
import json

import numpy as np
import pytest

from n2n.errors import DataError
from n2n.volumes.io import read_volume, write_like

zarr = pytest.importorskip("zarr")


def _ome(path, data, zarr_format, axes="tczyx", scale=(1.0, 1.0, 2.0, 0.5, 0.5)):
    """An OME-Zarr image (NGFF 0.4 on Zarr v2, 0.5 on Zarr v3) with two resolution levels."""
    group = zarr.open_group(str(path), mode="w", zarr_format=zarr_format)
    multiscales = [{"version": "0.4", "name": "tomo", "axes": [{"name": a} for a in axes],
                    "datasets": [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": list(scale)}]},
                                 {"path": "1", "coordinateTransformations": [{"type": "scale",
                                                                              "scale": [s * 2 for s in scale]}]}]}]
    if zarr_format == 2:
        group.attrs.update({"multiscales": multiscales, "omero": {"name": "kept"}})
    else:
        group.attrs.update({"ome": {"version": "0.5", "multiscales": multiscales}, "omero": {"name": "kept"}})
    full = data.reshape((1,) * (len(axes) - 3) + data.shape)
    group.create_array("0", shape=full.shape, chunks=full.shape[:-3] + (4, 8, 8), dtype=data.dtype)[...] = full
    half = full[..., ::2, ::2, ::2]
    group.create_array("1", shape=half.shape, chunks=half.shape, dtype=data.dtype)[...] = half
    return path


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_ome_zarr_round_trip_keeps_metadata(tmp_path, zarr_format):
    data = np.random.default_rng(0).normal(100, 20, (6, 16, 12)).astype(np.float32)
    src = _ome(tmp_path / "tomo.ome.zarr", data, zarr_format)
    volume = read_volume(src)
    assert volume.kind == "zarr" and volume.shape == (6, 16, 12) and volume.voxel_size == (2.0, 0.5, 0.5)
    np.testing.assert_array_equal(volume.data, data)
    out = write_like(tmp_path / "out.ome.zarr", volume.data * 2, volume)
    back = zarr.open_group(str(out), mode="r")
    assert back.metadata.zarr_format == zarr_format
    attrs = dict(back.attrs)
    multiscales = attrs["multiscales"] if zarr_format == 2 else attrs["ome"]["multiscales"]
    assert [d["path"] for d in multiscales[0]["datasets"]] == ["0"] and attrs["omero"] == {"name": "kept"}
    assert back["0"].shape == (1, 1, 6, 16, 12) and back["0"].chunks == (1, 1, 4, 8, 8) and "1" not in back
    again = read_volume(out)
    assert again.voxel_size == (2.0, 0.5, 0.5)
    np.testing.assert_array_equal(again.data, data * 2)


def test_plain_array_and_a_volume_from_another_format(tmp_path):
    data = np.arange(4 * 8 * 8, dtype=np.uint16).reshape(4, 8, 8)
    arr = zarr.create_array(store=str(tmp_path / "a.zarr"), shape=data.shape, chunks=(2, 8, 8), dtype="uint16",
                            attributes={"source": "scope"})
    arr[...] = data
    volume = read_volume(tmp_path / "a.zarr")
    assert volume.shape == (4, 8, 8) and volume.voxel_size is None and volume.data.dtype == np.uint16
    back = zarr.open(str(write_like(tmp_path / "b.zarr", volume.data, volume)), mode="r")
    assert isinstance(back, zarr.Array) and back.chunks == (2, 8, 8) and dict(back.attrs) == {"source": "scope"}
    # MRC in, Zarr out: an OME-Zarr 0.5 image with the voxel size as its scale
    from helpers.volumes import write_mrc
    mrc = read_volume(write_mrc(tmp_path / "t.mrc", data.astype(np.float32), voxel=(1.5, 1.5, 2.0)))
    out = read_volume(write_like(tmp_path / "t.zarr", mrc.data, mrc))
    assert out.voxel_size == (2.0, 1.5, 1.5)
    np.testing.assert_array_equal(out.data, data)


def test_writing_replaces_a_previous_folder_whole(tmp_path):
    data = np.ones((4, 8, 8), np.float32)
    target = tmp_path / "out.zarr"
    write_like(target, data)
    write_like(target, data * 3)
    np.testing.assert_array_equal(read_volume(target).data, data * 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.zarr"]  # no temporary folder left


@pytest.mark.parametrize("case,needle", [
    ("not a store", "not a readable Zarr store"),
    ("group without metadata", "a Zarr group without OME-Zarr multiscales metadata"),
    ("two channels", "c 2: save one channel or time point"),
    ("complex", "cannot be denoised; integer or float voxels only"),
    ("missing", "no such Zarr folder"),
])
def test_bad_zarr_is_one_line(tmp_path, case, needle):
    path = tmp_path / "bad.zarr"
    if case == "not a store":
        path.mkdir()
        (path / "junk.txt").write_text("x")
    elif case == "group without metadata":
        zarr.open_group(str(path), mode="w").create_array("0", shape=(4, 8, 8), dtype="float32")
    elif case == "two channels":
        group = zarr.open_group(str(path), mode="w", zarr_format=2)
        group.attrs["multiscales"] = [{"axes": [{"name": a} for a in "czyx"], "datasets": [{"path": "0"}]}]
        group.create_array("0", shape=(2, 4, 8, 8), dtype="float32")
    elif case == "complex":
        zarr.create_array(store=str(path), shape=(4, 8, 8), dtype="complex64")
    with pytest.raises(DataError, match=needle) as info:
        read_volume(path, "data.dir_a")
    assert "\n" not in str(info.value) and str(info.value).startswith("data.dir_a=")


def test_n2n_denoise_takes_ome_zarr_like_mrc(tmp_path, capsys):
    """The same volume as OME-Zarr and as MRC gives the same output; the Zarr output keeps the OME metadata."""
    from helpers.volumes import halves, model_file, write_mrc
    from n2n.cli import main

    _, even, _ = halves(shape=(8, 24, 20))
    _ome(tmp_path / "t.ome.zarr", even, 2, axes="zyx", scale=(2.0, 1.5, 1.5))
    write_mrc(tmp_path / "t.mrc", even, voxel=(1.5, 1.5, 2.0))
    model = model_file(tmp_path / "m3d.safetensors")
    for name in ("t.ome.zarr", "t.mrc"):
        assert main(["denoise", str(tmp_path / name), "-m", str(model), "-o", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "wrote" in err and str(tmp_path / "out" / "t.ome.zarr") in err
    zarr_out, mrc_out = read_volume(tmp_path / "out" / "t.ome.zarr"), read_volume(tmp_path / "out" / "t.mrc")
    np.testing.assert_allclose(zarr_out.data, mrc_out.data, atol=1e-4)
    assert zarr_out.voxel_size == (2.0, 1.5, 1.5)
    assert json.loads(json.dumps(zarr_out.meta["attrs"]))["multiscales"][0]["name"] == "tomo"


def test_volume_folders_list_zarr_halves(tmp_path):
    from n2n.data.sources.volumes import matched_halves

    data = np.zeros((4, 8, 8), np.float32)
    for half in ("even", "odd"):
        write_like(tmp_path / half / "t0.zarr", data)
        write_like(tmp_path / half / "t1.mrc", data)
        (tmp_path / half / "notes.zarr.txt").write_text("not a volume")
    a, b = matched_halves({"dir_a": str(tmp_path / "even"), "dir_b": str(tmp_path / "odd")})
    assert sorted(a) == sorted(b) == ["t0.zarr", "t1.mrc"]


def test_train_py_on_zarr_halves(tmp_path):
    """data=volumes on OME-Zarr halves: trains, validates against the other half, and eval.py on test volumes
    writes its denoised volume as OME-Zarr."""
    import torch

    from helpers.runs import run_in_process, scalars
    from helpers.volumes import halves

    for i in range(2):
        clean, even, odd = halves(shape=(16, 40, 36), seed=i)
        _ome(tmp_path / "even" / f"t{i}.ome.zarr", even, 3, axes="zyx", scale=(1.0, 1.0, 1.0))
        _ome(tmp_path / "odd" / f"t{i}.ome.zarr", odd, 3, axes="zyx", scale=(1.0, 1.0, 1.0))
    torch.set_num_threads(1)
    run = tmp_path / "run"
    run_in_process(["data=volumes", "model.dims=3", "model.depth=2", "model.features=4",
                    f"data.dir_a={tmp_path / 'even'}", f"data.dir_b={tmp_path / 'odd'}", "data.crop_size=8",
                    "data.batch_size=2", "data.steps_per_epoch=3", "trainer.max_epochs=1", "trainer.accelerator=cpu",
                    "trainer.num_sanity_val_steps=0", "trainer.enable_progress_bar=false", "print_config=false"], run)
    assert len(scalars(run)["val/n2n_loss"]) == 1
    from helpers.runs import run_entry

    evaluation = tmp_path / "eval"
    result = run_entry(["eval.py", f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}", "data=volumes",
                        f"data.dir_a={tmp_path / 'even'}", f"data.dir_b={tmp_path / 'odd'}",
                        f"hydra.run.dir={evaluation}"])
    assert result.returncode == 0, result.stderr[-2000:]
    out = read_volume(evaluation / "denoised" / "t0.ome.zarr")
    assert out.kind == "zarr" and out.shape == (16, 40, 36)
