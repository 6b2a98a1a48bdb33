"""Class: a refused or repeated run writes nothing anywhere, and a run folder's records always describe the run
whose results it holds. Hydra's records (.hydra/) are written by n2n once a run is accepted in its folder;
eval.py keeps one evaluation per folder as train.py keeps one run; run.lock says who owns a folder (process
id, start time, command line) and how to clear it by hand."""
from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time

import pytest
import yaml

from helpers.runs import run_entry
from n2n.errors import ConfigError
from n2n.training.run_folder import LOCK, claim, eval_results_in, process_start_time


def digest(folder) -> dict[str, str]:
    """Every file and folder under `folder`, with the bytes of each file."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


def _records(folder, overrides: list[str]) -> None:
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "config.yaml").write_text("model:\n  activation:\n    name: leaky_relu\n")
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (folder / ".hydra" / "hydra.yaml").write_text("hydra: {}\n")
    (folder / "train.log").write_text("[the earlier run's log]\n")


def finished_run(folder) -> None:
    _records(folder, ["activation=leaky_relu"])
    (folder / "metrics.json").write_text(json.dumps({"status": "finished", "global_step": 8}))
    (folder / "checkpoints").mkdir()
    (folder / "checkpoints" / "last.ckpt").write_bytes(b"weights")


def earlier_evaluation(folder) -> None:
    _records(folder, ["noise.sigma=25"])
    (folder / "metrics.json").write_text(json.dumps({"psnr_denoised": 30.0}))
    (folder / "per_image.csv").write_text("image,psnr_denoised\na.png,30\n")
    (folder / "denoised").mkdir()
    (folder / "denoised" / "a.png").write_bytes(b"png")


@pytest.fixture
def live_owner():
    """A process that holds a lock it wrote, with its start time (what run.lock records)."""
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    time.sleep(0.2)
    yield {"pid": owner.pid, "host": socket.gethostname(), "started": process_start_time(owner.pid),
           "cmdline": "python train.py activation=leaky_relu"}
    owner.kill()
    owner.wait()


@pytest.fixture
def val_images(tmp_path):
    import numpy as np

    from n2n.image_files import write_image

    folder = tmp_path / "val"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png"):
        write_image(folder / name, rng.integers(0, 256, (40, 48, 3), dtype=np.uint8))
    return folder


def _eval_args(val_images, sigma=25):
    return ["eval.py", "model=gaussian-blind", "data=folder", f"data.val_dir={val_images}", "data.train_dir=unused",
            "noise=gaussian", f"noise.sigma={sigma}", "device=cpu", "num_comparisons=1"]


REFUSED = [  # (what the folder holds, command, the line that says why)
    ("finished_run", lambda v: ["train.py", "activation=relu", "trainer.accelerator=cpu"],
     "holds another run's results"),
    ("live_run", lambda v: ["train.py", "activation=relu", "trainer.accelerator=cpu"], "is in use by another run"),
    ("earlier_evaluation", lambda v: _eval_args(v, 50), "holds another evaluation's results"),
    ("live_run", lambda v: _eval_args(v, 50), "is in use by another run"),
    ("finished_run", lambda v: _eval_args(v, 50), "holds another evaluation's results"),  # eval into a training run
]


@pytest.mark.slow  # a subprocess each (10-25 s on a busy 2-core machine)
@pytest.mark.parametrize("holds,command,why", REFUSED, ids=[f"{h}-{c(None)[0]}" for h, c, _ in REFUSED])
def test_a_refused_run_leaves_the_folder_byte_for_byte(tmp_path, val_images, live_owner, holds, command, why):
    folder = tmp_path / "run"
    if holds == "live_run":
        _records(folder, ["activation=leaky_relu"])
        (folder / LOCK).write_text(json.dumps(live_owner))
    else:
        {"finished_run": finished_run, "earlier_evaluation": earlier_evaluation}[holds](folder)
    before = digest(folder)
    result = run_entry([*command(val_images), f"hydra.run.dir={folder}"], env={"OMP_NUM_THREADS": "1"})
    assert result.returncode == 2, result.stderr[-2000:]
    assert why in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr[-2000:]
    assert digest(folder) == before


@pytest.mark.slow  # two evaluations in subprocesses
def test_eval_keeps_one_evaluation_per_folder(tmp_path, val_images):
    folder = tmp_path / "eval"
    first = run_entry([*_eval_args(val_images, 25), f"hydra.run.dir={folder}"], env={"OMP_NUM_THREADS": "1"})
    assert first.returncode == 0, first.stderr[-2000:]
    assert "noise.sigma=25" in yaml.safe_load((folder / ".hydra" / "overrides.yaml").read_text())
    assert "sigma: 25" in (folder / ".hydra" / "config.yaml").read_text()
    assert sorted(eval_results_in(folder)) == ["comparison.png", "denoised", "metrics.json", "per_image.csv"]
    again = run_entry([*_eval_args(val_images, 50), "overwrite=true", f"hydra.run.dir={folder}"],
                      env={"OMP_NUM_THREADS": "1"})
    assert again.returncode == 0, again.stderr[-2000:]
    assert "noise.sigma=50" in yaml.safe_load((folder / ".hydra" / "overrides.yaml").read_text())
    assert "removed the earlier results" in again.stdout


@pytest.mark.parametrize("entry", ["train", "eval"])
def test_hydra_writes_no_records_before_the_run_is_accepted(entry):
    """The mechanism the slow tests above check end to end: Hydra's own copy of the records is off, and its log
    file is opened only at the first message, so nothing reaches the folder before `claim`."""
    from hydra import compose, initialize_config_dir

    from helpers.runs import ROOT

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        hydra = compose(entry, return_hydra_config=True).hydra
    assert hydra.output_subdir is None
    assert hydra.job_logging.handlers.file.delay is True


# ------------------------------------------------------------------------------------------------ run.lock


def _lock(folder, **owner) -> None:
    (folder / LOCK).write_text(json.dumps({"host": socket.gethostname(), **owner}))


def test_a_lock_of_a_live_owner_is_refused_with_how_to_clear_it(tmp_path, live_owner):
    _lock(tmp_path, **{k: v for k, v in live_owner.items() if k != "host"})
    with pytest.raises(ConfigError) as err:
        with claim(tmp_path, None, False):
            pass
    message = str(err.value)
    assert f"process {live_owner['pid']}" in message and "python train.py activation=leaky_relu" in message
    assert f"delete {tmp_path / LOCK} by hand" in message and "\n" not in message


def test_a_lock_whose_pid_now_belongs_to_another_program_is_taken_over(tmp_path, live_owner):
    """The lock's process id is alive, but that process started at another time than the lock's owner."""
    _lock(tmp_path, pid=live_owner["pid"], started=live_owner["started"] - 3600, cmdline="python train.py")
    with claim(tmp_path, None, False):
        mine = json.loads((tmp_path / LOCK).read_text())
        assert mine["pid"] == os.getpid() and mine["started"] == pytest.approx(process_start_time(os.getpid()))
        assert mine["cmdline"]
    assert not (tmp_path / LOCK).exists()


def test_an_older_lock_without_a_start_time_is_honoured_and_says_how_to_clear_it(tmp_path, live_owner):
    _lock(tmp_path, pid=live_owner["pid"])  # as n2n wrote locks before: which process wrote it cannot be told
    with pytest.raises(ConfigError, match=f"process {live_owner['pid']} on .*delete {tmp_path / LOCK} by hand"):
        with claim(tmp_path, None, False):
            pass


@pytest.mark.parametrize("content", ["{\"pid\": 999999999, \"host\": \"HOST\"}", "garbage{", ""])
def test_locks_of_dead_processes_and_unreadable_locks_are_taken_over(tmp_path, content):
    (tmp_path / LOCK).write_text(content.replace("HOST", socket.gethostname()))
    with claim(tmp_path, None, False):
        assert json.loads((tmp_path / LOCK).read_text())["pid"] == os.getpid()


def test_a_lock_from_another_machine_is_trusted_and_says_how_to_clear_it(tmp_path):
    (tmp_path / LOCK).write_text(json.dumps({"pid": 12, "host": "node-that-died", "started": 1.0e9}))
    with pytest.raises(ConfigError, match=f"process 12 on node-that-died since .*delete {tmp_path / LOCK} by hand"):
        with claim(tmp_path, None, False):
            pass


def test_records_are_written_only_when_the_folder_is_claimed(tmp_path):
    records = {"config.yaml": "a: 1\n", "overrides.yaml": "- a=1\n"}
    finished_run(tmp_path)
    before = digest(tmp_path)
    with pytest.raises(ConfigError, match="holds another run's results"):
        with claim(tmp_path, None, False, records):
            pass
    assert digest(tmp_path) == before
    with claim(tmp_path, None, True, records):
        assert (tmp_path / ".hydra" / "config.yaml").read_text() == "a: 1\n"
        assert not (tmp_path / "metrics.json").exists() and not (tmp_path / "checkpoints").exists()


def test_a_refused_run_removes_only_the_folder_made_for_it(tmp_path):
    """The user's own (empty) folder stays; the one made for the refused run (by Hydra) goes."""
    mine = tmp_path / "mine"
    mine.mkdir()
    time.sleep(0.2)  # the process below starts after `mine` was made
    code = ("import sys, time; from pathlib import Path; from n2n.training.run_folder import discard_if_unused\n"
            "started = time.time()\n"
            "for folder in map(Path, sys.argv[1:]):\n"
            "    folder.mkdir(exist_ok=True)\n"
            "    try:\n"
            "        with discard_if_unused(folder, started):\n"
            "            raise ValueError('refused')\n"
            "    except ValueError:\n"
            "        pass\n")
    made = tmp_path / "made"
    result = subprocess.run([sys.executable, "-c", code, str(mine), str(made)], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(__import__("helpers.runs").runs.ROOT)})
    assert result.returncode == 0, result.stderr
    assert mine.is_dir() and not made.exists()
