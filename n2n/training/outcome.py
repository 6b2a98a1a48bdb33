"""What a run leaves behind and returns: `metrics.json` (one schema, finished or not) and, when a signal, a
divergence or a search's pruner stopped it early, the exit code or the value a sweeper gets.

- a signal ends the process with exit code 128 + signal number (last.ckpt is written);
- a divergence is an error in a single run (exit code 2) and, in a multirun, a failed job: NaN for Hydra's
  basic sweeper; for Optuna a FAIL trial where `hydra.sweeper.max_failure_rate` allows, else the worst value
  for the study's direction (the sweep goes on either way);
- a trial that the pruner stopped (n2n.search.pruning) keeps its checkpoints, writes status `pruned` and
  raises TrialPruned, which n2n's sweeper tells Optuna as PRUNED.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import lightning as L

from n2n.atomic import write_text
from n2n.config import RunContext
from n2n.errors import DivergenceError, TrainingInterrupted
from n2n.search import TrialPruned
from n2n.training.callbacks import RunCallbacks


class TrialFailed(Exception):
    """Raised by a diverged job of an Optuna search that tolerates failures: Hydra records the job as failed
    and the sweeper tells Optuna the trial FAILed (a plain Exception, so the sweep itself goes on)."""


def run_metrics(trainer: L.Trainer, callbacks: RunCallbacks, status: str, seconds: float | None = None,
                message: str | None = None) -> dict[str, Any]:
    """The run's `metrics.json`: final and best metrics as plain numbers, the same keys for every status
    (`finished`, `pruned` or `diverged`)."""
    out: dict[str, Any] = {"status": status}
    scored = status in ("finished", "pruned")  # a pruned run stopped cleanly after a validation
    if scored:
        out.update({k.replace("/", "_"): float(v) for k, v in trainer.callback_metrics.items()})
    ckpt = callbacks.checkpoint
    monitor = ckpt.monitor if ckpt is not None and ckpt.monitor else "val/psnr"
    best = ckpt.best_model_score if ckpt is not None and scored else None
    best = float(best) if best is not None else out.get(str(monitor).replace("/", "_"), float("nan"))
    out["monitor"], out["best_score"] = monitor, best
    out["best_val_psnr"] = best if monitor == "val/psnr" else out.get("val_psnr", float("nan"))
    out["best_checkpoint"] = ckpt.best_model_path if ckpt is not None and scored else ""
    out["global_step"] = int(trainer.global_step)
    if callbacks.clock is not None:  # across resumes (it is in the checkpoint), still running after an error
        seconds = callbacks.clock.state_dict()["wall_seconds"] or seconds
    out["train_seconds"] = round(seconds, 2) if seconds is not None else None
    if callbacks.clock is not None:  # training alone, without validation; and the PSNR at each validation
        out["train_seconds_without_validation"] = round(callbacks.clock.seconds, 2)
        out["val_history"] = callbacks.clock.history
    if message is not None:
        out["message"] = message
    return out


def write_metrics(run_dir: Path, metrics: dict[str, Any]) -> None:
    write_text(run_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")


def stopped_early(exc: TrainingInterrupted | DivergenceError | TrialPruned, trainer: L.Trainer,
                  callbacks: RunCallbacks, context: RunContext, seconds: float) -> float:
    """What the run does when a signal, a divergence or a search's pruner stopped training (see the module
    docstring)."""
    if isinstance(exc, TrainingInterrupted):
        if trainer.is_global_zero:
            print(f"train.py: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(exc.exit_code) from None
    if isinstance(exc, TrialPruned):
        if trainer.is_global_zero:
            write_metrics(context.run_dir, run_metrics(trainer, callbacks, "pruned", seconds, str(exc)))
            print(f"train.py: {exc}; the search goes on", file=sys.stderr, flush=True)
        raise exc
    if trainer.is_global_zero:
        write_metrics(context.run_dir, run_metrics(trainer, callbacks, "diverged", seconds, str(exc)))
    if not context.multirun:
        if not trainer.is_global_zero:  # the first process reports; the others leave quietly
            raise SystemExit(2) from None
        raise exc
    if optuna_records_failures(context):
        if trainer.is_global_zero:
            print(f"train.py: error: {exc}\ntrain.py: Optuna records this trial as failed; the search goes on",
                  file=sys.stderr, flush=True)
        raise TrialFailed(str(exc)) from None
    value, meaning = diverged_job_value(context)
    if trainer.is_global_zero:
        print(f"train.py: error: {exc}\ntrain.py: this job returns {value} ({meaning}); the sweep goes on",
              file=sys.stderr, flush=True)
    return value


def value_for_sweeper(value: float, context: RunContext, why: str) -> float:
    """What a job returns: its value, except that a sweep never gets NaN (Hydra's basic sweeper cannot rank it;
    an Optuna sweeper counts it as a failed trial, and failures beyond `max_failure_rate` stop the search). A
    NaN value (`why` says where it came from) is a failed trial for an Optuna search that tolerates failures,
    else the worst value for the study's direction."""
    if not math.isnan(value) or not context.multirun or not context.optuna:
        return value
    if optuna_records_failures(context):
        print(f"train.py: {why}; Optuna records this trial as failed and the search goes on", file=sys.stderr,
              flush=True)
        raise TrialFailed(why)
    worst, meaning = diverged_job_value(context)
    print(f"train.py: {why}; this job returns {worst} ({meaning})", file=sys.stderr, flush=True)
    return worst


def optuna_records_failures(context: RunContext) -> bool:
    """True in an Optuna search whose `hydra.sweeper.max_failure_rate` lets failed trials pass (the search
    configs set 1.0): there a raised error becomes a FAIL trial instead of ending the search."""
    return context.optuna and float(context.sweeper.get("max_failure_rate", 0)) > 0


def diverged_job_value(context: RunContext) -> tuple[float, str]:
    """The value a diverged job of a multirun returns to the sweeper, and what it means.

    Hydra's basic sweeper stops after the batch if a job raised, so the job returns NaN instead. An Optuna
    sweeper (n2n's, n2n.search.sweeper, or hydra-optuna-sweeper) records a raised error or a NaN as a FAIL
    trial, and stops the search once failures exceed hydra.sweeper.max_failure_rate (default 0). Where
    failures are tolerated (> 0) `optuna_records_failures` applies instead; otherwise a diverged trial gets
    the worst possible value for the study's direction: the search goes on and its sampler learns that the
    region diverges."""
    if not context.optuna:
        return float("nan"), "Hydra's sweepers take it as a failed job's value"
    direction = context.sweeper.get("direction", "minimize")
    if not isinstance(direction, str):  # a list for multi-objective studies; train.py has one objective
        direction = direction[0] if len(direction) else "minimize"
    direction = str(direction).lower().split(".")[-1]
    if direction == "maximize":
        return float("-inf"), "Optuna keeps the trial as the worst result of this maximising study"
    return float("inf"), "Optuna keeps the trial as the worst result of this minimising study"
