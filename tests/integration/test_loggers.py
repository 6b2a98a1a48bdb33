"""The logger/ group: tensorboard, csv, mlflow (a file store in the run folder) and wandb (offline, no login), each
writing its files into the run folder; MLflow and W&B are the `loggers` extra."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from helpers.runs import run_in_process
from n2n.config import RunContext
from n2n.errors import ConfigError, N2NError
from n2n.training.loggers import build_logger, run_group

#: A run of a few seconds: 3 steps of 4 crops of 32 px, one validation on one image, nothing else.
SHORT = ["experiment=quick_cpu", "data.steps_per_epoch=3", "trainer.log_every_n_steps=1",
         "trainer.enable_progress_bar=false", "print_config=false", "trainer.precision=32-true"]


@pytest.fixture
def wandb_env(monkeypatch, tmp_path):
    """W&B offline and quiet, with its own files (settings, cache, artifacts) in the test's folder."""
    for name, value in {"WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_DIR": tmp_path / "wandb_dir",
                        "WANDB_CONFIG_DIR": tmp_path / "wandb_config", "WANDB_CACHE_DIR": tmp_path / "wandb_cache",
                        "WANDB_DATA_DIR": tmp_path / "wandb_data", "WANDB_DISABLE_GIT": "true"}.items():
        monkeypatch.setenv(name, str(value))


def mlflow_metric(run_dir: Path, name: str) -> list[float]:
    """The values of metric `name` in the MLflow file store of a run folder (metrics/<name>: 'time value step')."""
    files = list((run_dir / "mlruns").glob(f"*/*/metrics/{name}"))
    assert len(files) == 1, files
    return [float(line.split()[1]) for line in files[0].read_text().splitlines()]


def test_mlflow_logger_writes_a_file_store_in_the_run_folder(tmp_path):
    pytest.importorskip("mlflow")
    logger = build_logger({"name": "mlflow", "tracking_uri": None, "experiment_name": None, "run_name": None},
                          RunContext(tmp_path / "2024-05-01" / "12-00-00"), log_dir=tmp_path)
    logger.log_metrics({"val/psnr": 20.5}, step=1)
    logger.finalize("success")
    store = tmp_path / "2024-05-01" / "12-00-00" / "mlruns"
    assert mlflow_metric(store.parent, "val/psnr") == [20.5]
    experiments = {yaml.safe_load(p.read_text())["name"] for p in store.glob("*/meta.yaml")}
    assert "2024-05-01" in experiments  # the experiment: the run folder's parent
    run = yaml.safe_load(next(store.glob("*/*/meta.yaml")).read_text())
    assert run["run_name"] == "12-00-00" and run["status"] == 3  # FINISHED


def test_wandb_logger_writes_an_offline_run_in_the_run_folder(tmp_path, wandb_env):
    pytest.importorskip("wandb")
    run_dir = tmp_path / "run"
    logger = build_logger({"name": "wandb", "project": "n2n", "group": None, "run_name": None, "offline": True},
                          RunContext(run_dir))
    logger.log_metrics({"val/psnr": 20.5}, step=1)
    logger.finalize("success")  # ends the W&B run (Lightning's leaves it open until the process exits)
    assert len(list((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))) == 1


def test_a_missing_logger_package_names_the_extra(tmp_path, monkeypatch):
    for name, options in (("mlflow", {}), ("wandb", {})):
        monkeypatch.setitem(sys.modules, name, None)  # import fails as if not installed
        with pytest.raises(N2NError) as err:
            build_logger({"name": name, **options}, RunContext(tmp_path))
        message = str(err.value)
        assert "\n" not in message and f"logger={name}" in message and "[loggers]" in message


def test_an_unknown_logger_option_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"logger=csv has no option logger.project"):
        build_logger({"name": "csv", "project": "x"}, RunContext(tmp_path))


def test_the_run_group_is_the_run_folders_parent_under_log_dir(tmp_path):
    sweep_job = tmp_path / "multirun" / "2024-05-01" / "12-00-00" / "3"
    assert run_group(sweep_job, tmp_path) == "multirun/2024-05-01/12-00-00"
    assert run_group(tmp_path / "2024-05-01" / "12-00-00", tmp_path) == "2024-05-01"
    assert run_group(tmp_path / "elsewhere" / "run", "/somewhere/else") == "elsewhere"


def test_a_run_with_mlflow_logs_its_metrics(tmp_path, one_thread):
    pytest.importorskip("mlflow")
    run_in_process([*SHORT, "logger=mlflow"], tmp_path)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert mlflow_metric(tmp_path, "val/psnr") == [pytest.approx(metrics["val_psnr"], abs=1e-4)]
    assert len(mlflow_metric(tmp_path, "train/loss")) == 3


def test_a_run_with_wandb_logs_offline(tmp_path, one_thread, wandb_env):
    pytest.importorskip("wandb")
    run_in_process([*SHORT, "logger=wandb"], tmp_path)
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and len(list(runs[0].glob("run-*.wandb"))) == 1
    assert json.loads((tmp_path / "metrics.json").read_text())["status"] == "finished"


def test_the_custom_scalars_chart_is_a_margin_chart_of_raw_values():
    # the tab smooths line charts (and no layout option turns that off); a margin chart plots values as they are
    from n2n.training.loggers import PSNR_CHART

    (kind, tags), = PSNR_CHART["validation"].values()
    assert kind == "Margin" and tags == ["val/psnr", "val/psnr_noisy", "val/psnr"]
