"""Bad input on the command line stops with one clear message, before training, with no traceback."""
import pickle

import pytest

from helpers.files import Exploit
from helpers.runs import run_entry


def _fails_cleanly(result, *needles):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    for needle in needles:
        assert needle in result.stderr, result.stderr[-2000:]


def test_unknown_choice_lists_the_allowed_ones(tmp_path):
    result = run_entry(["train.py", "optimizer=adamax", f"hydra.run.dir={tmp_path / 'run'}"])
    _fails_cleanly(result, "Could not find 'optimizer/adamax'", "adamw")


@pytest.mark.parametrize("args,needles", [
    (["data=folder", "data.train_dir=/no/such/dir", "data.val_dir=/no/such/dir"],
     ["train.py: error: data.train_dir=/no/such/dir is not a folder"]),
    (["optimizer.lr=0"], ["train.py: error: optimizer.lr=0 is not allowed: it must be a number > 0"]),
    (["seed=abc"], ["train.py: error: seed=abc is not allowed: it must be an integer >= 0 and <= 4294967295"]),
    (["data.batch_size=1000000000000"], ["train.py: error: data.batch_size=1000000000000 with 64x64 crops "
                                         "needs at least", "GiB for the network's activations; this machine has"]),
    (["trainer.accelerator=gpu"], ["train.py: error: trainer.accelerator=gpu: no CUDA GPU is visible"]),
])
def test_bad_values_are_named_before_training(tmp_path, args, needles):
    if args == ["trainer.accelerator=gpu"] and __import__("torch").cuda.is_available():
        pytest.skip("this machine has a GPU")
    run_dir = tmp_path / "run"
    result = run_entry(["train.py", *args, f"hydra.run.dir={run_dir}"])
    _fails_cleanly(result, *needles)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert not run_dir.exists()  # stopped before any training, and no run folder holding only Hydra's records


@pytest.mark.slow  # a subprocess run of half a minute: the suite must stay well under 10 minutes
def test_a_refused_run_keeps_a_folder_that_holds_anything_else(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "notes.txt").write_text("mine")
    result = run_entry(["train.py", "optimizer.lr=0", f"hydra.run.dir={run_dir}"])
    assert result.returncode == 2
    assert [p.name for p in run_dir.iterdir()] == ["notes.txt"] and (run_dir / "notes.txt").read_text() == "mine"
    out = tmp_path / "eval"
    result = run_entry(["eval.py", f"ckpt_path={tmp_path / 'none.ckpt'}", f"hydra.run.dir={out}"])
    assert result.returncode == 2 and "none.ckpt" in result.stderr and not out.exists()


def test_eval_option_of_the_wrong_type(tmp_path):
    result = run_entry(["eval.py", "model=gaussian-blind", "tile=abc", f"hydra.run.dir={tmp_path / 'run'}"])
    _fails_cleanly(result, "eval.py: error: tile=abc is not allowed")
    assert result.returncode == 2


def test_crafted_pickle_is_refused_and_runs_nothing(tmp_path):
    target = tmp_path / "pwned.txt"
    train = tmp_path / "train_data.pkl"
    with open(train, "wb") as f:
        pickle.dump((Exploit(str(target)), Exploit(str(target))), f, protocol=2)
    result = run_entry(["train.py", "data=ee559", f"data.train_path={train}", f"data.val_path={train}",
                        f"hydra.run.dir={tmp_path / 'run'}"])
    _fails_cleanly(result, "train_data.pkl was refused")
    assert not target.exists()
