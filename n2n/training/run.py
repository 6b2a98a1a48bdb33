"""One training run: builds the DataModule, LightningModule, loggers, callbacks and Trainer from the resolved
config and fits. `train(config, context)` returns the best validation PSNR, so that a Hydra sweeper can
optimise it; train.py calls it after `n2n.config` resolved the composed config once.
"""
from __future__ import annotations

import inspect
import json
import logging
import time
import warnings
from typing import Any, Mapping, Sequence

import lightning as L
from lightning.pytorch.callbacks import Callback
from omegaconf import OmegaConf

from n2n.atomic import write_text
from n2n.config import RunContext, section
from n2n.config_schema import check_machine
from n2n.config_tree import print_config_tree
from n2n.data.datamodule import N2NDataModule
from n2n.errors import ConfigError, DivergenceError, N2NError, TrainingInterrupted
from n2n.inference.checkpoints import read_checkpoint
from n2n.search.pruning import trial_callbacks
from n2n.training.callbacks import RunCallbacks, build_callbacks
from n2n.training.checkpoint_io import AtomicCheckpointIO
from n2n.training.hparams import log_hparams
from n2n.training.init_weights import load_initial_weights
from n2n.training.lightning_compat import relaunches_command_line
from n2n.training.loggers import build_logger
from n2n.training.module import N2NModule
from n2n.training.outcome import TrialPruned, run_metrics, stopped_early, value_for_sweeper, write_metrics
from n2n.training.resume import check_resume
from n2n.training.run_folder import claim


def quiet_lightning() -> None:
    """Only what a user needs on the console.

    Lightning adds its own console handler and also propagates to the root logger that Hydra set up, so every
    line would print twice: keep Hydra's (it also writes the run's log file). Its INFO lines (GPU/TPU
    available, restoring states, `max_steps` reached, tips) repeat what n2n prints itself: warnings only.
    Warnings print as one line, without the file and line of the library that raised them."""
    # a deprecation inside Lightning itself, printed once per run: nothing a user can act on
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    warnings.formatwarning = _one_line_warning
    package = logging.getLogger("lightning")
    if logging.getLogger().hasHandlers():
        for handler in list(package.handlers):
            package.removeHandler(handler)
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # early stopping says why it stopped, which nothing else does
    logging.getLogger("lightning.pytorch.callbacks.early_stopping").setLevel(logging.INFO)


def _one_line_warning(message, category, filename, lineno, line=None) -> str:  # noqa: ARG001 - warnings' API
    return f"warning: {message}\n"


def build_trainer(config: Mapping[str, Any], context: RunContext, extra_callbacks: Sequence[Callback] = (),
                  **extra: Any) -> tuple[L.Trainer, RunCallbacks]:
    """The Trainer of the `trainer` section (any lightning.Trainer argument), with the run's logger and
    callbacks (`extra_callbacks` first); `extra` overrides Trainer arguments (benchmarks)."""
    options = section(config, "trainer")
    allowed = set(inspect.signature(L.Trainer).parameters)
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ConfigError(f"trainer: unknown option(s) {unknown}; see lightning.Trainer for the allowed ones")
    options.update(extra)
    callbacks = build_callbacks(section(config, "callbacks"), section(config, "optimizer"), context,
                                progress_bar=bool(options.get("enable_progress_bar", True)))
    if options.get("fast_dev_run") and callbacks.checkpoint is not None:
        callbacks.checkpoint.save_last = False  # Lightning 2.6 writes last.ckpt at the end even with fast_dev_run
    log_dir = (config.get("paths") or {}).get("log_dir")  # groups the runs of a sweep (MLflow, W&B)
    options.setdefault("logger", build_logger(section(config, "logger"), context, log_dir))
    options.setdefault("plugins", [AtomicCheckpointIO()])  # no partial last.ckpt after kill -9 or a full disk
    # a trial of n2n's Optuna sweeper also reports each validation to its trial, which may prune it
    options["callbacks"] = [*extra_callbacks, *callbacks.all, *trial_callbacks(config, context),
                            *(options.get("callbacks") or [])]
    try:
        return L.Trainer(default_root_dir=str(context.run_dir), **options), callbacks
    except (ValueError, TypeError) as exc:  # MisconfigurationException is a ValueError
        raise ConfigError(f"trainer: {exc}") from None


