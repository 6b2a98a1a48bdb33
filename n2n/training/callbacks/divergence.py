"""A NaN or infinite training loss stops the run with one message, before anything saves the diverged weights.

The check costs no host synchronisation per step: a flag is accumulated on the device and read every
`trainer.log_every_n_steps` steps (when Lightning already synchronises to log the loss), before validation, at
the end of an epoch and of training, and before an interrupt checkpoint.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from n2n.config import LAST
from n2n.errors import DivergenceError

_NEVER = 2**62  # "no bad step yet" in the device-side minimum


class DivergenceGuard(Callback):
    """Stops training with `DivergenceError` once the training loss is NaN or infinite.

    Every step adds `isfinite(loss)` to a device-side "first bad step" (no host sync); the flag is read
    every `check_every_n_steps` steps (default: `trainer.log_every_n_steps`) and before anything could save
    the diverged weights (validation, end of epoch, end of training, an interrupt checkpoint), so the last
    checkpoint on disk always holds finite weights. `checkpoint_dir` is where last.ckpt lives and
    `resume_command` the command that goes on from it (both only for the message).
    """

    def __init__(self, checkpoint_dir: str | Path, resume_command: Callable[..., str],
                 check_every_n_steps: int | None = None):
        super().__init__()
        self.checkpoint_dir = Path(checkpoint_dir)
        self.resume_command = resume_command
        self.check_every_n_steps = check_every_n_steps
        self._first_bad: torch.Tensor | None = None
        self._lrs: dict[int, float] = {}
        self._last_saved_step: int | None = None

    def _every(self, trainer: L.Trainer) -> int:
        return max(1, int(self.check_every_n_steps or trainer.log_every_n_steps or 1))

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._first_bad, self._lrs = None, {}
        if trainer.ckpt_path:  # resumed: the checkpoint we started from is the last good one
            self._last_saved_step = trainer.global_step

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        if trainer.optimizers:  # the rate this step uses (a Python float: no sync)
            self._lrs[trainer.global_step + 1] = float(trainer.optimizers[0].param_groups[0]["lr"])

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        if isinstance(loss, torch.Tensor):
            step = trainer.global_step  # this step's number, counting from 1
            bad_step = torch.where(torch.isfinite(loss.detach()).all(), _NEVER, step)
            self._first_bad = bad_step if self._first_bad is None else torch.minimum(self._first_bad, bad_step)
        if trainer.global_step % self._every(trainer) == 0:
            self.check(trainer)

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.check(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.check(trainer)  # runs before ModelCheckpoint's end-of-epoch save (checkpoint callbacks run last)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.check(trainer)

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        self._last_saved_step = trainer.global_step

    def check(self, trainer: L.Trainer) -> None:
        """Raise `DivergenceError` if a loss since the last check was not finite (one host sync).
        In a data-parallel run every process calls this at the same points, so the decision is shared."""
        if self._first_bad is None and trainer.world_size == 1:
            return
        first = torch.tensor(_NEVER) if self._first_bad is None else self._first_bad
        if trainer.world_size > 1:
            first = trainer.strategy.reduce(first.to(trainer.strategy.root_device).clone(), reduce_op="min")
        step = int(first.item())
        if step >= _NEVER:
            self._lrs = {s: lr for s, lr in self._lrs.items() if s > trainer.global_step}
            self._first_bad = None
            return
        raise DivergenceError(self.message(trainer, step))

    def message(self, trainer: L.Trainer, step: int) -> str:
        lr = self._lrs.get(step)
        group = trainer.optimizers[0].param_groups[0] if trainer.optimizers else {}
        base_lr = group.get("initial_lr", group.get("lr"))
        optimizer = type(trainer.optimizers[0]).__name__ if trainer.optimizers else "the optimiser"
        lr_text = f"learning rate {lr:.3g}" if lr is not None else "learning rate unknown"
        last = self.checkpoint_dir / LAST
        if last.is_file() and self._last_saved_step is not None:
            kept = (f"The last good checkpoint is kept: {last} (step {self._last_saved_step}); nothing with "
                    f"the diverged weights was saved. To go on from it with other settings: "
                    f"{self.resume_command('optimizer.lr')} optimizer.lr=...")
        else:
            kept = "No checkpoint had been saved yet (none is written with the diverged weights)."
        lower = (f" (it is {base_lr:g}; try {base_lr / 10:g} or lower)"
                 if isinstance(base_lr, (int, float)) and base_lr > 0 else "")
        return (f"training diverged: the training loss became NaN or infinite at step {step} "
                f"({optimizer}, {lr_text}; found at step {trainer.global_step}, checks run every "
                f"{self._every(trainer)} steps). {kept} What to try: a lower optimizer.lr{lower}; batch "
                f"normalisation, norm=batch; gradient clipping, trainer.gradient_clip_val=1.0; a learning-rate "
                f"warm-up, scheduler=cosine scheduler.warmup=0.05.")
