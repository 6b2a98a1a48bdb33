"""Every file n2n writes is written under a temporary name and renamed into place (n2n.atomic): an interrupted
or failed write never leaves a partial file under the real name, and a full disk is one line naming the file,
with the previous file kept."""
from __future__ import annotations

import errno

import numpy as np
import pytest
import torch

from n2n.atomic import atomic_output, write_text
from n2n.errors import DataError
from n2n.image_files import read_image, write_image
from n2n.training.checkpoint_io import AtomicCheckpointIO


def _no_leftovers(folder):
    return [p.name for p in folder.iterdir() if ".partial" in p.name]


def test_a_failure_half_way_keeps_the_previous_file(tmp_path):
    path = tmp_path / "metrics.json"
    write_text(path, "old")
    with pytest.raises(RuntimeError):
        with atomic_output(path) as tmp:
            tmp.write_text("half of the new")
            raise RuntimeError("killed")
    assert path.read_text() == "old" and not _no_leftovers(tmp_path)


def test_a_full_disk_is_one_line_naming_the_file(tmp_path):
    path = tmp_path / "config.yaml"
    write_text(path, "old")
    with pytest.raises(DataError, match=r"cannot write .*config.yaml: No space left on device; the previous file is "
                                        r"kept") as err:
        with atomic_output(path) as tmp:
            tmp.write_text("new")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert "\n" not in str(err.value)
    assert path.read_text() == "old" and not _no_leftovers(tmp_path)


def test_images_are_written_whole_or_not_at_all(tmp_path, monkeypatch):
    path = tmp_path / "out.png"
    write_image(path, np.full((8, 8, 3), 7, np.uint8))
    from PIL import Image

    def fail(self, fp, *args, **kwargs):
        with open(fp, "wb") as f:
            f.write(b"\x89PNG partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", fail)
    with pytest.raises(DataError, match="out.png: No space left on device"):
        write_image(path, np.zeros((8, 8, 3), np.uint8))
    monkeypatch.undo()
    assert read_image(path)[0].max() == 7 and not _no_leftovers(tmp_path)


def test_checkpoints_are_written_whole_or_not_at_all(tmp_path, monkeypatch):
    io = AtomicCheckpointIO()
    path = tmp_path / "checkpoints" / "last.ckpt"
    io.save_checkpoint({"global_step": 2, "w": torch.ones(3)}, path)
    original = torch.save

    def fail(obj, f, *args, **kwargs):
        original(obj, f, *args, **kwargs)  # the bytes are in the temporary file...
        raise OSError(errno.ENOSPC, "No space left on device")  # ...and then the disk fills up

    monkeypatch.setattr(torch, "save", fail)
    with pytest.raises(DataError, match="last.ckpt: No space left on device; the previous file is kept"):
        io.save_checkpoint({"global_step": 4, "w": torch.zeros(3)}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True)["global_step"] == 2
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.ckpt"]


def test_written_files_get_the_permissions_of_a_plain_open(tmp_path):
    """Writers that create 0600 temporary files (safetensors) must not leave unreadable outputs."""
    import os

    from n2n.atomic import atomic_output

    old = os.umask(0o022)
    try:
        with atomic_output(tmp_path / "weights.bin") as tmp:
            os.close(os.open(tmp, os.O_CREAT | os.O_WRONLY, 0o600))
        assert (tmp_path / "weights.bin").stat().st_mode & 0o777 == 0o644
    finally:
        os.umask(old)
