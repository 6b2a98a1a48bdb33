"""train.py and eval.py as the benchmark scripts run them (scripts/*_benchmark.py): each a subprocess in the
repository's root, stopped with the end of its error output when it fails, and an evaluation read back from its
metrics.json (reused when an earlier call with the same output folder wrote it: a long benchmark resumes)."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Sequence


def run_entry(root: Path, name: str, entry: str, overrides: Sequence[str]) -> float:
    """`python ENTRY OVERRIDES...` in `root`; the seconds it took. SystemExit naming the benchmark's run and the
    entry point, with the last lines of its error output, if it fails."""
    start = time.perf_counter()
    result = subprocess.run([sys.executable, entry, *map(str, overrides)], cwd=root, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{name}: {entry} failed:\n{result.stderr[-3000:]}")
    return time.perf_counter() - start


def evaluation(root: Path, name: str, eval_dir: Path, overrides: Sequence[str]) -> dict[str, Any]:
    """eval.py's metrics of `eval_dir`: evaluated with `overrides` unless an earlier call already wrote them."""
    metrics = eval_dir / "metrics.json"
    if not metrics.is_file():
        run_entry(root, name, "eval.py", [*overrides, f"hydra.run.dir={eval_dir}"])
    return json.loads(metrics.read_text())


def photo_benchmark_parser(description: str, steps: int) -> argparse.ArgumentParser:
    """The arguments the photo benchmarks share: TRAIN and TEST folders of clean photos, OUT, --steps, --seed."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("train", type=lambda p: str(Path(p).resolve()),
                        help="folder of clean training photos (CBSD432)")
    parser.add_argument("test", type=lambda p: str(Path(p).resolve()), help="folder of clean test photos (CBSD68)")
    parser.add_argument("out", type=lambda p: Path(p).resolve(),
                        help="folder for the runs, the evaluations and the table")
    parser.add_argument("--steps", type=int, default=steps)
    parser.add_argument("--seed", type=int, default=0)
    return parser
