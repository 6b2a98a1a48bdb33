"""conf/trainer/default.yaml lists every argument of lightning.Trainer, so that any of them is set without `+`
(trainer.fast_dev_run=true), at Lightning's own default unless n2n chose otherwise; a new Lightning argument
fails here until it is listed (with an entry in the option table, n2n/config_schema.py)."""
from __future__ import annotations

import inspect

import lightning as L
import pytest
import yaml

from helpers.runs import ROOT, compose_train, resolved
from n2n.config_schema import TRAIN_OPTIONS

TRAINER_CONF = ROOT / "conf" / "trainer"
#: Arguments n2n builds itself: the logger/ and callbacks/ groups, its checkpoint writer, the run folder.
BUILT_BY_N2N = {"logger", "callbacks", "plugins", "default_root_dir"}
#: Where conf/trainer/default.yaml departs from Lightning's default on purpose (each marked `n2n` there).
N2N_CHOICES = {"devices": 1, "precision": "auto", "max_epochs": 6, "num_sanity_val_steps": 1,
               "log_every_n_steps": 25, "enable_progress_bar": True, "enable_model_summary": False,
               "deterministic": False}


def listed() -> dict:
    return yaml.safe_load((TRAINER_CONF / "default.yaml").read_text())


def lightning_defaults() -> dict:
    return {name: p.default for name, p in inspect.signature(L.Trainer).parameters.items()}


def test_default_yaml_lists_every_lightning_trainer_argument():
    arguments = set(lightning_defaults())
    missing = sorted(arguments - BUILT_BY_N2N - set(listed()))
    unknown = sorted(set(listed()) - arguments)
    assert not missing, (f"lightning.Trainer arguments missing from conf/trainer/default.yaml (add each with "
                         f"Lightning's default and an entry in n2n/config_schema.py): {missing}")
    assert not unknown, f"conf/trainer/default.yaml lists what lightning.Trainer does not take: {unknown}"


def test_listed_values_are_lightnings_defaults_except_n2ns_choices():
    defaults = lightning_defaults()
    differ = {k: (v, defaults[k]) for k, v in listed().items()
              if k not in N2N_CHOICES and (v != defaults[k] or type(v) is not type(defaults[k]))}
    assert not differ, f"(listed, Lightning's) where n2n means to keep Lightning's default: {differ}"
    assert {k: listed()[k] for k in N2N_CHOICES} == N2N_CHOICES


def test_every_trainer_argument_has_a_type_and_range():
    assert not sorted(f"trainer.{k}" for k in listed() if f"trainer.{k}" not in TRAIN_OPTIONS)


@pytest.mark.parametrize("choice", sorted(p.stem for p in TRAINER_CONF.glob("*.yaml") if p.stem != "default"))
def test_every_other_trainer_choice_starts_from_default(choice):
    assert yaml.safe_load((TRAINER_CONF / f"{choice}.yaml").read_text())["defaults"] == ["default"]
    composed = compose_train([f"trainer={choice}"]).trainer
    assert set(composed) == set(listed())


def test_any_trainer_flag_is_set_without_plus():
    trainer = resolved(["trainer.fast_dev_run=true", "trainer.accumulate_grad_batches=2",
                        "trainer.gradient_clip_algorithm=value", "trainer.max_time=00:01:00:00"])["trainer"]
    assert trainer["fast_dev_run"] is True and trainer["accumulate_grad_batches"] == 2
    assert trainer["gradient_clip_algorithm"] == "value" and trainer["max_time"] == "00:01:00:00"


def test_the_defaults_build_lightnings_default_trainer(tmp_path):
    """Listing the defaults changed nothing: n2n's Trainer has the same settings with and without them."""
    from n2n.config import RunContext
    from n2n.training.run import build_trainer

    config = resolved(["trainer.accelerator=cpu", "logger=none"], tmp_path)
    built = {}
    for options in (config["trainer"], {k: v for k, v in config["trainer"].items() if k in N2N_CHOICES
                                        or k in ("accelerator", "precision")}):
        trainer, _ = build_trainer({**config, "trainer": options}, RunContext(tmp_path))
        built[len(options)] = {name: str(getattr(trainer, name, None)) for name in (
            "fast_dev_run", "max_epochs", "min_epochs", "max_steps", "min_steps", "limit_train_batches",
            "limit_val_batches", "overfit_batches", "val_check_interval", "check_val_every_n_epoch",
            "num_sanity_val_steps", "log_every_n_steps", "accumulate_grad_batches", "gradient_clip_val",
            "gradient_clip_algorithm", "world_size", "precision", "barebones")}
        built[len(options)]["inference_mode"] = str(trainer.validate_loop.inference_mode)
        built[len(options)]["profiler"] = type(trainer.profiler).__name__
        built[len(options)]["checkpointing"] = type(trainer.checkpoint_callback).__name__
    full, bare = built.values()
    assert full == bare
