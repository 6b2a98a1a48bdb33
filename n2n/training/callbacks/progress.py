"""The progress bar, without a device synchronisation per step."""
from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import TQDMProgressBar


class LossProgressBar(TQDMProgressBar):
    """Lightning's progress bar, showing the training loss that the module reads back once per logging step
    (see N2NModule.progress_bar_loss) instead of a `prog_bar=True` metric that Lightning reads every step.
    Redrawn every `refresh_rate` steps: Lightning's default redraws after every step, which at batch 8 on a
    GPU costs more CPU time than the step itself."""

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        metrics = super().get_metrics(trainer, pl_module)
        loss = pl_module.progress_bar_loss() if hasattr(pl_module, "progress_bar_loss") else None
        if loss is not None:
            metrics["train/loss"] = loss
        return metrics
