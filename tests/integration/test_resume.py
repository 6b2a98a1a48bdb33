"""Resume after an interruption: SIGINT/SIGTERM save checkpoints/last.ckpt after the current step, and
`ckpt_path=last hydra.run.dir=RUN` goes on from that step with the same weights, optimiser, schedule and data
generator, logging into the same TensorBoard run, to the same final numbers as an uninterrupted run.

In-process runs (a callback sends the signal at an exact step) cover the step arithmetic; one test kills a
real `train.py` subprocess from outside and resumes it.
"""
from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import Callback
from omegaconf import OmegaConf

from helpers.runs import ROOT, compose_train, run_in_process, scalars, tiny
from n2n.config import resolve_ckpt_path
from n2n.data.datamodule import N2NDataModule
from n2n.errors import CheckpointError

STEPS_PER_EPOCH, EPOCHS = 4, 2


class SignalAt(Callback):
    """Sends `signum` to this process at the end of training step `step`."""

    def __init__(self, step: int, signum: int):
        self.step, self.signum = step, signum

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), self.signum)


class CountSteps(Callback):
    def __init__(self):
        self.steps = 0

    def on_train_batch_end(self, trainer, *args) -> None:
        self.steps += 1


@pytest.fixture(scope="module")
def uninterrupted(images, one_thread, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("uninterrupted")
    run_in_process(tiny(*images), run_dir)
    return run_dir, json.loads((run_dir / "metrics.json").read_text())


def test_datamodule_generator_state_is_restored(images):
    """The batches drawn after load_state_dict are those the original DataModule draws next."""
    config = OmegaConf.to_container(compose_train(tiny(*images)), resolve=True)
    a = N2NDataModule(config)
    a.setup("fit")
    for _ in range(3):
        a.draw_train_batch(torch.device("cpu"))
    state = a.state_dict()
    assert isinstance(state["generator"], torch.Tensor)
    expected = a.draw_train_batch(torch.device("cpu"))

    b = N2NDataModule(config)
    b.setup("fit")
    fresh = b.draw_train_batch(torch.device("cpu"))
    assert not torch.equal(fresh["noisy"], expected["noisy"])  # without the state the next batch differs
    b.load_state_dict(state)
    restored = b.draw_train_batch(torch.device("cpu"))
    assert torch.equal(restored["noisy"], expected["noisy"]) and torch.equal(restored["other"], expected["other"])


@pytest.mark.parametrize("signum,step", [
    pytest.param(signal.SIGTERM, 6, id="sigterm-mid-epoch"),  # the resumed run does the 2 steps left of epoch 2
    pytest.param(signal.SIGINT, 4, id="sigint-last-step-of-epoch"),  # its validation runs first: none is skipped
    pytest.param(signal.SIGTERM, 3, id="sigterm-first-epoch"),
])
def test_interrupt_then_resume_matches_uninterrupted(images, uninterrupted, tmp_path, monkeypatch, signum, step):
    reference_dir, reference = uninterrupted
    run_dir = tmp_path / "run"
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as stopped:
        run_in_process(tiny(*images), run_dir, SignalAt(step, signum))
    assert stopped.value.code == 128 + signum
    last = run_dir / "checkpoints" / "last.ckpt"
    saved = torch.load(last, weights_only=True)
    assert saved["global_step"] == step
    assert "generator" in saved["N2NDataModule"]  # the data generator's state travels with the checkpoint
    assert not (run_dir / "metrics.json").exists()  # an interrupted run is not a finished one
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers  # put back

    counter = CountSteps()
    run_in_process([*tiny(*images), "ckpt_path=last"], run_dir, counter)
    total = STEPS_PER_EPOCH * EPOCHS
    assert counter.steps == total - step  # exactly the steps that were left, also mid-epoch
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["global_step"] == total
    for key in ("val_psnr", "best_val_psnr", "train_loss", "val_ssim"):
        assert metrics[key] == pytest.approx(reference[key], abs=1e-5), key
    # both clocks go on across the interruption: the time with validation is the longer, and both count the
    # time before the interruption too (train_seconds once held only the resumed part)
    clock = next(v for k, v in saved["callbacks"].items() if "TrainingClock" in k)
    assert metrics["train_seconds"] > metrics["train_seconds_without_validation"] > clock["seconds"] > 0
    assert metrics["train_seconds"] > clock["wall_seconds"] > 0
    # one TensorBoard run: every step logged once, one validation per epoch, the same curves
    logged, expected = scalars(run_dir), scalars(reference_dir)
    for tag in ("train/loss", "val/psnr", "train/lr"):
        steps = [s for s, _ in logged[tag]]
        assert steps == sorted(set(steps)), tag
        assert steps == [s for s, _ in expected[tag]], tag
        assert [v for _, v in logged[tag]] == pytest.approx([v for _, v in expected[tag]], abs=1e-5), tag
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["best-8.ckpt", "last.ckpt"]


def test_ckpt_path_last_names_the_run_folder(tmp_path):
    with pytest.raises(CheckpointError, match=r"ckpt_path=last: .*run/checkpoints/last.ckpt does not exist.*"
                                              r"hydra.run.dir=RUN_FOLDER"):
        resolve_ckpt_path("last", tmp_path / "run")
    with pytest.raises(CheckpointError, match="is a folder"):
        resolve_ckpt_path(str(tmp_path), tmp_path / "run")
    with pytest.raises(CheckpointError, match="does not exist"):
        resolve_ckpt_path(str(tmp_path / "nope.ckpt"), tmp_path / "run")
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    (tmp_path / "run" / "checkpoints" / "last.ckpt").write_bytes(b"x")
    assert resolve_ckpt_path("last", tmp_path / "run") == str(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert resolve_ckpt_path(None, tmp_path) is None


def _start_train(args: list[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "CUDA_VISIBLE_DEVICES": "", "HYDRA_FULL_ERROR": "0",
           "OMP_NUM_THREADS": "1"}
    with open(log, "w") as out:
        return subprocess.Popen([sys.executable, "train.py", *args], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow  # a subprocess run of half a minute: the suite must stay well under 10 minutes
def test_sigterm_to_train_py_then_resume_in_the_same_run_folder(images, one_thread, tmp_path):
    """A real train.py killed from outside mid-run, resumed with ckpt_path=last hydra.run.dir=RUN."""
    steps, epochs = 12, 2
    args = tiny(*images, steps=steps, epochs=epochs)
    reference_dir = tmp_path / "reference"
    run_in_process(args, reference_dir)
    reference = json.loads((reference_dir / "metrics.json").read_text())

    run_dir = tmp_path / "run"
    proc = _start_train([*args, f"hydra.run.dir={run_dir}"], tmp_path / "first.log")
    last = run_dir / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 240
    try:
        size = -1
        while not last.exists() or last.stat().st_size != size:  # written after epoch 1's validation
            size = last.stat().st_size if last.exists() else -1
            assert proc.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "no checkpoint after 240 s"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)  # most likely during epoch 2 (mid-epoch is also tested in-process)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    output = (tmp_path / "first.log").read_text()
    assert proc.returncode == 128 + signal.SIGTERM, output[-3000:]
    assert "Traceback" not in output
    command = shlex.split(output.split("Resume with: ")[1].splitlines()[0])  # exact, no placeholder
    assert command == ["python", "train.py", *args, "ckpt_path=last", f"hydra.run.dir={run_dir}"]
    stopped_at = torch.load(last, weights_only=True)["global_step"]
    assert steps <= stopped_at < steps * epochs

    log = tmp_path / "resume.log"
    resumed = _start_train(command[2:], log)  # the printed command, as a user would paste it
    assert resumed.wait(timeout=240) == 0, log.read_text()[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["global_step"] == steps * epochs
    # both clocks count the whole run across the interruption, the one with validation the longer
    assert metrics["train_seconds"] > metrics["train_seconds_without_validation"] > 0
    for key in ("val_psnr", "best_val_psnr", "train_loss"):
        assert metrics[key] == pytest.approx(reference[key], abs=1e-3), key
    logged = scalars(run_dir)
    assert [s for s, _ in logged["val/psnr"]] == [steps - 1, steps * epochs - 1]
    loss_steps = [s for s, _ in logged["train/loss"]]
    assert loss_steps == list(range(steps * epochs))  # no gap, no repeat across the interruption


@pytest.mark.parametrize("extra,steps,validated", [
    (["trainer.max_steps=6", "trainer.max_epochs=-1"], 6, [4, 6]),  # stops inside the second epoch
    (["trainer.max_epochs=3", "trainer.check_val_every_n_epoch=2"], 12, [8, 12]),  # the last epoch is not due
])
def test_the_final_step_is_validated_and_last_ckpt_holds_it(images, one_thread, tmp_path, extra, steps, validated):
    run_in_process([*tiny(*images), *extra], tmp_path)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["global_step"] == steps and np.isfinite(metrics["val_psnr"])
    assert [h["step"] for h in metrics["val_history"]] == validated
    assert torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == steps


def test_resuming_a_finished_run_changes_nothing(images, one_thread, tmp_path, capsys):
    """What a requeue script does after the job ended: a no-op that says so; a longer run still trains on."""
    run_in_process(tiny(*images), tmp_path)
    before = (tmp_path / "metrics.json").read_bytes()
    last = (tmp_path / "checkpoints" / "last.ckpt").read_bytes()
    capsys.readouterr()
    value = run_in_process([*tiny(*images), "ckpt_path=last"], tmp_path)
    assert "already finished at step 8" in capsys.readouterr().out
    assert (tmp_path / "metrics.json").read_bytes() == before and np.isfinite(value)
    assert (tmp_path / "checkpoints" / "last.ckpt").read_bytes() == last
    run_in_process([*tiny(*images, epochs=3), "ckpt_path=last"], tmp_path)
    assert json.loads((tmp_path / "metrics.json").read_text())["global_step"] == 12



def test_last_ckpt_follows_every_validation_also_when_the_score_gets_worse(images, one_thread, tmp_path):
    """Lightning 2.6 rewrites last.ckpt only when a validation also saves a best checkpoint: the final weights
    of a run whose score stopped improving were lost, and ckpt_path=last resumed from the past. Here the best is
    the lowest val/psnr (mode=min) while training raises it, so only the first validation saves a best one."""
    worst_is_best = [*tiny(*images), "callbacks.checkpoint.mode=min"]
    run_dir = tmp_path / "run"
    run_in_process(worst_is_best, run_dir)
    names = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert names == ["best-4.ckpt", "last.ckpt"], names  # the premise: step 8 saved no best checkpoint
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 8
    # a run folder moved elsewhere resumes into its own last.ckpt, not a last-v1.ckpt beside it
    moved = tmp_path / "moved"
    run_dir.rename(moved)
    run_in_process([*worst_is_best, "trainer.max_epochs=3", "ckpt_path=last"], moved)
    names = sorted(p.name for p in (moved / "checkpoints").iterdir())
    assert not [n for n in names if n.startswith("last-")], names  # (Lightning forgets the best score on a move)
    assert torch.load(moved / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 12
