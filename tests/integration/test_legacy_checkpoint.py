"""A checkpoint written by n2n before the package was reorganised (tests/data/legacy_v0.1_last.ckpt) still
resumes training and still denoises: checkpoints hold plain data and the callbacks' state keys, never module
paths, so moving code must not break them."""
from __future__ import annotations

import json
import shutil

import numpy as np
from PIL import Image

from helpers.files import LEGACY_CHECKPOINT
from helpers.images import smooth_image
from helpers.runs import run_in_process
from n2n.cli import main
from n2n.inference.checkpoints import read_checkpoint

#: The options it was trained with (its config.yaml), but for the length.
OPTIONS = ["optimizer=sgd", "optimizer.momentum=0", "trainer.accelerator=cpu", "trainer.precision=32-true",
           "perf.channels_last=false", "data.steps_per_epoch=2", "data.batch_size=2", "data.crop_size=32",
           "data.val_limit=1", "trainer.log_every_n_steps=1", "trainer.num_sanity_val_steps=0",
           "trainer.enable_progress_bar=false", "logger=none"]


def test_legacy_checkpoint_resumes(tmp_path, one_thread):
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    ckpt.parent.mkdir(parents=True)
    shutil.copy(LEGACY_CHECKPOINT, ckpt)
    start = read_checkpoint(ckpt)["global_step"]
    run_in_process([*OPTIONS, "trainer.max_steps=6", "ckpt_path=last"], tmp_path / "run")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert start == 2 and metrics["global_step"] == 6
    assert np.isfinite(metrics["val_psnr"])


def test_legacy_checkpoint_denoises(tmp_path):
    clean = smooth_image(70, 90, 3)
    noisy = np.clip(clean + np.random.default_rng(0).normal(0, 25, clean.shape), 0, 255).astype(np.uint8)
    Image.fromarray(noisy).save(tmp_path / "noisy.png")
    assert main(["denoise", str(LEGACY_CHECKPOINT), str(tmp_path / "noisy.png"), "-o", str(tmp_path / "out")]) == 0
    out = np.asarray(Image.open(tmp_path / "out" / "noisy.png"))
    assert out.shape == noisy.shape and not np.array_equal(out, noisy)
