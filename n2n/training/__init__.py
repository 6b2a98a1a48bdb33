"""Training: the run (run.py), the LightningModule (module.py), its callbacks and what a run leaves behind."""
