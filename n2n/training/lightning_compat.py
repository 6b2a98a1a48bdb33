"""The few private Lightning APIs n2n relies on, in one place.

Each function here reaches into Lightning's internals for something its public API does not offer. When a
Lightning release moves them, `tests/unit/test_lightning_compat.py` fails and names the function; the
runtime then takes the documented fallback (and records it in FALLBACKS) instead of crashing.
"""
from __future__ import annotations

from typing import Any

import lightning as L

#: Names of the functions below that had to use their fallback in this process.
FALLBACKS: set[str] = set()


def validation_follows(trainer: L.Trainer) -> bool:
    """Whether Lightning validates right after the current training step."""
    loop = trainer.fit_loop.epoch_loop
    try:
        return bool(loop._should_check_val_fx(trainer.fit_loop._data_fetcher))
    except (AttributeError, TypeError):  # another Lightning: the end of an epoch is the usual case
        FALLBACKS.add("validation_follows")
        return bool(loop.batch_progress.is_last_batch)


def request_validation_now(trainer: L.Trainer) -> None:
    """Make Lightning validate right after the current training step. Its epoch loop validates after a step when
    `trainer.should_stop` is set (as early stopping does), provided validation is due in this epoch at all,
    which `check_val_every_n_epoch` may deny; the run stops after that validation either way."""
    trainer.should_stop = True
    if trainer.check_val_every_n_epoch is not None and trainer.check_val_every_n_epoch > 1:
        trainer.check_val_every_n_epoch = 1


def flush_step_logs(trainer: L.Trainer) -> None:
    """Log this step's metrics now (Lightning would right after the hook we stop in), so that a resumed run's
    curves have no gap."""
    try:
        connector = trainer._logger_connector
    except AttributeError:  # the curves then miss one point; nothing else is lost
        FALLBACKS.add("flush_step_logs")
        return
    try:
        connector.on_batch_end()
        connector.update_train_step_metrics()
    except AssertionError:  # at the end of an epoch Lightning has already moved past this step's metrics
        pass
    for logger in trainer.loggers:
        logger.save()


def relaunches_command_line(trainer: L.Trainer) -> bool:
    """Whether the strategy starts its other processes by re-running this command line (DDP's default
    launcher without a cluster that starts them)."""
    try:
        from lightning.pytorch.strategies.launchers.subprocess_script import _SubprocessScriptLauncher
    except ImportError:
        FALLBACKS.add("relaunches_command_line")
        return False
    launcher = getattr(trainer.strategy, "launcher", None)
    environment = getattr(trainer.strategy, "cluster_environment", None)
    return (isinstance(launcher, _SubprocessScriptLauncher) and environment is not None
            and not environment.creates_processes_externally)


def set_scheduler_lrs(scheduler: Any, lrs: list[float]) -> None:
    """Make a restored scheduler report the learning rates just put into its optimiser (PyTorch keeps them in
    the private `_last_lr`, which `get_last_lr()` and Lightning's LearningRateMonitor read)."""
    if hasattr(scheduler, "_last_lr"):
        scheduler._last_lr = list(lrs)


def save_last_checkpoint(checkpoint: Any, trainer: L.Trainer, epoch_end: bool) -> None:
    """Write `checkpoint`'s last.ckpt for the current step unless it already saved at this step, from the hook
    where the ModelCheckpoint saves (`epoch_end`: on_train_epoch_end, else on_validation_end). Lightning 2.6
    writes last.ckpt there only when the same hook also saved a top-k checkpoint."""
    try:
        if checkpoint._should_skip_saving_checkpoint(trainer):
            return
        if bool(checkpoint._should_save_on_train_epoch_end(trainer)) != epoch_end:
            return
        checkpoint._save_last_checkpoint(trainer, checkpoint._monitor_candidates(trainer))
    except AttributeError:  # another Lightning: its own rule stands (last.ckpt may lag behind the best)
        FALLBACKS.add("save_last_checkpoint")
