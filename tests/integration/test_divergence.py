"""Divergence guard: a NaN/inf training loss stops the run with one message, keeps the last good checkpoint,
costs no host sync per step, and in a sweep fails only its own job."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from helpers.runs import TINY, run_entry, run_in_process, tiny
from n2n.errors import DivergenceError
from n2n.training.callbacks import DivergenceGuard

HUGE_LR = ["optimizer=sgd", "optimizer.lr=1e6"]


@pytest.fixture
def single_thread_env(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # inherited by run_entry's subprocesses


def _fake_trainer(step: int, every: int) -> SimpleNamespace:
    return SimpleNamespace(global_step=step, log_every_n_steps=every, world_size=1, optimizers=[],
                           checkpoint_callback=None)


def test_guard_reads_the_device_flag_only_every_n_steps(monkeypatch):
    """Per step the guard only queues device ops; the one host sync happens at the check steps, and it
    reports the first bad step, not the step where the check ran."""
    syncs = []
    original_item = torch.Tensor.item
    monkeypatch.setattr(torch.Tensor, "item", lambda self: syncs.append(1) or original_item(self))
    monkeypatch.setattr(torch.Tensor, "__bool__", lambda self: pytest.fail("host sync through bool()"))
    guard = DivergenceGuard(Path("checkpoints"), lambda: "resume")
    losses = [0.5, 0.4, float("nan"), 0.3, 0.2]
    for step, value in enumerate(losses[:4], start=1):
        guard.on_train_batch_end(_fake_trainer(step, 5), None, {"loss": torch.tensor(value)}, None, step - 1)
    assert syncs == []
    with pytest.raises(DivergenceError, match="at step 3 .*found at step 5, checks run every 5 steps"):
        guard.on_train_batch_end(_fake_trainer(5, 5), None, {"loss": torch.tensor(losses[4])}, None, 4)
    assert len(syncs) == 1


def test_finite_losses_pass_the_check():
    guard = DivergenceGuard(Path("checkpoints"), lambda: "resume", check_every_n_steps=2)
    for step in range(1, 7):
        guard.on_train_batch_end(_fake_trainer(step, 50), None, {"loss": torch.tensor(1.0 / step)}, None, step)
    guard.check(_fake_trainer(6, 50))  # no error


def test_single_run_diverges_with_one_clear_message(tmp_path, image_dirs, single_thread_env):
    train, val = image_dirs
    run_dir = tmp_path / "run"
    result = run_entry(["train.py", "data=folder", f"data.train_dir={train}", f"data.val_dir={val}",
                        "data.crop_size=32", f"hydra.run.dir={run_dir}", *TINY, *HUGE_LR])
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("train.py: error:")]
    assert len(errors) == 1, result.stderr[-3000:]
    message = errors[0]
    for needle in ("training diverged", "at step 2", "learning rate 1e+06", "optimizer.lr", "norm=batch",
                   "trainer.gradient_clip_val"):
        assert needle in message, message
    assert not (run_dir / "checkpoints" / "last.ckpt").exists()  # no checkpoint of diverged weights
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "diverged" and metrics["global_step"] == 2


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_divergence_keeps_the_last_good_checkpoint(images, one_thread, tmp_path, monkeypatch):  # noqa: F811
    """One good epoch, then a resume with a diverging learning rate (which the resume must apply): the error
    names the kept checkpoint, and last.ckpt is byte for byte the good one."""
    run_dir = tmp_path / "run"
    base = [*tiny(*images, epochs=1), "optimizer=sgd", "trainer.log_every_n_steps=2"]
    run_in_process(base, run_dir)
    last = run_dir / "checkpoints" / "last.ckpt"
    good = _digest(last)
    with pytest.raises(DivergenceError) as error:
        run_in_process([*base, "trainer.max_epochs=3", "ckpt_path=last", "optimizer.lr=1e6"], run_dir)
    message = str(error.value)
    assert "learning rate 1e+06" in message  # the new rate was applied to the restored optimiser
    assert f"The last good checkpoint is kept: {last} (step 4)" in message
    assert f"ckpt_path=last hydra.run.dir={run_dir}" in message
    assert _digest(last) == good
    state = torch.load(last, weights_only=True)
    assert state["global_step"] == 4
    assert all(torch.isfinite(t).all() for t in state["state_dict"].values() if t.is_floating_point())
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "diverged"

    # the good checkpoint still resumes, with a sane rate
    run_in_process([*base, "trainer.max_epochs=2", "ckpt_path=last", "optimizer.lr=0.005"], run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["global_step"] == 8 and metrics["best_val_psnr"] > 0


def test_multirun_fails_only_the_diverging_job(tmp_path, image_dirs, single_thread_env):
    train, val = image_dirs
    sweep = tmp_path / "sweep"
    result = run_entry(["train.py", "-m", "optimizer=sgd", "optimizer.lr=1e6,0.01", "data=folder",
                        f"data.train_dir={train}", f"data.val_dir={val}", "data.crop_size=32",
                        f"hydra.sweep.dir={sweep}", *TINY, "trainer.max_epochs=1"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert "training diverged" in result.stderr and "this job returns nan" in result.stderr
    diverged = json.loads((sweep / "0" / "metrics.json").read_text())
    finished = json.loads((sweep / "1" / "metrics.json").read_text())
    assert diverged["status"] == "diverged" and not (sweep / "0" / "checkpoints" / "last.ckpt").exists()
    assert finished["global_step"] == 4 and finished["best_val_psnr"] > 0
    assert (sweep / "1" / "checkpoints" / "last.ckpt").is_file()


def _diverging_optuna_search(tmp_path, image_dirs, sweeper_extra: str):
    train, val = image_dirs
    search = tmp_path / "configs" / "hparams_search"
    search.mkdir(parents=True)
    (search / "diverge_test.yaml").write_text(
        "# @package _global_\n"
        # the grid sampler: each of the two rates exactly once, in either order
        "defaults:\n  - override /hydra/sweeper: n2n_optuna\n  - override /hydra/sweeper/sampler: grid\n"
        "hydra:\n  sweeper:\n    direction: maximize\n    n_trials: 2\n    sampler:\n      seed: 0\n"
        "    params:\n      optimizer.lr: choice(1000000.0, 0.01)\n"
        + sweeper_extra)
    sweep = tmp_path / "sweep"
    result = run_entry(["train.py", "--config-dir", str(tmp_path / "configs"), "-m", "hparams_search=diverge_test",
                        "optimizer=sgd", "data=folder", f"data.train_dir={train}", f"data.val_dir={val}",
                        "data.crop_size=32", f"hydra.sweep.dir={sweep}", "hydra.sweeper.storage=sqlite:///"
                        + str(tmp_path / "study.db"), *TINY, "trainer.max_epochs=1"])
    assert result.returncode == 0, result.stderr[-3000:]
    return sweep, result


def test_optuna_records_a_diverging_trial_as_failed_and_goes_on(tmp_path, image_dirs, single_thread_env):
    """With max_failure_rate > 0 (as hparams_search=seed_table1 sets) the diverged trial is a FAIL trial."""
    import optuna

    sweep, result = _diverging_optuna_search(tmp_path, image_dirs, "    max_failure_rate: 1.0\n")
    assert "Optuna records this trial as failed" in result.stderr
    assert "Traceback" not in result.stderr
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    (summary,) = optuna.get_all_study_summaries(storage)
    study = optuna.load_study(study_name=summary.study_name, storage=storage)
    states = sorted((t.params["optimizer.lr"], t.state.name) for t in study.trials)
    assert states == [(0.01, "COMPLETE"), (1000000.0, "FAIL")]
    assert "optimizer.lr: 0.01" in (sweep / "optimization_results.yaml").read_text()


@pytest.mark.slow  # a subprocess run of half a minute: the suite must stay well under 10 minutes
def test_optuna_search_goes_on_after_a_diverging_trial(tmp_path, image_dirs, single_thread_env):
    """Without max_failure_rate (0: any failure stops the search) a diverged trial gets the worst value for the
    study's direction instead: a COMPLETE trial at -inf, and the search goes on."""
    sweep, result = _diverging_optuna_search(tmp_path, image_dirs, "")
    assert "this job returns -inf" in result.stderr
    results = (sweep / "optimization_results.yaml").read_text()
    assert "optimizer.lr: 0.01" in results and "best_value: -inf" not in results
    statuses = sorted(json.loads((d / "metrics.json").read_text()).get("status", "finished")
                      for d in sweep.iterdir() if d.is_dir() and (d / "metrics.json").exists())
    assert statuses == ["diverged", "finished"]
