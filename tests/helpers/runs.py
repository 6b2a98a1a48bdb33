"""Running n2n as a user would (train.py, eval.py and the n2n command as subprocesses) or in this process on
the real composed configs, shrunk to seconds on a CPU."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from lightning.pytorch.callbacks import Callback
from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

ROOT = Path(__file__).resolve().parents[2]

#: Overrides that make a training run take seconds on a CPU.
TINY = ["trainer.accelerator=cpu", "trainer.max_epochs=2", "data.steps_per_epoch=4", "data.batch_size=4",
        "trainer.log_every_n_steps=2", "trainer.num_sanity_val_steps=0", "trainer.enable_progress_bar=false"]


def run_entry(args: list[str], timeout: int = 300, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run `python <script> args...` (or `-m module`) from the repository root, CPU only."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "CUDA_VISIBLE_DEVICES": "", "HYDRA_FULL_ERROR": "0", **(env or {})}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def tiny(train: Path, val: Path, steps: int = 4, epochs: int = 2) -> list[str]:
    """A folder-of-images run of `epochs` x `steps` steps of 4 crops of 32 px, validated every epoch."""
    return ["data=folder", f"data.train_dir={train}", f"data.val_dir={val}", "data.crop_size=32",
            "data.batch_size=4", f"data.steps_per_epoch={steps}", "trainer.accelerator=cpu",
            f"trainer.max_epochs={epochs}", "trainer.log_every_n_steps=1", "trainer.num_sanity_val_steps=0",
            "trainer.enable_progress_bar=false"]


def compose_train(overrides: list[str], return_hydra_config: bool = False):
    """conf/train.yaml composed with `overrides`, as train.py would see it."""
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("train", overrides=overrides, return_hydra_config=return_hydra_config)


def resolved(overrides: list[str], run_dir: Path | str = "outputs/test") -> dict[str, Any]:
    """The config train.py hands to the run: composed and resolved once (n2n.config)."""
    from n2n.config import RunContext, resolve_train_config

    return resolve_train_config(compose_train(overrides), RunContext(Path(run_dir)))


def run_in_process(overrides: list[str], run_dir: Path, *extra_callbacks: Callback) -> float:
    """`n2n.training.run.train` in this process (no Hydra job: the run folder is `run_dir`), with test
    callbacks placed before n2n's own."""
    from n2n.config import RunContext
    from n2n.training.run import train

    context = RunContext(Path(run_dir))
    return train(resolved(overrides, run_dir), context, extra_callbacks=extra_callbacks)


def scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """TensorBoard scalars of a run folder: tag -> [(step, value)]."""
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def to_plain(cfg) -> dict[str, Any]:
    return OmegaConf.to_container(cfg, resolve=True)
