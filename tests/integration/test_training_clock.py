"""The training clock: training seconds without validation, the PSNR at each validation, kept across a resume."""
from __future__ import annotations

import json
import time

from lightning.pytorch.callbacks import Callback

from helpers.runs import run_in_process, scalars, tiny
from n2n.training.callbacks.clock import time_to_psnr


class SlowValidation(Callback):
    """Validation that takes a known, long time: the clock must leave it out."""

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        if not trainer.sanity_checking and batch_idx == 0:
            time.sleep(1.0)


def test_clock_leaves_validation_out_and_records_each_validation(images, one_thread, tmp_path, monkeypatch):  # noqa: F811
    run_dir = tmp_path / "run"
    run_in_process([*tiny(*images), "trainer.max_epochs=3"], run_dir, SlowValidation())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    history = metrics["val_history"]
    assert [h["step"] for h in history] == [4, 8, 12]
    assert history[-1]["val_psnr"] == metrics["val_psnr"]
    seconds = [h["train_seconds"] for h in history]
    assert 0 < seconds[0] < seconds[1] < seconds[2] <= metrics["train_seconds_without_validation"]
    # three validations slept 3 s in all: the wall clock has them, the training clock does not
    assert metrics["train_seconds"] - metrics["train_seconds_without_validation"] > 2.9
    logged = scalars(run_dir)["train/seconds"]
    assert [step for step, _ in logged] == [4, 8, 12]
    assert time_to_psnr(history, history[1]["val_psnr"]) <= seconds[1]
    assert time_to_psnr(history, 99.0) is None


def test_resumed_run_goes_on_counting(images, one_thread, tmp_path):  # noqa: F811
    run_dir = tmp_path / "run"
    run_in_process(tiny(*images, epochs=1), run_dir)
    first = json.loads((run_dir / "metrics.json").read_text())
    run_in_process([*tiny(*images, epochs=2), "ckpt_path=last"], run_dir)
    second = json.loads((run_dir / "metrics.json").read_text())
    assert [h["step"] for h in second["val_history"]] == [4, 8]
    assert second["val_history"][0] == first["val_history"][0]
    assert second["train_seconds_without_validation"] > first["train_seconds_without_validation"]
