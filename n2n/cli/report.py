"""`n2n report SWEEP_DIR`: one table and one figure for a sweep (`python train.py -m ...`).

Every run folder of the sweep (any folder below SWEEP_DIR with `.hydra/overrides.yaml`: the numbered jobs of
a multirun or of an Optuna search, also several workers' sweep folders under one parent) is read; runs whose
overrides differ only in `seed` are one choice, reported as mean ± standard deviation over its runs. That is
how the seed report's Table 2 averaged ten trainings per augmentation.

Writes `report.md` (the table, sorted by best val/psnr, plus the failed runs and Optuna's best trial) and
`report.png` (val/psnr and training-loss curves of every run), and prints the table.
"""
from __future__ import annotations

import argparse
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from n2n.atomic import atomic_output, write_text
from n2n.cli import Bounded
from n2n.errors import DataError
from n2n.extras import require_extra

#: Overrides that repeat a choice rather than make a new one: runs differing only here are averaged.
REPEAT_KEYS = {"seed"}
#: (metrics.json key, column title, decimals) of the table, after the overrides and the run count.
COLUMNS = [("best_val_psnr", "best val/psnr (dB)", 2), ("val_psnr", "final val/psnr (dB)", 2),
           ("train_loss", "final train loss", 4), ("train_seconds", "train time (s)", 0)]


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "report", help="Markdown table and curves of a sweep's runs (python train.py -m ...)",
        description="Read every run folder of a sweep, group runs whose overrides differ only in seed, and write "
                    "report.md (mean ± std of best and final val/psnr, final loss and training time per choice, "
                    "best first) and report.png (val/psnr and loss curves of all runs).")
    p.add_argument("sweep_dir", type=Path, metavar="SWEEP_DIR",
                   help="a multirun or Optuna sweep folder, e.g. outputs/multirun/DATE/TIME")
    p.add_argument("--out", type=Path, metavar="DIR", help="where to write report.md and report.png "
                   "(default: SWEEP_DIR)")
    p.add_argument("--target-psnr", type=Bounded(float, 0, 200), metavar="DB",
                   help="add a column: training seconds (validation "
                   "excluded) until val/psnr first reached DB at a validation")
    p.set_defaults(func=run)


# ------------------------------------------------------------------------------------------------ reading
@dataclass
class Run:
    name: str                      # path relative to the sweep folder, e.g. "3" or "worker1/0"
    path: Path
    overrides: list[str]           # as the user or the sweeper wrote them
    metrics: dict[str, Any] | None  # None: failed or unfinished
    problem: str = ""

    @property
    def choice(self) -> tuple[str, ...]:
        """The overrides that make this run's choice: all but the repeat keys (seed)."""
        return tuple(sorted(o for o in self.overrides if _key(o) not in REPEAT_KEYS))


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def find_runs(sweep_dir: Path) -> list[Run]:
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise DataError(f"SWEEP_DIR={sweep_dir} is not a folder; expected the output folder of "
                        f"`python train.py -m ...` (e.g. outputs/multirun/DATE/TIME)")
    folders = sorted({p.parent.parent for p in sweep_dir.rglob(".hydra/overrides.yaml")}, key=_natural)
    if not folders:
        raise DataError(f"SWEEP_DIR={sweep_dir} holds no run folders (none with .hydra/overrides.yaml); expected "
                        f"the output folder of `python train.py -m ...`")
    return [read_run(sweep_dir, folder) for folder in folders]


def _natural(path: Path) -> list:
    """Sort 2 before 10."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", path.as_posix()) if t]


def read_run(sweep_dir: Path, folder: Path) -> Run:
    name = folder.relative_to(sweep_dir).as_posix() if folder != sweep_dir else folder.name
    try:
        overrides = [str(o) for o in (yaml.safe_load((folder / ".hydra" / "overrides.yaml").read_text()) or [])]
    except (OSError, yaml.YAMLError) as exc:
        return Run(name, folder, [], None, f"unreadable .hydra/overrides.yaml: {exc}")
    metrics_file = folder / "metrics.json"
    if not metrics_file.is_file():
        return Run(name, folder, overrides, None, "no metrics.json (failed or unfinished)")
    try:
        metrics = json.loads(metrics_file.read_text())
        if not isinstance(metrics, dict):
            raise ValueError(f"holds a {type(metrics).__name__}, expected an object")
    except (OSError, ValueError) as exc:
        return Run(name, folder, overrides, None, f"unreadable metrics.json: {exc}")
    return Run(name, folder, overrides, metrics)


def read_curves(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """{"val/psnr": [(step, value), ...], "train/loss": [...]} from TensorBoard events, else Lightning's CSV."""
    wanted = ("val/psnr", "train/loss")
    for tb in (folder, folder / "tensorboard"):  # events in the run folder; runs of earlier versions: tensorboard/
        if tb.is_dir() and any(tb.glob("events.out.tfevents.*")):
            from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

            acc = EventAccumulator(str(tb), size_guidance={"scalars": 0})
            acc.Reload()
            tags = set(acc.Tags()["scalars"])
            return {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in wanted if t in tags}
    csv_file = folder / "csv" / "metrics.csv"
    if csv_file.is_file():
        import csv

        curves: dict[str, list[tuple[int, float]]] = {t: [] for t in wanted}
        with open(csv_file, newline="") as f:
            for row in csv.DictReader(f):
                for t in wanted:
                    if row.get(t) not in (None, ""):
                        curves[t].append((int(row["step"]), float(row[t])))
        return {t: v for t, v in curves.items() if v}
    return {}


