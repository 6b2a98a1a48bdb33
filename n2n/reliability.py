"""Training that loses no work: resume after an interruption, a guard against diverging runs, safe resumes.

- `InterruptCheckpoint`: while training runs, SIGINT (Ctrl-C) and SIGTERM (`kill`, SLURM's `scancel` or
  pre-emption, a cloud spot instance going away) no longer kill the run mid-step. The current step finishes,
  `checkpoints/last.ckpt` is written with everything needed to go on (weights, optimiser, schedule, the
  DataModule's random generator, loop counters, best-checkpoint bookkeeping) and the run stops with exit code
  128 + signal number. `python train.py ckpt_path=last hydra.run.dir=RUN_FOLDER` goes on from that step.
  When a validation is due right after the step, it runs first (a resume from before it would skip it).
  A second signal stops at once, without saving.
- `DivergenceGuard`: a NaN or infinite training loss stops the run with one message (the step, the learning
  rate, what to try) before any checkpoint is written with the diverged weights. The check costs no host
  synchronisation per step: a flag is accumulated on the device and read every `trainer.log_every_n_steps`
  steps (when Lightning already synchronises to log the loss), before validation, at the end of an epoch and
  of training, and before an interrupt checkpoint.
- `resolve_ckpt_path` / `check_resume`: `ckpt_path=last` means `<run folder>/checkpoints/last.ckpt`, and a
  checkpoint to resume from is read with the weights-only unpickler and compared with the model being built
  before Lightning touches it, so that a crafted file runs no code and a checkpoint of another architecture
  gets a message instead of a traceback. `ResumeOptimizerOptions` applies a learning rate given on resume.
- `stopped_early`: what `train.run` does after a signal (exit 128 + signal) or a divergence (an error in a
  single run; in a multirun a value that lets the sweep go on).

Lightning's own SIGTERM handling raises at the end of a step without saving anything unless the run is a
SLURM job with auto-requeue; `trainer.should_stop` would first run an unscheduled validation (time that a
pre-emption notice may not leave, and an extra point in the curves and the best-checkpoint tracking) and end
the epoch early. So these callbacks save from `on_train_batch_end` (where Lightning's own step-interval
checkpoints are saved, and from which it resumes mid-epoch) and then stop the trainer with an exception that
`n2n.train.run` turns into a message and an exit code.
"""
from __future__ import annotations

import copy
import math
import os
import signal
import threading
import warnings
from pathlib import Path
from typing import Any, Mapping

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from n2n.checkpoint import read_checkpoint, training_config
from n2n.errors import CheckpointError, N2NError

LAST = "last.ckpt"
#: Exit codes follow the shell's convention for a process ended by a signal.
SIGNAL_EXIT_BASE = 128
_NEVER = 2**62  # "no bad step yet" in the device-side minimum


class DivergenceError(N2NError):
    """The training loss became NaN or infinite."""


