"""What pruning saves: the same small Optuna search run twice, without and with a pruner, with the same number of
trials and the same sampler seed, on the CPU and the sample photos that ship with scikit-image.

    OMP_NUM_THREADS=1 python -m n2n.bench.search                 # 10 trials of 150 steps each, twice
    python -m n2n.bench.search --trials 4 --epochs 2             # a quick look

Each search is `train.py -m hydra/sweeper=n2n_optuna` over the Adam learning rate (log scale, 1e-5 to 0.1) and
the activation, with a TPE sampler (seed 0, 4 random start-up trials); the second search prunes with
`--pruner` (median: once 3 trials have finished). Every trial trains crops of 32 pixels, batch 8, and is
validated every `--steps-per-epoch` steps on `chelsea`. It prints, for each search, the trials'
outcomes, the compute spent (training steps, summed training seconds, wall-clock seconds of the whole search)
and the best val/psnr found, and writes them to `<out>/summary.json`; the run folders and studies stay in
`<out>` (`n2n report <out>/median`, `optuna-dashboard sqlite:///<out>/median.db`).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from n2n.atomic import write_text
from n2n.errors import ConfigError, exit_on_error

ROOT = Path(__file__).resolve().parents[2]
SPACE = ["optimizer.lr=tag(log, interval(1e-5, 0.1))", "activation=choice(leaky_relu, relu)"]


def training(steps_per_epoch: int, epochs: int) -> list[str]:
    return ["trainer.accelerator=cpu", "data.crop_size=32", "data.batch_size=8", "data.val_limit=1",
            f"data.steps_per_epoch={steps_per_epoch}", f"trainer.max_epochs={epochs}", "logger=none",
            "print_config=false", "trainer.enable_progress_bar=false", "trainer.num_sanity_val_steps=0"]


def pruner_options(name: str, steps_per_epoch: int) -> list[str]:
    if name == "none":
        return ["hydra/sweeper/pruner=none"]
    options = [f"hydra/sweeper/pruner={name}"]
    if name in ("median", "percentile"):
        # judged at every validation once 3 trials have finished: 10 trials leave few to judge after 5
        options += ["hydra.sweeper.pruner.n_startup_trials=3"]
    if name in ("hyperband", "successive_halving"):  # the first rung at the first validation
        options += [f"hydra.sweeper.pruner.min_resource={steps_per_epoch}"]
    return options


def run_search(out: Path, pruner: str, args: argparse.Namespace) -> dict[str, Any]:
    """One search; what it cost and found."""
    import optuna

    storage = f"sqlite:///{out / f'{pruner}.db'}"
    command = [sys.executable, "train.py", "-m", "hydra/sweeper=n2n_optuna",
               *pruner_options(pruner, args.steps_per_epoch),
               f"hydra.sweeper.n_trials={args.trials}", f"hydra.sweeper.sampler.seed={args.seed}",
               "hydra.sweeper.sampler.n_startup_trials=4", "hydra.sweeper.max_failure_rate=1.0",
               f"hydra.sweeper.storage={storage}", "hydra.sweeper.study_name=bench", f"hydra.sweep.dir={out / pruner}",
               *SPACE, *training(args.steps_per_epoch, args.epochs)]
    print(f"search with pruner {pruner}: {' '.join(command[1:])}", flush=True)
    start = time.perf_counter()
    with open(out / f"{pruner}.log", "w") as log:
        done = subprocess.run(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise ConfigError(f"the search with pruner {pruner} failed (exit code {done.returncode}); "
                          f"see {out / f'{pruner}.log'}")
    runs = [json.loads(p.read_text()) for p in sorted((out / pruner).glob("*/metrics.json"))]
    trials = optuna.load_study(study_name="bench", storage=storage).trials
    states = [t.state.name.lower() for t in trials]
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    best = max(complete, key=lambda t: t.value) if complete else None
    return {"pruner": pruner, "trials": len(trials),
            "complete": states.count("complete"), "pruned": states.count("pruned"), "failed": states.count("fail"),
            "training_steps": sum(int(r.get("global_step", 0)) for r in runs),
            "train_seconds": round(sum(float(r.get("train_seconds") or 0) for r in runs), 1),
            "wall_seconds": round(wall, 1),
            "best_val_psnr": round(best.value, 3) if best else None,
            "best_params": dict(best.params) if best else {}}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m n2n.bench.search", description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=10, help="trials of each search (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="the TPE sampler's seed, the same for both (default 0)")
    parser.add_argument("--steps-per-epoch", type=int, default=25, help="steps between validations (default 25)")
    parser.add_argument("--epochs", type=int, default=6, help="validations per trial (default 6)")
    parser.add_argument("--pruner", default="median", choices=["median", "percentile", "hyperband",
                                                               "successive_halving"],
                        help="the pruner of the second search (default median)")
    parser.add_argument("--out", type=Path, default=None,
                        help="where the searches write (default outputs/bench_search/DATE_TIME)")
    args = parser.parse_args(argv)
    for name in ("trials", "steps_per_epoch", "epochs"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')}={getattr(args, name)} must be at least 1")
    from n2n.devices import describe_machine
    from n2n.extras import require_extra

    require_extra("optuna", for_what="the search benchmark")

    out = args.out or ROOT / "outputs" / "bench_search" / datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {
        "machine": describe_machine("cpu"), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "trials": args.trials, "seed": args.seed, "steps_per_trial": args.steps_per_epoch * args.epochs,
        "validation_every": args.steps_per_epoch, "searches": []}
    for pruner in ("none", args.pruner):
        summary["searches"].append(run_search(out, pruner, args))
        write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    print(render(summary), flush=True)
    print(f"results: {out / 'summary.json'}", flush=True)
    return summary


def render(summary: dict[str, Any]) -> str:
    lines = [(f"{summary['trials']} trials of up to {summary['steps_per_trial']} steps (validated every "
              f"{summary['validation_every']}), TPE seed {summary['seed']}; {summary['machine']}, "
              f"OMP_NUM_THREADS={summary['omp_num_threads']}"), "",
             "| pruner | complete / pruned / failed | training steps | training s | wall s | best val/psnr |",
             "|---|---:|---:|---:|---:|---:|"]
    for s in summary["searches"]:
        best = f"{s['best_val_psnr']:.3f} dB" if s["best_val_psnr"] is not None else "none"
        lines.append(f"| {s['pruner']} | {s['complete']} / {s['pruned']} / {s['failed']} | {s['training_steps']} | "
                     f"{s['train_seconds']:.0f} | {s['wall_seconds']:.0f} | {best} |")
    base, pruned = summary["searches"][0], summary["searches"][-1]
    if len(summary["searches"]) == 2 and base["training_steps"] and base["wall_seconds"]:
        lines += ["", (f"with pruning: {pruned['training_steps'] / base['training_steps']:.0%} of the training "
                       f"steps, {pruned['wall_seconds'] / base['wall_seconds']:.0%} of the wall time")]
    return "\n".join(lines)


if __name__ == "__main__":
    with exit_on_error("python -m n2n.bench.search"):
        main()
