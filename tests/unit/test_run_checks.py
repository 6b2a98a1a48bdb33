"""Class: a run that would end with a wrong or no record is refused before training: callbacks that follow a
metric the run never logs, or in a direction that does not exist, and trainer.strategy=ddp_spawn (whose
children's training never reached metrics.json)."""
from __future__ import annotations

import re

import pytest

from helpers.runs import run_in_process, tiny
from n2n.config_schema import TRAIN_OPTIONS, check_options
from n2n.errors import ConfigError
from n2n.training.run import check_monitors

CLEAN = ["train/loss", "val/psnr", "val/psnr_noisy", "val/ssim"]
NOISY = ["train/loss", "val/n2n_loss"]

CASES = [  # (callbacks section, what the run logs, the error or None)
    ({"early_stopping": {"monitor": "val/loss", "mode": "min"}}, CLEAN, "early_stopping.monitor=val/loss is never"),
    ({"early_stopping": {"monitor": "val/psnr", "mode": "max"}}, NOISY, "early_stopping.monitor=val/psnr is never"),
    ({"early_stopping": {"monitor": "val/n2n_loss"}}, CLEAN, "early_stopping.monitor=val/n2n_loss is never"),
    ({"early_stopping": {"monitor": "val/psnr", "mode": "maximum"}}, CLEAN, "early_stopping.mode=maximum must be"),
    ({"early_stopping": {"monitor": "val/psnr", "mode": "max"}}, CLEAN, None),
    ({"early_stopping": {"monitor": "train/loss"}}, NOISY, None),  # EarlyStopping's default mode: min
    ({"checkpoint": {"monitor": "val/ssim", "mode": "max"}}, NOISY, "checkpoint.monitor=val/ssim is never"),
    ({"checkpoint": {"monitor": "val/n2n_loss", "mode": "min"}, "early_stopping": None}, NOISY, None),
]


@pytest.mark.parametrize("callbacks,logged,error", CASES)
def test_monitors_are_checked_before_training(callbacks, logged, error):
    if error is None:
        check_monitors(callbacks, logged)
    else:
        with pytest.raises(ConfigError, match=error.replace("[", r"\[")):
            check_monitors(callbacks, logged)


def test_an_unlogged_early_stopping_metric_stops_the_run_before_it_trains(images, one_thread, tmp_path):
    with pytest.raises(ConfigError, match="callbacks.early_stopping.monitor=val/loss is never logged"):
        run_in_process([*tiny(*images), "+callbacks.early_stopping={monitor: val/loss, mode: min}"], tmp_path)
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "metrics.json").exists()


def test_ddp_spawn_is_refused_in_one_line():
    expected = "trainer.strategy=ddp_spawn is not allowed: it must be auto | ddp"
    with pytest.raises(ConfigError, match=re.escape(expected)):
        check_options({"trainer": {"strategy": "ddp_spawn"}}, TRAIN_OPTIONS)
