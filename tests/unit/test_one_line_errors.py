"""Class: values that Lightning, the file system or the terminal would refuse with a traceback are refused in
one line naming the thing and what to do, exit code 2, before anything is written: trainer.* values Lightning
rejects, output folders that cannot be created, file names that are not valid UTF-8."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from helpers.runs import ROOT, run_in_process, tiny
from n2n.config_schema import TRAIN_OPTIONS, check_options
from n2n.errors import ConfigError, exit_on_error
from n2n.output_folder import check_creatable
from n2n.training.run import check_validation_interval

LIGHTNING_REJECTS = [  # (option, value, what the line says it must be)
    ("max_time", "abc", "a duration DD:HH:MM:SS"),
    ("max_time", "12:00", "a duration DD:HH:MM:SS"),
    ("limit_val_batches", 2.5, "a number of batches (an integer >= 0) or a fraction"),
    ("limit_train_batches", 0, "an integer >= 1"),
    ("limit_test_batches", -1, "a number of batches"),
    ("val_check_interval", 1.5, "or a fraction of them (a number > 0 and <= 1)"),
    ("val_check_interval", 0, "an integer >= 1"),
    ("overfit_batches", 3.5, "a number of batches"),
    ("profiler", "xla", "simple | advanced | pytorch"),
    ("strategy", "ddp_spawn", "auto | ddp | ddp_find_unused_parameters_true"),
]
ACCEPTED = [("max_time", "00:12:00:00"), ("limit_val_batches", 2), ("limit_val_batches", 0.5),
            ("val_check_interval", 100), ("val_check_interval", 0.25), ("overfit_batches", 1), ("profiler", "simple")]


@pytest.mark.parametrize("key,value,says", LIGHTNING_REJECTS)
def test_trainer_values_lightning_rejects_are_refused_first(key, value, says):
    with pytest.raises(ConfigError) as err:
        check_options({"trainer": {key: value}}, TRAIN_OPTIONS)
    assert f"trainer.{key}=" in str(err.value) and says in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("key,value", ACCEPTED)
def test_trainer_values_lightning_takes_pass(key, value):
    check_options({"trainer": {key: value}}, TRAIN_OPTIONS)


@pytest.mark.parametrize("trainer,steps,refused", [
    ({"val_check_interval": 1000, "check_val_every_n_epoch": 1}, 500, True),
    ({"val_check_interval": 500, "check_val_every_n_epoch": 1}, 500, False),
    ({"val_check_interval": 1000, "check_val_every_n_epoch": None}, 500, False),  # counted across epochs
    ({"val_check_interval": 0.5, "check_val_every_n_epoch": 1}, 500, False),
    ({"val_check_interval": 1000, "check_val_every_n_epoch": 1, "limit_train_batches": 0.5}, 500, False),
])
def test_a_validation_interval_beyond_an_epoch_is_refused(trainer, steps, refused):
    if refused:
        with pytest.raises(ConfigError, match="val_check_interval=1000 is more steps than an epoch has .*"
                                              "check_val_every_n_epoch=null"):
            check_validation_interval(trainer, {"steps_per_epoch": steps})
    else:
        check_validation_interval(trainer, {"steps_per_epoch": steps})


def test_a_validation_interval_beyond_an_epoch_stops_before_training(images, one_thread, tmp_path):
    with pytest.raises(ConfigError, match="trainer.val_check_interval=9 is more steps than an epoch"):
        run_in_process([*tiny(*images), "trainer.val_check_interval=9"], tmp_path)
    assert not (tmp_path / "checkpoints").exists()


def _a_file_in_the_way(tmp_path):
    (tmp_path / "file").write_text("x")
    return tmp_path / "file" / "run"


def test_a_folder_that_cannot_be_created_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        check_creatable(_a_file_in_the_way(tmp_path), "hydra.run.dir")
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "hydra.run.dir=" in err and "cannot create this folder: Not a directory" in err and "\n" not in err
    check_creatable(tmp_path / "a" / "b" / "c", "hydra.run.dir")
    assert not (tmp_path / "a").exists()  # made to check, and removed: Hydra makes it itself


@pytest.mark.parametrize("command", [
    ["train.py"], ["eval.py", "model=gaussian-blind"], ["train.py", "-m", "seed=1,2"],
])
def test_entry_points_refuse_an_output_folder_they_cannot_create(tmp_path, command):
    blocked = _a_file_in_the_way(tmp_path)
    option = "hydra.sweep.dir" if "-m" in command else "hydra.run.dir"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, *command, f"{option}={blocked}"], cwd=ROOT, capture_output=True,
                            text=True, timeout=300, env=env)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip() == (f"{command[0]}: error: {option}={blocked}: cannot create this folder: "
                                     f"Not a directory; choose another")


def test_n2n_denoise_names_an_output_folder_it_cannot_create(tmp_path, capsys):
    from n2n.cli import main
    from n2n.image_files import write_image

    write_image(tmp_path / "a.png", np.zeros((40, 40, 3), np.uint8))
    blocked = _a_file_in_the_way(tmp_path)
    assert main(["denoise", str(tmp_path / "a.png"), "-o", str(blocked)]) == 2
    assert capsys.readouterr().err.strip() == f"n2n denoise: error: {blocked}: Not a directory"


def test_os_errors_naming_a_file_are_one_line(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_:
        with exit_on_error("eval.py"):
            open(tmp_path / "missing" / "x.csv", "w")
    assert exit_.value.code == 2
    missing = tmp_path / "missing" / "x.csv"
    assert capsys.readouterr().err.strip() == f"eval.py: error: {missing}: No such file or directory"


def test_evaluation_of_files_whose_names_are_not_utf8(tmp_path, hydra_eval):
    """The per-image table, the comparison captions and the printed summary show such a name with backslash
    escapes; the denoised image keeps the file's own name (bytes)."""
    from n2n.config import RunContext
    from n2n.image_files import write_image
    from n2n.inference.evaluate import evaluate

    val = tmp_path / "val"
    val.mkdir()
    rng = np.random.default_rng(0)
    write_image(val / "plain.png", rng.integers(0, 256, (40, 48, 3), dtype=np.uint8))
    write_image(val / "x.png", rng.integers(0, 256, (40, 48, 3), dtype=np.uint8))
    os.rename(bytes(val / "x.png"), bytes(val) + b"/caf\xe9.png")  # Latin-1 bytes: not UTF-8
    cfg = hydra_eval(["model=gaussian-blind", "data=folder", f"data.val_dir={val}", "data.train_dir=unused",
                      "noise=gaussian", "noise.sigma=25", "device=cpu", "num_comparisons=2"])
    metrics = evaluate(cfg, RunContext(tmp_path / "out"))
    assert metrics["num_images"] == 2
    table = (tmp_path / "out" / "per_image.csv").read_text(encoding="utf-8")
    assert "caf\\xe9.png" in table
    assert os.path.exists(bytes(tmp_path / "out" / "denoised") + b"/caf\xe9.png")


@pytest.fixture
def hydra_eval():
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        yield lambda overrides: compose("eval", overrides=overrides)
