"""One run per run folder: a new run never mixes its files with another run's, and two live runs never share one.

A run folder holds *results* once a run has written a checkpoint or its metrics.json. A new run is refused
such a folder unless it resumes that run (`ckpt_path=last`, or a checkpoint of that folder) or the user asks
to replace the results (`overwrite=true`, which removes them first). While a run trains, `run.lock` in its
folder names its process (id, start time, command line, host); a second run in the same folder is refused while
that process lives. A lock left by a process that no longer runs (kill -9, a node that died), or whose process
id now belongs to another program (one that started at another time than the lock records), is taken over.

Only an accepted run writes into the folder: Hydra's records of the run (.hydra/) are written by `claim` after
the checks (conf/hydra/ turns off Hydra's own copy, which it writes before any of n2n's code runs), so a
refused or repeated run leaves another run's folder byte for byte as it was. eval.py follows the same rule with
its own results (metrics.json, per_image.csv, comparison.png, denoised/).
"""
from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Mapping

from n2n.atomic import write_text
from n2n.errors import ConfigError

LOCK = "run.lock"
#: What makes a folder hold a run's results (checkpoints are in checkpoints/).
RESULTS = ("metrics.json",)
#: What makes a folder hold an evaluation's results (eval.py).
EVAL_RESULTS = ("metrics.json", "per_image.csv", "per_volume.csv", "comparison.png", "denoised")
#: Where Hydra's records of a run go in its folder.
RECORDS_DIR = ".hydra"


def results_in(run_dir: Path) -> list[str]:
    """The result files of a run already in `run_dir`, relative to it (empty when there are none)."""
    found = [name for name in RESULTS if (run_dir / name).is_file()]
    ckpt_dir = run_dir / "checkpoints"
    if ckpt_dir.is_dir():
        found += sorted(f"checkpoints/{p.name}" for p in ckpt_dir.glob("*.ckpt"))
    return found


def eval_results_in(run_dir: Path) -> list[str]:
    """The results of an evaluation already in `run_dir` (empty when there are none)."""
    return [name for name in EVAL_RESULTS if (run_dir / name).exists()]


def process_start_time(pid: int) -> float | None:
    """When process `pid` started (seconds since the epoch), from /proc; None where unknown (no such process,
    or a system without /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
        ticks = stat.rpartition(")")[2].split()[19]  # field 22, counted after the command name
        return boot + int(ticks) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def resumes_this_folder(ckpt_path: str | None, run_dir: Path) -> bool:
    return bool(ckpt_path) and Path(ckpt_path).resolve().parent == (run_dir / "checkpoints").resolve()


def _alive(owner: Mapping) -> bool:
    """Whether the process that wrote the lock still runs: its id is in use on this host, by a process that
    started when the lock says (a lock of an older n2n, without a start time: by any process)."""
    pid, host = int(owner["pid"]), str(owner["host"])
    if host != socket.gethostname():
        return True  # another node's process cannot be checked from here: assume it runs
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    started, recorded = process_start_time(pid), owner.get("started")
    if started is None or not isinstance(recorded, (int, float)):
        return True  # cannot tell: a live process with that id
    return abs(started - recorded) < 2.0  # the same formula both times: only a reused id differs


def _describe_owner(owner: Mapping) -> str:
    since = owner.get("started")
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since)) if isinstance(since, (int, float)) else ""
    when = f" since {stamp}" if stamp else ""
    command = f": {owner['cmdline']}" if owner.get("cmdline") else ""
    return f"process {owner['pid']} on {owner['host']}{when}{command}"


def _is_secondary_process() -> bool:
    """Lightning's other processes of a data-parallel run (they share the folder of process 0)."""
    return any(os.environ.get(key, "0") not in ("", "0") for key in ("LOCAL_RANK", "NODE_RANK", "RANK"))


def _take_lock(lock: Path) -> None:
    mine = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": process_start_time(os.getpid()),
                       "cmdline": shlex.join(sys.argv)})
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                owner = json.loads(lock.read_text() or "{}")
                pid = int(owner["pid"])
                str(owner["host"])
            except (OSError, ValueError, KeyError, TypeError):
                owner, pid = {}, -1  # unreadable: left by a process killed while writing it
            if pid != os.getpid() and pid > 0 and _alive(owner):
                raise ConfigError(f"run folder {lock.parent} is in use by another run ({_describe_owner(owner)}; "
                                  f"{lock.name}): give this run its own hydra.run.dir, or wait for that one to end; "
                                  f"if that run is gone (e.g. its machine died), delete {lock} by hand")
            lock.unlink(missing_ok=True)  # stale: its process is gone
            continue
        with os.fdopen(fd, "w") as f:
            f.write(mine)
        return
    raise ConfigError(f"could not take {lock}: another run keeps creating it")


@contextmanager
def claim(run_dir: Path, ckpt_path: str | None, overwrite: bool, records: Mapping[str, str] | None = None,
          results: Callable[[Path], list[str]] = results_in, what: str = "run",
          resume_hint: str = "resume that run with ckpt_path=last, ") -> Iterator[None]:
    """Own `run_dir` for the duration of a run (see the module docstring); ConfigError when it may not. Once
    the folder is this run's, Hydra's `records` of the run (file name -> text) are written to .hydra/."""
    if _is_secondary_process():
        yield
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = run_dir / LOCK
    _take_lock(lock)
    try:
        found = results(run_dir)
        if found and not resumes_this_folder(ckpt_path, run_dir):
            if not overwrite:
                shown = ", ".join(found[:4]) + (" ..." if len(found) > 4 else "")
                raise ConfigError(f"run folder {run_dir} holds another {what}'s results ({shown}): {resume_hint}"
                                  f"choose another hydra.run.dir, or add overwrite=true to replace them")
            for top in dict.fromkeys(name.split("/")[0] for name in found):  # checkpoints/: the whole folder
                path = run_dir / top
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
            print(f"overwrite=true: removed the earlier results in {run_dir} ({', '.join(found[:4])}"
                  f"{' ...' if len(found) > 4 else ''})", flush=True)
        if records:
            (run_dir / RECORDS_DIR).mkdir(exist_ok=True)
        for name, text in (records or {}).items():
            write_text(run_dir / RECORDS_DIR / name, text)
        yield
    finally:
        lock.unlink(missing_ok=True)


#: What Hydra may have written into a run folder before the run's own code starts: the job's log.
HYDRA_RECORDS = (RECORDS_DIR,)


@contextmanager
def discard_if_unused(run_dir: Path, since: float) -> Iterator[None]:
    """A run that fails before writing anything of its own (an option refused, a data folder missing, Ctrl-C
    while starting) leaves no folder behind that was made for it (by Hydra, after `since`: time.time() when
    the entry point started, before Hydra ran): an empty one is removed, as is one that holds only Hydra's
    records or an empty log. A folder that existed before (the user's, even empty) or that holds anything else
    is left as it is."""
    try:
        yield
    except BaseException:
        run_dir = Path(run_dir)
        try:
            made_for_this_run = run_dir.stat().st_ctime >= since - 0.05  # file times: the same clock
        except OSError:
            made_for_this_run = False
        if not run_dir.is_dir() or not made_for_this_run:
            raise
        entries = list(run_dir.iterdir())
        if all(e.name in HYDRA_RECORDS or (e.is_file() and e.suffix == ".log") for e in entries):
            for entry in entries:
                shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)
            try:
                run_dir.rmdir()
            except OSError:  # not empty after all (written meanwhile) or not ours to remove
                pass
        raise
