"""The sweeper's ask / launch / tell loop with a stand-in for Hydra's launcher: what Optuna is told for each way
a job ends, when the search stops, and what each job is told about its trial."""
from __future__ import annotations

import math

import optuna
import pytest
import yaml
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf

from n2n.errors import ConfigError
from n2n.search import TrialPruned
from n2n.search.sweeper import OptunaSearch


class Launcher:
    """Runs each job at once: `outcome=` in its overrides says how it ends (else it returns x)."""

    def __init__(self, interrupt: bool = False):
        self.jobs: list[list[str]] = []
        self.interrupt = interrupt

    def launch(self, overrides, initial_job_idx):
        if self.interrupt:
            raise KeyboardInterrupt
        out = []
        for job in overrides:
            self.jobs.append(list(job))
            options = dict(o.split("=", 1) for o in job)
            outcome = options.get("outcome", "value")
            ret = JobReturn(overrides=list(job))
            results = {"value": float(options.get("x", 1.0)), "returns_nan": math.nan, "not_a_number": "abc"}
            if outcome in results:
                ret.status, ret.return_value = JobStatus.COMPLETED, results[outcome]
            else:
                ret.status = JobStatus.FAILED
                ret.return_value = TrialPruned("pruned") if outcome == "pruned" else RuntimeError("job failed")
            out.append(ret)
        return out


def search(tmp_path, launcher: Launcher, **options) -> OptunaSearch:
    found = OptunaSearch(**{"direction": "minimize", "study_name": "s", **options})
    found.config, found.launcher = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}}), launcher
    return found


def study(tmp_path):
    return optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path / 's.db'}")


def test_every_way_a_job_ends_and_the_search_goes_on(tmp_path):
    launcher = Launcher()
    results = search(tmp_path, launcher, sampler="grid", max_failure_rate=1.0, storage=f"sqlite:///{tmp_path / 's.db'}",
                     params={"outcome": "choice(value, returns_nan, not_a_number, raises, pruned)"}).sweep(["x=3"])
    states = {t.params["outcome"]: (t.state.name, t.value) for t in study(tmp_path).trials}
    assert states == {"value": ("COMPLETE", 3.0), "returns_nan": ("FAIL", None), "not_a_number": ("FAIL", None),
                      "raises": ("FAIL", None), "pruned": ("PRUNED", None)}
    assert results["best_value"] == 3.0 and results["trials_this_process"] == 5  # 20 asked; the grid has 5
    saved = yaml.safe_load((tmp_path / "optimization_results.yaml").read_text())
    assert saved["best_params"] == {"outcome": "value"} and saved["trials_in_study"] == \
        {"complete": 1, "pruned": 1, "fail": 3}
    # each job gets the fixed overrides, its sampled values and which trial it is
    numbers = sorted(int(job[-1].split("=")[1]) for job in launcher.jobs)
    assert numbers == [0, 1, 2, 3, 4]
    assert all(job[0] == "x=3" and job[2] == "hydra.sweeper.study_name=s" for job in launcher.jobs)


@pytest.mark.parametrize("outcome,error", [("raises", RuntimeError), ("returns_nan", RuntimeError)])
def test_failures_beyond_max_failure_rate_stop_the_search(tmp_path, outcome, error):
    storage = f"sqlite:///{tmp_path / 's.db'}"
    with pytest.raises(error, match="job failed|the job returned NaN"):
        search(tmp_path, Launcher(), n_trials=5, storage=storage, params={"x": "interval(0, 1)"}).sweep(
            [f"outcome={outcome}"])
    assert [t.state.name for t in study(tmp_path).trials] == ["FAIL"]


def test_an_interrupted_launch_leaves_no_trial_running(tmp_path):
    storage = f"sqlite:///{tmp_path / 's.db'}"
    with pytest.raises(KeyboardInterrupt):
        search(tmp_path, Launcher(interrupt=True), n_jobs=2, storage=storage, params={"x": "interval(0, 1)"}).sweep([])
    assert [t.state.name for t in study(tmp_path).trials] == ["FAIL", "FAIL"]


def test_a_study_keeps_its_direction(tmp_path):
    storage = f"sqlite:///{tmp_path / 's.db'}"
    optuna.create_study(study_name="s", storage=storage, direction="maximize")
    with pytest.raises(ConfigError, match="direction=minimize, but the study 's' .* was created to maximize"):
        search(tmp_path, Launcher(), storage=storage, params={"x": "interval(0, 1)"}).sweep([])


@pytest.mark.parametrize("options,needle", [
    ({"direction": ["maximize", "minimize"]}, "must be maximize or minimize"),
    ({"n_trials": -1}, "n_trials=-1 must be an integer >= 0"),
    ({"n_jobs": 0}, "n_jobs=0 must be an integer >= 1"),
    ({"max_failure_rate": 2}, "between 0 and 1"),
])
def test_bad_options(tmp_path, options, needle):
    with pytest.raises(ConfigError, match=needle):
        search(tmp_path, Launcher(), **options)
