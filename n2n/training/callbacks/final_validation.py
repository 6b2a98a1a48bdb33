"""The final model is always validated, and last.ckpt always holds the final step.

A run that stops between validations (trainer.max_steps inside an epoch, or a last epoch that
check_val_every_n_epoch skips) would otherwise end without scoring its final model (no val/psnr for a sweeper)
and with a last.ckpt from the last validation, steps older than the run: a resume would silently redo them.
At the final step this asks Lightning for one more validation, after which the checkpoint callback saves
last.ckpt (and the best checkpoint, if it improved) as after any validation.
"""
from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

from n2n.training.lightning_compat import request_validation_now, validation_follows


class ValidateFinalStep(Callback):
    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if sum(trainer.num_val_batches or [0]) > 0 and _final_step(trainer) and not validation_follows(trainer):
            request_validation_now(trainer)


def _final_step(trainer: L.Trainer) -> bool:
    if trainer.max_steps is not None and trainer.max_steps > 0 and trainer.global_step >= trainer.max_steps:
        return True
    last_epoch = (trainer.max_epochs is not None and trainer.max_epochs > 0
                  and trainer.current_epoch + 1 >= trainer.max_epochs)
    return last_epoch and bool(trainer.is_last_batch)
