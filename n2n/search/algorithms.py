"""The sampler and the pruner of `hydra.sweeper.sampler` / `hydra.sweeper.pruner`, looked up by name.

Each option is null, a name (`tpe`, `median`) or a mapping with `name` and the Optuna class's own keyword
arguments (`{name: median, n_warmup_steps: 500}`). A `_target_: optuna.samplers.TPESampler` written for
hydra-optuna-sweeper is read as its name; no other class can be named.
"""
from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from n2n.errors import ConfigError

SAMPLERS = {"tpe": "TPESampler", "random": "RandomSampler", "grid": "GridSampler", "cmaes": "CmaEsSampler",
            "qmc": "QMCSampler"}
PRUNERS = {"median": "MedianPruner", "percentile": "PercentilePruner", "hyperband": "HyperbandPruner",
           "successive_halving": "SuccessiveHalvingPruner", "threshold": "ThresholdPruner", "none": "NopPruner"}


def build_sampler(value: Any, space: Any = None) -> Any:
    """The sampler of `hydra.sweeper.sampler` (TPE when null); `space` (n2n.search.space.SearchSpace) gives the
    grid sampler its grid."""
    import optuna

    name, options = named(value, "sampler", SAMPLERS, default="tpe")
    fixed = {"search_space": space.grid() if space is not None else {}} if name == "grid" else {}
    return _make(getattr(optuna.samplers, SAMPLERS[name]), options, f"hydra.sweeper.sampler={name}", fixed)


def build_pruner(value: Any) -> Any:
    """The pruner of `hydra.sweeper.pruner` (none when null)."""
    import optuna

    name, options = named(value, "pruner", PRUNERS, default="none")
    return _make(getattr(optuna.pruners, PRUNERS[name]), options, f"hydra.sweeper.pruner={name}", {})


def named(value: Any, kind: str, table: Mapping[str, str], default: str) -> tuple[str, dict[str, Any]]:
    """(name, options) of a sampler or pruner option."""
    if value is None:
        return default, {}
    if isinstance(value, str):
        name, options = value, {}
    elif isinstance(value, Mapping):
        options = dict(value)
        target = options.pop("_target_", None)
        options.pop("_partial_", None)
        name = options.pop("name", None)
        if name is None and target is not None:
            by_class = {cls: key for key, cls in table.items()}
            module, _, cls = str(target).rpartition(".")
            if module not in (f"optuna.{kind}s", f"optuna.{kind}s._{kind}"):  # only Optuna's own classes
                cls = ""
            name = by_class.get(cls)
            if name is None:
                raise ConfigError(f"hydra.sweeper.{kind}._target_={target} is not one of Optuna's {kind}s that n2n "
                                  f"knows; give name: {' | '.join(table)}")
    else:
        raise ConfigError(f"hydra.sweeper.{kind}={value!r} must be null, a name ({' | '.join(table)}) or a "
                          f"mapping with `name`")
    name = str(name).lower()
    if name in ("null", "nop"):
        name = "none"
    if name not in table:
        raise ConfigError(f"hydra.sweeper.{kind}={name} is not known; choose one of: {', '.join(table)}")
    return name, options


def _make(cls: type, options: dict[str, Any], where: str, fixed: dict[str, Any]) -> Any:
    allowed = [p for p in inspect.signature(cls).parameters if p not in fixed]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ConfigError(f"{where}: unknown option(s) {unknown}; {cls.__name__} takes: "
                          f"{', '.join(allowed) or 'no options'}")
    try:
        return cls(**options, **fixed)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None
