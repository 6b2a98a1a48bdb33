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
    """Its errors (an unknown sampler, a storage that cannot be opened, a study of the other direction) are
    n2n's: one line and exit code 2, as the jobs' own (Hydra would print them with a traceback)."""

    def __init__(self, **options: Any) -> None:
        from n2n.errors import exit_on_error
        from n2n.search.sweeper import OptunaSearch

        with exit_on_error(_program()):
            self.search = OptunaSearch(**options)

    def setup(self, *, hydra_context: Any, task_function: Any, config: Any) -> None:
        self.search.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: Sequence[str]) -> Any:
        from n2n.errors import exit_on_error

        with exit_on_error(_program()):
            return self.search.sweep(list(arguments))


def _program() -> str:
    import sys
    from pathlib import Path

    return Path(sys.argv[0]).name if sys.argv and sys.argv[0].endswith(".py") else "train.py"
