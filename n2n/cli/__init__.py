"""The `n2n` command: tools around training (`python train.py`) and evaluation (`python eval.py`).

Each subcommand lives in its own module of this folder, which registers its parser and returns an exit code.
The modules import torch (and everything else heavy) only when their command runs, so that `n2n --help` and
`n2n COMMAND --help` answer at once (tests/unit/test_cli_light.py checks it).
"""
from __future__ import annotations

import argparse
import importlib
import math
import sys

from n2n.errors import exit_on_error, imports_shielded

#: Exit codes shared by the subcommands: all done; some inputs failed (each reported, the others done);
#: nothing attempted (bad options or inputs).
EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2

#: The modules of the subcommands, one file each in n2n/cli/, in the order `n2n --help` lists them; each has
#: `add_parser(subparsers)`, which sets `func` on its parser. None imports torch at its top level.
SUBCOMMANDS = ["n2n.cli.denoise", "n2n.cli.models", "n2n.cli.export", "n2n.cli.make_ee559", "n2n.cli.report"]


class Bounded:
    """An argparse `type`: a number of `kind` (int or float) within [lo, hi]; a wrong value is one line naming
    what is allowed. Every numeric option of the subcommands uses it (a test checks that)."""

    def __init__(self, kind: type, lo: float | None = None, hi: float | None = None):
        self.kind, self.lo, self.hi = kind, lo, hi
        self.__name__ = kind.__name__  # argparse names the type in some messages

    def describe(self) -> str:
        what = "an integer" if self.kind is int else "a number"
        from n2n.config_schema import number

        bounds = [f">= {number(self.lo)}" if self.lo is not None else "",
                  f"<= {number(self.hi)}" if self.hi is not None else ""]
        return " ".join([what, " and ".join(b for b in bounds if b)]).strip()

    def __call__(self, text: str):
        try:
            value = self.kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {self.describe()}") from None
        if (self.kind is float and not math.isfinite(value)) or (self.lo is not None and value < self.lo) or (
                self.hi is not None and value > self.hi):
            raise argparse.ArgumentTypeError(f"{text} is not allowed: it must be {self.describe()}")
        return value


class OneLineParser(argparse.ArgumentParser):
    """Usage errors in one line (argparse prints the whole usage first), exit code 2."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="n2n", description="Noise2Noise tools. Training: python train.py; "
                                     "evaluation: python eval.py ckpt_path=PATH.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in SUBCOMMANDS:
        importlib.import_module(module).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    with exit_on_error("n2n"):
        with imports_shielded("n2n"):
            parser = build_parser()
        args = parser.parse_args(argv)
        return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