class TrainingInterrupted(N2NError):
    """SIGINT or SIGTERM stopped the run after its checkpoint was written."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return SIGNAL_EXIT_BASE + int(self.signum)


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _resume_hint(run_dir: Path) -> str:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        return f"python train.py ckpt_path={run_dir / 'checkpoints' / LAST} <this job's options>"
    return f"python train.py ckpt_path=last hydra.run.dir={run_dir} <the same options>"


# ------------------------------------------------------------------------------------------ divergence
class DivergenceGuard(Callback):
    """Stops training with `DivergenceError` once the training loss is NaN or infinite.

    Every step adds `isfinite(loss)` to a device-side "first bad step" (no host sync); the flag is read
    every `check_every_n_steps` steps (default: `trainer.log_every_n_steps`) and before anything could save
    the diverged weights (validation, end of epoch, end of training, an interrupt checkpoint), so the last
    checkpoint on disk always holds finite weights.
    """

    def __init__(self, check_every_n_steps: int | None = None):
        super().__init__()
        self.check_every_n_steps = check_every_n_steps
        self._first_bad: torch.Tensor | None = None
        self._lrs: dict[int, float] = {}
        self._last_saved_step: int | None = None
        self._dirpath: Path | None = None

    def _every(self, trainer: L.Trainer) -> int:
        return max(1, int(self.check_every_n_steps or trainer.log_every_n_steps or 1))

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._first_bad, self._lrs = None, {}
        if trainer.ckpt_path:  # resumed: the checkpoint we started from is the last good one
            self._last_saved_step = trainer.global_step
        cb = trainer.checkpoint_callback
        self._dirpath = Path(cb.dirpath) if cb is not None and getattr(cb, "dirpath", None) else None

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        if trainer.optimizers:  # the rate this step uses (a Python float: no sync)
            self._lrs[trainer.global_step + 1] = float(trainer.optimizers[0].param_groups[0]["lr"])

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        if isinstance(loss, torch.Tensor):
            step = trainer.global_step  # this step's number, counting from 1
            bad_step = torch.where(torch.isfinite(loss.detach()).all(), _NEVER, step)
            self._first_bad = bad_step if self._first_bad is None else torch.minimum(self._first_bad, bad_step)
        if trainer.global_step % self._every(trainer) == 0:
            self.check(trainer)

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.check(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.check(trainer)  # runs before ModelCheckpoint's end-of-epoch save (checkpoint callbacks run last)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.check(trainer)

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        self._last_saved_step = trainer.global_step

    def check(self, trainer: L.Trainer) -> None:
        """Raise `DivergenceError` if a loss since the last check was not finite (one host sync).
        In a data-parallel run every process calls this at the same points, so the decision is shared."""
        if self._first_bad is None and trainer.world_size == 1:
            return
        first = torch.tensor(_NEVER) if self._first_bad is None else self._first_bad
        if trainer.world_size > 1:
            first = trainer.strategy.reduce(first.to(trainer.strategy.root_device).clone(), reduce_op="min")
        step = int(first.item())
        if step >= _NEVER:
            self._lrs = {s: lr for s, lr in self._lrs.items() if s > trainer.global_step}
            self._first_bad = None
            return
        raise DivergenceError(self.message(trainer, step))

    def message(self, trainer: L.Trainer, step: int) -> str:
        lr = self._lrs.get(step)
        group = trainer.optimizers[0].param_groups[0] if trainer.optimizers else {}
        base_lr = group.get("initial_lr", group.get("lr"))
        optimizer = type(trainer.optimizers[0]).__name__ if trainer.optimizers else "the optimiser"
        lr_text = f"learning rate {lr:.3g}" if lr is not None else "learning rate unknown"
        run_dir = self._dirpath.parent if self._dirpath is not None else None
        last = self._dirpath / LAST if self._dirpath is not None else None
        if last is not None and last.is_file() and self._last_saved_step is not None:
            kept = (f"The last good checkpoint is kept: {last} (step {self._last_saved_step}); nothing with "
                    f"the diverged weights was saved. To go on from it with other settings: "
                    f"{_resume_hint(run_dir)} optimizer.lr=...")
        else:
            kept = "No checkpoint had been saved yet (none is written with the diverged weights)."
        lower = (f" (it is {base_lr:g}; try {base_lr / 10:g} or lower)"
                 if isinstance(base_lr, (int, float)) and base_lr > 0 else "")
        return (f"training diverged: the training loss became NaN or infinite at step {step} "
                f"({optimizer}, {lr_text}; found at step {trainer.global_step}, checks run every "
                f"{self._every(trainer)} steps). {kept} What to try: a lower optimizer.lr{lower}; batch "
                f"normalisation, bn=batch; gradient clipping, trainer.gradient_clip_val=1.0; a learning-rate "
                f"warm-up, scheduler=cosine scheduler.warmup=0.05.")


# ------------------------------------------------------------------------------------------- interrupt
class InterruptCheckpoint(Callback):
    """On SIGINT or SIGTERM during training: finish the step, write `<dirpath>/last.ckpt`, stop the run.

    The handlers are installed when training starts (after Lightning installed its own) and the previous
    ones are put back when fit ends. In a data-parallel run the processes agree every step on whether any
    of them was signalled (one tiny all-reduce; Lightning already broadcasts its own SIGTERM flag every
    step), so all of them stop after the same step and the checkpoint is consistent.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, dirpath: str | Path):
        super().__init__()
        self.dirpath = Path(dirpath)
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}
        self._announce = True

    @property
    def path(self) -> Path:
        return self.dirpath / LAST

    # ---- handlers
    def _handler(self, signum: int, frame: Any) -> None:
        if self.signum is not None:  # the second signal: stop now, without saving
            self._restore()
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        self.signum = signum
        if self._announce:  # os.write, not print: the main thread may be inside a print to the same stream
            os.write(2, (f"\ntrain.py: received {_signal_name(signum)}: saving {self.path} after the current "
                         f"step (or the validation that follows it), then stopping; send it again to stop at "
                         f"once without saving\n").encode())

    def _install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in self.SIGNALS:
            self._previous[sig] = signal.getsignal(sig)
            signal.signal(sig, self._handler)

    def _restore(self) -> None:
        for sig, handler in self._previous.items():
            if handler is not None:
                signal.signal(sig, handler)
        self._previous = {}

    # ---- hooks
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.signum = None
        self._announce = trainer.is_global_zero
        self._install()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        stop = self._signalled(trainer)
        # A validation due after this step would be skipped by a resume from here (Lightning fast-forwards
        # past it): let it run, then stop at the end of the epoch or after the next step.
        if stop and not _validation_follows(trainer):
            self._stop(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # runs after the epoch's validation and its checkpoints; at the end of the last epoch the run is complete
        if self._signalled(trainer) and not _training_complete(trainer):
            self._stop(trainer)

    def _signalled(self, trainer: L.Trainer) -> bool:
        """Whether any process was signalled; in a data-parallel run all processes call this at the same points."""
        stop = self.signum is not None
        if trainer.world_size > 1:
            stop = trainer.strategy.reduce_boolean_decision(stop, all=False)
            if stop and self.signum is None:
                self.signum = int(signal.SIGTERM)  # another process was signalled
        return stop

    def _stop(self, trainer: L.Trainer) -> None:
        for guard in trainer.callbacks:  # never save diverged weights
            if isinstance(guard, DivergenceGuard):
                guard.check(trainer)
        _flush_step_logs(trainer)
        for cb in trainer.checkpoint_callbacks:  # so that ModelCheckpoint keeps writing last.ckpt, not last-v1.ckpt
            if isinstance(cb, ModelCheckpoint) and cb.save_last and cb.dirpath and Path(cb.dirpath) == self.dirpath:
                cb.last_model_path = str(self.path)
        trainer.save_checkpoint(self.path, weights_only=False)
        total = trainer.estimated_stepping_batches
        of = f" of {int(total)}" if math.isfinite(total) else ""
        raise TrainingInterrupted(
            f"interrupted by {_signal_name(self.signum)} after step {trainer.global_step}{of}; saved {self.path}. "
            f"Resume with: {_resume_hint(self.dirpath.parent)}", self.signum)

    # Put the previous handlers back before Lightning restores its own originals (its teardown runs after
    # on_train_end and on_exception, before on_fit_end and teardown).
    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._restore()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self._restore()

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._restore()


def _validation_follows(trainer: L.Trainer) -> bool:
    """Whether Lightning validates right after the current training step (private API, with a fallback)."""
    loop = trainer.fit_loop.epoch_loop
    try:
        return bool(loop._should_check_val_fx(trainer.fit_loop._data_fetcher))
    except Exception:  # noqa: BLE001 - another Lightning version: the end of an epoch is the usual case
        return bool(loop.batch_progress.is_last_batch)


def _training_complete(trainer: L.Trainer) -> bool:
    max_epochs, max_steps = trainer.max_epochs, trainer.max_steps
    return ((max_steps is not None and max_steps > 0 and trainer.global_step >= max_steps)
            or (max_epochs is not None and max_epochs > 0 and trainer.current_epoch + 1 >= max_epochs))


def _flush_step_logs(trainer: L.Trainer) -> None:
    """Log this step's metrics now (Lightning would right after the hook we stop in), so that the resumed run's
    curves have no gap. Best effort: private API."""
    try:
        trainer._logger_connector.on_batch_end()
        trainer._logger_connector.update_train_step_metrics()
        for logger in trainer.loggers:
            logger.save()
    except Exception:  # noqa: BLE001
        pass


# ---------------------------------------------------------------------------------------------- resume
def resolve_ckpt_path(value: Any, run_dir: Path) -> str | None:
    """`ckpt_path` as a file name: `last` is `<run folder>/checkpoints/last.ckpt` (the run folder is the one
    Hydra writes to, so `ckpt_path=last hydra.run.dir=RUN` resumes RUN in place)."""
    if value is None or str(value).strip() in ("", "null", "None"):
        return None
    value = str(value)
    if value == "last":
        path = run_dir / "checkpoints" / LAST
        if not path.is_file():
            raise CheckpointError(
                f"ckpt_path=last: {path} does not exist. ckpt_path=last resumes the run folder given with "
                f"hydra.run.dir=RUN_FOLDER (here {run_dir}): name a folder that train.py wrote and that holds "
                f"checkpoints/{LAST}, or give ckpt_path=PATH/TO/FILE.ckpt")
        _resuming_in_place()
        return str(path)
    path = Path(value)
    if path.is_dir():
        raise CheckpointError(f"ckpt_path={value} is a folder; give a .ckpt file written by train.py "
                              f"(e.g. {path / 'checkpoints' / LAST}) or ckpt_path=last with hydra.run.dir={value}")
    if not path.is_file():
        raise CheckpointError(f"ckpt_path={value} does not exist (expected a .ckpt file written by train.py, "
                              f"or ckpt_path=last with hydra.run.dir=RUN_FOLDER)")
    if path.resolve().parent == (run_dir / "checkpoints").resolve():
        _resuming_in_place()
    return str(path)


def _resuming_in_place() -> None:
    # ModelCheckpoint warns about a non-empty checkpoint folder: here that is the run being resumed
    warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, Mapping):
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: node}


