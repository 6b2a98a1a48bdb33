"""The type and range of every option of train.py and eval.py, checked in one place before any work.

Each leaf of the composed config has an entry in TRAIN_OPTIONS (EVAL_OPTIONS for eval.py) by its dotted key;
`check_options` walks the config and turns the first value of the wrong type or out of range into one
ConfigError naming the option and what it allows. A leaf without an entry is an error in the test suite
(tests/unit/test_option_table.py), so an option added to conf/ cannot go unchecked. The builders still check
what needs the data (files, sizes); values passed through to Lightning and PyTorch are checked here too, so
they never reach those libraries in a form that ends in a traceback.
"""
from __future__ import annotations

import functools
import importlib
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from n2n.errors import ConfigError

#: Bytes per training pixel that the U-Net needs at the least: the tensors it saves for the backward pass alone
#: take 2.9 KB per pixel in float32 (measured with torch.autograd.graph.saved_tensors_hooks on the paper's
#: U-Net), about half that in bf16-mixed. The bound is below both, so only batches that cannot fit are refused.
ACTIVATION_BYTES_PER_PIXEL = 1024


@dataclass(frozen=True)
class Option:
    """What one option takes. `kind`: int, float, bool, str, path, choice, number_or_range, list_of_str,
    pair_of_float, batches (Lightning's count-or-fraction: an integer, or a float in [lo, 1]), duration
    (DD:HH:MM:SS). `lo`/`hi`: inclusive bounds (`lo_open`: lo excluded). `extra`: values allowed besides the
    range (e.g. -1 for "no limit"). `null`: None allowed."""

    kind: str
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    null: bool = False
    choices: tuple = ()
    extra: tuple = ()
    registry: str = ""  #: a choice among a registry's names, "module:ATTRIBUTE" (see Names), before `choices`

    def allowed(self) -> tuple:
        """The values of a choice: the registry's names (imported when first needed), then `choices`."""
        return (registry_names(self.registry) if self.registry else ()) + tuple(self.choices)

    def describe(self) -> str:
        if self.kind == "choice":
            allowed = " | ".join(str(c).lower() if isinstance(c, bool) else str(c) for c in self.allowed())
        elif self.kind in ("int", "float", "number_or_range", "int_or_triple"):
            what = {"int": "an integer", "float": "a number", "number_or_range": "a number or [low, high]",
                    "int_or_triple": "an integer or [z, y, x] integers"}[self.kind]
            bounds = []
            if self.lo is not None:
                bounds.append(f"{'>' if self.lo_open else '>='} {number(self.lo)}")
            if self.hi is not None:
                bounds.append(f"<= {number(self.hi)}")
            allowed = what + (" " + " and ".join(bounds) if bounds else "")
            if self.extra:
                allowed += " (or " + ", ".join(map(str, self.extra)) + ")"
        elif self.kind == "batches":
            allowed = (f"a number of batches (an integer >= {1 if self.lo_open else 0}) or a fraction of them (a "
                       f"number {'>' if self.lo_open else '>='} 0 and <= 1)")
        else:
            allowed = {"duration": "a duration DD:HH:MM:SS (e.g. 00:12:00:00)",
                       "bool": "true or false", "str": "a string", "path": "a file or folder path",
                       "list_of_str": "a list of names", "pair_of_float": "[a, b] with 0 <= a, b < 1"}[self.kind]
        return allowed + (", or null" if self.null else "")


def number(x: float) -> str:
    """A bound as people write it: 4294967295, not 4.29497e+09; 0.5, not 0.500000."""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return (_is_int(v) or isinstance(v, float)) and math.isfinite(v)


def _in_range(option: Option, v: float) -> bool:
    if option.lo is not None and (v <= option.lo if option.lo_open else v < option.lo):
        return False
    return option.hi is None or v <= option.hi


