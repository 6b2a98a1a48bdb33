"""The set-up behind `make train` and `make test` (scripts/bootstrap.sh), run on a copy of the repository as a
fresh clone is: it installs the project, keeps torch, and a second run calls no pip.

Offline-friendly: the new environment sees this one's packages (a .pth file, as --system-site-packages
would), so torch, pip and the extras are there already and the set-up installs only n2n itself."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from helpers.runs import ROOT


def fresh_copy(dest: Path) -> Path:
    """The repository's files (tracked, and new ones not ignored), as a clone would have them."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, files):
        src = ROOT / name
        if src.is_file():  # a tracked file deleted in the work tree is not copied
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


def venv_seeing_this_one(venv: Path) -> Path:
    """A virtual environment without pip whose sys.path ends with this environment's site-packages."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(site, "n2n_test_reuse.pth").write_text("\n".join(sorted(ours)) + "\n")
    return python


def bootstrap(repo: Path, venv: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "TORCH_INDEX_URL")}
    env.update(VENV=str(venv), OMP_NUM_THREADS="1")
    return subprocess.run(["bash", "scripts/bootstrap.sh"], cwd=repo, env=env, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.slow  # a pip install of the project: about half a minute
def test_bootstrap_installs_the_project_keeps_torch_and_then_calls_no_pip(tmp_path):
    from importlib import metadata

    if metadata.version("torch").split("+")[0] != "2.13.0":  # the bootstrap's TORCH_VERSION: else it installs one
        pytest.skip("this environment's torch is not 2.13.0")
    repo = fresh_copy(tmp_path / "clone")
    venv = tmp_path / "venv"
    python = venv_seeing_this_one(venv)

    first = bootstrap(repo, venv)
    assert first.returncode == 0, first.stderr[-3000:]
    pip_calls = [line for line in first.stderr.splitlines() if line.startswith("bootstrap: pip install")]
    assert pip_calls == ['bootstrap: pip install -q -e .[dev]'], first.stderr[-3000:]  # torch was there already
    facts = subprocess.run(
        [str(python), "-I", "-c", "import importlib.metadata as md, json, n2n; print(json.dumps([md.version('torch'), "
         "n2n.__file__, md.distribution('n2n').read_text('direct_url.json')]))"],
        capture_output=True, text=True, check=True).stdout
    torch_version, n2n_file, direct_url = json.loads(facts)
    assert torch_version.split("+")[0] == "2.13.0"
    assert Path(n2n_file).resolve().is_relative_to(repo.resolve())  # the clone's n2n, not this checkout's
    assert json.loads(direct_url)["url"] == repo.resolve().as_uri()

    second = bootstrap(repo, venv)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "pip install" not in second.stderr, second.stderr
    *_, ready, activate = second.stderr.strip().splitlines()
    assert ready.startswith(f"bootstrap: ready: {venv} (torch 2.13.0")
    assert f". {venv}/bin/activate" in activate  # what the README's commands after `make train` need
