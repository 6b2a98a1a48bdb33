"""`n2n report` on a hand-made sweep folder: grouping over seeds, mean ± std, order, failed runs, curves."""
import argparse
import json
import statistics
from pathlib import Path

import pytest
import yaml

from n2n.cli import report
from n2n.errors import DataError

COMMON = ["hparams_search=seed_table2", "data.train_path=/data/train_data.pkl"]
#: (aug, seed, best val/psnr, final val/psnr, final loss, seconds)
RUNS = [("none", 0, 24.50, 24.40, 0.020, 100.0), ("none", 1, 24.60, 24.55, 0.022, 110.0),
        ("none", 2, 24.61, 24.60, 0.021, 120.0),
        ("flip_swap", 0, 24.70, 24.70, 0.030, 90.0), ("flip_swap", 1, 24.58, 24.50, 0.031, 95.0),
        ("flip_swap", 2, 24.62, 24.62, 0.029, 100.0)]


def cli(*argv) -> int:
    parser = argparse.ArgumentParser(prog="n2n")
    report.add_parser(parser.add_subparsers())
    args = parser.parse_args(["report", *map(str, argv)])
    return args.func(args)


def write_run(folder: Path, overrides: list[str], metrics: dict | None, curves: dict | None = None) -> None:
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (folder / "config.yaml").write_text("seed: 0\n")
    if metrics is not None:
        (folder / "metrics.json").write_text(json.dumps(metrics))
    if curves:
        from torch.utils.tensorboard import SummaryWriter

        with SummaryWriter(str(folder / "tensorboard")) as writer:
            for tag, points in curves.items():
                for step, value in points:
                    writer.add_scalar(tag, value, step)


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    root = tmp_path / "sweep"
    for job, (aug, seed, best, final, loss, seconds) in enumerate(RUNS):
        curves = ({"val/psnr": [(10, final - 1), (20, final)], "train/loss": [(5, 2 * loss), (20, loss)]}
                  if job < 2 else None)
        write_run(root / str(job), [f"aug={aug}", f"seed={seed}", *COMMON],
                  {"best_val_psnr": best, "val_psnr": final, "train_loss": loss, "train_seconds": seconds,
                   "global_step": 20}, curves)
    write_run(root / "6", ["aug=flip", "seed=0", *COMMON], None)  # killed before it finished
    (root / "multirun.yaml").write_text("hydra: {}\n")
    return root


