"""The code passes its linter (ruff, with pyproject.toml's settings), as the pre-commit hook checks on commit."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_the_code_passes_ruff():
    pytest.importorskip("ruff", reason="ruff is in the dev extra: pip install -e '.[dev]'")
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_the_pre_commit_hook_runs_the_ruff_the_tests_run():
    """One ruff version everywhere: rules change between releases, so a check that passes here must pass there."""
    hook = re.search(r'"ruff==([\d.]+)"', (ROOT / ".pre-commit-config.yaml").read_text()).group(1)
    dev = re.search(r'"ruff==([\d.]+)"', (ROOT / "pyproject.toml").read_text()).group(1)
    assert hook == dev