def check_launch(trainer: L.Trainer, context: RunContext) -> None:
    """Lightning starts the other processes of a data-parallel run by re-running the command line; inside a
    Hydra multirun (-m) each of them would run the whole sweep."""
    if context.multirun and trainer.world_size > 1 and relaunches_command_line(trainer):
        raise N2NError(f"trainer.strategy={trainer.strategy.__class__.__name__} with {trainer.world_size} "
                       f"processes cannot run inside a multirun (-m): Lightning starts the other processes by "
                       f"re-running the command line, so each would run the whole sweep. Run the configurations "
                       f"one at a time (e.g. a shell loop over single runs), as docs/reliability.md shows")


def train(config: dict[str, Any], context: RunContext, extra_callbacks: Sequence[Callback] = ()) -> float:
    """Train one model from a resolved config (n2n.config.resolve_train_config); returns the best value of the
    checkpoint's monitor (val/psnr; val/n2n_loss or val/self_loss for data without clean validation images; NaN
    if validation never ran). `extra_callbacks` run before n2n's own (tests, notebooks)."""
    run_dir = context.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = config["ckpt_path"]
    finished = already_finished(config, context)
    if finished is not None:  # e.g. a requeued job whose run had ended: keep its results
        print(f"{run_dir} already finished at step {finished['global_step']} (metrics.json); nothing to resume, "
              f"its results are kept. To train longer, raise trainer.max_steps or trainer.max_epochs.", flush=True)
        value = float(finished.get("best_score", finished.get("best_val_psnr", float("nan"))))
        return value_for_sweeper(value, context, f"{run_dir} finished without a score (metrics.json)")
    check_machine(config)  # the accelerator asked for, memory for a batch: before the folder is touched
    with claim(run_dir, ckpt_path, config.get("overwrite", False), context.records):  # overwrite: a checked bool
        value = _fit(config, context, extra_callbacks)
    return value_for_sweeper(value, context, "the run's monitored metric is NaN (no validation score)")


def _fit(config: dict[str, Any], context: RunContext, extra_callbacks: Sequence[Callback]) -> float:
    """The run itself, in a run folder this process owns (n2n.training.run_folder)."""
    run_dir, ckpt_path = context.run_dir, config["ckpt_path"]
    quiet_lightning()
    L.seed_everything(int(config["seed"]), workers=True, verbose=False)

    # Everything that reads files or checks options happens here, before any training starts.
    datamodule = N2NDataModule(config)
    if datamodule.validation_metric != "val/psnr":
        follow_validation_loss(config, datamodule.validation_metric)
    check_monitors(config["callbacks"], logged_metrics(datamodule))
    check_validation_interval(config["trainer"], config["data"])
    module = N2NModule(config)
    if config.get("init_from") and not ckpt_path:  # fine-tuning; a resumed run has its own weights
        load_initial_weights(module.net, config["init_from"])
    # read with the weights-only unpickler and compared with this model before Lightning loads it
    resume_notes = check_resume(ckpt_path, config, module) if ckpt_path else []
    datamodule.setup("fit")
    trainer, callbacks = build_trainer(config, context, extra_callbacks)
    check_launch(trainer, context)
    if trainer.is_global_zero:  # data-parallel runs: the other processes share the run folder
        write_text(run_dir / "config.yaml", OmegaConf.to_yaml(config))
        print_config_tree(config, run_dir, show=config.get("print_config", True))
        if resume_notes:
            print(f"resuming from {ckpt_path} with options that differ from the checkpoint's: "
                  + "; ".join(resume_notes[:12]) + (" ..." if len(resume_notes) > 12 else ""), flush=True)
        elif ckpt_path:
            print(f"resuming from {ckpt_path}", flush=True)

    start = time.perf_counter()
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    except (TrainingInterrupted, DivergenceError, TrialPruned) as exc:  # last.ckpt is written / the good one is kept
        return stopped_early(exc, trainer, callbacks, context, time.perf_counter() - start)
    seconds = time.perf_counter() - start

    metrics = run_metrics(trainer, callbacks, "finished", seconds)
    if trainer.is_global_zero:
        write_metrics(run_dir, metrics)
    log_hparams(trainer, config, metrics, context.overrides)  # TensorBoard's HParams view compares the runs of a sweep
    if trainer.is_global_zero:
        if metrics.get("monitor") in ("val/n2n_loss", "val/self_loss"):
            best = f"best {metrics['monitor']} {metrics['best_score']:.6f}"
        else:
            best = (f"best val/psnr {metrics['best_val_psnr']:.3f} dB "
                    f"(noisy input {metrics.get('val_psnr_noisy', float('nan')):.3f} dB)")
        print(f"{best} after {metrics['global_step']} steps, {metrics['train_seconds']:.0f} s; run folder {run_dir}",
              flush=True)
        if config.get("note"):
            print(f"note: {config['note']}", flush=True)
    return metrics["best_score"]


