"""The run's checkpoints: the best ones by the monitored metric, and last.ckpt after every validation."""
from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint

from n2n.training.lightning_compat import save_last_checkpoint


class RunCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint with last.ckpt always at the latest validated step.

    Lightning 2.6 rewrites last.ckpt only at validations that also save a new top-k checkpoint, so a run whose
    last validations did not improve ended with a last.ckpt of an earlier step: the final weights were lost
    and `ckpt_path=last` resumed from the past. Here last.ckpt follows every validation. The version counter
    is off (`enable_version_counter=False` by default in build_callbacks): a run folder holds one run, so
    last.ckpt is always that run's, also after the folder was moved or copied (Lightning would otherwise
    write last-v1.ckpt beside the file it no longer recognises)."""

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self.save_last:
            save_last_checkpoint(self, trainer, epoch_end=True)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if self.save_last:
            save_last_checkpoint(self, trainer, epoch_end=False)
