"""The README's commands after the set-up work as written: in a fresh shell, in a copy of the repository as a
clone has it, with `.venv` the environment these tests run in (`. .venv/bin/activate`, then `n2n denoise`,
`n2n models`, `python train.py experiment=quick_cpu`, `tensorboard --logdir outputs`); and every `make`
shortcut the README names exists."""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from helpers.runs import ROOT

README = (ROOT / "README.md").read_text()


def after_setup_block() -> str:
    """The shell block under `<!-- after-setup -->`: the first commands a new user types."""
    return README.split("<!-- after-setup -->", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]


def fresh_copy(dest: Path) -> Path:
    """The repository's files (tracked, and new ones not ignored), as a clone would have them."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    return dest


def test_the_block_starts_by_activating_the_environment_the_set_up_made():
    lines = [line.split("#", 1)[0].strip() for line in after_setup_block().splitlines()]
    assert lines[0] == ". .venv/bin/activate"  # the make route's .venv (scripts/bootstrap.sh: VENV=.venv)
    assert 'VENV=${VENV:-.venv}' in (ROOT / "scripts" / "bootstrap.sh").read_text()


@pytest.mark.skipif(shutil.which("make") is None, reason="no make on this machine")
def test_every_make_shortcut_the_readme_names_exists():
    named = set(re.findall(r"`make ([a-z]+)", README))
    assert {"train", "test", "denoise", "tensorboard", "help"} <= named
    listed = subprocess.run(["make", "--no-print-directory", "help"], cwd=ROOT, capture_output=True, text=True,
                            check=True).stdout
    shortcuts = set(re.findall(r"^  make ([a-z]+)", listed, re.M))
    assert named <= shortcuts, f"the README names make targets that `make help` does not list: {named - shortcuts}"
    dry = subprocess.run(["make", "-n", "denoise", "IMG=photo.jpg", "ARGS=--strength 0.7"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    assert ".venv/bin/n2n denoise photo.jpg --strength 0.7" in dry
    missing = subprocess.run(["make", "denoise"], cwd=ROOT, capture_output=True, text=True)
    assert missing.returncode != 0 and "IMG=" in missing.stderr  # before any set-up work


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.slow  # a quick_cpu training, two denoised photos and a TensorBoard start: about a minute
def test_the_readme_commands_after_the_set_up_run_as_written(tmp_path):
    if sys.prefix == sys.base_prefix:
        pytest.skip("the tests do not run in a virtual environment to stand for .venv")
    if port_in_use(6006):
        pytest.skip("port 6006 is in use: `tensorboard --logdir outputs` as written could not start")
    from PIL import Image
    from skimage import data

    repo = fresh_copy(tmp_path / "clone")
    (repo / ".venv").symlink_to(sys.prefix)
    Image.fromarray(data.chelsea()).save(repo / "photo.jpg", quality=90)
    home = tmp_path / "home"
    home.mkdir()
    # a fresh shell: nothing of this one's environment but a plain PATH; PYTHONPATH makes the venv's `n2n`
    # (an editable install of some checkout) import this copy, as it would in the user's own clone
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "OMP_NUM_THREADS": "1", "PYTHONPATH": str(repo),
           "LANG": "C.UTF-8"}
    shell = subprocess.Popen(["bash", "-e", "-c", after_setup_block()], cwd=repo, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, start_new_session=True)
    output, served = [], False
    try:
        deadline = time.monotonic() + 600
        for line in shell.stdout:  # until TensorBoard, the last command, says where it serves
            output.append(line)
            url = re.search(r"TensorBoard \S+ at (http://\S+)", line)
            if url:
                for _ in range(30):
                    try:
                        served = urllib.request.urlopen(url.group(1), timeout=5).status == 200
                        break
                    except OSError:
                        time.sleep(1)
                break
            assert time.monotonic() < deadline, "".join(output)[-3000:]
    finally:
        os.killpg(shell.pid, signal.SIGTERM)
        shell.wait(timeout=30)
    text = "".join(output)
    assert served, text[-3000:]
    assert "wrote photo_denoised.jpg (from photo.jpg; model gaussian-blind)" in text, text[-3000:]
    assert "wrote softer/photo.jpg (from photo.jpg; model gaussian-blind, strength 0.7)" in text
    assert (repo / "photo_denoised.jpg").is_file() and (repo / "softer" / "photo.jpg").is_file()
    assert "gaussian-blind-grey" in text  # n2n models
    assert "best val/psnr" in text and "note: an installation check" in text  # quick_cpu says what it is
    assert list((repo / "outputs").glob("*/*/events.out.tfevents.*"))
