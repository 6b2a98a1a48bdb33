"""n2n's Optuna sweeper as a Hydra plugin (`hydra/sweeper=n2n_optuna`); the code is in n2n.search."""
