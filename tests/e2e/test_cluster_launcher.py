"""Sweeps through Hydra's submitit launcher (the `cluster` extra): `hydra/launcher=submitit_local` runs each
job as its own process through submitit, as `submitit_slurm` does on a SLURM cluster; each job keeps its own
run folder, records and results (docs/reliability.md, "Several GPUs, several machines")."""
from __future__ import annotations

import json

import pytest
import yaml

from helpers.runs import run_entry, tiny

pytest.importorskip("hydra_plugins.hydra_submitit_launcher")


@pytest.mark.slow  # two training jobs through submitit's local executor
def test_a_multirun_through_submitit_local(images, tmp_path):
    sweep = tmp_path / "sweep"
    result = run_entry(["train.py", "-m", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10",
                        *tiny(*images), "logger=csv", "seed=0,1", f"hydra.sweep.dir={sweep}"],
                       timeout=900, env={"OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    for job, seed in (("0", 0), ("1", 1)):
        metrics = json.loads((sweep / job / "metrics.json").read_text())
        assert metrics["status"] == "finished" and metrics["global_step"] == 8
        assert f"seed={seed}" in yaml.safe_load((sweep / job / ".hydra" / "overrides.yaml").read_text())
    assert (sweep / ".submitit").is_dir()  # the jobs ran through submitit, each in its own process
