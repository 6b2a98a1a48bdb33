"""The sweeper's options (`hydra.sweeper.*` with `hydra/sweeper=n2n_optuna`) and the sampler and pruner presets
(`hydra/sweeper/sampler=random`, `hydra/sweeper/pruner=median`). The Hydra plugin registers them; a preset
is a plain mapping with a `name` that n2n.search.algorithms looks up, so configs never name Python classes."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: the sweeper's `_target_`; Hydra only instantiates plugins from the hydra_plugins package
SWEEPER_TARGET = "hydra_plugins.n2n_optuna_sweeper.n2n_optuna_sweeper.N2NOptunaSweeper"

SAMPLER_PRESETS: dict[str, dict[str, Any]] = {
    # seed null: parallel workers on one study would otherwise all propose the same first trials
    "tpe": {"name": "tpe", "seed": None, "n_startup_trials": 10, "multivariate": False},
    "random": {"name": "random", "seed": None},
    "grid": {"name": "grid", "seed": None},
    "cmaes": {"name": "cmaes", "seed": None},
    "qmc": {"name": "qmc", "seed": None},
}

#: Steps are global training steps: the callback reports each validation at the step it ran.
PRUNER_PRESETS: dict[str, dict[str, Any]] = {
    "median": {"name": "median", "n_startup_trials": 5, "n_warmup_steps": 0, "interval_steps": 1,
               "n_min_trials": 1},
    "percentile": {"name": "percentile", "percentile": 25.0, "n_startup_trials": 5, "n_warmup_steps": 0,
                   "interval_steps": 1, "n_min_trials": 1},
    "hyperband": {"name": "hyperband", "min_resource": 1, "max_resource": "auto", "reduction_factor": 3},
    "successive_halving": {"name": "successive_halving", "min_resource": "auto", "reduction_factor": 4,
                           "min_early_stopping_rate": 0},
    "threshold": {"name": "threshold", "lower": None, "upper": None, "n_warmup_steps": 0, "interval_steps": 1},
    "none": {"name": "none"},
}


@dataclass
class OptunaSweeperConf:
    _target_: str = SWEEPER_TARGET
    # _self_ first: the presets fill `sampler` and `pruner` rather than being replaced by their nulls below
    defaults: list[Any] = field(default_factory=lambda: ["_self_", {"sampler": "tpe"}, {"pruner": "none"}])
    #: a preset's mapping, a name (`random`), or a mapping with `name` and the sampler's options
    sampler: Any = None
    #: as `sampler`; null or `none`: no pruning
    pruner: Any = None
    #: train.py returns the best val/psnr (maximize); runs scored by val/n2n_loss need `minimize`
    direction: str = "maximize"
    #: null: in memory; `sqlite:///FILE.db` or any database URL; `journal:FILE` or a FILE.log / FILE.journal
    storage: str | None = None
    #: processes with the same storage and study_name share one study (null: a new study each time)
    study_name: str | None = None
    #: trials this process runs
    n_trials: int = 20
    #: trials asked of the sampler at once and handed to the launcher together
    n_jobs: int = 1
    #: share of this process's trials that may fail before the search stops (1.0: never stops)
    max_failure_rate: float = 0.0
    #: the search space in Hydra's override grammar, e.g. {optimizer.lr: "tag(log, interval(1e-4, 0.1))"}
    params: dict[str, str] | None = None
    #: set by the sweeper in each job's config: the Optuna trial the job is (never set it yourself)
    trial: int | None = None
