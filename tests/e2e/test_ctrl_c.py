"""Ctrl-C ends every command with one line and exit code 130 (128 + SIGINT), never a traceback, whenever it comes."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from helpers.runs import ROOT, tiny
from n2n.image_files import write_image


def interrupt(args: list[str], after: float, when=None) -> subprocess.CompletedProcess:
    """Run `python ARGS`, send SIGINT `after` seconds after `when()` becomes true (default: at once)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while when is not None and not when() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(after)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.fixture(scope="module")
def big_images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("big")
    rng = np.random.default_rng(0)
    for i in range(8):
        write_image(folder / f"{i}.png", rng.integers(0, 256, (1024, 1024, 3), dtype=np.uint8))
    return folder


@pytest.mark.parametrize("working", [pytest.param(False, marks=pytest.mark.slow), True])  # importing / at work
def test_n2n_denoise(big_images, tmp_path, working):
    out = tmp_path / "out"
    at_work = (lambda: any(out.glob("*.png"))) if working else None  # the first image is written: more to come
    result = interrupt(["-m", "n2n.cli", "denoise", str(big_images), "-o", str(out), "--tile", "0",
                        "--device", "cpu", "--precision", "fp32"], 0.2 if working else 1.0, at_work)
    assert result.returncode == 130, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and result.stderr.strip().splitlines()[-1].endswith("interrupted (Ctrl-C)")
    assert not list((tmp_path / "out").glob("*.partial*")) if (tmp_path / "out").exists() else True


@pytest.mark.slow  # a training subprocess; the interrupt path of training is also covered by test_resume.py
def test_train_py(images, tmp_path):
    result = interrupt(["train.py", *tiny(*images, steps=500, epochs=4), f"hydra.run.dir={tmp_path}"], 12.0)
    assert result.returncode == 130, result.stderr[-2000:]
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_eval_py(big_images, tmp_path):
    result = interrupt(["eval.py", "model=gaussian-blind", "data=folder", f"data.val_dir={big_images}",
                        "noise=gaussian", f"hydra.run.dir={tmp_path}", "device=cpu"], 9.0)
    assert result.returncode == 130, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
