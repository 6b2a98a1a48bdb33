"""The same seed and config on a CPU give the same numbers, to the last digit, in two separate runs."""
from __future__ import annotations

import json
import re

import pytest
import torch

from helpers.runs import TINY, run_entry, run_in_process, tiny

VOLATILE = {"train_seconds", "train_seconds_without_validation", "best_checkpoint"}


def comparable(metrics: dict) -> dict:
    """metrics.json without what the wall clock decides."""
    out = {k: v for k, v in metrics.items() if k not in VOLATILE}
    out["val_history"] = [{k: v for k, v in h.items() if k != "train_seconds"} for h in out.get("val_history", [])]
    return out


@pytest.mark.slow  # two train.py processes, ~30 s on 2 cores; test_the_seed_matters and the resume tests run in CI
def test_same_seed_same_numbers_in_two_processes(tmp_path, image_dirs, monkeypatch):
    # the same thread count in both runs (see the README, "Reproducibility and determinism")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    train, val = image_dirs
    runs = []
    for name in ("a", "b"):
        run_dir = tmp_path / name
        result = run_entry(["train.py", "data=folder", f"data.train_dir={train}", f"data.val_dir={val}",
                            "data.crop_size=32", "seed=3", f"hydra.run.dir={run_dir}", *TINY])
        assert result.returncode == 0, result.stderr[-3000:]
        printed = re.search(r"best val/psnr ([\d.]+) dB \(noisy input ([\d.]+) dB\)", result.stdout).groups()
        metrics = json.loads((run_dir / "metrics.json").read_text())
        weights = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
        runs.append((printed, comparable(metrics), weights))
    (printed_a, metrics_a, weights_a), (printed_b, metrics_b, weights_b) = runs
    assert printed_a == printed_b
    assert metrics_a == metrics_b  # every digit of val/psnr, val/ssim, train/loss
    assert metrics_a["global_step"] == 8
    assert weights_a.keys() == weights_b.keys()
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)


def test_the_seed_matters(images, one_thread, tmp_path):  # noqa: F811
    """So that the equality above means something: another seed gives other numbers."""
    results = []
    for seed in (0, 1):
        run_dir = tmp_path / f"seed{seed}"
        run_in_process([*tiny(*images), f"seed={seed}"], run_dir)
        results.append(json.loads((run_dir / "metrics.json").read_text()))
    assert results[0]["val_psnr"] != pytest.approx(results[1]["val_psnr"], abs=1e-4)
    assert results[0]["train_loss"] != pytest.approx(results[1]["train_loss"], abs=1e-6)
