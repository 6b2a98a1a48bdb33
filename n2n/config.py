"""The composed config, resolved once at the entry point, and the one place that reads Hydra's runtime state.

`train.py` and `eval.py` call `run_context(cfg)` and `resolve_train_config(cfg, context)` first; everything
after them receives plain dicts in which nothing is left to decide: `auto` precision and channels-last are
what will run on this machine, `auto` data options what the files are (data=pairs: `normalize`), and `ckpt_path`
is a file name. Each builder then takes only its own section (`build_unet(config["model"])`,
`build_noise(config["noise"])`, ...). Defaults live in the YAML files of
`conf/`, not in code: a builder given a section without a key it needs says which key is missing.
"""
from __future__ import annotations

import copy
import shlex
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from omegaconf import DictConfig, OmegaConf, open_dict

from n2n.config_schema import TRAIN_OPTIONS, check_options
from n2n.devices import fast_bf16, training_device
from n2n.errors import CheckpointError, ConfigError

LAST = "last.ckpt"
#: Spellings of "no checkpoint" on the command line.
_EMPTY = ("", "null", "None")


@dataclass(frozen=True)
class RunContext:
    """Where a run writes and how it was launched, read once from Hydra."""

    run_dir: Path
    multirun: bool = False
    sweeper: Mapping[str, Any] = field(default_factory=dict)  #: hydra.sweeper of a multirun, else empty
    overrides: tuple[str, ...] = ()  #: the run's command-line options (a sweep's job: that job's)
    entry_point: str = "train.py"
    #: Hydra's records of the run (.hydra/config.yaml, hydra.yaml, overrides.yaml: file name -> text), written
    #: into the run folder only once the run is accepted there (n2n.training.run_folder.claim): conf/hydra/
    #: sets hydra.output_subdir to null, so that a refused run cannot overwrite another run's records.
    records: Mapping[str, str] = field(default_factory=dict)

    @property
    def checkpoint_dir(self) -> Path:
        return self.run_dir / "checkpoints"

    def resume_command(self, *changing: str) -> str:
        """The command that goes on from this run's last.ckpt: the run's own command-line options (a sweep's
        job: the options of that job) but those named in `changing` (the caller appends new values: Hydra
        refuses an option given twice), then `ckpt_path=last` in this run folder."""
        mine = ("ckpt_path", "hydra.run.dir", "overwrite", *changing)
        kept = [o for o in self.overrides if o.split("=", 1)[0].lstrip("+~") not in mine]
        words = ["python", self.entry_point, *kept, "ckpt_path=last", f"hydra.run.dir={self.run_dir}"]
        return " ".join(shlex.quote(w) for w in words)

    @property
    def optuna(self) -> bool:
        """A job of an Optuna search: n2n's sweeper (hydra/sweeper=n2n_optuna, n2n.search) or, installed by the
        user, hydra-optuna-sweeper's; both classes end in OptunaSweeper."""
        return self.multirun and str(self.sweeper.get("_target_", "")).rsplit(".", 1)[-1].endswith("OptunaSweeper")