def table_rows(text: str) -> list[list[str]]:
    rows = [line.strip("|").split("|") for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    return [[c.strip() for c in row] for row in rows[1:]]  # without the header


def test_groups_seeds_into_mean_and_std_best_first(sweep, capsys):
    assert cli(sweep) == 0
    text = (sweep / "report.md").read_text()
    rows = table_rows(text)
    assert [r[1] for r in rows] == ["`aug=flip_swap`", "`aug=none`"]  # mean best 24.633 > 24.570
    for row, aug in zip(rows, ("flip_swap", "none")):
        runs = [r for r in RUNS if r[0] == aug]
        assert row[0] == str(rows.index(row) + 1) and row[2] == "3"
        for cell, column in zip(row[3:7], (2, 3, 4, 5)):
            values = [r[column] for r in runs]
            decimals = report.COLUMNS[column - 2][2]
            assert cell == f"{statistics.fmean(values):.{decimals}f} ± {statistics.stdev(values):.{decimals}f}"
    assert rows[0][3] == "24.63 ± 0.06"  # by hand: mean 24.633, sample std 0.0611
    assert "Overrides of every run: `hparams_search=seed_table2 data.train_path=/data/train_data.pkl`" in text
    assert "- `6`: no metrics.json (failed or unfinished); overrides `aug=flip seed=0" in text
    assert "7 run(s): 6 finished in 2 choice(s), 1 failed" in text
    assert "## Optuna" not in text
    printed = capsys.readouterr().out
    assert "| 1 | `aug=flip_swap` | 3 | 24.63 ± 0.06 |" in printed and "curves of 2 run(s)" in printed
    png = (sweep / "report.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_curves_come_from_the_event_files(sweep):
    curves = report.read_curves(sweep / "0")
    assert [s for s, _ in curves["val/psnr"]] == [10, 20]
    assert curves["val/psnr"][1][1] == pytest.approx(24.40)
    assert curves["train/loss"][0] == (5, pytest.approx(0.04))
    assert report.read_curves(sweep / "3") == {}


def test_one_run_per_choice_has_no_std_and_out_folder(tmp_path, sweep):
    for job in ("1", "2", "4", "5"):  # keep one seed of each choice
        (sweep / job / "metrics.json").unlink()
    out = tmp_path / "elsewhere"
    cli(sweep, "--out", out)
    rows = table_rows((out / "report.md").read_text())
    assert [(r[1], r[2], r[3]) for r in rows] == [("`aug=flip_swap`", "1", "24.70"), ("`aug=none`", "1", "24.50")]
    assert (out / "report.png").is_file() and not (sweep / "report.md").exists()


def test_a_diverged_run_makes_its_choice_nan_and_last(sweep):
    metrics = json.loads((sweep / "3" / "metrics.json").read_text())
    (sweep / "3" / "metrics.json").write_text(json.dumps({**metrics, "best_val_psnr": float("nan")}))
    cli(sweep)
    rows = table_rows((sweep / "report.md").read_text())
    assert rows[0][1] == "`aug=none`" and rows[1][3].startswith("nan")


def test_optuna_folder_shows_the_best_trial_and_short_floats(tmp_path):
    root = tmp_path / "optuna"
    for job, (lr, psnr) in enumerate([(0.0123456789, 20.0), (0.00042, 22.5)]):
        write_run(root / str(job), [f"optimizer.lr={lr}", "norm=none", "hparams_search=seed_table1"],
                  {"best_val_psnr": psnr, "val_psnr": psnr, "train_loss": 0.1, "train_seconds": 1.0})
    (root / "optimization_results.yaml").write_text(yaml.safe_dump(
        {"name": "optuna", "best_params": {"optimizer.lr": 0.00042, "norm": "none"}, "best_value": 22.5},
        sort_keys=False))
    cli(root)
    text = (root / "report.md").read_text()
    assert [r[1] for r in table_rows(text)] == ["`optimizer.lr=0.00042`", "`optimizer.lr=0.01235`"]
    assert "- `optimization_results.yaml`: best value 22.50 dB with `optimizer.lr=0.00042 norm=none`" in text


def test_runs_of_several_workers_under_one_parent(tmp_path):
    for worker in ("worker1", "worker2"):
        write_run(tmp_path / worker / "0", ["aug=none", f"seed={worker[-1]}"],
                  {"best_val_psnr": 20.0 + int(worker[-1]), "val_psnr": 20.0, "train_loss": 0.1, "train_seconds": 1.0})
    runs = report.find_runs(tmp_path)
    assert [r.name for r in runs] == ["worker1/0", "worker2/0"]
    assert [(g.choice, g.stats("best_val_psnr")[:2]) for g in report.group_runs(runs)] == \
        [(("aug=none",), (21.5, pytest.approx(0.7071, abs=1e-4)))]


def test_not_a_sweep_folder_is_named(tmp_path):
    with pytest.raises(DataError, match="SWEEP_DIR=.*missing is not a folder"):
        cli(tmp_path / "missing")
    with pytest.raises(DataError, match=r"holds no run folders \(none with .hydra/overrides.yaml\)"):
        cli(tmp_path)


def test_through_the_n2n_command(sweep, capsys):
    from n2n.cli import main

    assert main(["report", str(sweep)]) == 0
    assert "| 1 | `aug=flip_swap` | 3 |" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        main(["report", str(sweep / "nothing")])
    assert exit_.value.code == 2 and "n2n: error: SWEEP_DIR=" in capsys.readouterr().err


def test_target_psnr_column_reads_each_runs_validation_history(tmp_path, capsys):
    """`--target-psnr`: training seconds until the first validation at or above the target, mean over seeds."""
    sweep = tmp_path / "sweep"
    history = lambda *points: [{"step": s, "train_seconds": t, "val_psnr": p} for s, t, p in points]  # noqa: E731
    base = {"best_val_psnr": 31.2, "val_psnr": 31.2, "train_loss": 0.01, "train_seconds": 300}
    write_run(sweep / "0", ["target=noisy", "seed=0"],
              {**base, "val_history": history((1000, 40.0, 30.5), (2000, 80.0, 31.05), (3000, 120.0, 31.2))})
    write_run(sweep / "1", ["target=noisy", "seed=1"],
              {**base, "val_history": history((1000, 45.0, 31.0), (2000, 90.0, 31.1))})
    write_run(sweep / "2", ["target=clean", "seed=0"],
              {**base, "val_history": history((1000, 40.0, 30.2), (2000, 80.0, 30.9))})
    assert cli(sweep, "--target-psnr", "31") == 0
    rows = {r[1]: r for r in table_rows((sweep / "report.md").read_text())}
    assert rows["`target=noisy`"][-1] == f"62 ± {statistics.stdev([80.0, 45.0]):.0f}"
    assert rows["`target=clean`"][-1] == "not reached by 1 of 1"
    assert "train s to 31 dB" in capsys.readouterr().out
