"""The `n2n` command: tools around training (`python train.py`) and evaluation (`python eval.py`).

Each subcommand lives in its own module of this folder, which registers its parser and returns an exit code.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from n2n.errors import exit_on_error

#: Exit codes shared by the subcommands: all done; some inputs failed (each reported, the others done);
#: nothing attempted (bad options or inputs).
EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2

#: The modules of the subcommands, one file each in n2n/cli/, in the order `n2n --help` lists them; each has
#: `add_parser(subparsers)`, which sets `func` on its parser.
SUBCOMMANDS = ["n2n.cli.denoise", "n2n.cli.export", "n2n.cli.make_ee559", "n2n.cli.report"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="n2n", description="Noise2Noise tools. Training: python train.py; "
                                     "evaluation: python eval.py ckpt_path=PATH.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in SUBCOMMANDS:
        importlib.import_module(module).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with exit_on_error("n2n"):
        return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