def already_finished(config: Mapping[str, Any], context: RunContext) -> dict[str, Any] | None:
    """The run folder's metrics.json when the run resumed from `ckpt_path` has already finished: it reached
    the length configured now from that very checkpoint. None otherwise (nothing to resume, an interrupted or
    diverged run, a longer training asked for)."""
    ckpt_path = config.get("ckpt_path")
    metrics_file = context.run_dir / "metrics.json"
    if not ckpt_path or not metrics_file.is_file():
        return None
    try:
        metrics = json.loads(metrics_file.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(metrics, dict) or metrics.get("status") != "finished":
        return None
    ckpt = read_checkpoint(ckpt_path)
    step, epoch = int(ckpt.get("global_step", -1)), int(ckpt.get("epoch", -1))
    if step != metrics.get("global_step"):
        return None
    trainer = config["trainer"]
    max_steps, max_epochs = trainer.get("max_steps") or -1, trainer.get("max_epochs")
    done = step >= max_steps if max_steps > 0 else (max_epochs is not None and 0 < max_epochs <= epoch + 1)
    return metrics if done else None


def logged_metrics(datamodule: N2NDataModule) -> list[str]:
    """The metrics this run logs for callbacks to follow (N2NModule.training_step / validation_step)."""
    names = ["train/loss"]
    if datamodule.has_clean_validation:
        names += ["val/psnr", "val/psnr_noisy", "val/ssim"]
    if datamodule.source.copy_validation:
        names.append("val/n2n_loss")
    if datamodule.validation_metric == "val/self_loss":
        names.append("val/self_loss")  # one capture per scene: the method's own loss on held-out images
    return names


def check_monitors(callbacks: Mapping[str, Any], logged: Sequence[str]) -> None:
    """Before training: the checkpoint and early stopping follow metrics that this run logs, in a direction
    that exists; else they would fail only after the whole training, keeping neither checkpoint nor metrics."""
    for key in ("checkpoint", "early_stopping"):
        options = callbacks.get(key)
        if not isinstance(options, Mapping) or not options:
            continue
        monitor, mode = options.get("monitor"), options.get("mode", "min")
        if monitor not in logged:
            raise ConfigError(f"callbacks.{key}.monitor={monitor} is never logged by this run; it logs "
                              f"{', '.join(logged)} (val/psnr and val/ssim need clean validation images)")
        if mode not in ("min", "max"):
            raise ConfigError(f"callbacks.{key}.mode={mode} must be min or max")


def check_validation_interval(trainer: Mapping[str, Any], data: Mapping[str, Any]) -> None:
    """A validation every N steps needs N steps in an epoch, unless validation counts steps across epochs
    (check_val_every_n_epoch=null); Lightning would refuse it only once training starts."""
    interval, steps = trainer.get("val_check_interval"), data.get("steps_per_epoch")
    if (isinstance(interval, int) and not isinstance(interval, bool) and isinstance(steps, int)
            and interval > steps and trainer.get("check_val_every_n_epoch") is not None
            and trainer.get("limit_train_batches") is None):
        raise ConfigError(f"trainer.val_check_interval={interval} is more steps than an epoch has "
                          f"(data.steps_per_epoch={steps}): lower it, or add trainer.check_val_every_n_epoch=null "
                          f"to validate every {interval} steps across epochs")


#: What the validation losses are, for the message that says the checkpoints follow one.
_VALIDATION_LOSSES = {"val/n2n_loss": "the loss against an independent noisy copy",
                      "val/self_loss": "the method's own loss on the held-out noisy images"}


def follow_validation_loss(config: dict[str, Any], metric: str) -> None:
    """Validation data without clean images has no val/psnr: the checkpoint and early stopping that followed it
    follow `metric` (val/n2n_loss or val/self_loss, lower is better) instead, in place, so that config.yaml
    records it."""
    changed = []
    for key in ("checkpoint", "early_stopping"):
        options = config["callbacks"].get(key)
        if isinstance(options, dict) and options.get("monitor") == "val/psnr":
            options.update(monitor=metric, mode="min")
            changed.append(f"callbacks.{key}")
    if changed:
        verb = "follow" if len(changed) > 1 else "follows"
        print(f"no clean validation images: {' and '.join(changed)} {verb} {metric} ({_VALIDATION_LOSSES[metric]}, "
              f"lower is better) instead of val/psnr", flush=True)
