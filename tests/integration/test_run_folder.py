"""One run per run folder (n2n.training.run_folder): a new run never mixes with or deletes another run's files,
a second live run is refused, and `ckpt_path=last` resumes a whole sweep in one command."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest

from helpers.runs import run_entry, run_in_process, tiny
from n2n.errors import ConfigError
from n2n.training.run_folder import LOCK, claim


def digest(folder) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_new_run_is_refused_a_finished_runs_folder(images, one_thread, tmp_path):
    run_in_process(tiny(*images), tmp_path)
    before = digest(tmp_path)
    with pytest.raises(ConfigError, match="holds another run's results .*ckpt_path=last.*overwrite=true"):
        run_in_process([*tiny(*images), "seed=1"], tmp_path)
    assert digest(tmp_path) == before  # nothing written, nothing deleted
    run_in_process([*tiny(*images), "seed=1", "overwrite=true"], tmp_path)
    best = [p.name for p in (tmp_path / "checkpoints").glob("best-*.ckpt")]
    assert len(best) == 1 and json.loads((tmp_path / "metrics.json").read_text())["status"] == "finished"
    assert not (tmp_path / LOCK).exists()  # released at the end


def test_a_second_live_run_is_refused_and_a_stale_lock_taken_over(tmp_path):
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / LOCK).write_text(json.dumps({"pid": owner.pid, "host": __import__("socket").gethostname()}))
        with pytest.raises(ConfigError, match=f"in use by another run \\(process {owner.pid}"):
            with claim(tmp_path, None, False):
                pass
    finally:
        owner.kill()
        owner.wait()
    with claim(tmp_path, None, False):  # its process is gone: the lock is stale
        assert json.loads((tmp_path / LOCK).read_text())["pid"] != owner.pid
    assert not (tmp_path / LOCK).exists()


def test_bad_overwrite_value_is_one_line(images, tmp_path):
    with pytest.raises(ConfigError, match="overwrite=abc is not allowed: it must be true or false"):
        run_in_process([*tiny(*images), "overwrite=abc"], tmp_path)


@pytest.mark.slow  # a subprocess run of half a minute: the suite must stay well under 10 minutes
def test_ckpt_path_last_resumes_a_sweep_and_starts_its_unstarted_jobs(images, tmp_path):
    """An interrupted sweep: job 0 had checkpointed, job 1 never started. One command finishes both."""
    sweep = tmp_path / "sweep"
    common = ["train.py", "-m", *tiny(*images), f"hydra.sweep.dir={sweep}", "logger=csv", "seed=0,1"]
    first = run_entry([*common[:-1], "seed=0"], env={"OMP_NUM_THREADS": "1"})
    assert first.returncode == 0, first.stderr[-2000:]
    (sweep / "0" / "metrics.json").unlink()  # as if killed after its last checkpoint
    result = run_entry([*common, "ckpt_path=last"], env={"OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "has no checkpoint yet; this job starts from the beginning" in result.stdout
    for job in ("0", "1"):
        metrics = json.loads((sweep / job / "metrics.json").read_text())
        assert metrics["status"] == "finished" and metrics["global_step"] == 8
