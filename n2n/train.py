"""Training: builds the DataModule, LightningModule, loggers, callbacks and Trainer from the Hydra config.

`run(cfg)` returns the best validation PSNR, so that a Hydra sweeper can optimise it.
"""
from __future__ import annotations

import inspect
import json
import logging
import warnings
import time
from pathlib import Path
from typing import Any, Mapping

import lightning as L
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint, ProgressBar, TQDMProgressBar
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from omegaconf import DictConfig, OmegaConf

from n2n.data.datamodule import N2NDataModule
from n2n.errors import ConfigError
from n2n.hparams import log_hparams
from n2n.module import N2NModule, resolve_auto_speed
from n2n.reliability import (DivergenceError, DivergenceGuard, InterruptCheckpoint, ResumeOptimizerOptions,
                             TrainingInterrupted, check_launch, check_resume, resolve_ckpt_path, stopped_early)
from n2n.training_clock import TrainingClock

LOGGERS = ("tensorboard", "csv", "none")


def run_dir_of(cfg: DictConfig) -> Path:
    """The Hydra run folder (or `output_dir` when called without Hydra, e.g. from a notebook)."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        return Path(HydraConfig.get().runtime.output_dir)
    return Path(cfg.get("output_dir") or "outputs/manual")


class LearningRateLogger(Callback):
    """Logs `train/lr` straight to the loggers every `log_every_n_steps`; reading a Python float costs
    nothing, unlike `self.log`, which would copy a tensor to the device every step."""

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        step = trainer.global_step
        if step % max(1, trainer.log_every_n_steps) == 0 and trainer.optimizers:
            lr = trainer.optimizers[0].param_groups[0]["lr"]
            for logger in trainer.loggers:
                logger.log_metrics({"train/lr": lr}, step=step)


class LossProgressBar(TQDMProgressBar):
    """Lightning's progress bar, showing the training loss that the module reads back once per logging step
    (see N2NModule.progress_bar_loss) instead of a `prog_bar=True` metric that Lightning reads every step."""

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        metrics = super().get_metrics(trainer, pl_module)
        loss = pl_module.progress_bar_loss() if hasattr(pl_module, "progress_bar_loss") else None
        if loss is not None:
            metrics["train/loss"] = loss
        return metrics


def quiet_lightning() -> None:
    """Lightning adds its own console handler and also propagates to the root logger that Hydra set up,
    so every line would print twice: keep Hydra's (it also writes the run's log file). Drop its
    advertising tips."""
    # a deprecation inside Lightning itself, printed once per run: nothing a user can act on
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    package = logging.getLogger("lightning")
    if logging.getLogger().hasHandlers():
        for handler in list(package.handlers):
            package.removeHandler(handler)
    for name in ("lightning.pytorch", "lightning.pytorch.utilities.rank_zero"):
        log = logging.getLogger(name)
        if not any(isinstance(f, _DropTips) for f in log.filters):
            log.addFilter(_DropTips())


class _DropTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "Tip:" not in str(record.msg)


def build_logger(cfg: Mapping[str, Any], run_dir: Path):
    name = (cfg or {}).get("name", "tensorboard")
    if name not in LOGGERS:
        raise ConfigError(f"logger.name={name!r} is not known; choose one of: {', '.join(LOGGERS)}")
    if name == "tensorboard":
        return TensorBoardLogger(save_dir=str(run_dir), name="tensorboard", version="", default_hp_metric=False)
    if name == "csv":
        return CSVLogger(save_dir=str(run_dir), name="csv", version="")
    return False


def build_callbacks(cfg: Mapping[str, Any], run_dir: Path) -> list[Callback]:
    cfg = dict(cfg or {})
    known = {"checkpoint", "early_stopping", "lr_monitor", "divergence_guard", "interrupt_checkpoint",
             "progress_bar_refresh_rate"}
    unknown = sorted(set(cfg) - known)
    if unknown:
        raise ConfigError(f"callbacks: unknown option(s) {unknown}; allowed: {sorted(known)}")
    callbacks: list[Callback] = []
    ckpt = dict(cfg.get("checkpoint") or {})
    if ckpt:
        ckpt.setdefault("filename", "best-{step}")
        ckpt.setdefault("auto_insert_metric_name", False)
        callbacks.append(_make(ModelCheckpoint, ckpt, "callbacks.checkpoint", dirpath=str(run_dir / "checkpoints")))
    if cfg.get("early_stopping"):
        callbacks.append(_make(EarlyStopping, dict(cfg["early_stopping"]), "callbacks.early_stopping"))
    if cfg.get("lr_monitor", True):
        callbacks.append(LearningRateLogger())
    # reliability (n2n/reliability.py); the guard comes first: the interrupt checkpoint asks it before saving
    guard = cfg.get("divergence_guard", True)
    if guard is not False and guard is not None:
        if guard is not True and (isinstance(guard, bool) or not isinstance(guard, int) or guard < 1):
            raise ConfigError(f"callbacks.divergence_guard={guard!r} must be true, false or a number of steps "
                              f"between checks (true: every trainer.log_every_n_steps)")
        callbacks.append(DivergenceGuard(None if guard is True else guard))
    if cfg.get("interrupt_checkpoint", True):
        callbacks.append(InterruptCheckpoint(run_dir / "checkpoints"))
    callbacks.append(ResumeOptimizerOptions())
    callbacks.append(TrainingClock())
    return callbacks


def _make(cls, options: dict[str, Any], option: str, **fixed):
    try:
        return cls(**options, **fixed)
    except TypeError as exc:
        allowed = sorted(p for p in inspect.signature(cls).parameters if p not in fixed)
        raise ConfigError(f"{option}: {exc}; allowed options: {', '.join(allowed)}") from None


def build_trainer(config: Mapping[str, Any], run_dir: Path, **extra: Any) -> L.Trainer:
    options = dict(resolve_auto_speed({"trainer": dict(config.get("trainer") or {})})["trainer"])
    allowed = set(inspect.signature(L.Trainer).parameters)
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ConfigError(f"trainer: unknown option(s) {unknown}; see lightning.Trainer for the allowed ones")
    options.setdefault("logger", build_logger(config.get("logger"), run_dir))
    options.setdefault("callbacks", build_callbacks(config.get("callbacks"), run_dir))
    options.update(extra)
    callbacks = list(options["callbacks"] or [])
    if options.get("enable_progress_bar", True) and not any(isinstance(c, ProgressBar) for c in callbacks):
        rate = (config.get("callbacks") or {}).get("progress_bar_refresh_rate", 10)
        if isinstance(rate, bool) or not isinstance(rate, int) or rate < 1:
            raise ConfigError(f"callbacks.progress_bar_refresh_rate={rate!r} must be an integer >= 1 (steps "
                              f"between redraws of the progress bar)")
        # Lightning's default redraws after every step, which at batch 8 on a GPU costs more CPU time
        # than the step itself
        options["callbacks"] = [*callbacks, LossProgressBar(refresh_rate=rate)]
    try:
        return L.Trainer(default_root_dir=str(run_dir), **options)
    except (ValueError, TypeError) as exc:  # MisconfigurationException is a ValueError
        raise ConfigError(f"trainer: {exc}") from None


def run(cfg: DictConfig) -> float:
    """Train one model; returns the best val/psnr (NaN if validation never ran)."""
    config = resolve_auto_speed(OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True))
    run_dir = run_dir_of(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    # `ckpt_path=last` is this run folder's checkpoints/last.ckpt (with hydra.run.dir=RUN: resume RUN in place)
    config["ckpt_path"] = ckpt_path = resolve_ckpt_path(config.get("ckpt_path"), run_dir)
    quiet_lightning()
    L.seed_everything(int(config.get("seed", 0)), workers=True, verbose=False)

    # Everything that reads files or checks options happens here, before any training starts.
    datamodule = N2NDataModule(config)
    module = N2NModule(config)
    # read with the weights-only unpickler and compared with this model before Lightning loads it
    resume_notes = check_resume(ckpt_path, config, module) if ckpt_path else []
    datamodule.setup("fit")
    trainer = build_trainer(config, run_dir)
    check_launch(trainer)
    if trainer.is_global_zero:  # data-parallel runs: the other processes share the run folder
        (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(config))
        if resume_notes:
            print(f"resuming from {ckpt_path} with options that differ from the checkpoint's: "
                  + "; ".join(resume_notes[:12]) + (" ..." if len(resume_notes) > 12 else ""), flush=True)

    start = time.perf_counter()
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    except (TrainingInterrupted, DivergenceError) as exc:  # last.ckpt is written / the good one is kept
        return stopped_early(exc, trainer, run_dir)
    seconds = time.perf_counter() - start

    metrics = summarize(trainer, seconds)
    if trainer.is_global_zero:
        (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    log_hparams(trainer, config, metrics)  # TensorBoard's HParams view compares the runs of a sweep
    if trainer.is_global_zero:
        print(f"best val/psnr {metrics['best_val_psnr']:.3f} dB (noisy input {metrics.get('val_psnr_noisy', float('nan')):.3f} dB)"
              f" after {metrics['global_step']} steps, {seconds:.0f} s; run folder {run_dir}", flush=True)
    return metrics["best_val_psnr"]


def summarize(trainer: L.Trainer, seconds: float) -> dict[str, Any]:
    """Final and best metrics as plain numbers."""
    out: dict[str, Any] = {k.replace("/", "_"): float(v) for k, v in trainer.callback_metrics.items()}
    best = trainer.checkpoint_callback.best_model_score if trainer.checkpoint_callback else None
    out["best_val_psnr"] = float(best) if best is not None else out.get("val_psnr", float("nan"))
    out["best_checkpoint"] = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    out["global_step"] = int(trainer.global_step)
    out["train_seconds"] = round(seconds, 2)
    clock = next((c for c in trainer.callbacks if isinstance(c, TrainingClock)), None)
    if clock is not None:  # training alone, without validation; and the PSNR at each validation
        out["train_seconds_without_validation"] = round(clock.seconds, 2)
        out["val_history"] = clock.history
    return out