# ------------------------------------------------------------------------------------------------ table
@dataclass
class Group:
    choice: tuple[str, ...]
    runs: list[Run] = field(default_factory=list)

    def values(self, key: str) -> list[float]:
        return [float(r.metrics[key]) for r in self.runs if isinstance(r.metrics.get(key), (int, float))]

    def stats(self, key: str) -> tuple[float, float, int]:
        return mean_std(self.values(key))

    def time_to(self, target: float) -> str:
        """Training seconds to reach `target` dB, over the runs; says how many never reached it."""
        from n2n.training.callbacks.clock import time_to_psnr  # imports lightning: not for `n2n --help`

        times = [time_to_psnr(r.metrics.get("val_history") or [], target) for r in self.runs]
        missed = sum(t is None for t in times)
        if missed:
            return f"not reached by {missed} of {len(times)}"
        return fmt(*mean_std(times), 0)


def mean_std(v: list[float]) -> tuple[float, float, int]:
    """Mean, sample standard deviation (NaN for one value) and count. A NaN value (a diverged run) makes the
    mean NaN: it must not be averaged away."""
    if not v:
        return math.nan, math.nan, 0
    mean = math.fsum(v) / len(v)
    if len(v) < 2:
        return mean, math.nan, 1
    # by hand: statistics.stdev fails on NaN instead of returning it
    return mean, math.sqrt(math.fsum((x - mean) ** 2 for x in v) / (len(v) - 1)), len(v)


def group_runs(runs: list[Run]) -> list[Group]:
    """Finished runs grouped by choice, best mean best_val_psnr first (NaN last)."""
    groups: dict[tuple[str, ...], Group] = {}
    for r in runs:
        if r.metrics is not None:
            groups.setdefault(r.choice, Group(r.choice)).runs.append(r)

    def order(g: Group) -> tuple[bool, float]:
        mean = g.stats("best_val_psnr")[0]
        return (math.isnan(mean), -mean if not math.isnan(mean) else 0.0)

    return sorted(groups.values(), key=order)


def common_overrides(runs: list[Run]) -> list[str]:
    """Overrides every run has (data paths, the experiment, tiny settings): stated once above the table."""
    if not runs:
        return []
    shared = set(runs[0].choice).intersection(*(r.choice for r in runs[1:]))
    return [o for o in runs[0].overrides if o in shared]


def short(override: str) -> str:
    """`optimizer.lr=0.019345518628583937` -> `optimizer.lr=0.01935`: Optuna's floats, readable."""
    key, sep, value = override.partition("=")
    if sep and re.fullmatch(r"[-+]?(\d+\.\d*|\.\d+|\d+(\.\d*)?[eE][-+]?\d+)", value):
        return f"{key}={float(value):.4g}"
    return override


def fmt(mean: float, std: float, n: int, decimals: int) -> str:
    if n == 0:
        return "–"
    text = f"{mean:.{decimals}f}"
    return text if math.isnan(std) else f"{text} ± {std:.{decimals}f}"


def markdown_table(groups: list[Group], common: list[str], target_psnr: float | None = None) -> str:
    head = ["#", "overrides", "runs"] + [title for _, title, _ in COLUMNS]
    if target_psnr is not None:
        head.append(f"train s to {target_psnr:g} dB")
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---:" if h != "overrides" else "---" for h in head) + "|"]
    for rank, g in enumerate(groups, 1):
        label = " ".join(short(o) for o in g.choice if o not in common) or "(same overrides)"
        cells = [str(rank), f"`{label}`", str(len(g.runs))]
        cells += [fmt(*g.stats(key), decimals) for key, _, decimals in COLUMNS]
        if target_psnr is not None:
            cells.append(g.time_to(target_psnr))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def optuna_summaries(sweep_dir: Path) -> list[str]:
    lines = []
    for path in sorted(sweep_dir.rglob("optimization_results.yaml"), key=_natural):
        try:
            result = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            lines.append(f"- `{path.relative_to(sweep_dir)}`: unreadable ({exc})")
            continue
        params = " ".join(short(f"{k}={v}") for k, v in (result.get("best_params") or {}).items())
        value = result.get("best_value")
        value = f"{value:.2f} dB" if isinstance(value, (int, float)) else str(value)
        lines.append(f"- `{path.relative_to(sweep_dir)}`: best value {value} with `{params}`")
    return lines