def valid(option: Option, v: Any) -> bool:
    if v is None:
        return option.null
    if any(v == e and type(v) is type(e) for e in option.extra):
        return True
    kind = option.kind
    if kind == "int":
        return _is_int(v) and _in_range(option, v)
    if kind == "float":
        return _is_number(v) and _in_range(option, v)
    if kind == "int_or_triple":
        if isinstance(v, (list, tuple)):
            return len(v) == 3 and all(_is_int(x) and _in_range(option, x) for x in v)
        return _is_int(v) and _in_range(option, v)
    if kind == "number_or_range":
        if isinstance(v, (list, tuple)):
            return (len(v) == 2 and all(_is_number(x) and _in_range(option, x) for x in v) and v[0] <= v[1])
        return _is_number(v) and _in_range(option, v)
    if kind == "batches":
        if _is_int(v):
            return v >= (1 if option.lo_open else 0)
        return isinstance(v, float) and math.isfinite(v) and _in_range(option, v)
    if kind == "duration":
        return isinstance(v, str) and re.fullmatch(r"\d+:\d{1,2}:\d{1,2}:\d{1,2}", v.strip()) is not None
    if kind == "bool":
        return isinstance(v, bool)
    if kind in ("str", "path"):
        return isinstance(v, str) and v.strip() != ""
    if kind == "choice":
        return any(v == c and type(v) is type(c) for c in option.allowed())
    if kind == "list_of_str":
        return isinstance(v, (list, tuple)) and len(v) > 0 and all(isinstance(x, str) for x in v)
    if kind == "pair_of_float":
        return (isinstance(v, (list, tuple)) and len(v) == 2
                and all(_is_number(x) and 0 <= x < 1 for x in v))
    raise AssertionError(f"unknown option kind {kind}")


def Int(lo=None, hi=None, **kw) -> Option:  # noqa: N802 - read as a type in the tables below
    return Option("int", lo, hi, **kw)


def Float(lo=None, hi=None, **kw) -> Option:  # noqa: N802
    return Option("float", lo, hi, **kw)


def Choice(*choices, **kw) -> Option:  # noqa: N802
    return Option("choice", choices=choices, **kw)


def Names(registry: str, **kw) -> Option:  # noqa: N802
    """A choice among the names of a registry, "module:ATTRIBUTE" (a mapping or sequence of names), or
    "conf:GROUP" for the config files of a group that has no code registry (conf/GROUP/*.yaml). Read when
    first checked, so that the table names no component itself: a new noise model, loss, data source (or
    method: "n2n.methods:METHODS") is its module's registry entry and its YAML, and nothing here."""
    return Option("choice", registry=registry, **kw)


@functools.lru_cache(maxsize=None)
def registry_names(registry: str) -> tuple[str, ...]:
    where, _, attribute = registry.partition(":")
    if where == "conf":
        folder = Path(__file__).resolve().parents[1] / "conf" / attribute
        return tuple(sorted(p.stem for p in folder.glob("*.yaml")))
    return tuple(getattr(importlib.import_module(where), attribute))


BOOL, PATH, STR = Option("bool"), Option("path"), Option("str")
PATH_OR_NULL = Option("path", null=True)
SEED = Int(0, 2**32 - 1)
BATCH = Int(1)
STEPS_OR_NULL = Int(1, null=True)
PROBABILITY_OR_RANGE = Option("number_or_range", 0, 1)

