"""Hyperparameter search on Optuna's ask/tell interface, run as a Hydra sweeper.

`python train.py -m hparams_search=seed_table1` (or `hydra/sweeper=n2n_optuna` with sweeps such as
`optimizer.lr='tag(log, interval(1e-4, 0.1))'` on the command line) searches with n2n's own sweeper: Hydra
finds it in `hydra_plugins/n2n_optuna_sweeper/`, a thin plugin that registers its config and hands over to
the modules here, one role each:

- `config`: the sweeper's options (`hydra.sweeper.*`) and the sampler and pruner presets;
- `space`: Hydra's override grammar (`choice`, `interval`, `tag(log, ...)`, `range`) as Optuna distributions;
- `algorithms`: the sampler and the pruner named in the config (by name: configs never name Python classes);
- `storage`: in memory, a database URL or a journal file, and the studies this process has open;
- `sweeper`: the ask / launch / tell loop;
- `pruning`: the Lightning callback that reports each validation to the job's trial and stops hopeless ones.

Nothing here imports Optuna at import time: Hydra imports the plugin in every run, and Optuna is an optional
dependency (`pip install -e ".[hpo]"`).
"""


class TrialPruned(Exception):
    """Raised by a trial that its pruner stopped (n2n.search.pruning, after its run wrote metrics.json): Hydra
    records the job as failed and the sweeper tells Optuna the trial was PRUNED. A plain Exception, not an
    N2NError, so that it reaches the sweeper instead of ending the process with an error message."""
