"""The run's logger, from the `logger` section (conf/logger/): where the curves go.

Every logger writes under the run folder unless told otherwise, so a run folder holds all of a run:
TensorBoard event files (in the folder itself: TensorBoard names the run after it), `csv/metrics.csv`,
`mlruns/` (an MLflow file store: `mlflow ui --backend-store-uri file:RUN/mlruns`) or `wandb/` (a Weights & Biases run,
offline unless `logger.offline=false`: `wandb sync RUN/wandb/offline-run-*` uploads it). MLflow and W&B are the
`loggers` extra (n2n.extras).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Mapping

from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger, WandbLogger

from n2n.config import RunContext
from n2n.errors import ConfigError
from n2n.extras import require_extra

#: Each logger's options besides `name` (conf/logger/NAME.yaml), to refuse a misspelt one.
OPTIONS: dict[str, tuple[str, ...]] = {
    "tensorboard": (), "csv": (), "none": (),
    "mlflow": ("tracking_uri", "experiment_name", "run_name"),
    "wandb": ("project", "group", "run_name", "offline"),
}
LOGGERS = tuple(OPTIONS)


def build_logger(cfg: Mapping[str, Any], context: RunContext, log_dir: str | Path | None = None) -> Logger | bool:
    """From the `logger` section; False for `none` (Lightning's "no logger"). `log_dir` (paths.log_dir) names
    the run's group for MLflow and W&B."""
    name = cfg.get("name")
    if name not in OPTIONS:
        raise ConfigError(f"logger.name={name!r} is not known; choose one of: {', '.join(LOGGERS)}")
    unknown = sorted(set(cfg) - {"name", *OPTIONS[name]})
    if unknown:
        allowed = ", ".join(f"logger.{k}" for k in OPTIONS[name]) or "none"
        raise ConfigError(f"logger={name} has no option {', '.join(f'logger.{k}' for k in unknown)} "
                          f"(its options: {allowed})")
    run_dir = context.run_dir
    if name == "tensorboard":
        return RunFolderTensorBoard(run_dir)
    if name == "csv":
        return CSVLogger(save_dir=str(run_dir), name="csv", version="")
    if name == "mlflow":
        return mlflow_logger(cfg, run_dir, run_group(run_dir, log_dir))
    if name == "wandb":
        return wandb_logger(cfg, run_dir, run_group(run_dir, log_dir))
    return False


#: TensorBoard's Custom Scalars tab: the denoised images' PSNR, shaded down to the noisy input's (the gain at a
#: glance). A margin chart because it plots the values as they are: the tab smooths its line charts (0.6 by
#: default, a lag of several points over a run's six validations) and clips their last, highest values.
PSNR_CHART = {"validation": {"PSNR (dB): denoised, shaded down to the noisy input": [
    "Margin", ["val/psnr", "val/psnr_noisy", "val/psnr"]]}}  # value, lower edge, upper edge

#: What Lightning logs with every metric but TensorBoard need not chart: `epoch` is a staircase over the step
#: axis that sorts first in the Time Series tab, where only the first two groups of charts open.
NOT_CHARTED = ("epoch",)


class RunFolderTensorBoard(TensorBoardLogger):
    """TensorBoard event files in the run folder itself, so that `tensorboard --logdir outputs` names each run
    after its folder (2024-05-01/12-00-00, multirun/2024-05-01/12-00-00/3), with the PSNR chart of
    `PSNR_CHART` and without the `NOT_CHARTED` metrics. No hparams.yaml: config.yaml beside it holds the whole
    config."""

    def __init__(self, run_dir: Path) -> None:
        run_dir = Path(run_dir)
        super().__init__(save_dir=str(run_dir.parent), name=run_dir.name, version="", default_hp_metric=False)

    @property
    def experiment(self):
        fresh = self._experiment is None
        experiment = super().experiment
        if fresh and self._experiment is not None:  # process 0 only: the others get a dummy
            experiment.add_custom_scalars(PSNR_CHART)
        return experiment

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        charted = {k: v for k, v in metrics.items() if k not in NOT_CHARTED}
        if charted:
            super().log_metrics(charted, step)

    def save(self) -> None:
        if self._experiment is not None:
            self._experiment.flush()


def run_group(run_dir: Path, log_dir: str | Path | None = None) -> str:
    """What groups this run with others (MLflow's experiment, W&B's group): the run folder's parent, relative to
    paths.log_dir where it is inside it: the date of a single run (2024-05-01), the sweep of a multirun
    (multirun/2024-05-01/12-00-00)."""
    parent = run_dir.resolve().parent
    if log_dir:
        try:
            relative = parent.relative_to(Path(log_dir).resolve())
            if str(relative) not in ("", "."):
                return relative.as_posix()
        except ValueError:
            pass
    return parent.name or "n2n"


def mlflow_logger(cfg: Mapping[str, Any], run_dir: Path, group: str) -> Logger:
    """MLflow, into a file store in the run folder unless `logger.tracking_uri` names another store or a server.
    MLflow 3 keeps its file store in maintenance mode behind MLFLOW_ALLOW_FILE_STORE: n2n sets it for a file:
    store (unless it is set already), which needs no database package."""
    require_extra("mlflow", for_what="logger=mlflow")
    from lightning.pytorch.loggers import MLFlowLogger

    uri = cfg.get("tracking_uri") or (run_dir.resolve() / "mlruns").as_uri()
    if uri.startswith("file:"):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    # a new store in every run folder: "Experiment with name ... not found. Creating it." each time
    mlflow_log = logging.getLogger("lightning.pytorch.loggers.mlflow")
    if not any(isinstance(f, _DropExperimentCreated) for f in mlflow_log.filters):
        mlflow_log.addFilter(_DropExperimentCreated())
    return MLFlowLogger(experiment_name=cfg.get("experiment_name") or group,
                        run_name=cfg.get("run_name") or run_dir.name, tracking_uri=uri)


class _DropExperimentCreated(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "not found. Creating it" not in str(record.msg)


def wandb_logger(cfg: Mapping[str, Any], run_dir: Path, group: str) -> Logger:
    """Weights & Biases into `<run folder>/wandb/`, offline by default: no account or login needed."""
    require_extra("wandb", for_what="logger=wandb")
    return FinishingWandbLogger(save_dir=str(run_dir), offline=bool(cfg.get("offline", True)),
                                project=cfg.get("project") or "n2n", group=cfg.get("group") or group,
                                name=cfg.get("run_name") or run_dir.name)


class FinishingWandbLogger(WandbLogger):
    """Ends its W&B run when the fit ends (Lightning leaves it open until the process exits), so that the next
    job of a sweep in the same process starts a run of its own instead of logging into this one."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        init = getattr(self, "_wandb_init", None)
        if isinstance(init, dict) and init.get("anonymous") is None:
            init.pop("anonymous", None)  # W&B warns that the setting is deprecated whenever Lightning passes it

    def finalize(self, status: str) -> None:
        super().finalize(status)
        if self._experiment is not None and hasattr(self._experiment, "finish"):
            self._experiment.finish(exit_code=0 if status in ("success", "finished") else 1)