def run_context(cfg: DictConfig | Mapping[str, Any] | None = None) -> RunContext:
    """The run folder (Hydra's output_dir; without Hydra, e.g. from a notebook, `output_dir`, `paths.output_dir`
    or outputs/manual) and, in a multirun, the sweeper's settings."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        paths = (cfg or {}).get("paths") or {}
        return RunContext(Path((cfg or {}).get("output_dir") or paths.get("output_dir") or "outputs/manual"))
    hydra = HydraConfig.get()
    multirun = hydra.mode == RunMode.MULTIRUN
    sweeper = OmegaConf.to_container(hydra.sweeper, resolve=False) if multirun else {}
    entry = sys.argv[0] if sys.argv and sys.argv[0].endswith(".py") else "train.py"
    return RunContext(Path(hydra.runtime.output_dir), multirun, sweeper, tuple(hydra.overrides.task), entry,
                      hydra_records(cfg, hydra) if isinstance(cfg, DictConfig) else {})


def hydra_records(cfg: DictConfig, hydra: DictConfig) -> dict[str, str]:
    """What Hydra itself writes to <run folder>/.hydra/ (with hydra.output_subdir set), as texts."""
    overrides = list(hydra.overrides.task)
    return {"config.yaml": OmegaConf.to_yaml(cfg),
            "hydra.yaml": OmegaConf.to_yaml(OmegaConf.create({"hydra": OmegaConf.to_container(hydra)})),
            "overrides.yaml": OmegaConf.to_yaml(OmegaConf.create(overrides))}


def to_plain(cfg: DictConfig | Mapping[str, Any]) -> dict[str, Any]:
    """The config as plain, fully resolved dicts (a missing required value raises)."""
    if isinstance(cfg, DictConfig):
        return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    return dict(cfg)


def resolve_speed(config: dict[str, Any]) -> dict[str, Any]:
    """Decides `trainer.precision=auto` and `perf.channels_last=auto` for the training device, in place:
    bf16 mixed precision where bfloat16 arithmetic is native (x86 CPUs with AMX-BF16 or AVX512-BF16, CUDA GPUs
    from Ampere on), float32 elsewhere; channels-last together with bf16 (oneDNN's and cuDNN's fast bf16
    convolutions want it). The config then records what ran, for checkpoints and `config.yaml`."""
    trainer = config.get("trainer")
    if isinstance(trainer, dict) and trainer.get("precision") == "auto":
        trainer["precision"] = "bf16-mixed" if fast_bf16(training_device(trainer)) else "32-true"
    perf = config.get("perf")
    if isinstance(perf, dict) and perf.get("channels_last") == "auto":
        perf["channels_last"] = str((trainer or {}).get("precision")) == "bf16-mixed"
    return config


def resolve_method(config: dict[str, Any]) -> dict[str, Any]:
    """The old `target` option turned into the method it names (target=noisy: method=n2n, target=clean:
    method=n2c), in place; `target` is then null, so that config.yaml records one way of saying it. The
    method's options are checked here, before any work."""
    from n2n.methods import build_method, method_section

    if config.get("target") is not None or isinstance(config.get("method"), Mapping):
        config["method"] = method_section(config)
        config["target"] = None
        build_method(config["method"])
    return config


def resolve_ckpt_path(value: Any, run_dir: Path, multirun: bool = False) -> str | None:
    """`ckpt_path` as a file name: `last` is `<run folder>/checkpoints/last.ckpt` (the run folder is the one
    Hydra writes to, so `ckpt_path=last hydra.run.dir=RUN` resumes RUN in place). In a sweep, `last` resumes
    the jobs that had written a checkpoint and starts the others afresh: one command resumes a whole sweep."""
    if value is None or str(value).strip() in _EMPTY:
        return None
    value = str(value)
    if value == "last":
        path = run_dir / "checkpoints" / LAST
        if not path.is_file() and multirun:
            print(f"ckpt_path=last: {run_dir} has no checkpoint yet; this job starts from the beginning", flush=True)
            return None
        if not path.is_file():
            raise CheckpointError(
                f"ckpt_path=last: {path} does not exist. ckpt_path=last resumes the run folder given with "
                f"hydra.run.dir=RUN_FOLDER (here {run_dir}): name a folder that train.py wrote and that holds "
                f"checkpoints/{LAST}, or give ckpt_path=PATH/TO/FILE.ckpt")
        _resuming_in_place()
        return str(path)
    path = Path(value)
    if path.is_dir():
        raise CheckpointError(f"ckpt_path={value} is a folder; give a .ckpt file written by train.py "
                              f"(e.g. {path / 'checkpoints' / LAST}) or ckpt_path=last with hydra.run.dir={value}")
    if not path.is_file():
        raise CheckpointError(f"ckpt_path={value} does not exist (expected a .ckpt file written by train.py, "
                              f"or ckpt_path=last with hydra.run.dir=RUN_FOLDER)")
    if path.resolve().parent == (run_dir / "checkpoints").resolve():
        _resuming_in_place()
    return str(path)


def _resuming_in_place() -> None:
    # ModelCheckpoint warns about a non-empty checkpoint folder: here that is the run being resumed
    warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")


