"""SIGINT (Ctrl-C) and SIGTERM (`kill`, SLURM's `scancel` or pre-emption, a spot instance going away) no longer
kill a run mid-step: the step finishes, `checkpoints/last.ckpt` is written with everything needed to go on
(weights, optimiser, schedule, the DataModule's generator, loop counters, best-checkpoint bookkeeping) and the
run stops with exit code 128 + signal number. `python train.py ckpt_path=last hydra.run.dir=RUN_FOLDER` goes
on from that step. A second signal stops at once, without saving.

Lightning's own SIGTERM handling raises at the end of a step without saving anything unless the run is a
SLURM job with auto-requeue; `trainer.should_stop` would first run an unscheduled validation (time that a
pre-emption notice may not leave, and an extra point in the curves and the best-checkpoint tracking) and end
the epoch early. So this callback saves from `on_train_batch_end` (where Lightning's own step-interval
checkpoints are saved, and from which it resumes mid-epoch) and then stops the trainer with an exception that
`n2n.training.run` turns into a message and an exit code.
"""
from __future__ import annotations

import math
import os
import signal
import threading
from pathlib import Path
from typing import Any, Callable

import lightning as L
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from n2n.config import LAST
from n2n.errors import TrainingInterrupted, signal_name
from n2n.training.callbacks.divergence import DivergenceGuard
from n2n.training.lightning_compat import flush_step_logs, validation_follows


class InterruptCheckpoint(Callback):
    """On SIGINT or SIGTERM during training: finish the step, write `<checkpoint_dir>/last.ckpt`, stop the run.

    `guard` (if any) is asked before saving, so that diverged weights are never written; `checkpoint`, the
    run's ModelCheckpoint, is told that the file is its last.ckpt. The handlers are installed when training
    starts (after Lightning installed its own) and the previous ones are put back when fit ends. In a
    data-parallel run the processes agree every step on whether any of them was signalled (one tiny
    all-reduce; Lightning already broadcasts its own SIGTERM flag every step), so all of them stop after the
    same step and the checkpoint is consistent.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, checkpoint_dir: str | Path, resume_command: Callable[..., str],
                 guard: DivergenceGuard | None = None, checkpoint: ModelCheckpoint | None = None):
        super().__init__()
        self.dirpath = Path(checkpoint_dir)
        self.resume_command = resume_command
        self.guard = guard
        self.checkpoint = checkpoint
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}
        self._announce = True

    @property
    def path(self) -> Path:
        return self.dirpath / LAST

    # ---- handlers
    def _handler(self, signum: int, frame: Any) -> None:
        if self.signum is not None:  # the second signal: stop now, without saving
            self._restore()
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        self.signum = signum
        if self._announce:  # os.write, not print: the main thread may be inside a print to the same stream
            os.write(2, (f"\ntrain.py: received {signal_name(signum)}: saving {self.path} after the current "
                         f"step (or the validation that follows it), then stopping; send it again to stop at "
                         f"once without saving\n").encode())

    def _install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in self.SIGNALS:
            self._previous[sig] = signal.getsignal(sig)
            signal.signal(sig, self._handler)

    def _restore(self) -> None:
        for sig, handler in self._previous.items():
            if handler is not None:
                signal.signal(sig, handler)
        self._previous = {}

    # ---- hooks
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.signum = None
        self._announce = trainer.is_global_zero
        self._install()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        stop = self._signalled(trainer)
        # A validation due after this step would be skipped by a resume from here (Lightning fast-forwards
        # past it): let it run, then stop at the end of the epoch or after the next step.
        if stop and not validation_follows(trainer):
            self._stop(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # runs after the epoch's validation and its checkpoints; at the end of the last epoch the run is complete
        if self._signalled(trainer) and not _training_complete(trainer):
            self._stop(trainer)

    def _signalled(self, trainer: L.Trainer) -> bool:
        """Whether any process was signalled; in a data-parallel run all processes call this at the same points."""
        stop = self.signum is not None
        if trainer.world_size > 1:
            stop = trainer.strategy.reduce_boolean_decision(stop, all=False)
            if stop and self.signum is None:
                self.signum = int(signal.SIGTERM)  # another process was signalled
        return stop

    def _stop(self, trainer: L.Trainer) -> None:
        if self.guard is not None:  # never save diverged weights
            self.guard.check(trainer)
        flush_step_logs(trainer)
        if self.checkpoint is not None and self.checkpoint.save_last:
            self.checkpoint.last_model_path = str(self.path)  # so that it keeps writing last.ckpt, not last-v1.ckpt
        trainer.save_checkpoint(self.path, weights_only=False)
        total = trainer.estimated_stepping_batches
        of = f" of {int(total)}" if math.isfinite(total) else ""
        raise TrainingInterrupted(
            f"interrupted by {signal_name(self.signum)} after step {trainer.global_step}{of}; saved {self.path}. "
            f"Resume with: {self.resume_command()}", self.signum)

    # Put the previous handlers back before Lightning restores its own originals (its teardown runs after
    # on_train_end and on_exception, before on_fit_end and teardown).
    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._restore()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self._restore()

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._restore()


def _training_complete(trainer: L.Trainer) -> bool:
    max_epochs, max_steps = trainer.max_epochs, trainer.max_steps
    return ((max_steps is not None and max_steps > 0 and trainer.global_step >= max_steps)
            or (max_epochs is not None and max_epochs > 0 and trainer.current_epoch + 1 >= max_epochs))
