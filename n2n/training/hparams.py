"""The hyperparameters and final metrics of a run, in TensorBoard's HParams view.

TensorBoard shows one row per run (with `--logdir` on a sweep folder) only if each run wrote an HParams summary:
a flat dict of simple values plus the metrics to compare. The full nested config is in `config.yaml`; here go
the few choices that differ between the runs of an ablation or a search.

What the HParams table shows at first, and how (TensorBoard 2.x):
- It opens with five hyperparameter columns: those marked `differs` first, then in name order. n2n marks `method`
  and `noise` (what a run is) and those set on the command line (what a sweep varies), so that the five are
  those and not `activation`, `aug`, `batch_size`, `data`, `loss` whatever the run.
- Numbers are printed with five significant digits (a batch size of 16 as "16.000"), so integers go in as text.
- The final metrics are scalars too, so the Time Series tab charts each as a single dot; their tags start with
  `whole_run/`, which sorts after `train/` and `val/`: TensorBoard opens the first two groups of charts only.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from lightning.pytorch.loggers import TensorBoardLogger

#: The metrics shown next to the hyperparameters: `metrics.json` key -> (scalar tag, column title).
METRICS = {"best_val_psnr": ("whole_run/best_val_psnr", "best val/psnr"),
           "val_psnr": ("whole_run/final_val_psnr", "final val/psnr"),
           "train_loss": ("whole_run/final_train_loss", "final train/loss"),
           "train_seconds": ("whole_run/train_seconds", "train seconds")}

#: Each hyperparameter: (where it is in the config, the command-line keys that set it). The table opens on
#: `method`, `noise` and those whose keys the run's overrides name (a sweep's varied options).
HPARAMS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "data": (("data", "name"), ("data",)),
    "batch_size": (("data", "batch_size"), ("data.batch_size",)),
    "activation": (("model", "activation", "name"), ("activation", "model.activation.name")),
    "norm": (("model", "norm", "name"), ("norm", "bn", "model.norm.name")),
    "optimizer": (("optimizer", "name"), ("optimizer", "optimizer.name")),
    "lr": (("optimizer", "lr"), ("optimizer.lr",)),
    "momentum": (("optimizer", "momentum"), ("optimizer.momentum",)),
    "weight_decay": (("optimizer", "weight_decay"), ("optimizer.weight_decay",)),
    "scheduler": (("scheduler", "name"), ("scheduler", "scheduler.name")),
    "aug": (("aug", "name"), ("aug", "aug.name")),
    "loss": (("loss", "name"), ("loss", "loss.name")),
    "target": (("target",), ("target",)),
    "seed": (("seed",), ("seed",)),
    "max_epochs": (("trainer", "max_epochs"), ("trainer.max_epochs",)),
    "max_steps": (("trainer", "max_steps"), ("trainer.max_steps",)),
}
ALWAYS_SHOWN = ("method", "noise")


def _get(config: Mapping[str, Any], keys: Iterable[str], default: Any = None) -> Any:
    node: Any = config
    for key in keys:
        if not isinstance(node, Mapping) or key not in node:
            return default
        node = node[key]
    return node


def method_name(config: Mapping[str, Any]) -> str:
    """The training method: the `method` section's name where the config has one, else Noise2Noise (`n2n`) or
    its supervised Noise2Clean baseline (`n2c`) from `target`."""
    from n2n.methods import method_section

    return str(method_section(config)["name"])  # `target`, where a config still sets it, names the method


def flat_hparams(config: Mapping[str, Any]) -> dict[str, Any]:
    """The run's choices as `name -> float | str | bool` (the only types the HParams plugin takes; integers as
    text, see the module docstring)."""
    data = _get(config, ("data",), {}) or {}
    noise = dict(_get(config, ("noise",), {}) or {})
    noise_name = noise.pop("name", "none")
    noise.pop("val", None)
    if not noise.get("file_like"):
        noise.pop("file_like", None)  # off: not a choice the run made
    params = {name: _get(config, path) for name, (path, _) in HPARAMS.items()}
    params["method"] = method_name(config)
    # noisy sources (the course's pickles, your own captures): the noise options do not apply to them
    params["noise"] = ("in data" if _noisy_source(data.get("name")) else
                       f"{noise_name}({', '.join(f'{k}={v}' for k, v in noise.items())})")
    # an option the run does not have (momentum for adam) is left out rather than shown as a fake value
    return {k: _simple(v) for k, v in params.items() if v is not None}


def shown_first(overrides: Iterable[str] = ()) -> set[str]:
    """The hyperparameters the HParams table opens on: `method`, `noise` and those the command line sets."""
    keys = {o.split("=", 1)[0].lstrip("+~") for o in overrides if "=" in o}
    return {*ALWAYS_SHOWN, *(name for name, (_, sets) in HPARAMS.items() if keys & set(sets))}


def _noisy_source(name: Any) -> bool:
    from n2n.data.sources import SOURCES

    return name in SOURCES and not SOURCES[name].clean_train


def _simple(value: Any) -> Any:
    if isinstance(value, bool) or isinstance(value, float):
        return value
    if isinstance(value, int):
        return str(value)  # TensorBoard prints every number with five digits: 16 -> "16.000"
    return value if isinstance(value, str) else str(value)  # lists: betas, noise ranges


def hparams_summaries(params: Mapping[str, Any], metrics: Mapping[str, float], first: Iterable[str] = ()) -> list:
    """The HParams plugin's three summaries (experiment, session start, session end) for one run; the experiment
    marks `first` as differing (shown first) and titles the metric columns."""
    from tensorboard.plugins.hparams import plugin_data_pb2
    from torch.utils.tensorboard.summary import hparams

    experiment, start, end = hparams(dict(params), dict(metrics))
    value = experiment.value[0]
    content = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
    first = set(first)
    for info in content.experiment.hparam_infos:
        info.differs = info.name in first
    titles = {tag: title for tag, title in METRICS.values()}
    for info in content.experiment.metric_infos:
        info.display_name = titles.get(info.name.tag, info.name.tag)
    value.metadata.plugin_data.content = content.SerializeToString()
    return [experiment, start, end]


def log_hparams(trainer: Any, config: Mapping[str, Any], metrics: Mapping[str, Any],
                overrides: Iterable[str] = ()) -> None:
    """Write the HParams summary to every TensorBoard logger of `trainer`, after `fit` (the metrics are final);
    `overrides`: the run's command-line options (n2n.config.RunContext.overrides), shown first."""
    # NaN stays: a diverged run must show up in the table, not vanish from it
    values = {tag: float(metrics[key]) for key, (tag, _) in METRICS.items()
              if isinstance(metrics.get(key), (int, float))}
    if not trainer.is_global_zero or not values:  # data-parallel runs: one summary, from the process that owns the logs
        return
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.log_metrics(values, step=trainer.global_step)
            writer = logger.experiment._get_file_writer()
            for summary in hparams_summaries(flat_hparams(config), values, shown_first(overrides)):
                writer.add_summary(summary, trainer.global_step)
            # fit already finalized (closed) the writer; this reopens it, so flush and close it again
            logger.finalize("success")
