"""`n2n --help` answers at once: the parsers of every subcommand are built without importing torch (the
heavy imports happen when a command runs), and the defaults they show are n2n's own."""
from __future__ import annotations

import subprocess
import sys

from n2n.cli import SUBCOMMANDS

#: Modules that `n2n --help` must not import: each costs from a tenth of a second to several seconds.
HEAVY = ("torch", "lightning", "numpy", "PIL", "hydra", "omegaconf", "tqdm", "matplotlib", "onnx", "onnxruntime",
         "tensorboard", "skimage")


def test_help_imports_nothing_heavy():
    names = [m.rsplit(".", 1)[-1].replace("_", "-") for m in SUBCOMMANDS]
    code = f"""
import sys
from n2n.cli import main
for argv in [["--help"]] + [[name, "--help"] for name in {names!r}]:
    try:
        main(argv)
    except SystemExit as exit_:
        assert exit_.code == 0, (argv, exit_.code)
print(" ".join(sorted({{m.split(".")[0] for m in sys.modules}} & set({HEAVY!r}))) or "none")
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines()[-1] == "none", "n2n --help imported: " + result.stdout.splitlines()[-1]


def test_parser_defaults_are_the_inference_defaults():
    from n2n.cli import denoise, make_ee559
    from n2n.data.sources.base import MIN_VALIDATION_SIDE
    from n2n.inference import runners, tiling

    assert denoise.PRECISIONS == runners.PRECISIONS
    assert (denoise.DEFAULT_TILE, denoise.DEFAULT_OVERLAP) == (tiling.DEFAULT_TILE, tiling.DEFAULT_OVERLAP)
    assert make_ee559.MIN_PATCH == MIN_VALIDATION_SIDE
