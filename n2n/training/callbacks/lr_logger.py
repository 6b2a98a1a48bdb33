"""`train/lr` in the loggers, at no cost per step."""
from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback


class LearningRateLogger(Callback):
    """Logs `train/lr` straight to the loggers every `log_every_n_steps`; reading a Python float costs
    nothing, unlike `self.log`, which would copy a tensor to the device every step."""

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        step = trainer.global_step
        if step % max(1, trainer.log_every_n_steps) == 0 and trainer.optimizers:
            lr = trainer.optimizers[0].param_groups[0]["lr"]
            for logger in trainer.loggers:
                logger.log_metrics({"train/lr": lr}, step=step)