_DATA = {
    "data.name": Names("n2n.data.sources:SOURCES"),
    "data.channels": Choice(1, 3),
    "data.crop_size": Option("int_or_triple", 1),  # images: one side (a multiple of 32); volumes: or [z, y, x]
    "data.batch_size": BATCH,
    "data.steps_per_epoch": STEPS_OR_NULL,
    "data.val_batch_size": BATCH,
    "data.val_limit": STEPS_OR_NULL,
    "data.val_seed": SEED,
    "data.train_images": Option("list_of_str"),
    "data.val_images": Option("list_of_str"),
    "data.train_dir": PATH, "data.val_dir": PATH_OR_NULL,
    "data.train_path": PATH, "data.val_path": PATH,
    "data.train_limit": STEPS_OR_NULL,
    "data.dir": PATH, "data.dir_a": PATH, "data.dir_b": PATH,
    "data.val_dir_a": PATH_OR_NULL, "data.val_dir_b": PATH_OR_NULL, "data.val_clean_dir": PATH_OR_NULL,
    "data.val_fraction": Float(0, 0.5, lo_open=True, null=True),
    "data.frame_split": Choice("random", "even_odd"),
    "data.noise_draws": Choice("fresh", "fixed"),
    "data.max_pixels": Int(1, null=True),  # null: n2n.image_files.limits.DEFAULT_MAX_PIXELS
    "data.val_slab": Float(0, 0.5, lo_open=True), "data.val_axis": Choice("z", "y", "x"),
    "data.tilt_axis": Choice("z", "y", "x", null=True), "data.normalize": Choice("auto", "mean_std", null=True),
    "data.dims": Choice(2, 3), "data.depth": Int(1, 5),
}
_NOISE = {
    "noise.name": Names("n2n.noise:NOISE_MODELS"),
    "noise.sigma": Option("number_or_range", 0, 1000),
    "noise.lam": Option("number_or_range", 0, 1e9, lo_open=True),
    "noise.p": PROBABILITY_OR_RANGE,
    "noise.coverage": Option("number_or_range", 0, 0.9),
    "noise.bits": Choice(0, 8, 16),
    "noise.file_like": Float(0, 1),  # fraction of inputs clipped and rounded as an 8-bit file holds them
}
_MODEL = {
    "model.in_channels": Choice(1, 3), "model.out_channels": Choice(1, 3),
    "model.init": Choice("he", "torch"),
    "model.dims": Choice(2, 3), "model.depth": Int(1, 5), "model.features": Int(1, 512),
    "model.activation.name": Names("n2n.models.layers:ACTIVATIONS"),
    "model.activation.negative_slope": Float(0, 1),
    "model.activation.init": Float(0, 1),
    "model.norm.name": Names("n2n.models.layers:NORMS"),
    "model.norm.momentum": Float(0, 1, lo_open=True),
}
_AUG = {
    "aug.name": Names("conf:aug"),  # presets of PairedAugment's switches: the names are the files
    "aug.flip": BOOL, "aug.swap": BOOL, "aug.color": BOOL,
    "aug.brightness": Float(0, 1), "aug.hue": Float(0, 0.5), "aug.levels": Float(0, 1),
}
_LOSS = {
    "loss.name": Names("n2n.losses:LOSSES"),
    "loss.ignore_dropped": BOOL,
    "loss.eps": Float(0, 1, lo_open=True),
    "loss.gamma_start": Float(0, 100, lo_open=True), "loss.gamma_end": Float(0, 100),
}
_OPTIMIZER = {
    "optimizer.name": Names("n2n.optim:OPTIMIZERS"),
    "optimizer.lr": Float(0, lo_open=True),
    "optimizer.betas": Option("pair_of_float"),
    "optimizer.eps": Float(0, 1, lo_open=True),
    "optimizer.weight_decay": Float(0, 1),
    "optimizer.momentum": Float(0, 1),
    "optimizer.nesterov": BOOL,
    "optimizer.fused": Choice("auto", True, False),
}
_SCHEDULER = {
    "scheduler.name": Names("n2n.optim:SCHEDULES"),
    "scheduler.fraction": Float(0, 1), "scheduler.warmup": Float(0, 1), "scheduler.min_factor": Float(0, 1),
}
_TRAINER = {
    "trainer.accelerator": Choice("auto", "cpu", "gpu", "cuda"),
    "trainer.devices": Option("int", 1, extra=("auto", -1)),
    "trainer.num_nodes": Int(1),
    # not ddp_spawn: its processes train in children whose steps and validations never reach the run's
    # metrics.json (it recorded "0 steps"); ddp is the same training with processes started by the command line
    "trainer.strategy": Choice("auto", "ddp", "ddp_find_unused_parameters_true"),
    "trainer.sync_batchnorm": BOOL,
    "trainer.max_epochs": Int(1, extra=(-1,), null=True),  # null: Lightning's 1000 (unlimited with max_steps)
    "trainer.max_steps": Int(1, extra=(-1,)),
    "trainer.precision": Choice("auto", "32-true", "32", 32, "16-mixed", "16", 16, "bf16-mixed", "bf16", "16-true",
                                "bf16-true", "64-true", "64", 64),
    "trainer.log_every_n_steps": Int(1),
    "trainer.check_val_every_n_epoch": Int(1, null=True),
    "trainer.val_check_interval": Option("batches", 0, 1, lo_open=True, null=True),
    "trainer.limit_train_batches": Option("batches", 0, 1, lo_open=True, null=True),
    "trainer.limit_val_batches": Option("batches", 0, 1, null=True),
    "trainer.num_sanity_val_steps": Int(0, extra=(-1,)),
    "trainer.gradient_clip_val": Float(0, lo_open=True, null=True),
    "trainer.deterministic": Choice(True, False, "warn", null=True),
    "trainer.enable_progress_bar": BOOL,
    "trainer.enable_model_summary": BOOL,
    # the rest of lightning.Trainer's arguments (conf/trainer/default.yaml lists them all, at Lightning's defaults)
    "trainer.fast_dev_run": Option("int", 0, extra=(True, False)),
    "trainer.min_epochs": Int(0, null=True),
    "trainer.min_steps": Int(0, null=True),
    "trainer.max_time": Option("duration", null=True),  # a mapping ({hours: 1}) goes to Lightning as is
    "trainer.limit_test_batches": Option("batches", 0, 1, null=True),
    "trainer.limit_predict_batches": Option("batches", 0, 1, null=True),
    "trainer.overfit_batches": Option("batches", 0, 1),
    "trainer.enable_checkpointing": Option("bool", null=True),
    "trainer.accumulate_grad_batches": Int(1),
    "trainer.gradient_clip_algorithm": Choice("norm", "value", null=True),
    "trainer.benchmark": Option("bool", null=True),
    "trainer.inference_mode": BOOL,
    "trainer.use_distributed_sampler": BOOL,
    "trainer.profiler": Choice("simple", "advanced", "pytorch", null=True),  # not xla: TPUs only (torch_xla)
    "trainer.detect_anomaly": BOOL,
    "trainer.barebones": BOOL,
    "trainer.reload_dataloaders_every_n_epochs": Int(0),
    "trainer.enable_autolog_hparams": BOOL,
    "trainer.model_registry": Option("str", null=True),
}
_CALLBACKS = {
    "callbacks.checkpoint.monitor": Choice("val/psnr", "val/ssim", "val/n2n_loss", "val/self_loss", "train/loss"),
    "callbacks.checkpoint.mode": Choice("max", "min"),
    "callbacks.checkpoint.save_last": BOOL,
    "callbacks.checkpoint.save_top_k": Int(0, extra=(-1,)),
    "callbacks.early_stopping": Option("str", null=True),  # a mapping; checked by the callback's builder
    "callbacks.lr_monitor": BOOL,
    "callbacks.divergence_guard": Option("int", 1, extra=(True, False)),
    "callbacks.interrupt_checkpoint": BOOL,
    "callbacks.progress_bar_refresh_rate": Int(1),
    "callbacks.ema": Float(0, 1, lo_open=True, null=True),  # decay of the weights' moving average; null: off
}
_PATHS = {
    "paths.root_dir": PATH, "paths.data_dir": PATH, "paths.log_dir": PATH,
    "paths.output_dir": PATH_OR_NULL,  # null until train.py sets it to the run folder
}
_TOP = {
    "seed": SEED,
    "method": Option("str", null=True),  # a mapping, checked by its builder (see _OPAQUE)
    "target": Choice("noisy", "clean", null=True),  # the old spelling of method=n2n / method=n2c
    "ckpt_path": PATH_OR_NULL,
    "init_from": PATH_OR_NULL,  # a bundled model's name, .safetensors or .ckpt: the weights to fine-tune
    "overwrite": BOOL,
    "log_images": Int(0),
    "print_config": BOOL,
    "note": Option("str", null=True),
    "logger.name": Names("n2n.training.loggers:LOGGERS"),
    "logger.tracking_uri": Option("str", null=True),  # mlflow: a file:, sqlite:, http(s): ... URI
    "logger.experiment_name": Option("str", null=True),
    "logger.run_name": Option("str", null=True),
    "logger.project": STR,  # wandb
    "logger.group": Option("str", null=True),
    "logger.offline": BOOL,
    "perf.channels_last": Choice("auto", True, False),
    "perf.compile": Choice(False, "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"),
    "perf.cuda_graph": BOOL,
}

