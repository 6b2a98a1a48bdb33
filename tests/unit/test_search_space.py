"""The Optuna search's configuration: Hydra's sweep grammar as Optuna distributions, override text that Hydra
reads back, samplers and pruners by name, storage options."""
from __future__ import annotations

import optuna
import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from optuna.distributions import (
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from n2n.errors import ConfigError
from n2n.search.algorithms import build_pruner, build_sampler
from n2n.search.space import encode, parse
from n2n.search.storage import shown, storage_of


def test_the_seed_table1_space():
    space = parse(["activation=choice(leaky_relu, relu)", "norm=none,batch",
                   "optimizer.lr=tag(log, interval(1e-4, 0.1))", "optimizer.momentum=interval(0, 0.95)"])
    d = space.distributions
    assert d["activation"] == CategoricalDistribution(["leaky_relu", "relu"])
    assert d["norm"] == CategoricalDistribution(["none", "batch"])  # Hydra's simple a,b form
    assert d["optimizer.lr"] == FloatDistribution(1e-4, 0.1, log=True)
    assert d["optimizer.momentum"] == FloatDistribution(0.0, 0.95)
    assert space.fixed == []


def test_ranges_hold_the_values_hydra_yields():
    d = parse(["a=range(1,5)", "b=range(0,10,step=3)", "c=range(0,1,step=0.25)", "d=tag(log, range(1,100))",
               "e=shuffle(range(3))", "f=range(5,1,-1)"]).distributions
    assert d["a"] == IntDistribution(1, 4)  # stop is excluded, as in Python and Hydra
    assert d["b"] == IntDistribution(0, 9, step=3)
    assert d["c"] == FloatDistribution(0.0, 0.75, step=0.25)
    assert d["d"] == IntDistribution(1, 99, log=True)
    assert d["e"] == IntDistribution(0, 2)
    assert d["f"] == IntDistribution(2, 5)


def test_fixed_overrides_pass_through_and_the_later_entry_wins():
    space = parse(["optimizer.lr=interval(0.001, 0.1)", "seed=0,1", "data=folder", "+extra.key=3", "~gone",
                   "optimizer.lr=0.01", "seed=choice(4,5)"])
    assert set(space.distributions) == {"seed"} and space.distributions["seed"].choices == (4, 5)
    assert space.fixed == ["data=folder", "+extra.key=3", "~gone", "optimizer.lr=0.01"]
    assert space.overrides({"seed": 5}) == [*space.fixed, "seed=5"]


def test_list_choices_are_passed_as_written():
    space = parse(["noise.sigma=choice([0,50], 25)"])
    assert space.distributions["noise.sigma"].choices == ("[0,50]", 25)
    assert space.overrides({"noise.sigma": "[0,50]"}) == ["noise.sigma=[0,50]"]
    assert space.overrides({"noise.sigma": 25}) == ["noise.sigma=25"]


@pytest.mark.parametrize("value", ["relu", "a b", "it's", "C:\\dir\\", "back\\'slash", "1e-3", "true", "null",
                                   "sqlite:///x.db", "${now:%H}", "é", "", 1, -3, 0.1, 1e-05, True, False, None,
                                   float("inf"), float("-inf")])
def test_encoded_values_read_back_as_themselves(value):
    assert OverridesParser.create().parse_override(f"k={encode(value)}").value() == value


@pytest.mark.parametrize("line,needle", [
    ("a=range(3,3)", "empty range"),
    ("a=tag(log, range(0,1,step=0.1))", "log scale needs integers"),
    ("a=tag(log, range(1,10,2))", "needs step 1"),
    ("a=interval(1, 0)", "a=interval(1, 0)"),
    ("a=tag(log, interval(0, 1))", "a=tag(log, interval(0, 1))"),
    ("a=choice(", "cannot read"),
])
def test_bad_sweeps_name_the_override(line, needle):
    with pytest.raises(ConfigError, match="search space") as error:
        parse([line])
    assert needle in str(error.value)


def test_the_grid_of_discrete_parameters():
    space = parse(["a=choice(x,y)", "b=range(0,3)", "c=range(0,1,step=0.5)"])
    assert space.grid() == {"a": ["x", "y"], "b": [0, 1, 2], "c": [0.0, 0.5]}
    with pytest.raises(ConfigError, match="grid needs discrete parameters.*lr is continuous"):
        parse(["lr=interval(0,1)"]).grid()


def test_samplers_and_pruners_by_name():
    assert isinstance(build_sampler(None), optuna.samplers.TPESampler)
    assert isinstance(build_sampler({"name": "random", "seed": 3}), optuna.samplers.RandomSampler)
    assert isinstance(build_sampler("grid", parse(["a=choice(1,2)"])), optuna.samplers.GridSampler)
    # a sampler config written for hydra-optuna-sweeper still reads
    assert isinstance(build_sampler({"_target_": "optuna.samplers.TPESampler", "seed": 0, "n_startup_trials": 3}),
                      optuna.samplers.TPESampler)
    assert isinstance(build_pruner(None), optuna.pruners.NopPruner)
    assert isinstance(build_pruner("none"), optuna.pruners.NopPruner)
    assert isinstance(build_pruner({"name": "median", "n_warmup_steps": 100}), optuna.pruners.MedianPruner)
    assert isinstance(build_pruner("hyperband"), optuna.pruners.HyperbandPruner)


@pytest.mark.parametrize("build,value,needle", [
    (build_sampler, {"name": "random", "n_startup_trials": 10}, "unknown option.*n_startup_trials.*takes: seed"),
    (build_sampler, "bayes", "sampler=bayes is not known; choose one of: tpe"),
    (build_sampler, {"_target_": "os.system"}, "not one of Optuna's samplers"),
    (build_pruner, {"name": "threshold"}, "pruner=threshold: .*lower or upper"),
    (build_pruner, 3, "must be null, a name"),
])
def test_bad_samplers_and_pruners_say_what_is_allowed(build, value, needle):
    with pytest.raises(ConfigError, match=needle):
        build(value)


def test_storage_options(tmp_path):
    assert storage_of(None) is None and storage_of("null") is None
    assert storage_of("sqlite:///search.db") == "sqlite:///search.db"
    for value in (f"journal:{tmp_path / 'a.txt'}", str(tmp_path / "b.log"), str(tmp_path / "c.journal")):
        assert isinstance(storage_of(value), optuna.storages.JournalStorage)
    with pytest.raises(ConfigError, match="neither a database URL nor a journal file.*sqlite:///search.db"):
        storage_of("search.db")
    with pytest.raises(ConfigError, match="does not exist"):
        storage_of(str(tmp_path / "missing" / "x.log"))
    assert shown("postgresql://me:secret@host/db") == "postgresql://me:***@host/db"
    assert shown(None) == "in memory"
