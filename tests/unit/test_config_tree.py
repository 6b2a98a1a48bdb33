"""The composed config as a tree (n2n/config_tree.py): printed at the start of a run, saved to config_tree.log."""
from __future__ import annotations

from helpers.runs import resolved
from n2n.config_tree import ORDER, print_config_tree, render


def branches(text: str) -> list[str]:
    """The top-level branch names of a rendered tree, in order."""
    return [line[4:].strip() for line in text.splitlines() if line.startswith(("├── ", "└── "))]


def test_the_tree_shows_the_groups_in_order_then_the_rest(tmp_path):
    config = resolved(["experiment=quick_cpu", "noise.sigma=50"], tmp_path)
    text = render(config)
    assert text.splitlines()[0] == "CONFIG"
    names = branches(text)
    assert names[:len(ORDER)] == list(ORDER)
    assert set(names[len(ORDER):]) == set(config) - set(ORDER)  # seed, target, perf, ... after the groups
    assert "sigma: 50" in text and "crop_size: 32" in text and "fast_dev_run: false" in text
    assert f"output_dir: {tmp_path}" in text
    assert "\x1b[" not in text  # the saved tree is plain text


def test_it_is_printed_and_saved(tmp_path, capsys):
    config = resolved(["logger=csv"], tmp_path)
    print_config_tree(config, tmp_path)
    printed = capsys.readouterr().out
    saved = (tmp_path / "config_tree.log").read_text()
    for text in (printed, saved):
        assert "CONFIG" in text and "├── trainer" in text and "name: csv" in text and "max_epochs: 6" in text


def test_print_config_false_saves_without_printing(tmp_path, capsys):
    print_config_tree(resolved([], tmp_path), tmp_path, show=False)
    assert "CONFIG" not in capsys.readouterr().out
    assert "├── data" in (tmp_path / "config_tree.log").read_text()