#: Options whose change between the checkpoint and the resumed run is expected and not worth a note.
_IGNORED = ("ckpt_path", "output_dir")


def check_resume(path: str | Path, config: Mapping[str, Any], module: torch.nn.Module) -> list[str]:
    """Check, without running any code from the file, that `path` can resume the training of `module`.

    Returns notes on options that differ from those the checkpoint was trained with; raises
    `CheckpointError` for a crafted or corrupt file, a checkpoint of another model, or one without the
    training state a resume needs.
    """
    from n2n.module import resolve_auto_speed  # (n2n.module does not import this module: no cycle)

    ckpt = read_checkpoint(path)  # weights-only unpickler: refuses anything that is not tensors and containers
    trained = training_config(ckpt, path)
    # compare what ran and what will run, not "auto"
    trained = resolve_auto_speed(copy.deepcopy(dict(trained)))
    config = resolve_auto_speed(copy.deepcopy(dict(config)))
    missing = [k for k in ("optimizer_states", "loops", "global_step") if k not in ckpt]
    if missing:
        raise CheckpointError(f"checkpoint {path} cannot resume training: it holds no {', '.join(missing)} "
                              f"(weights only?). Use it with eval.py, or resume from a last.ckpt written by train.py")
    expected = module.state_dict()
    state = ckpt["state_dict"]
    if not isinstance(state, Mapping):
        raise CheckpointError(f"checkpoint {path}: state_dict is a {type(state).__name__}, not a mapping of tensors")
    network_first = lambda k: (k.startswith("_"), k)  # noqa: E731 - list the network's own tensors first
    absent = sorted(set(expected) - set(state), key=network_first)
    extra = sorted(set(state) - set(expected), key=network_first)
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
              if k in state and isinstance(state[k], torch.Tensor) and tuple(state[k].shape) != tuple(v.shape)]
    if absent or extra or shapes:
        details = []
        if shapes:
            details.append(f"{len(shapes)} tensor(s) of other shapes (checkpoint vs this model): "
                           f"{'; '.join(shapes[:3])}")
        if absent:
            details.append(f"{len(absent)} missing: {', '.join(absent[:3])}")
        if extra:
            details.append(f"{len(extra)} unexpected: {', '.join(extra[:3])}")
        model_then = _flatten(trained.get("model", {}), "model.")
        model_now = _flatten(dict(config).get("model", {}), "model.")
        differ = [f"{k}={model_then.get(k)!r} (now {model_now.get(k)!r})"
                  for k in sorted(set(model_then) | set(model_now)) if model_then.get(k) != model_now.get(k)]
        raise CheckpointError(
            f"checkpoint {path} was trained with another model and cannot resume this one: {'; '.join(details)}. "
            + (f"It was trained with {', '.join(differ[:5])}: resume with the same model options."
               if differ else "Resume with the options it was trained with (see config.yaml in its run folder)."))
    opt_then = (trained.get("optimizer") or {}).get("name")
    opt_now = (dict(config).get("optimizer") or {}).get("name")
    if opt_then != opt_now:
        raise CheckpointError(f"checkpoint {path} was trained with optimizer={opt_then}, not optimizer={opt_now}: "
                              f"its optimiser state cannot be resumed by another optimiser; resume with "
                              f"optimizer={opt_then}")
    then, now = _flatten(trained), _flatten(dict(config))
    notes = [f"{k}: {then.get(k, '(unset)')!r} -> {now.get(k, '(unset)')!r}"
             for k in sorted(set(then) | set(now))
             if not k.startswith(_IGNORED) and then.get(k) != now.get(k)]
    # Our train "loader" is a step counter: the batches come from the DataModule's generator, whose state
    # is in the checkpoint, so a mid-epoch resume draws exactly the batches an uninterrupted run would.
    warnings.filterwarnings("ignore", message=r".*resuming from a checkpoint that ended before the epoch ended.*")
    return notes