def resolve_train_config(cfg: DictConfig | Mapping[str, Any], context: RunContext) -> dict[str, Any]:
    """The training config with nothing left to decide (see the module docstring)."""
    config = to_plain(with_output_dir(cfg, context.run_dir))
    check_options(config, TRAIN_OPTIONS)  # every option's type and range, before anything else
    config = resolve_method(config)
    config = resolve_speed(config)
    from n2n.data.sources import resolve_data  # e.g. data.normalize=auto of data=pairs: from its files

    config = resolve_data(config)
    config["ckpt_path"] = resolve_ckpt_path(config.get("ckpt_path"), context.run_dir, context.multirun)
    return config


def resolve_eval_config(cfg: DictConfig | Mapping[str, Any]) -> dict[str, Any]:
    """eval.py's config as plain dicts, every option's type and range checked (EVAL_OPTIONS): the evaluation
    reads only this, never the Hydra object. Data and noise may stay unset (a checkpoint supplies them)."""
    from n2n.config_schema import EVAL_OPTIONS

    if isinstance(cfg, DictConfig):
        cfg = OmegaConf.to_container(_without_model_links(cfg), resolve=True, throw_on_missing=False)
    config = dict(cfg)
    check_options(config, EVAL_OPTIONS)
    return config


def _without_model_links(cfg: DictConfig) -> DictConfig:
    """eval.py's `model` is a file, not a model section: data options that follow the model
    (conf/data/volumes.yaml: `dims: ${model.dims}`) are dropped, and the evaluated network decides them."""
    data = cfg.get("data")
    if not isinstance(data, DictConfig) or isinstance(cfg.get("model"), DictConfig):
        return cfg
    links = [k for k in data if OmegaConf.is_interpolation(data, k)
             and str(data._get_node(k)._value()).startswith("${model.")]
    if not links:
        return cfg
    cfg = copy.deepcopy(cfg)
    with open_dict(cfg):
        for key in links:
            del cfg.data[key]
    return cfg


def with_output_dir(cfg: DictConfig | dict[str, Any], run_dir: Path) -> DictConfig | dict[str, Any]:
    """`paths.output_dir` (null in conf/paths/default.yaml) set to the run folder, so that `${paths.output_dir}`
    names this run's folder in any option and config.yaml records it. A DictConfig is copied (its interpolations
    resolve afterwards), a plain dict is set in place. Another folder there is refused: Hydra chooses the run
    folder (hydra.run.dir)."""
    if isinstance(cfg, DictConfig):
        if "paths" not in cfg:
            return cfg
        given = OmegaConf.select(cfg, "paths.output_dir", default=None)
        if given is None:
            cfg = copy.deepcopy(cfg)
            OmegaConf.update(cfg, "paths.output_dir", str(run_dir))
        _same_folder(given, run_dir)
        return cfg
    paths = cfg.get("paths")
    if isinstance(paths, dict):
        if paths.get("output_dir") is None:
            paths["output_dir"] = str(run_dir)
        _same_folder(paths["output_dir"], run_dir)
    return cfg


def _same_folder(given: Any, run_dir: Path) -> None:
    if isinstance(given, str) and given.strip() and Path(given).resolve() != Path(run_dir).resolve():
        raise ConfigError(f"paths.output_dir={given} is not this run's folder ({run_dir}): it names the run folder "
                          f"and is filled in by train.py; choose the folder with hydra.run.dir=DIR (or the parent "
                          f"of all run folders with paths.log_dir=DIR)")


def section(config: Mapping[str, Any], name: str) -> dict[str, Any]:
    """`config[name]` as a dict; ConfigError if the composed config has no such section."""
    value = config.get(name)
    if not isinstance(value, Mapping):
        raise ConfigError(f"the config has no '{name}' section (conf/train.yaml composes one from the {name}/ "
                          f"group); got {value!r}")
    return dict(value)


def require(cfg: Mapping[str, Any], key: str, where: str) -> Any:
    """`cfg[key]`, or ConfigError naming `where.key` when the section lacks it (defaults live in conf/)."""
    if key not in cfg:
        raise ConfigError(f"{where}.{key} is missing (its default is in conf/; a hand-made config must set it)")
    return cfg[key]
