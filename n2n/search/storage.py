"""Where a study lives (`hydra.sweeper.storage`), and the studies this process's sweeper has open.

- null: in memory, for this process only;
- a database URL (`sqlite:///search.db`, `postgresql://...`): Optuna's RDB storage;
- `journal:PATH`, or a path ending in `.log` or `.journal`: Optuna's journal file, an append-only log that
  needs no database server, only a file system that every worker sees (file locks, e.g. NFS).

Processes that give the same storage and `study_name` share one study: each asks for its own trials, and the
sampler learns from all of them. A job finds its trial through the same storage, so it may run in another
process or on another machine; a job in the sweeper's own process (Hydra's basic launcher) uses the sweeper's
open storage instead, which also makes pruning work with an in-memory study.
"""
from __future__ import annotations

import random
import re
import time
from pathlib import Path
from typing import Any

from n2n.errors import ConfigError

JOURNAL_SUFFIXES = (".log", ".journal")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
#: (study name, storage option) -> (storage, pruner) of the studies this process's sweeper runs
_OPEN: dict[tuple[str, str], tuple[Any, Any]] = {}


def is_in_memory(value: Any) -> bool:
    return value is None or str(value).strip().lower() in ("", "null", "none", "memory")


def storage_of(value: Any) -> Any:
    """The Optuna storage of a `hydra.sweeper.storage` value: None (in memory), a URL string, or a JournalStorage."""
    if is_in_memory(value):
        return None
    text = str(value).strip()
    journal = text[len("journal:"):] if text.startswith("journal:") else None
    if journal is None and not _URL.match(text) and text.endswith(JOURNAL_SUFFIXES):
        journal = text
    if journal is not None:
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        path = Path(journal).expanduser()
        if not path.parent.is_dir():
            raise ConfigError(f"hydra.sweeper.storage={value}: the folder {path.parent} does not exist")
        return JournalStorage(JournalFileBackend(str(path)))
    if _URL.match(text):
        return text
    raise ConfigError(f"hydra.sweeper.storage={value} is neither a database URL nor a journal file; give e.g. "
                      f"sqlite:///search.db, journal:search.log (or a path ending in .log / .journal), or null "
                      f"for a study in memory")


def shown(value: Any) -> str:
    """The storage option for logs, without a database password."""
    return "in memory" if is_in_memory(value) else re.sub(r"://([^:/@]+):[^@/]*@", r"://\1:***@", str(value))


def storage_error(value: Any, exc: BaseException) -> ConfigError:
    """One line for what went wrong opening a storage: the database library's errors name a driver, a URL
    scheme or a file in their own words, several lines long."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    kind = type(exc).__name__
    if isinstance(exc, ImportError):
        hint = f"the database driver is not installed ({text}): pip install it, or use sqlite:/// or journal:"
    elif kind == "NoSuchModuleError" or "Can't load plugin" in text:
        hint = "unknown database URL scheme: use e.g. sqlite:///search.db, postgresql://..., mysql://..."
    elif kind == "ArgumentError" or "Could not parse" in text:
        hint = f"not a valid database URL ({text})"
    elif isinstance(exc, OSError) or kind == "OperationalError":
        hint = (f"its file or folder cannot be opened or written ({text}): check that the folder exists and is "
                f"writable, and that the server (if any) is reachable")
    else:
        hint = (f"{kind}: {text} (a journal file that is not an Optuna journal, or a database that is not an "
                f"Optuna storage, is refused: give another file)")
    return ConfigError(f"hydra.sweeper.storage={shown(value)}: cannot open the study storage: {hint}")


def open_study(name: str | None, value: Any, sampler: Any, pruner: Any, direction: str) -> Any:
    """The study `name` in the storage of `value`, created unless it exists; ConfigError in one line if the
    storage cannot be opened."""
    import optuna

    for attempt in range(6):
        try:
            storage = storage_of(value)
            study = optuna.create_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner,
                                        direction=direction, load_if_exists=True)
            break
        except ConfigError:
            raise
        except Exception as exc:
            # Workers that start together on a new database file race to create its tables; the loser sees
            # "table already exists" or a locked database, and succeeds once the winner is done.
            if not _is_database_race(exc) or attempt == 5:
                raise storage_error(value, exc) from None
            time.sleep(0.2 * 2 ** attempt * (1 + random.random()))
    wanted = optuna.study.StudyDirection[direction.upper()]
    if study.direction != wanted:
        raise ConfigError(f"hydra.sweeper.direction={direction}, but the study {study.study_name!r} in "
                          f"{shown(value)} was created to {study.direction.name.lower()}; use its direction or "
                          f"another study_name")
    _OPEN[(study.study_name, str(value))] = (study._storage, pruner)
    return study


def _is_database_race(exc: Exception) -> bool:
    return type(exc).__module__.startswith("sqlalchemy") and any(
        word in str(exc).lower() for word in ("already exists", "locked", "unique constraint", "duplicate"))


def study_for_job(name: str, value: Any, pruner: Any) -> Any:
    """The study a job reports to: the sweeper's own storage when the job runs in the sweeper's process, else
    the storage of `value`; None for an in-memory study of another process. The job never samples, so its view
    of the study gets a plain random sampler (the sweeper's own sampler keeps its state to itself)."""
    import optuna

    open_storage, open_pruner = _OPEN.get((name, str(value)), (None, None))
    storage = open_storage
    if open_storage is not None:
        pruner = open_pruner
    elif is_in_memory(value):
        return None
    try:
        if open_storage is None:
            storage = storage_of(value)
        return optuna.load_study(study_name=name, storage=storage, sampler=optuna.samplers.RandomSampler(),
                                 pruner=pruner)
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - the storage libraries raise their own types
        raise storage_error(value, exc) from None


def forget(name: str, value: Any) -> None:
    _OPEN.pop((name, str(value)), None)
