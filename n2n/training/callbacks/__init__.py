"""The run's callbacks, one concern each, built from the `callbacks` config section.

Each callback receives what it needs through its constructor (the run's folders, the optimiser section,
the callbacks it works with); none looks for another in `trainer.callbacks` or reads the module's config.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Mapping

from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint

from n2n.config import RunContext, require
from n2n.errors import ConfigError
from n2n.training.callbacks.checkpoint import RunCheckpoint
from n2n.training.callbacks.clock import TrainingClock
from n2n.training.callbacks.divergence import DivergenceGuard
from n2n.training.callbacks.ema import EMA
from n2n.training.callbacks.final_validation import ValidateFinalStep
from n2n.training.callbacks.interrupt import InterruptCheckpoint
from n2n.training.callbacks.lr_logger import LearningRateLogger
from n2n.training.callbacks.progress import LossProgressBar
from n2n.training.callbacks.resume_options import ResumeOptimizerOptions

KNOWN = ("checkpoint", "early_stopping", "lr_monitor", "divergence_guard", "interrupt_checkpoint",
         "progress_bar_refresh_rate", "ema")

__all__ = ["RunCallbacks", "build_callbacks", "DivergenceGuard", "InterruptCheckpoint", "LearningRateLogger",
           "LossProgressBar", "ResumeOptimizerOptions", "TrainingClock", "ValidateFinalStep"]


@dataclass
class RunCallbacks:
    """The callbacks of one run; the ones the run reads afterwards are named."""

    all: list[Callback] = field(default_factory=list)
    clock: TrainingClock | None = None
    checkpoint: ModelCheckpoint | None = None


def build_callbacks(cfg: Mapping[str, Any], optimizer_cfg: Mapping[str, Any], context: RunContext,
                    progress_bar: bool = True) -> RunCallbacks:
    """From the `callbacks` section; `optimizer_cfg` is the run's `optimizer` section."""
    cfg = dict(cfg)
    unknown = sorted(set(cfg) - set(KNOWN))
    if unknown:
        raise ConfigError(f"callbacks: unknown option(s) {unknown}; allowed: {sorted(KNOWN)}")
    out = RunCallbacks()
    if cfg.get("ema") is not None:  # first: a checkpoint saved at the end of a step holds that step's average
        out.all.append(EMA(cfg["ema"]))
    ckpt = dict(cfg.get("checkpoint") or {})
    if ckpt:
        ckpt.setdefault("filename", "best-{step}")
        ckpt.setdefault("auto_insert_metric_name", False)
        ckpt.setdefault("enable_version_counter", False)  # one run per folder: last.ckpt is this run's
        out.checkpoint = _make(RunCheckpoint, ckpt, "callbacks.checkpoint", dirpath=str(context.checkpoint_dir))
        out.all.append(out.checkpoint)
    if cfg.get("early_stopping"):
        out.all.append(_make(EarlyStopping, dict(cfg["early_stopping"]), "callbacks.early_stopping"))
    if require(cfg, "lr_monitor", "callbacks"):
        out.all.append(LearningRateLogger())
    # the guard comes first: the interrupt checkpoint asks it before saving
    guard_option = require(cfg, "divergence_guard", "callbacks")
    guard = None
    if guard_option is not False and guard_option is not None:
        if guard_option is not True and (isinstance(guard_option, bool) or not isinstance(guard_option, int)
                                         or guard_option < 1):
            raise ConfigError(f"callbacks.divergence_guard={guard_option!r} must be true, false or a number of "
                              f"steps between checks (true: every trainer.log_every_n_steps)")
        guard = DivergenceGuard(context.checkpoint_dir, context.resume_command,
                                None if guard_option is True else guard_option)
        out.all.append(guard)
    if require(cfg, "interrupt_checkpoint", "callbacks"):
        out.all.append(InterruptCheckpoint(context.checkpoint_dir, context.resume_command, guard, out.checkpoint))
    out.all.append(ResumeOptimizerOptions(optimizer_cfg))
    out.all.append(ValidateFinalStep())
    out.clock = TrainingClock()
    out.all.append(out.clock)
    if progress_bar:
        rate = require(cfg, "progress_bar_refresh_rate", "callbacks")
        if isinstance(rate, bool) or not isinstance(rate, int) or rate < 1:
            raise ConfigError(f"callbacks.progress_bar_refresh_rate={rate!r} must be an integer >= 1 (steps "
                              f"between redraws of the progress bar)")
        out.all.append(LossProgressBar(refresh_rate=rate))
    return out


def _make(cls, options: dict[str, Any], option: str, **fixed):
    try:
        return cls(**options, **fixed)
    except TypeError as exc:
        allowed = sorted(p for p in inspect.signature(cls).parameters if p not in fixed)
        raise ConfigError(f"{option}: {exc}; allowed options: {', '.join(allowed)}") from None
