"""A trial's side of the search: each validation's score goes to the job's Optuna trial, and a run that the
pruner judges hopeless stops.

The sweeper tells each job which trial it is through the job's own `hydra.sweeper` config (`study_name` and
`trial`, next to `storage` and `pruner`), which `RunContext.sweeper` carries: a job launched in another
process or on another machine finds its trial through the shared storage. A pruned run stops after the
validation that condemned it, once its checkpoints are saved; `train()` then writes metrics.json with status
`pruned` and raises `TrialPruned`, which the sweeper tells Optuna as PRUNED.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer.states import TrainerFn

from n2n.config import RunContext
from n2n.errors import ConfigError
from n2n.search import TrialPruned
from n2n.search.config import SWEEPER_TARGET


def trial_callbacks(config: Mapping[str, Any], context: RunContext) -> list[Callback]:
    """The callbacks of a job that is a trial of n2n's Optuna sweeper; none for any other run. Call it after
    the run chose its monitored metric (n2n.training.run.follow_validation_loss)."""
    sweeper = context.sweeper
    if not context.multirun or sweeper.get("_target_") != SWEEPER_TARGET or sweeper.get("trial") is None:
        return []
    monitor, mode = monitored(config)
    direction = str(sweeper.get("direction") or "maximize").lower()
    if direction != ("maximize" if mode == "max" else "minimize"):
        raise ConfigError(f"hydra.sweeper.direction={direction}, but this run is scored by {monitor}, where "
                          f"{'higher' if mode == 'max' else 'lower'} is better: set hydra.sweeper.direction="
                          f"{'maximize' if mode == 'max' else 'minimize'}" + (
                              f" (the validation data has no clean images, so runs follow {monitor})"
                              if monitor in ("val/n2n_loss", "val/self_loss") else ""))
    from n2n.search.algorithms import build_pruner
    from n2n.search.storage import study_for_job

    number = int(sweeper["trial"])
    study = study_for_job(str(sweeper.get("study_name")), sweeper.get("storage"), build_pruner(sweeper.get("pruner")))
    if study is None:
        print(f"trial {number}: its study is in the memory of the sweeper's process (hydra.sweeper.storage=null), "
              f"which this job does not share: it cannot report to it and is never pruned. Give the search a "
              f"storage that the jobs see (sqlite:///FILE.db, journal:FILE.log)", flush=True)
        return []
    import optuna

    # Optuna's API finds a trial by its id; the number is what the sweeper and the user see
    trial_id = study._storage.get_trial_id_from_study_id_trial_number(study._study_id, number)
    return [ReportToTrial(optuna.trial.Trial(study, trial_id), number, monitor)]


def monitored(config: Mapping[str, Any]) -> tuple[str, str]:
    """(metric, mode) that the run returns to the sweeper: its checkpoint's monitor."""
    checkpoint = (config.get("callbacks") or {}).get("checkpoint") or {}
    monitor = str(checkpoint.get("monitor") or "val/psnr")
    return monitor, str(checkpoint.get("mode") or ("max" if monitor == "val/psnr" else "min"))


class ReportToTrial(Callback):
    """Reports the monitored metric of every validation to `trial` at the global step, and stops the run when
    the study's pruner says so (not at the final validation: a run that reached its end is complete)."""

    def __init__(self, trial: Any, number: int, monitor: str):
        self.trial, self.number, self.monitor = trial, number, monitor
        self.pruned_at: tuple[int, float] | None = None
        self._last_step = -1

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING:
            return
        step = int(trainer.global_step)
        if step == self._last_step:  # Optuna keeps the first value reported for a step
            return
        self._last_step = step
        value = trainer.callback_metrics.get(self.monitor)
        prune = False
        if trainer.is_global_zero and value is not None:
            value = float(value)
            self.trial.report(value, step)
            prune = self.trial.should_prune() and not _final_validation(trainer)
        if trainer.world_size > 1:  # one decision for every process of a data-parallel run
            prune = bool(trainer.strategy.broadcast(prune, src=0))
        if prune:
            self.pruned_at = (step, float(value) if value is not None else math.nan)
            trainer.should_stop = True  # as early stopping does: the checkpoints of this validation are saved

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.pruned_at is not None:
            step, value = self.pruned_at
            raise TrialPruned(f"trial {self.number} pruned at step {step} ({self.monitor} {value:.4f}): the "
                              f"pruner judged it unpromising next to the other trials")


def _final_validation(trainer: L.Trainer) -> bool:
    max_steps, max_epochs = trainer.max_steps, trainer.max_epochs
    if max_steps is not None and max_steps > 0 and trainer.global_step >= max_steps:
        return True
    return (max_epochs is not None and 0 < max_epochs <= trainer.current_epoch + 1
            and bool(trainer.is_last_batch))
