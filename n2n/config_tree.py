"""The composed config as a tree (rich's Tree of YAML Syntax, as lightning-hydra-template's print_config_tree):
printed at the start of a run unless `print_config=false`, and always saved to `<run folder>/config_tree.log`
next to `config.yaml`. The groups come first, in the order a reader follows a run (data to callbacks), then
paths and the top-level options in the config's own order.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Mapping, Sequence

from omegaconf import OmegaConf

from n2n.atomic import write_text

#: The sections shown first, in this order; any other follows in the config's order.
ORDER = ("data", "noise", "aug", "model", "loss", "optimizer", "scheduler", "trainer", "logger", "callbacks",
         "paths")
#: Width of the saved tree: wide enough that no option line is wrapped.
FILE_WIDTH = 160


def config_tree(config: Mapping[str, Any], order: Sequence[str] = ORDER):
    """A rich Tree with one branch per top-level key of `config`, holding its YAML."""
    from rich.syntax import Syntax
    from rich.tree import Tree

    style = "dim"
    tree = Tree("CONFIG", style=style, guide_style=style)
    keys = [k for k in order if k in config] + [k for k in config if k not in order]
    for key in keys:
        value = config[key]
        text = OmegaConf.to_yaml(value) if isinstance(value, Mapping) else _scalar(value)
        branch = tree.add(str(key), style=style, guide_style=style)
        branch.add(Syntax(text.rstrip("\n"), "yaml", word_wrap=True, background_color="default"))
    return tree


def _scalar(value: Any) -> str:
    """A top-level value as YAML writes it (null, true, 0.001, a string)."""
    return OmegaConf.to_yaml({"v": value})[3:].strip()


def render(config: Mapping[str, Any], width: int = FILE_WIDTH) -> str:
    """The tree as plain text (no colours), as it is saved."""
    from rich.console import Console

    console = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False,
                      legacy_windows=False, highlight=False)
    console.print(config_tree(config))
    return console.file.getvalue()


def print_config_tree(config: Mapping[str, Any], run_dir: Path | None = None, show: bool = True) -> None:
    """Print the tree (with `show`) and write it to `run_dir/config_tree.log`. Data-parallel runs call it from
    the first process only (n2n.training.run)."""
    if show:
        from rich.console import Console

        Console(highlight=False).print(config_tree(config))
    if run_dir is not None:
        write_text(Path(run_dir) / "config_tree.log", render(config))
