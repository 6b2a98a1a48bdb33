"""Optimiser options given on the command line of a resumed run take effect.

Lightning restores the optimiser and schedule exactly as saved, learning rate included, so
`ckpt_path=last optimizer.lr=1e-4` (what one tries after a divergence) would silently keep the old rate.
"""
from __future__ import annotations

from typing import Any, Mapping

import lightning as L
from lightning.pytorch.callbacks import Callback

from n2n.training.lightning_compat import set_scheduler_lrs


class ResumeOptimizerOptions(Callback):
    """Puts the configured base rate (and momentum, betas, weight decay, eps, nesterov) back after the restore,
    keeping the schedule's progress. `optimizer_cfg` is the run's `optimizer` section."""

    OPTIONS = ("momentum", "betas", "weight_decay", "eps", "nesterov")

    def __init__(self, optimizer_cfg: Mapping[str, Any]):
        super().__init__()
        self.cfg = dict(optimizer_cfg)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.ckpt_path or not trainer.optimizers or "lr" not in self.cfg:
            return
        optimizer = trainer.optimizers[0]
        schedulers = [c.scheduler for c in trainer.lr_scheduler_configs if c.scheduler.optimizer is optimizer]
        new_lr = float(self.cfg["lr"])
        changed = []
        for group in optimizer.param_groups:
            old_base = float(group.get("initial_lr", group["lr"]))
            if new_lr != old_base:  # untouched otherwise: a plain resume stays bit-exact
                factor = group["lr"] / old_base if old_base > 0 else 1.0
                group["lr"] = new_lr * factor
                if "initial_lr" in group:
                    group["initial_lr"] = new_lr
                changed.append(f"optimizer.lr {old_base:g} -> {new_lr:g}")
            for key in self.OPTIONS:
                if key in self.cfg and key in group:
                    value = tuple(self.cfg[key]) if key == "betas" else self.cfg[key]
                    if group[key] != value:
                        changed.append(f"optimizer.{key} {group[key]} -> {value}")
                        group[key] = value
        if not changed:
            return
        for scheduler in schedulers:
            if hasattr(scheduler, "base_lrs"):
                scheduler.base_lrs = [new_lr for _ in scheduler.base_lrs]
            set_scheduler_lrs(scheduler, [g["lr"] for g in optimizer.param_groups])
        if trainer.is_global_zero:
            print(f"resumed with the optimiser options given now: {', '.join(sorted(set(changed)))}", flush=True)
