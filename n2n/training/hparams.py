"""The hyperparameters and final metrics of a run, in TensorBoard's HParams view.

TensorBoard shows one row per run (with `--logdir` on a sweep folder) only if each run wrote an HParams summary:
a flat dict of simple values plus the metrics to compare. The full nested config is in `config.yaml`; here go
the few choices that differ between the runs of an ablation or a search.
"""
from __future__ import annotations

from typing import Any, Mapping

from lightning.pytorch.loggers import TensorBoardLogger

#: The metrics shown next to the hyperparameters (`metrics.json` key -> HParams metric tag).
METRICS = {"best_val_psnr": "hp/best_val_psnr", "val_psnr": "hp/final_val_psnr",
           "train_loss": "hp/final_train_loss", "train_seconds": "hp/train_seconds"}


def flat_hparams(config: Mapping[str, Any]) -> dict[str, Any]:
    """The run's choices as `name -> int | float | str | bool`, the only types the HParams plugin takes."""
    def get(*keys: str, default: Any = None) -> Any:
        node: Any = config
        for key in keys:
            if not isinstance(node, Mapping) or key not in node:
                return default
            node = node[key]
        return node

    data = get("data", default={})
    noise = dict(get("noise", default={}) or {})
    noise_name = noise.pop("name", "none")
    noise.pop("val", None)
    params = {
        "data": get("data", "name"),
        "batch_size": get("data", "batch_size"),
        "activation": get("model", "activation", "name"),
        "norm": get("model", "norm", "name"),
        "optimizer": get("optimizer", "name"),
        "lr": get("optimizer", "lr"),
        "momentum": get("optimizer", "momentum"),
        "weight_decay": get("optimizer", "weight_decay"),
        "scheduler": get("scheduler", "name"),
        "aug": get("aug", "name"),
        "loss": get("loss", "name"),
        # noisy sources (the course's pickles, your own captures): the noise options do not apply to them
        "noise": "in data" if _noisy_source(data.get("name")) else
                 f"{noise_name}({', '.join(f'{k}={v}' for k, v in noise.items())})",
        "method": get("method", "name") or {"noisy": "n2n", "clean": "n2c"}.get(get("target"), get("target")),
        "seed": get("seed"),
        "max_epochs": get("trainer", "max_epochs"),
        "max_steps": get("trainer", "max_steps"),
    }
    # an option the run does not have (momentum for adam) is left out rather than shown as a fake value
    return {k: _simple(v) for k, v in params.items() if v is not None}


def _noisy_source(name: Any) -> bool:
    from n2n.data.sources import SOURCES

    return name in SOURCES and not SOURCES[name].clean_train


def _simple(value: Any) -> Any:
    return value if isinstance(value, (bool, int, float, str)) else str(value)  # lists: betas, noise ranges


def log_hparams(trainer: Any, config: Mapping[str, Any], metrics: Mapping[str, Any]) -> None:
    """Write the HParams summary to every TensorBoard logger of `trainer`, after `fit` (the metrics are final)."""
    # NaN stays: a diverged run must show up in the table, not vanish from it
    values = {tag: float(metrics[key]) for key, tag in METRICS.items() if isinstance(metrics.get(key), (int, float))}
    if not trainer.is_global_zero:  # data-parallel runs: one summary, from the process that owns the logs
        return
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.log_hyperparams(flat_hparams(config), metrics=values, step=trainer.global_step)
            # fit already finalized (closed) the writer; this reopens it, so flush and close it again
            logger.finalize("success")
