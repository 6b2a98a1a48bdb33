"""The debug/ group (fdr, limit, overfit, profiler) and the old spelling `bn=` of the norm group."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
from lightning.pytorch.callbacks import Callback

from helpers.runs import compose_train, resolved, run_in_process
from n2n.data.datamodule import N2NDataModule


@pytest.mark.parametrize("choice,expected", [
    ("fdr", {"fast_dev_run": True}),
    ("limit", {"limit_train_batches": 5, "limit_val_batches": 2, "max_epochs": 2}),
    ("overfit", {"overfit_batches": 1}),
    ("profiler", {"profiler": "simple"}),
])
def test_debug_choices_set_the_trainer(choice, expected):
    trainer = compose_train([f"debug={choice}"]).trainer
    assert {k: trainer[k] for k in expected} == expected


@pytest.mark.parametrize("old,new", [("bn=batch", "norm=batch"), ("bn=none", "norm=none")])
def test_bn_is_an_alias_of_norm(old, new):
    assert compose_train([old]).model.norm == compose_train([new]).model.norm


def test_fast_dev_run_runs_one_step_through_the_whole_pipeline(images, one_thread, tmp_path):
    train, val = images
    run_in_process(["debug=fdr", "data=folder", f"data.train_dir={train}", f"data.val_dir={val}",
                    "data.crop_size=32", "data.batch_size=2", "trainer.accelerator=cpu",
                    "trainer.enable_progress_bar=false"], tmp_path)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["global_step"] == 1 and "val_psnr" in metrics


def test_overfit_redraws_the_same_batches(images):
    train, val = images
    dm = N2NDataModule(resolved(["data=folder", f"data.train_dir={train}", f"data.val_dir={val}",
                                 "data.crop_size=32", "data.batch_size=3"]))
    dm.setup("fit")
    dm.trainer = SimpleNamespace(overfit_batches=2, global_step=0, global_rank=0,
                                 strategy=SimpleNamespace(root_device=torch.device("cpu")))
    batches = []
    for step in range(4):
        dm.trainer.global_step = step
        batches.append(dm.draw_train_batch(torch.device("cpu"))["noisy"])
    assert torch.equal(batches[0], batches[2]) and torch.equal(batches[1], batches[3])
    assert not torch.equal(batches[0], batches[1])


class Losses(Callback):
    def __init__(self):
        self.values, self.batches = [], []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.values.append(float(outputs["loss"]))
        self.batches.append(batch["noisy"].clone())


def test_overfit_makes_the_loss_fall(images, one_thread, tmp_path):
    train, val = images
    losses = Losses()
    run_in_process(["debug=overfit", "data=folder", f"data.train_dir={train}", f"data.val_dir={val}",
                    "data.crop_size=32", "data.batch_size=2", "trainer.accelerator=cpu", "trainer.max_epochs=40",
                    "trainer.precision=32-true", "trainer.enable_progress_bar=false", "logger=none"],
                   tmp_path, losses)
    assert len(losses.values) == 40
    assert all(torch.equal(b, losses.batches[0]) for b in losses.batches)  # one batch, again and again
    first, last = sum(losses.values[:5]) / 5, sum(losses.values[-5:]) / 5
    assert last < 0.5 * first, (first, last)
