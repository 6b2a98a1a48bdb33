"""A sweep never gets NaN from a job (Optuna's sweeper crashed on it: "Values cannot be specified when state is
TrialState.FAIL"): NaN becomes a failed trial, or the worst value where failures are not tolerated."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

from n2n.config import RunContext
from n2n.training.outcome import TrialFailed, value_for_sweeper

OPTUNA = "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"


def context(multirun: bool = True, **sweeper) -> RunContext:
    return RunContext(Path("run"), multirun=multirun, sweeper=sweeper)


def test_a_nan_trial_fails_where_optuna_tolerates_failures():
    with pytest.raises(TrialFailed, match="no validation score"):
        value_for_sweeper(float("nan"), context(_target_=OPTUNA, max_failure_rate=1.0), "no validation score")


@pytest.mark.parametrize("direction,worst", [("maximize", -math.inf), ("minimize", math.inf)])
def test_a_nan_trial_is_the_worst_value_where_failures_stop_the_search(direction, worst):
    assert value_for_sweeper(float("nan"), context(_target_=OPTUNA, direction=direction), "why") == worst


def test_other_values_and_runs_are_untouched():
    assert value_for_sweeper(27.5, context(_target_=OPTUNA, max_failure_rate=1.0), "why") == 27.5
    assert math.isnan(value_for_sweeper(float("nan"), context(multirun=False), "why"))  # a single run reports it
    assert math.isnan(value_for_sweeper(float("nan"), context(_target_="BasicSweeper"), "why"))  # Hydra's own: NaN = failed
