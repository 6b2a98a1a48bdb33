"""A Hydra callback that checks, before Hydra creates it, that the run's (or sweep's) folder can be created.

Hydra makes the output folder before any of n2n's code runs, and a folder that cannot be made (a parent that
is a file, a read-only or missing mount) ends there in a traceback. This callback, registered in conf/hydra/,
runs first: it makes the folder, removes again what it made (Hydra makes it next), and otherwise stops with
one line naming the option and the reason, and exit code 2.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback


class CheckOutputFolder(Callback):
    def on_run_start(self, config: Any, **kwargs: Any) -> None:
        check_creatable(Path(str(config.hydra.run.dir)), "hydra.run.dir")

    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        check_creatable(Path(str(config.hydra.sweep.dir)), "hydra.sweep.dir")


def check_creatable(folder: Path, option: str) -> None:
    made = []
    for parent in [folder, *folder.parents]:
        if parent.exists():
            break
        made.append(parent)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        program = Path(sys.argv[0]).name if sys.argv and sys.argv[0].endswith(".py") else "n2n"
        where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(folder) else ""
        print(f"{program}: error: {option}={folder}: cannot create this folder: {exc.strerror or exc}{where}; "
              f"choose another", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    for path in made:  # deepest first: Hydra creates them itself right after
        try:
            path.rmdir()
        except OSError:
            break
