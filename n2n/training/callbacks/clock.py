"""Training time without validation, and the validation PSNR reached by each moment of it.

"Time to reach 31 dB" compares training pipelines only if validation (whose cost depends on the test set, not
on the pipeline) is left out of the clock. The clock stops, with the device synchronised, when validation
starts and goes on when it ends. Each validation logs `train/seconds` (TensorBoard, x = step) and adds
`{step, train_seconds, val_psnr}` to `history`, which `metrics.json` keeps as `val_history`. A second clock,
`wall_seconds`, counts the training with its validations (metrics.json's `train_seconds`). Both are part of the
checkpoint, so a resumed run goes on counting from where it stopped.
"""
from __future__ import annotations

import time
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer.states import TrainerFn

from n2n.devices import synchronize


class TrainingClock(Callback):
    def __init__(self) -> None:
        self.seconds = 0.0
        self.wall_seconds = 0.0
        self.history: list[dict[str, float]] = []
        self._since: float | None = None
        self._wall_since: float | None = None

    def _stop(self, pl_module: L.LightningModule) -> None:
        if self._since is not None:
            synchronize(pl_module.device)
            self.seconds += time.perf_counter() - self._since
            self._since = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        synchronize(pl_module.device)
        self._since = self._wall_since = time.perf_counter()

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._stop(pl_module)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING:  # not trainer.validate()
            return
        psnr = trainer.callback_metrics.get("val/psnr")
        entry = {"step": int(trainer.global_step), "train_seconds": round(self.seconds, 3),
                 "val_psnr": float(psnr) if psnr is not None else float("nan")}
        self.history.append(entry)
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.log_metrics({"train/seconds": entry["train_seconds"]}, step=entry["step"])
        self._since = time.perf_counter()

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._stop(pl_module)
        if self._wall_since is not None:
            self.wall_seconds += time.perf_counter() - self._wall_since
            self._wall_since = None

    def state_dict(self) -> dict[str, Any]:
        now = time.perf_counter()  # a checkpoint written while the clocks run (last.ckpt, an interrupt)
        running = now - self._since if self._since is not None else 0.0
        wall = now - self._wall_since if self._wall_since is not None else 0.0
        return {"seconds": self.seconds + running, "wall_seconds": self.wall_seconds + wall,
                "history": list(self.history)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.seconds = float(state_dict.get("seconds", 0.0))
        # checkpoints from before this clock existed: the time without validation is the closest known
        self.wall_seconds = float(state_dict.get("wall_seconds", self.seconds))
        self.history = list(state_dict.get("history", []))


def time_to_psnr(history: list[dict[str, float]], target: float) -> float | None:
    """Training seconds at the first validation whose PSNR reached `target` (None: never reached)."""
    for entry in history:
        if entry.get("val_psnr", float("nan")) >= target:
            return float(entry["train_seconds"])
    return None
