"""A trial's side of the search: its validations go to its Optuna trial by global step, the pruner stops it
(never at its final validation), and a job finds its trial through the shared storage from another process."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
import torch
from lightning.pytorch.trainer.states import TrainerFn

from n2n.config import RunContext
from n2n.errors import ConfigError
from n2n.search import TrialPruned
from n2n.search.config import SWEEPER_TARGET
from n2n.search.pruning import ReportToTrial, trial_callbacks

CONFIG = {"callbacks": {"checkpoint": {"monitor": "val/psnr", "mode": "max"}}}


def fake_trainer(step: int, value: float, max_steps: int = 100, sanity: bool = False) -> SimpleNamespace:
    return SimpleNamespace(global_step=step, callback_metrics={"val/psnr": torch.tensor(value)},
                           sanity_checking=sanity, state=SimpleNamespace(fn=TrainerFn.FITTING), is_global_zero=True,
                           world_size=1, max_steps=max_steps, max_epochs=None, current_epoch=0, is_last_batch=False,
                           should_stop=False)


def test_validations_are_reported_by_step_and_a_hopeless_run_stops():
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=20.0))
    trial = study.ask()
    callback = ReportToTrial(trial, trial.number, "val/psnr")
    callback.on_validation_end(fake_trainer(0, 5.0, sanity=True), None)  # Lightning's sanity check: not a score
    first = fake_trainer(10, 25.0)
    callback.on_validation_end(first, None)
    callback.on_validation_end(fake_trainer(10, 1.0), None)  # the same step again (e.g. the final validation)
    assert not first.should_stop
    callback.on_fit_end(first, None)  # not pruned: nothing raised
    second = fake_trainer(20, 15.0)
    callback.on_validation_end(second, None)
    assert second.should_stop
    assert study.trials[0].intermediate_values == {10: 25.0, 20: 15.0}
    with pytest.raises(TrialPruned, match=r"trial 0 pruned at step 20 \(val/psnr 15.0000\)"):
        callback.on_fit_end(second, None)


def test_a_run_that_reached_its_end_is_never_pruned():
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=20.0))
    callback = ReportToTrial(study.ask(), 0, "val/psnr")
    last = fake_trainer(100, 15.0, max_steps=100)
    callback.on_validation_end(last, None)
    assert not last.should_stop and callback.pruned_at is None


def job(tmp_path: Path, **sweeper) -> RunContext:
    return RunContext(tmp_path, multirun=True, sweeper={"_target_": SWEEPER_TARGET, "direction": "maximize",
                                                        "storage": None, "pruner": None, **sweeper})


def test_only_trials_of_n2ns_sweeper_report(tmp_path):
    assert trial_callbacks(CONFIG, RunContext(tmp_path)) == []
    basic = RunContext(tmp_path, True, {"_target_": "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"})
    assert trial_callbacks(CONFIG, basic) == []
    assert trial_callbacks(CONFIG, job(tmp_path, trial=None)) == []


def test_a_loss_scored_run_in_a_maximising_search_stops_with_one_message(tmp_path):
    config = {"callbacks": {"checkpoint": {"monitor": "val/n2n_loss", "mode": "min"}}}
    with pytest.raises(ConfigError, match="direction=maximize, but this run is scored by val/n2n_loss.*"
                                          "set hydra.sweeper.direction=minimize"):
        trial_callbacks(config, job(tmp_path, trial=0, study_name="s"))


def test_a_job_in_another_process_finds_its_trial_through_the_storage(tmp_path):
    storage = f"sqlite:///{tmp_path / 'search.db'}"
    study = optuna.create_study(study_name="shared", storage=storage, direction="maximize")
    study.ask()
    number = study.ask().number  # trial 1
    # this process has not opened the study as a sweeper: the job loads it, with the pruner of its config
    (callback,) = trial_callbacks(CONFIG, job(tmp_path, trial=number, study_name="shared", storage=storage,
                                              pruner={"name": "threshold", "lower": 20.0}))
    trainer = fake_trainer(50, 12.0)
    callback.on_validation_end(trainer, None)
    assert trainer.should_stop
    stored = optuna.load_study(study_name="shared", storage=storage).trials[number]
    assert stored.intermediate_values == {50: 12.0}


def test_an_in_memory_study_of_another_process_is_not_reachable(tmp_path, capsys):
    assert trial_callbacks(CONFIG, job(tmp_path, trial=0, study_name="elsewhere")) == []
    assert "cannot report to it and is never pruned" in capsys.readouterr().out
