"""A sweep never gets NaN from a job (hydra-optuna-sweeper crashed on it: "Values cannot be specified when state is
TrialState.FAIL"; n2n's sweeper would count it as a failure): NaN becomes a failed trial, or the worst value where
failures are not tolerated."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

from n2n.config import RunContext
from n2n.search.config import SWEEPER_TARGET as OPTUNA
from n2n.training.outcome import TrialFailed, value_for_sweeper

#: hydra-optuna-sweeper, which a user may still install and pick
OLD_OPTUNA = "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"


def context(multirun: bool = True, **sweeper) -> RunContext:
    return RunContext(Path("run"), multirun=multirun, sweeper=sweeper)


def test_a_nan_trial_fails_where_optuna_tolerates_failures():
    with pytest.raises(TrialFailed, match="no validation score"):
        value_for_sweeper(float("nan"), context(_target_=OPTUNA, max_failure_rate=1.0), "no validation score")


@pytest.mark.parametrize("direction,worst", [("maximize", -math.inf), ("minimize", math.inf)])
def test_a_nan_trial_is_the_worst_value_where_failures_stop_the_search(direction, worst):
    assert value_for_sweeper(float("nan"), context(_target_=OPTUNA, direction=direction), "why") == worst


def test_hydra_optuna_sweeper_is_an_optuna_search_too():
    with pytest.raises(TrialFailed):
        value_for_sweeper(float("nan"), context(_target_=OLD_OPTUNA, max_failure_rate=1.0), "why")


def test_other_values_and_runs_are_untouched():
    assert value_for_sweeper(27.5, context(_target_=OPTUNA, max_failure_rate=1.0), "why") == 27.5
    assert math.isnan(value_for_sweeper(float("nan"), context(multirun=False), "why"))  # a single run reports it
    # Hydra's own sweeper: NaN is a failed job
    assert math.isnan(value_for_sweeper(float("nan"), context(_target_="BasicSweeper"), "why"))
