"""Every option of every config group, and of eval.py, has a type and range in n2n/config_schema.py, and a
value of the wrong type or out of range is one line naming the option, before any work. The cases are generated
from the table and from the config files, so a new option is covered (or fails here) automatically."""
from __future__ import annotations

import copy
import functools
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser

from helpers.runs import ROOT, compose_train, to_plain
from n2n.config import RunContext, resolve_train_config
from n2n.config_schema import EVAL_OPTIONS, TRAIN_OPTIONS, Option, leaves, valid
from n2n.errors import ConfigError

#: Required paths of the data sources, so that every choice composes.
REQUIRED = {"folder": ["data.train_dir=x", "data.val_dir=y"], "pairs": ["data.dir_a=x", "data.dir_b=y"],
            "stacks": ["data.dir=x"]}
SKIPPED_GROUPS = {"hydra", "experiment", "hparams_search", "debug", "bn", "local"}  # local: personal, git-ignored


def choices() -> list[list[str]]:
    """The overrides selecting each choice of each config group."""
    out = []
    for group in sorted(p for p in (ROOT / "conf").iterdir() if p.is_dir() and p.name not in SKIPPED_GROUPS):
        for choice in sorted(group.glob("*.yaml")):
            out.append([f"{group.name}={choice.stem}", *REQUIRED.get(choice.stem if group.name == "data" else "", [])])
    return out


def options_in_configs() -> dict[str, list[str]]:
    """Every leaf option of every choice, with the overrides of a choice that has it."""
    found: dict[str, list[str]] = {}
    for overrides in choices():
        for key, _ in leaves(to_plain(compose_train(overrides))):
            found.setdefault(key, overrides)
    return found


FOUND = options_in_configs()
PARSER = OverridesParser.create()


@functools.lru_cache(maxsize=None)
def composed(overrides: tuple[str, ...]) -> dict:
    return to_plain(compose_train(list(overrides)))


def with_value(overrides: list[str], key: str, text: str) -> dict:
    """The composed config with `key` set to `text` as Hydra parses it from the command line."""
    config = copy.deepcopy(composed(tuple(overrides)))
    node = config
    *parents, leaf = key.split(".")
    for part in parents:
        node = node[part]
    node[leaf] = PARSER.parse_override(f"{key}={text}").value()
    return config


def test_every_option_of_every_group_is_in_the_table():
    missing = sorted(set(FOUND) - set(TRAIN_OPTIONS))
    assert not missing, f"options without a type and range in n2n/config_schema.py: {missing}"
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        eval_keys = {k for k, _ in leaves(to_plain(compose("eval")))}
    assert not sorted(eval_keys - set(EVAL_OPTIONS))


def bad_values(option: Option) -> list[str]:
    """A wrong-type and (where the option has a range or a set of values) an out-of-range value, as typed on
    the command line."""
    kind = option.kind
    if kind in ("path", "str"):
        return ["123"]
    if kind == "choice":
        return ["1.5" if all(isinstance(c, str) for c in option.allowed()) else "abc", "not_a_choice"]
    if kind == "bool":
        return ["abc", "2"]
    if kind in ("list_of_str",):
        return ["abc", "[]"]
    if kind == "pair_of_float":
        return ["0.9", "[0.9,1.5]"]
    if kind == "batches":  # a fraction above 1 is what Lightning refuses only once training starts
        return ["abc", "2.5", "-1"]
    if kind == "duration":
        return ["abc", "12:00"]
    candidates = []
    if option.lo is not None:
        candidates += [option.lo if option.lo_open else option.lo - 1, option.lo - 1000]
    if option.hi is not None:
        candidates.append(option.hi + 1)
    as_typed = [int(c) if kind == "int" else float(c) for c in candidates]
    return ["abc", *[str(c) for c in as_typed if not valid(option, c)][:1]]


CASES = [(key, value) for key in sorted(FOUND) for value in bad_values(TRAIN_OPTIONS[key])]


@pytest.fixture(scope="module")
def hydra_conf():
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        yield


@pytest.mark.parametrize("key,value", CASES)
def test_a_bad_value_of_any_option_is_one_line_naming_it(key, value, tmp_path):
    with pytest.raises(ConfigError) as err:
        resolve_train_config(with_value(FOUND[key], key, value), RunContext(Path(tmp_path)))
    message = str(err.value)
    assert "\n" not in message and key in message


@pytest.mark.parametrize("key,value", [(k, v) for k in ("ckpt_path", "model", "device", "tile", "save_images",
                                                        "num_comparisons") for v in bad_values(EVAL_OPTIONS[k])])
def test_a_bad_value_of_any_eval_option_is_one_line_naming_it(key, value, tmp_path, hydra_conf):
    from n2n.inference.evaluate import evaluate

    overrides = ["model=gaussian-blind"] if key not in ("model", "ckpt_path") else []
    cfg = compose("eval", overrides=[*overrides, f"{key}={value}"])
    with pytest.raises(ConfigError) as err:
        evaluate(cfg, RunContext(Path(tmp_path)))
    assert "\n" not in str(err.value) and key in str(err.value)
