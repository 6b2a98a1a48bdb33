"""The Hydra plugin: registers the sweeper's config and hands the work to n2n.search.

Hydra imports every module under `hydra_plugins` at start-up, in single runs too, so this one stays light:
Optuna is imported only when a search starts.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.plugins.sweeper import Sweeper

from n2n.search.config import PRUNER_PRESETS, SAMPLER_PRESETS, OptunaSweeperConf

_store = ConfigStore.instance()
_store.store(group="hydra/sweeper", name="n2n_optuna", node=OptunaSweeperConf, provider="n2n")
for _name, _preset in SAMPLER_PRESETS.items():
    _store.store(group="hydra/sweeper/sampler", name=_name, node=_preset, provider="n2n")
for _name, _preset in PRUNER_PRESETS.items():
    _store.store(group="hydra/sweeper/pruner", name=_name, node=_preset, provider="n2n")


class N2NOptunaSweeper(Sweeper):
    def __init__(self, **options: Any) -> None:
        from n2n.search.sweeper import OptunaSearch

        self.search = OptunaSearch(**options)

    def setup(self, *, hydra_context: Any, task_function: Any, config: Any) -> None:
        self.search.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: Sequence[str]) -> Any:
        return self.search.sweep(list(arguments))