TRAIN_OPTIONS: dict[str, Option] = {**_TOP, **_DATA, **_NOISE, **_MODEL, **_AUG, **_LOSS, **_OPTIMIZER,
                                    **_SCHEDULER, **_TRAINER, **_CALLBACKS, **_PATHS}

EVAL_OPTIONS: dict[str, Option] = {
    "ckpt_path": PATH_OR_NULL, "model": PATH_OR_NULL,
    "device": Choice("auto", "cpu", "cuda"),
    "tile": Int(352, null=True),  # at least 2 x the default overlap (128) + 32
    "max_memory": Option("str", null=True),  # a size, e.g. 8G: parsed by n2n.volumes.denoise.parse_memory
    "save_images": BOOL,
    "declip": BOOL,
    "num_comparisons": Int(0),
    "max_pixels": Int(1, null=True),
    "overwrite": BOOL,
    **_DATA, **_NOISE, **_PATHS,
}

#: Sections whose content is a free mapping checked by its own builder (not leaf by leaf): `method` by the
#: method's class (n2n/methods/), whose keyword parameters are its options, each checked with its range.
_OPAQUE = ("callbacks.early_stopping", "noise.val", "method")


def leaves(config: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """(dotted key, value) of every leaf of a nested config."""
    out = []
    for key, value in config.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and path not in _OPAQUE:
            out.extend(leaves(value, path + "."))
        else:
            out.append((path, value))
    return out


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return value
    return repr(value)


def check_options(config: Mapping[str, Any], table: Mapping[str, Option],
                  skip: Sequence[str] = ("hydra",)) -> None:
    """ConfigError for the first option of `config` that `table` does not allow (see the module docstring)."""
    given = dict(leaves(config))
    # in the table's order: data.channels is named before model.in_channels, which interpolates it
    for key, option in table.items():
        if key not in given or key.split(".")[0] in skip:
            continue  # options outside the table are refused by their own section's builder
        value = given[key]
        if key in _OPAQUE and value is not None and not isinstance(value, Mapping):
            example = "{name: n2v}" if key == "method" else "{monitor: val/psnr, mode: max}"
            raise ConfigError(f"{key}={_shown(value)} must be a mapping (e.g. {example}) or null")
        if key in _OPAQUE:
            continue
        if not valid(option, value):
            raise ConfigError(f"{key}={_shown(value)} is not allowed: it must be {option.describe()}")


def check_machine(config: Mapping[str, Any]) -> None:
    """What this machine must offer the run: the accelerator asked for, and memory for a batch's activations.
    Called by the run itself (not when a config is only composed or resolved, e.g. a GPU recipe on a laptop)."""
    _accelerator_present(config)
    _batch_fits(config)


def _accelerator_present(config: Mapping[str, Any]) -> None:
    trainer = config.get("trainer") or {}
    if trainer.get("accelerator") in ("gpu", "cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(f"trainer.accelerator={trainer['accelerator']}: no CUDA GPU is visible on this machine; "
                              f"use trainer.accelerator=cpu (or auto)")
        devices = trainer.get("devices")
        if _is_int(devices) and devices > torch.cuda.device_count():
            raise ConfigError(f"trainer.devices={devices}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")


def _batch_fits(config: Mapping[str, Any]) -> None:
    data = config.get("data") or {}
    # sources without crops (ee559) train on whole pairs, which the network pads to at least 32 x 32
    batch, crop = data.get("batch_size"), data.get("crop_size", 32)
    if not (_is_int(batch) and _is_int(crop)):
        return
    needed = batch * crop * crop * ACTIVATION_BYTES_PER_PIXEL
    available = _memory_bytes(config)
    if available and needed > available:
        raise ConfigError(f"data.batch_size={batch} with {crop}x{crop} crops needs at least "
                          f"{needed / 2**30:,.1f} GiB for the network's activations; this machine has "
                          f"{available / 2**30:,.1f} GiB: lower data.batch_size or data.crop_size")


def _memory_bytes(config: Mapping[str, Any]) -> int | None:
    trainer = config.get("trainer") or {}
    if trainer.get("accelerator") in ("gpu", "cuda"):
        import torch

        return torch.cuda.get_device_properties(0).total_memory if torch.cuda.is_available() else None
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None