class ResumeOptimizerOptions(Callback):
    """Apply the optimiser options of the command line to a resumed run.

    Lightning restores the optimiser and schedule exactly as saved, learning rate included, so
    `ckpt_path=last optimizer.lr=1e-4` (what one tries after a divergence) would silently keep the old
    rate. This puts the configured base rate (and momentum, betas, weight decay, eps) back after the restore,
    keeping the schedule's progress."""

    OPTIONS = ("momentum", "betas", "weight_decay", "eps", "nesterov")

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        cfg = dict((getattr(pl_module, "config", None) or {}).get("optimizer") or {})
        if not trainer.ckpt_path or not trainer.optimizers or "lr" not in cfg:
            return
        self.cfg = cfg
        optimizer = trainer.optimizers[0]
        schedulers = [c.scheduler for c in trainer.lr_scheduler_configs if c.scheduler.optimizer is optimizer]
        new_lr = float(self.cfg["lr"])
        changed = []
        for group in optimizer.param_groups:
            old_base = float(group.get("initial_lr", group["lr"]))
            if new_lr != old_base:  # untouched otherwise: a plain resume stays bit-exact
                factor = group["lr"] / old_base if old_base > 0 else 1.0
                group["lr"] = new_lr * factor
                if "initial_lr" in group:
                    group["initial_lr"] = new_lr
                changed.append(f"optimizer.lr {old_base:g} -> {new_lr:g}")
            for key in self.OPTIONS:
                if key in self.cfg and key in group:
                    value = tuple(self.cfg[key]) if key == "betas" else self.cfg[key]
                    if group[key] != value:
                        changed.append(f"optimizer.{key} {group[key]} -> {value}")
                        group[key] = value
        if not changed:
            return
        for scheduler in schedulers:
            if hasattr(scheduler, "base_lrs"):
                scheduler.base_lrs = [new_lr for _ in scheduler.base_lrs]
            if hasattr(scheduler, "_last_lr"):
                scheduler._last_lr = [g["lr"] for g in optimizer.param_groups]
        if trainer.is_global_zero:
            print(f"resumed with the optimiser options given now: {', '.join(sorted(set(changed)))}", flush=True)


