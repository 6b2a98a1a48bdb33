"""kill -9 at random moments of a run that checkpoints at every step, with the run folder on a second filesystem
(a tmpfs, as a SLURM job's /shared or scratch folder is another filesystem than /tmp): last.ckpt is always a
whole checkpoint, never a 0-byte or truncated file, and the run resumes from it."""
from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from helpers.runs import ROOT, tiny
from n2n.inference.checkpoints import read_checkpoint

SHM = Path("/dev/shm")


@pytest.fixture
def other_filesystem(tmp_path):
    if not SHM.is_dir() or os.stat(SHM).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("no tmpfs at /dev/shm on another filesystem than the temporary directory")
    folder = Path(tempfile.mkdtemp(prefix="n2n-kill-", dir=SHM))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow  # three trainings killed and resumed: about a minute
def test_kill_9_during_saves_on_another_filesystem_leaves_a_whole_checkpoint(images, other_filesystem):
    run = other_filesystem / "run"
    last = run / "checkpoints" / "last.ckpt"
    args = [sys.executable, "train.py", *tiny(*images, steps=2, epochs=200), "trainer.val_check_interval=1",
            "data.val_limit=1", "logger=none", f"hydra.run.dir={run}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    rng = random.Random(0)
    steps = []
    for attempt in range(3):
        resume = ["ckpt_path=last"] if last.exists() else []
        started = time.time()
        proc = subprocess.Popen(args + resume, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        while time.time() < started + 90 and (not last.exists() or last.stat().st_mtime < started):
            time.sleep(0.05)  # wait for this process's own saves to begin
        time.sleep(rng.uniform(0.2, 2.0))  # then a random moment: every step saves, so often mid-save
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert last.stat().st_size > 0
        steps.append(read_checkpoint(last)["global_step"])  # whole and loadable
    assert steps == sorted(steps) and steps[-1] > steps[0]  # each run resumed where the previous one died
