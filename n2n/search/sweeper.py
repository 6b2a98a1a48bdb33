"""The search loop on Optuna's ask/tell interface: ask the sampler for trials, run them as Hydra jobs through
the configured launcher, tell Optuna how each ended.

How a job ends, and what Optuna is told:

| the job | the trial |
|---|---|
| returns a number | COMPLETE with that value (inf and -inf too) |
| raises TrialPruned (its run was stopped by the pruner) | PRUNED, with its last reported value |
| returns NaN or something that is not a number, or raises | FAIL |

A failed trial never stops the search while the share of failed trials among this process's trials stays at
or below `max_failure_rate`; above it, the search stops with the job's own error. Each job learns which trial
it is from its `hydra.sweeper.study_name` and `hydra.sweeper.trial` (n2n.search.pruning).
"""
from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from n2n.errors import ConfigError
from n2n.search import storage as stores
from n2n.search.algorithms import PRUNERS, SAMPLERS, build_pruner, build_sampler, named
from n2n.search.space import encode, parse

log = logging.getLogger(__name__)


class OptunaSearch:
    """What N2NOptunaSweeper (the Hydra plugin) does; its options are those of n2n.search.config."""

    def __init__(self, sampler: Any = None, pruner: Any = None, direction: str = "maximize", storage: Any = None,
                 study_name: str | None = None, n_trials: int = 20, n_jobs: int = 1, max_failure_rate: float = 0.0,
                 params: Mapping[str, Any] | None = None, trial: int | None = None) -> None:
        if not isinstance(direction, str) or direction.lower() not in ("maximize", "minimize"):
            raise ConfigError(f"hydra.sweeper.direction={direction} must be maximize or minimize (a training run "
                              f"returns one value)")
        for key, value, low in (("n_trials", n_trials, 0), ("n_jobs", n_jobs, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"hydra.sweeper.{key}={value} must be an integer >= {low}")
        if not 0.0 <= float(max_failure_rate) <= 1.0:
            raise ConfigError(f"hydra.sweeper.max_failure_rate={max_failure_rate} must be between 0 and 1")
        self.sampler, self.pruner = _plain(sampler), _plain(pruner)
        self.direction, self.storage, self.study_name = direction.lower(), storage, study_name
        self.n_trials, self.n_jobs, self.max_failure_rate = n_trials, n_jobs, float(max_failure_rate)
        self.params = dict(_plain(params) or {})
        self.config: Any = None
        self.launcher: Any = None

    def setup(self, *, hydra_context: Any, task_function: Any, config: Any) -> None:
        from hydra.core.plugins import Plugins

        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(config=config, hydra_context=hydra_context,
                                                                task_function=task_function)

    def sweep(self, arguments: Sequence[str]) -> dict[str, Any]:
        from n2n.extras import require_extra

        optuna = require_extra("optuna", for_what="the Optuna search (hydra/sweeper=n2n_optuna)")
        space = parse([*(f"{k}={v}" for k, v in self.params.items()), *arguments])
        sampler, pruner = build_sampler(self.sampler, space), build_pruner(self.pruner)
        n_trials = self.n_trials
        grid = isinstance(sampler, optuna.samplers.GridSampler)
        if grid:
            size = math.prod(len(v) for v in space.grid().values())
            n_trials = min(n_trials, size)
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # the sweeper logs each trial itself
        study = stores.open_study(self.study_name, self.storage, sampler, pruner, self.direction)
        log.info(f"Optuna study {study.study_name!r} ({stores.shown(self.storage)}): {self.direction} with "
                 f"{named(self.sampler, 'sampler', SAMPLERS, 'tpe')[0]} sampler, "
                 f"{named(self.pruner, 'pruner', PRUNERS, 'none')[0]} pruner; {n_trials} trial(s) in this process")
        log.info("search space: " + (", ".join(f"{k}: {_describe(d)}" for k, d in space.distributions.items())
                                     or "none (every trial runs the same overrides)"))
        try:
            ran = self._run(study, space, n_trials, grid)
        finally:
            stores.forget(study.study_name, self.storage)
        return self._write_results(study, ran)

    def _run(self, study: Any, space: Any, n_trials: int, grid: bool) -> int:
        from optuna.trial import TrialState

        job_idx, done, failed = 0, 0, []
        while done < n_trials:
            if grid and study.sampler.is_exhausted(study):
                log.info("every point of the grid has been tried (by this or another process)")
                break
            trials = [study.ask(space.distributions) for _ in range(min(self.n_jobs, n_trials - done))]
            overrides = [[*space.overrides(t.params), f"hydra.sweeper.study_name={encode(study.study_name)}",
                          f"hydra.sweeper.trial={t.number}"] for t in trials]
            try:
                returns = self.launcher.launch(overrides, initial_job_idx=job_idx)
            except BaseException:  # Ctrl-C, or a configuration error that ends the whole sweep
                for trial in trials:
                    _tell(study, trial, TrialState.FAIL)
                raise
            job_idx += len(returns)
            for trial, ret in zip(trials, returns):
                state, value, problem = _outcome(ret)
                _tell(study, trial, state, value)
                params = " ".join(f"{k}={encode(v)}" for k, v in trial.params.items())
                if state == TrialState.COMPLETE:
                    log.info(f"trial {trial.number} finished with value {value:.6g}: {params}")
                elif state == TrialState.PRUNED:
                    log.info(f"trial {trial.number} pruned: {params}")
                else:
                    log.warning(f"trial {trial.number} failed ({problem}): {params}")
                    failed.append((ret, problem))
            done += len(trials)
            if failed and len(failed) / done > self.max_failure_rate:
                log.error(f"{len(failed)} of {done} trial(s) failed, more than hydra.sweeper.max_failure_rate="
                          f"{self.max_failure_rate:g} allows: the search stops")
                ret, problem = failed[-1]
                _ = ret.return_value  # re-raises the job's own error, with its traceback
                raise RuntimeError(f"the search stopped: trial failed ({problem})")
        return done

    def _write_results(self, study: Any, ran: int) -> dict[str, Any]:
        """optimization_results.yaml in the sweep folder (`n2n report` shows its best trial)."""
        from omegaconf import OmegaConf
        from optuna.trial import TrialState

        states = [t.state for t in study.get_trials(deepcopy=False)]
        counts = {s.name.lower(): states.count(s) for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
        results: dict[str, Any] = {"name": "optuna", "study_name": study.study_name, "direction": self.direction,
                                   "trials_this_process": ran, "trials_in_study": counts,
                                   "best_trial": None, "best_params": {}, "best_value": None}
        if counts["complete"]:
            best = study.best_trial
            results.update(best_trial=best.number, best_params=dict(best.params), best_value=best.value)
            log.info(f"best trial {best.number} of the study: value {best.value:.6g} with "
                     + " ".join(f"{k}={encode(v)}" for k, v in best.params.items()))
        else:
            log.warning("no trial of the study has completed yet: no best value")
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(OmegaConf.create(results), sweep_dir / "optimization_results.yaml")
        return results


def _outcome(ret: Any) -> tuple[Any, float | None, str]:
    """(state, value, problem) of a finished job."""
    from hydra.core.utils import JobStatus
    from optuna.exceptions import TrialPruned as OptunaPruned
    from optuna.trial import TrialState

    from n2n.search import TrialPruned

    if ret.status != JobStatus.COMPLETED:
        # the error itself, as Hydra's own callbacks read it: `return_value` would re-raise it and print
        # "Error executing job" for a pruned trial too
        error = ret._return_value
        if isinstance(error, (TrialPruned, OptunaPruned)):
            return TrialState.PRUNED, None, ""
        return TrialState.FAIL, None, f"{type(error).__name__}: {error}"
    value = ret.return_value
    try:
        value = float(value)
    except (TypeError, ValueError):
        return TrialState.FAIL, None, f"the job returned {value!r}, not a number"
    if math.isnan(value):
        return TrialState.FAIL, None, "the job returned NaN"
    return TrialState.COMPLETE, value, ""


def _tell(study: Any, trial: Any, state: Any, value: float | None = None) -> None:
    try:
        study.tell(trial, value, state=state, skip_if_finished=True)
    except RuntimeError as exc:
        # The grid sampler calls study.stop() after its last point, which Optuna refuses outside
        # study.optimize; the trial is stored before that, and the loop sees the grid exhausted.
        if "Study.stop" not in str(exc):
            raise


def _describe(dist: Any) -> str:
    if hasattr(dist, "choices"):
        return "choice(" + ", ".join(encode(c) for c in dist.choices) + ")"
    kind = "log " if getattr(dist, "log", False) else ""
    step = f" step {dist.step:g}" if getattr(dist, "step", None) not in (None, 1) else ""
    return f"{kind}{dist.low:g}..{dist.high:g}{step}"


def _plain(value: Any) -> Any:
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    return value
