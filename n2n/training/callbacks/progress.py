"""The progress bar: one bar for the whole run, counting optimiser steps, without a device synchronisation per
step."""
from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.callbacks.progress.tqdm_progress import convert_inf


class LossProgressBar(TQDMProgressBar):
    """Lightning's progress bar, with two changes.

    - It counts the global step out of the run's total (`trainer.max_steps`, or epochs x batches) on one bar,
      instead of restarting at 0 every epoch: "how far is the run" is the question a user asks, and a resumed
      run starts the bar where it stopped. The postfix keeps the last `val/psnr` (or `val/n2n_loss`).
    - It shows the training loss that the module reads back once per logging step (see
      N2NModule.progress_bar_loss) instead of a `prog_bar=True` metric that Lightning reads every step, and
      redraws every `refresh_rate` steps: Lightning's default redraws after every step, which at batch 8 on a
      GPU costs more CPU time than the step itself."""

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        loss = pl_module.progress_bar_loss() if hasattr(pl_module, "progress_bar_loss") else None
        if loss is not None:
            metrics["train/loss"] = loss
        for key, value in metrics.items():  # tqdm keeps 3 significant digits: 29.87 dB would show as 29.90
            if "psnr" in key and isinstance(value, (int, float)):
                metrics[key] = f"{value:.2f}"
        return metrics

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_start(trainer, pl_module)
        bar = self.train_progress_bar
        bar.reset(total=convert_inf(trainer.estimated_stepping_batches))
        bar.initial = bar.n = trainer.global_step  # tqdm's rate counts from `initial`: right after a resume too
        bar.set_description("step")
        bar.refresh()

    def on_train_epoch_start(self, trainer: L.Trainer, *_: Any) -> None:
        if self.train_progress_bar is not None:
            self.train_progress_bar.set_description(f"epoch {trainer.current_epoch}")

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        bar = self.train_progress_bar
        step = trainer.global_step
        if bar is not None and step != bar.n and self._should_update(step, bar.total):
            bar.n = step
            bar.set_postfix(self.get_metrics(trainer, pl_module), refresh=False)
            bar.refresh()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.train_progress_bar is not None and not self.train_progress_bar.disable:
            self.train_progress_bar.set_postfix(self.get_metrics(trainer, pl_module))
