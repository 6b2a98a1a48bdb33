"""Class: every way a search's settings can be wrong ends in one line naming the option, exit code 2, nothing
half-written: storages that cannot be opened (a missing folder, an unknown URL scheme, a missing database
driver, a file that is not a journal or a database), a study created with the other direction, an unknown
sampler or pruner."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from n2n.errors import ConfigError
from n2n.search.algorithms import build_pruner, build_sampler
from n2n.search.storage import open_study, study_for_job

optuna = pytest.importorskip("optuna")
ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]


def _journal_garbage(tmp_path):
    path = tmp_path / "broken.log"
    path.write_bytes(b"\x00\xffnot a journal\n{half a line")
    return f"journal:{path}"


def _sqlite_garbage(tmp_path):
    path = tmp_path / "broken.db"
    path.write_bytes(b"this is not an sqlite database" * 100)
    return f"sqlite:///{path}"


STORAGES = [  # (storage value, what the line says)
    (lambda t: f"sqlite:///{t}/missing/folder/search.db", "cannot be opened or written"),
    (lambda t: "foo://somewhere/db", "unknown database URL scheme"),
    (lambda t: "postgresql://me@127.0.0.1:1/search", "driver is not installed|cannot be opened or written"),
    (lambda t: f"journal:{t}/missing/search.log", "the folder .* does not exist"),
    (lambda t: f"{t}/missing/search.journal", "the folder .* does not exist"),
    (_journal_garbage, "cannot open the study storage"),
    (_sqlite_garbage, "cannot open the study storage"),
    (lambda t: "just-a-name", "neither a database URL nor a journal file"),
]


@pytest.mark.parametrize("make,says", STORAGES)
def test_storages_that_cannot_be_opened_are_one_line(tmp_path, make, says):
    value = make(tmp_path)
    with pytest.raises(ConfigError, match=says) as err:
        open_study("s", value, optuna.samplers.RandomSampler(), optuna.pruners.NopPruner(), "maximize")
    assert str(err.value).startswith("hydra.sweeper.storage=") and "\n" not in str(err.value)
    if "missing" in value:
        assert not (tmp_path / "missing").exists()  # nothing created on the way


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_one_line(tmp_path):
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(ConfigError, match="hydra.sweeper.storage=.*cannot"):
            open_study("s", f"sqlite:///{tmp_path}/s.db", optuna.samplers.RandomSampler(), None, "maximize")
    finally:
        tmp_path.chmod(0o700)


def test_a_job_that_cannot_open_the_storage_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match="hydra.sweeper.storage=foo://x: cannot open"):
        study_for_job("s", "foo://x", None)


def test_a_study_of_the_other_direction_is_one_line(tmp_path):
    storage = f"sqlite:///{tmp_path}/s.db"
    open_study("s", storage, optuna.samplers.RandomSampler(), None, "maximize")
    with pytest.raises(ConfigError, match="direction=minimize, but the study 's' .* was created to maximize"):
        open_study("s", storage, optuna.samplers.RandomSampler(), None, "minimize")


@pytest.mark.parametrize("build,value,says", [
    (build_sampler, "bogus", "hydra.sweeper.sampler=bogus is not known; choose one of: tpe"),
    (build_sampler, {"name": "tpe", "n_startup": 3}, "hydra.sweeper.sampler=tpe: unknown option"),
    (build_pruner, "bogus", "hydra.sweeper.pruner=bogus is not known"),
    (build_pruner, {"_target_": "os.system"}, "pruner._target_=os.system is not one of Optuna's"),
])
def test_unknown_samplers_and_pruners_are_one_line(build, value, says):
    with pytest.raises(ConfigError, match=says):
        build(value)


@pytest.mark.parametrize("override,says", [
    ("hydra.sweeper.storage=foo://x", "search_app.py: error: hydra.sweeper.storage=foo://x: cannot open"),
    ("hydra.sweeper.sampler=bogus", "search_app.py: error: hydra.sweeper.sampler=bogus is not known"),
    ("hydra.sweeper.direction=sideways", "search_app.py: error: hydra.sweeper.direction=sideways must be"),
])
def test_through_hydra_the_sweeper_errors_are_one_line(tmp_path, override, says):
    start = time.perf_counter()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "tests/helpers/search_app.py", "-m", "hydra/sweeper=n2n_optuna",
                             "x=interval(0,1)", override, f"hydra.sweep.dir={tmp_path / 'sweep'}"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and says in result.stderr, result.stderr
    assert not (tmp_path / "sweep").exists()
    assert time.perf_counter() - start < 60
