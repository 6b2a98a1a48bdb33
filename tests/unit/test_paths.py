"""The paths/ group (where n2n reads and writes) and the git-ignored local/ group of personal overrides."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from helpers.runs import ROOT, compose_train, resolved
from n2n.config import run_context
from n2n.errors import ConfigError


def hydra_dirs(overrides: list[str]) -> tuple[Path, Path]:
    hydra = compose_train(overrides, return_hydra_config=True).hydra
    return Path(hydra.run.dir), Path(hydra.sweep.dir)


def test_runs_and_sweeps_still_go_to_outputs():
    run, sweep = hydra_dirs([])
    assert run.parent.parent.resolve() == (Path.cwd() / "outputs").resolve()
    assert sweep.parent.parent.resolve() == (Path.cwd() / "outputs" / "multirun").resolve()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        evaluation = Path(compose("eval", return_hydra_config=True).hydra.run.dir)
    assert evaluation.parent.parent.resolve() == (Path.cwd() / "outputs" / "eval").resolve()


def test_log_dir_moves_runs_and_sweeps(tmp_path):
    run, sweep = hydra_dirs([f"paths.log_dir={tmp_path}"])
    assert run.parent.parent == tmp_path and sweep.parent.parent == tmp_path / "multirun"
    run, _ = hydra_dirs([f"paths.root_dir={tmp_path}"])
    assert run.parent.parent == tmp_path / "outputs"


def test_output_dir_is_the_run_folder_and_data_dir_can_be_used_in_options(tmp_path):
    config = resolved(["data=folder", "data.train_dir=${paths.data_dir}/train", "data.val_dir=val"], tmp_path)
    assert config["paths"]["output_dir"] == str(tmp_path)
    assert Path(config["data"]["train_dir"]) == Path("data/train")


def test_output_dir_names_only_the_run_folder(tmp_path):
    with pytest.raises(ConfigError, match=r"paths.output_dir=.* is not this run's folder.*hydra.run.dir"):
        resolved([f"paths.output_dir={tmp_path / 'elsewhere'}"], tmp_path / "run")
    assert resolved([f"paths.output_dir={tmp_path / 'run'}"], tmp_path / "run")["paths"]["output_dir"] == str(
        tmp_path / "run")
    # without Hydra (a notebook), paths.output_dir chooses the run folder
    assert run_context(compose_train([f"paths.output_dir={tmp_path}"])).run_dir == tmp_path


@pytest.fixture
def conf_copy(tmp_path) -> Path:
    conf = tmp_path / "conf"
    shutil.copytree(ROOT / "conf", conf)
    for personal in (conf / "local").glob("*.yaml"):  # this machine's own settings stay out of the test
        personal.unlink()
    return conf


def test_local_default_overrides_any_option_and_group(conf_copy):
    (conf_copy / "local" / "default.yaml").write_text(
        "# @package _global_\ndefaults:\n  - override /logger: csv\npaths:\n  log_dir: /scratch/me\n"
        "trainer:\n  max_epochs: 3\n")
    (conf_copy / "local" / "laptop.yaml").write_text("# @package _global_\ntrainer:\n  max_epochs: 1\n")
    with initialize_config_dir(config_dir=str(conf_copy), version_base="1.3"):
        cfg = compose("train", return_hydra_config=True)
        given = compose("train", overrides=["trainer.max_epochs=4"])
        laptop = compose("train", overrides=["local=laptop"])
    assert cfg.logger.name == "csv" and cfg.paths.log_dir == "/scratch/me" and cfg.trainer.max_epochs == 3
    assert cfg.hydra.run.dir.startswith("/scratch/me/")
    assert given.trainer.max_epochs == 4  # the command line still wins
    assert laptop.trainer.max_epochs == 1 and laptop.logger.name == "tensorboard"


def test_without_a_local_config_nothing_changes(conf_copy):
    with initialize_config_dir(config_dir=str(conf_copy), version_base="1.3"):
        cfg = compose("train")
    assert cfg.logger.name == "tensorboard" and cfg.trainer.max_epochs == 6


def test_local_configs_are_git_ignored():
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    ignored = subprocess.run(["git", "check-ignore", "-q", "conf/local/default.yaml"], cwd=ROOT, check=False)
    kept = subprocess.run(["git", "check-ignore", "-q", "conf/local/README.md"], cwd=ROOT, check=False)
    assert ignored.returncode == 0 and kept.returncode == 1
