"""The `n2n` command: tools around training (`python train.py`) and evaluation (`python eval.py`).

Each subcommand lives in its own module, which registers its parser and returns an exit code.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from n2n.errors import exit_on_error

#: (module, function that adds the subcommand's parser) in the order `n2n --help` lists them.
SUBCOMMANDS = [
    ("n2n.denoise", "add_parser"),
    ("n2n.denoise", "add_export_parser"),
    ("n2n.make_ee559", "add_parser"),
    ("n2n.report", "add_parser"),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="n2n", description="Noise2Noise tools. Training: python train.py; "
                                     "evaluation: python eval.py ckpt_path=PATH.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module, function in SUBCOMMANDS:
        getattr(importlib.import_module(module), function)(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with exit_on_error("n2n"):
        return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
