"""A Hydra app of a few milliseconds per job, for testing n2n's Optuna sweeper without training:

    python tests/helpers/search_app.py -m hydra/sweeper=n2n_optuna 'x=interval(0,1)' hydra.sweep.dir=DIR

`x` is the searched value; the job returns (x - 0.3)^2, or ends as `outcome` says: `returns_nan` returns NaN,
`raises` raises, `pruned` raises TrialPruned (as a pruned training run does). Not `nan`: Hydra reads it as a float.
"""
import math

import hydra
from hydra.core.config_store import ConfigStore

ConfigStore.instance().store(name="search_app", node={"x": 0.0, "outcome": "value"})


@hydra.main(version_base="1.3", config_path=None, config_name="search_app")
def main(cfg) -> float:
    outcome, x = cfg.outcome, float(cfg.x)
    if outcome == "returns_nan":
        return math.nan
    if outcome == "raises":
        raise RuntimeError(f"job failed on purpose at x={x}")
    if outcome == "pruned":
        from n2n.search import TrialPruned

        raise TrialPruned(f"pruned at x={x}")
    return (x - 0.3) ** 2


if __name__ == "__main__":
    main()
