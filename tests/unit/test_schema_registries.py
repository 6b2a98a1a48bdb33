"""The option table names no component itself: each `*.name` option is a choice among its registry's names,
so a new noise model, loss, data source, activation, norm, optimiser, schedule or logger is checked as soon as
its registry has it; and every config file of a group names something its registry knows."""
from __future__ import annotations

import yaml

import n2n.config_schema as schema
from helpers.runs import ROOT
from n2n.config_schema import TRAIN_OPTIONS, Option, check_options, registry_names
from n2n.data.sources import SOURCES
from n2n.losses import LOSSES
from n2n.models.layers import ACTIVATIONS, NORMS
from n2n.noise import NOISE_MODELS
from n2n.optim import OPTIMIZERS, SCHEDULES
from n2n.training.loggers import LOGGERS

REGISTRIES = {"data.name": SOURCES, "noise.name": NOISE_MODELS, "model.activation.name": ACTIVATIONS,
              "model.norm.name": NORMS, "loss.name": LOSSES, "optimizer.name": OPTIMIZERS,
              "scheduler.name": SCHEDULES, "logger.name": LOGGERS}
#: conf/ group of each option (model.activation is chosen by `activation=`)
GROUPS = {"data.name": "data", "noise.name": "noise", "model.activation.name": "activation",
          "model.norm.name": "norm", "loss.name": "loss", "optimizer.name": "optimizer",
          "scheduler.name": "scheduler", "logger.name": "logger", "aug.name": "aug"}


def test_every_name_option_is_its_registry():
    for key, registry in REGISTRIES.items():
        assert TRAIN_OPTIONS[key].allowed() == tuple(registry), key
    assert TRAIN_OPTIONS["aug.name"].allowed() == tuple(sorted(p.stem for p in (ROOT / "conf/aug").glob("*.yaml")))


def test_no_name_option_is_a_retyped_list():
    retyped = [k for k, o in TRAIN_OPTIONS.items() if k.endswith(".name") and o.kind == "choice" and not o.registry]
    assert not retyped, f"options whose names are typed in config_schema.py instead of read from a registry: {retyped}"


def test_every_config_file_names_what_its_registry_knows():
    for key, group in GROUPS.items():
        for path in sorted((ROOT / "conf" / group).glob("*.yaml")):
            name = (yaml.safe_load(path.read_text()) or {}).get("name")
            assert name in TRAIN_OPTIONS[key].allowed(), f"{path.relative_to(ROOT)}: name {name!r} is not registered"


def test_a_new_registry_entry_is_accepted_without_touching_the_table(monkeypatch):
    monkeypatch.setitem(NOISE_MODELS, "speckle", object)
    registry_names.cache_clear()
    try:
        check_options({"noise": {"name": "speckle"}}, TRAIN_OPTIONS)
    finally:
        monkeypatch.undo()
        registry_names.cache_clear()
    assert isinstance(schema.Names("n2n.noise:NOISE_MODELS"), Option)