# ------------------------------------------------------------------------------------ used by train.run
def is_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def check_launch(trainer: L.Trainer) -> None:
    """Lightning starts the other processes of a data-parallel run by re-running the command line; inside a
    Hydra multirun (-m) each of them would run the whole sweep."""
    from lightning.pytorch.strategies.launchers.subprocess_script import _SubprocessScriptLauncher

    launcher = getattr(trainer.strategy, "launcher", None)
    if (is_multirun() and isinstance(launcher, _SubprocessScriptLauncher)
            and not trainer.strategy.cluster_environment.creates_processes_externally and trainer.world_size > 1):
        raise N2NError(f"trainer.strategy={trainer.strategy.__class__.__name__} with {trainer.world_size} "
                       f"processes cannot run inside a multirun (-m): Lightning starts the other processes by "
                       f"re-running the command line, so each would run the whole sweep. Run the configurations "
                       f"one at a time (e.g. a shell loop over single runs), as the README's 'Several GPUs' section shows")


def stopped_early(exc: TrainingInterrupted | DivergenceError, trainer: L.Trainer, run_dir: Path) -> float:
    """What `run` does when a signal or a divergence stopped training: a signal ends the process with exit
    code 128 + signal number; a divergence is an error in a single run (exit code 2) and, in a multirun, a
    failed job: NaN for Hydra's sweepers; for Optuna a FAIL trial where max_failure_rate allows, else the
    direction's worst value (the sweep goes on either way)."""
    import json
    import sys

    if isinstance(exc, TrainingInterrupted):
        if trainer.is_global_zero:
            print(f"train.py: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(exc.exit_code) from None
    if trainer.is_global_zero:
        metrics = {"status": "diverged", "best_val_psnr": float("nan"), "global_step": int(trainer.global_step),
                   "message": str(exc)}
        (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    if not is_multirun():
        if not trainer.is_global_zero:  # the first process reports; the others leave quietly
            raise SystemExit(2) from None
        raise exc
    if optuna_records_failures():
        if trainer.is_global_zero:
            print(f"train.py: error: {exc}\ntrain.py: Optuna records this trial as failed; the search goes on",
                  file=sys.stderr, flush=True)
        raise TrialFailed(str(exc)) from None
    value, meaning = diverged_job_value()
    if trainer.is_global_zero:
        print(f"train.py: error: {exc}\ntrain.py: this job returns {value} ({meaning}); the sweep goes on",
              file=sys.stderr, flush=True)
    return value


class TrialFailed(Exception):
    """Raised by a diverged job of an Optuna search that tolerates failures: Hydra records the job as failed
    and the sweeper tells Optuna the trial FAILed (a plain Exception, so the sweep itself goes on)."""


def optuna_records_failures() -> bool:
    """True in an Optuna search whose `hydra.sweeper.max_failure_rate` lets failed trials pass (the search
    configs set 1.0): there a raised error becomes a FAIL trial instead of ending the search."""
    from hydra.core.hydra_config import HydraConfig

    if not (HydraConfig.initialized() and is_multirun()):
        return False
    sweeper = HydraConfig.get().sweeper
    return "optuna" in str(sweeper.get("_target_", "")).lower() and float(sweeper.get("max_failure_rate", 0)) > 0


def diverged_job_value() -> tuple[float, str]:
    """The value a diverged job of a multirun returns to the sweeper, and what it means.

    Hydra's basic sweeper stops after the batch if a job raised, so the job returns NaN instead. The Optuna
    sweeper (hydra-optuna-sweeper 1.3.0 with optuna 2.10) crashes on NaN: it retries `study.tell` with state
    FAIL but still passes the NaN value, which Optuna refuses, so the whole search would stop. A raised
    error is recorded as FAIL but stops the search unless hydra.sweeper.max_failure_rate > 0 (then
    `optuna_records_failures` applies instead). Otherwise a diverged trial gets the worst possible value for
    the study's direction: the search goes on and its sampler learns that the region diverges."""
    from hydra.core.hydra_config import HydraConfig

    sweeper = HydraConfig.get().sweeper if HydraConfig.initialized() else {}
    if "optuna" not in str(sweeper.get("_target_", "")).lower():
        return float("nan"), "Hydra's sweepers take it as a failed job's value"
    direction = sweeper.get("direction", "minimize")
    if not isinstance(direction, str):  # a list for multi-objective studies; train.py has one objective
        direction = direction[0] if len(direction) else "minimize"
    direction = str(direction).lower().split(".")[-1]
    if direction == "maximize":
        return float("-inf"), "Optuna keeps the trial as the worst result of this maximising study"
    return float("inf"), "Optuna keeps the trial as the worst result of this minimising study"
