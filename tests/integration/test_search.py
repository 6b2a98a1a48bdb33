"""n2n's Optuna sweeper end to end: how each way a job ends reaches Optuna, a study shared by two processes
through a journal file (through an sqlite file: test_seed_experiments.py), and a train.py search whose pruner
stops a trial while the search goes on.

The sweeper's own behaviour is tested on a Hydra app whose jobs take milliseconds (tests/helpers/search_app.py;
the loop itself, with a stand-in launcher: tests/unit/test_search_sweeper.py); the pruning test trains for real,
a few steps on tiny images."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import optuna
import pytest
import torch
import yaml

from helpers.runs import ROOT, run_entry, tiny

APP = "tests/helpers/search_app.py"
#: the app's jobs return (x - 0.3)^2: a search that minimises it
SWEEP = ["-m", "hydra/sweeper=n2n_optuna", "hydra.sweeper.direction=minimize"]


@pytest.fixture
def app_env(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    # the app lives in tests/helpers; the plugin (hydra_plugins/) in the repository root
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def trials_of(storage: str, name: str) -> list:
    return optuna.load_study(study_name=name, storage=storage).trials


def test_two_processes_at_once_share_a_journal_file_and_no_job_stops_the_search(tmp_path, app_env):
    """Two searches at once on one journal file: one tries every way a job can end (a grid), the other searches x.
    (Two train.py processes on one sqlite file: tests/integration/test_seed_experiments.py.)"""
    journal = tmp_path / "search.log"
    shared = [*SWEEP, f"hydra.sweeper.storage=journal:{journal}", "hydra.sweeper.study_name=shared"]
    commands = {"a": [*shared, "hydra/sweeper/sampler=grid", "outcome=choice(value, returns_nan, raises, pruned)",
                      "hydra.sweeper.max_failure_rate=1.0"],
                "b": [*shared, "x=interval(0,1)", "hydra.sweeper.n_trials=3"]}
    env = {**os.environ, **app_env, "HYDRA_FULL_ERROR": "0"}
    workers = {name: subprocess.Popen([sys.executable, APP, *args, f"hydra.sweep.dir={tmp_path / name}"], cwd=ROOT,
                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
               for name, args in commands.items()}
    logs = {}
    for name, worker in workers.items():
        logs[name], _ = worker.communicate(timeout=120)
        assert worker.returncode == 0, logs[name][-3000:]

    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    trials = optuna.load_study(study_name="shared", storage=storage).trials
    assert sorted(t.number for t in trials) == list(range(7))
    ends = {t.params["outcome"]: (t.state.name, t.value) for t in trials if "outcome" in t.params}
    assert ends == {"value": ("COMPLETE", pytest.approx(0.09)), "returns_nan": ("FAIL", None),
                    "raises": ("FAIL", None), "pruned": ("PRUNED", None)}
    assert all(t.state.name == "COMPLETE" and 0 <= t.params["x"] <= 1 for t in trials if "x" in t.params)
    assert "failed (the job returned NaN)" in logs["a"] and "failed (RuntimeError: job failed on purpose" in logs["a"]
    assert "Error executing job" not in logs["a"]  # Hydra's alarm is for a search that stops
    results = yaml.safe_load((tmp_path / "a" / "optimization_results.yaml").read_text())
    assert results["study_name"] == "shared" and results["best_value"] <= 0.09


def test_a_pruned_trial_stops_cleanly_and_the_search_goes_on(tmp_path, image_dirs, monkeypatch):
    """Two trials of 2 steps per epoch: one epoch (validated at step 2, before the pruner's warm-up ends: it
    completes) and three epochs (validated at step 4 below the threshold: pruned there, before step 6)."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    storage = f"sqlite:///{tmp_path / 'search.db'}"
    sweep = tmp_path / "sweep"
    result = run_entry(["train.py", "-m", "hydra/sweeper=n2n_optuna", *tiny(*image_dirs, steps=2),
                        "trainer.max_epochs=choice(1,3)", "hydra/sweeper/sampler=grid",
                        "hydra/sweeper/pruner=threshold", "hydra.sweeper.pruner.lower=1000",
                        "hydra.sweeper.pruner.n_warmup_steps=3", f"hydra.sweeper.storage={storage}",
                        "hydra.sweeper.study_name=pruning", f"hydra.sweep.dir={sweep}", "logger=none",
                        "print_config=false"])
    assert result.returncode == 0, result.stderr[-3000:]
    trials = {t.params["trainer.max_epochs"]: t for t in trials_of(storage, "pruning")}
    assert trials[1].state.name == "COMPLETE" and trials[3].state.name == "PRUNED"
    assert list(trials[1].intermediate_values) == [2] and list(trials[3].intermediate_values) == [2, 4]
    assert trials[3].value == trials[3].intermediate_values[4]  # Optuna keeps the last reported value
    assert f"trial {trials[3].number} pruned at step 4" in result.stderr

    runs = {json.loads((d / "metrics.json").read_text())["status"]: d for d in sweep.iterdir() if d.is_dir()}
    assert set(runs) == {"finished", "pruned"}
    pruned = json.loads((runs["pruned"] / "metrics.json").read_text())
    assert pruned["global_step"] == 4 and "pruned at step 4" in pruned["message"]
    assert [h["step"] for h in pruned["val_history"]] == [2, 4]
    assert pruned["best_score"] == max(trials[3].intermediate_values.values())
    # the folder keeps its checkpoints (Lightning 2.6 refreshes last.ckpt only with a new best)
    last = torch.load(runs["pruned"] / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")
    assert last["global_step"] in (2, 4)
    assert trials[1].value == pytest.approx(json.loads((runs["finished"] / "metrics.json").read_text())["best_score"])
