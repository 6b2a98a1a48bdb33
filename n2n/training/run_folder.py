"""One run per run folder: a new run never mixes its files with another run's, and two live runs never share one.

A run folder holds *results* once a run has written a checkpoint or its metrics.json. A new run is refused
such a folder unless it resumes that run (`ckpt_path=last`, or a checkpoint of that folder) or the user asks
to replace the results (`overwrite=true`, which removes them first). While a run trains, `run.lock` in its
folder names its process; a second run in the same folder is refused while that process lives. A lock left by
a process that no longer runs (kill -9, a node that died) is taken over.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from n2n.errors import ConfigError

LOCK = "run.lock"
#: What makes a folder hold a run's results (checkpoints are in checkpoints/).
RESULTS = ("metrics.json",)


def results_in(run_dir: Path) -> list[str]:
    """The result files of a run already in `run_dir`, relative to it (empty when there are none)."""
    found = [name for name in RESULTS if (run_dir / name).is_file()]
    ckpt_dir = run_dir / "checkpoints"
    if ckpt_dir.is_dir():
        found += sorted(f"checkpoints/{p.name}" for p in ckpt_dir.glob("*.ckpt"))
    return found


def resumes_this_folder(ckpt_path: str | None, run_dir: Path) -> bool:
    return bool(ckpt_path) and Path(ckpt_path).resolve().parent == (run_dir / "checkpoints").resolve()


def _alive(pid: int, host: str) -> bool:
    if host != socket.gethostname():
        return True  # another node's process cannot be checked from here: assume it runs
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_secondary_process() -> bool:
    """Lightning's other processes of a data-parallel run (they share the folder of process 0)."""
    return any(os.environ.get(key, "0") not in ("", "0") for key in ("LOCAL_RANK", "NODE_RANK", "RANK"))


def _take_lock(lock: Path) -> None:
    mine = json.dumps({"pid": os.getpid(), "host": socket.gethostname()})
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                owner = json.loads(lock.read_text() or "{}")
                pid, host = int(owner["pid"]), str(owner["host"])
            except (OSError, ValueError, KeyError, TypeError):
                pid, host = -1, socket.gethostname()  # unreadable: left by a process killed while writing it
            if pid != os.getpid() and pid > 0 and _alive(pid, host):
                raise ConfigError(f"run folder {lock.parent} is in use by another run (process {pid} on {host}, "
                                  f"{lock.name}): give this run its own hydra.run.dir, or wait for that one to end")
            lock.unlink(missing_ok=True)  # stale: its process is gone
            continue
        with os.fdopen(fd, "w") as f:
            f.write(mine)
        return
    raise ConfigError(f"could not take {lock}: another run keeps creating it")


@contextmanager
def claim(run_dir: Path, ckpt_path: str | None, overwrite: bool) -> Iterator[None]:
    """Own `run_dir` for the duration of a run (see the module docstring); ConfigError when it may not."""
    if _is_secondary_process():
        yield
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = run_dir / LOCK
    _take_lock(lock)
    try:
        found = results_in(run_dir)
        if found and not resumes_this_folder(ckpt_path, run_dir):
            if not overwrite:
                shown = ", ".join(found[:4]) + (" ..." if len(found) > 4 else "")
                raise ConfigError(f"run folder {run_dir} holds another run's results ({shown}): resume that run "
                                  f"with ckpt_path=last, choose another hydra.run.dir, or add overwrite=true to "
                                  f"replace them")
            shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
            for name in RESULTS:
                (run_dir / name).unlink(missing_ok=True)
            print(f"overwrite=true: removed the earlier results in {run_dir} ({', '.join(found[:4])}"
                  f"{' ...' if len(found) > 4 else ''})", flush=True)
        yield
    finally:
        lock.unlink(missing_ok=True)


#: What Hydra writes into a run folder before the run's own code starts: its config copies and the job's log.
HYDRA_RECORDS = (".hydra",)


@contextmanager
def discard_if_unused(run_dir: Path) -> Iterator[None]:
    """A run that fails before writing anything of its own (an option refused, a data folder missing, Ctrl-C
    while starting) leaves no folder behind that holds only Hydra's records: they are removed, and the folder
    too once empty. A folder with anything else in it is left as it is."""
    try:
        yield
    except BaseException:
        run_dir = Path(run_dir)
        entries = list(run_dir.iterdir()) if run_dir.is_dir() else []
        if entries and all(e.name in HYDRA_RECORDS or (e.is_file() and e.suffix == ".log") for e in entries):
            for entry in entries:
                shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)
            try:
                run_dir.rmdir()
            except OSError:  # not empty after all (written meanwhile) or not ours to remove
                pass
        raise