def render(sweep_dir: Path, runs: list[Run], groups: list[Group], target_psnr: float | None = None) -> str:
    finished = [r for r in runs if r.metrics is not None]
    failed = [r for r in runs if r.metrics is None]
    common = common_overrides(finished)
    out = [f"# Sweep report: {sweep_dir}", "",
           f"{len(runs)} run(s): {len(finished)} finished in {len(groups)} choice(s), {len(failed)} failed or "
           f"unfinished. Values are mean ± sample standard deviation over the runs of a choice (runs whose "
           f"overrides differ only in `seed`); best first.", ""]
    if common:
        out += ["Overrides of every run: `" + " ".join(short(o) for o in common) + "`", ""]
    if groups:
        out += [markdown_table(groups, common, target_psnr), ""]
        if target_psnr is not None:
            out += [f"Train s to {target_psnr:g} dB: training time without validation until the first validation "
                    f"at or above {target_psnr:g} dB (validation runs every data.steps_per_epoch steps, so this is "
                    f"an upper bound).", ""]
    if failed:
        out += ["## Failed or unfinished runs", ""]
        out += [f"- `{r.name}`: {r.problem}; overrides `{' '.join(short(o) for o in r.overrides)}`" for r in failed]
        out += [""]
    optuna = optuna_summaries(sweep_dir)
    if optuna:
        out += ["## Optuna", ""] + optuna + [""]
    out += ["![val/psnr and training loss of every run](report.png)", ""]
    return "\n".join(out)


# ------------------------------------------------------------------------------------------------ figure
def plot(runs: list[Run], groups: list[Group], path: Path) -> int:
    """val/psnr and train/loss against the step, one line per run, one colour per choice. Returns the number
    of runs drawn."""
    matplotlib = require_extra("matplotlib", "report", "n2n report's figure (report.png)")
    matplotlib.use("Agg")  # no display needed; also safe on a headless machine
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    common = common_overrides([r for r in runs if r.metrics is not None])
    colours = plt.get_cmap("tab10" if len(groups) <= 10 else "viridis")
    colour_of = {g.choice: colours(i if len(groups) <= 10 else i / max(1, len(groups) - 1))
                 for i, g in enumerate(groups)}
    fig, (ax_psnr, ax_loss) = plt.subplots(1, 2, figsize=(12, 5))
    drawn, labelled, labelled_choice = 0, set(), {}
    for r in runs:
        curves = read_curves(r.path)
        if not curves:
            continue
        drawn += 1
        finished = r.metrics is not None
        label = None
        if finished and r.choice not in labelled and len(groups) <= 10:
            label = " ".join(short(o) for o in r.choice if o not in common) or "all runs"
            label = label if len(label) <= 90 else label[:87] + "..."
            labelled.add(r.choice)
            labelled_choice[label] = r.choice
        style = dict(color=colour_of[r.choice], lw=1.2, alpha=0.8) if finished else dict(color="grey", ls="--", lw=1)
        for ax, tag in ((ax_psnr, "val/psnr"), (ax_loss, "train/loss")):
            if curves.get(tag):
                steps, values = zip(*curves[tag])
                ax.plot(steps, values, marker="o" if len(steps) < 20 else None, ms=3,
                        label=label if ax is ax_psnr else None, **style)
    ax_psnr.set(title="validation PSNR", xlabel="step", ylabel="val/psnr (dB)")
    ax_loss.set(title="training loss", xlabel="step", ylabel="train/loss")
    losses = [v for line in ax_loss.get_lines() for v in line.get_ydata()]
    if losses and min(losses) > 0:
        ax_loss.set_yscale("log")
        plain = FuncFormatter(lambda v, _: f"{v:.3g}")  # 0.024, not 2.4 x 10^-2
        ax_loss.yaxis.set_major_formatter(plain)
        ax_loss.yaxis.set_minor_formatter(plain)
    for ax in (ax_psnr, ax_loss):
        ax.grid(alpha=0.3)
    # one legend under both plots: inside either it would hide curves
    handles, labels = ax_psnr.get_legend_handles_labels()
    rank = {g.choice: i for i, g in enumerate(groups)}  # legend in the table's order, best first
    order = sorted(range(len(labels)), key=lambda i: rank[labelled_choice[labels[i]]])
    handles, labels = [handles[i] for i in order], [labels[i] for i in order]
    rows = math.ceil(len(labels) / 2)
    if labels:
        fig.legend(handles, labels, loc="lower center", ncol=2 if len(labels) > 1 else 1, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, min(0.5, 0.05 + 0.045 * rows) if labels else 0, 1, 1))
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return drawn


# ------------------------------------------------------------------------------------------------ command
def run(args: argparse.Namespace) -> int:
    sweep_dir = Path(args.sweep_dir)
    out = Path(args.out) if args.out else sweep_dir
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out} is a file: give the folder to write report.md and report.png into")
    require_extra("matplotlib", "report", "n2n report's figure (report.png)")  # before any work: one line if missing
    runs = find_runs(sweep_dir)
    groups = group_runs(runs)
    out.mkdir(parents=True, exist_ok=True)
    text = render(sweep_dir, runs, groups, getattr(args, "target_psnr", None))
    write_text(out / "report.md", text)
    drawn = plot(runs, groups, out / "report.png")
    print(text.rsplit("![", 1)[0].rstrip())
    print(f"\nwrote {out / 'report.md'} and {out / 'report.png'} (curves of {drawn} run(s))")
    return 0
