"""The Python example of docs/denoising.md ("From Python") runs as written."""
from __future__ import annotations

import re

import numpy as np
from PIL import Image

from helpers.files import save_checkpoint
from helpers.images import smooth_image
from helpers.runs import ROOT
from n2n.models.unet import UNet


def test_from_python_example_runs(tmp_path, monkeypatch):
    text = (ROOT / "docs" / "denoising.md").read_text()
    code = re.search(r"## From Python\s+```python\n(.*?)```", text, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    save_checkpoint(tmp_path / "model.ckpt", UNet())
    Image.fromarray(smooth_image(100, 140, 0)).save(tmp_path / "noisy.png")
    exec(compile(code, "docs/denoising.md", "exec"), {})
    out = np.asarray(Image.open(tmp_path / "clean.png"))
    assert out.shape == (100, 140, 3) and out.dtype == np.uint8
