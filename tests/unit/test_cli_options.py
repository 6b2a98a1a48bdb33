"""Every option of every `n2n` subcommand: a value of the wrong type or out of range is one line, exit code 2.
The cases come from the parsers themselves, so a new option is covered (or fails here) automatically."""
from __future__ import annotations

import argparse

import pytest

from n2n.cli import Bounded, build_parser, main

#: A value for each positional argument, so that parsing reaches the option under test.
POSITIONALS = {"denoise": ["photo.png"], "export": ["model.ckpt", "model.onnx"], "report": ["sweep"],
               "make-ee559": ["--images", "x", "--out", "y"], "models": []}


def subcommands() -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def cases():
    for name, parser in subcommands().items():
        for action in parser._actions:
            if not action.option_strings or action.nargs == 0 or action.type is None or action.dest == "help":
                continue
            option = action.option_strings[-1]
            if action.type in (int, float):  # a bare number type would accept any value
                yield pytest.param(name, option, None, id=f"{name} {option} has no range")
                continue
            if isinstance(action.type, Bounded):
                yield pytest.param(name, option, "abc", id=f"{name} {option} abc")
                t = action.type
                out = t.lo - 1 if t.lo is not None else t.hi + 1
                yield pytest.param(name, option, str(t.kind(out)), id=f"{name} {option} {out}")


@pytest.mark.parametrize("name,option,value", list(cases()))
def test_a_bad_value_of_any_option_is_one_line(name, option, value, capsys):
    assert value is not None, f"n2n {name} {option}: give it a Bounded(kind, lo, hi) type"
    with pytest.raises(SystemExit) as exit_:
        main([name, *POSITIONALS[name], option, value])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and option in err and "Traceback" not in err


def test_export_refuses_a_folder_and_report_a_file_as_output(tmp_path, capsys):
    (tmp_path / "existing.md").write_text("keep")
    assert main(["export", "gaussian-blind", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["report", str(tmp_path), "--out", str(tmp_path / "existing.md")])
    assert exit_.value.code == 2 and "is a file" in capsys.readouterr().err
    assert (tmp_path / "existing.md").read_text() == "keep"
