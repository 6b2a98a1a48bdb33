"""The seed report's experiments as configs: the recipe, the Table 2 multirun, the Table 1 Optuna search run by
two processes on one study, then `n2n report` on it and the HParams summaries its runs wrote."""
import argparse
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from helpers.images import make_ee559
from helpers.runs import compose_train, run_entry
from n2n.cli import report
from n2n.training.hparams import flat_hparams

#: One optimizer step per trial: each trial costs little more than Lightning's start-up.
TRIAL = ["trainer.accelerator=cpu", "trainer.max_epochs=1", "data.steps_per_epoch=2", "data.val_limit=8",
         "trainer.num_sanity_val_steps=0", "trainer.enable_progress_bar=false", "trainer.log_every_n_steps=1"]
SEARCHED = {"activation", "norm", "optimizer.lr", "optimizer.momentum"}


def test_seed_report_recipe():
    cfg = compose_train(["experiment=seed_report"], return_hydra_config=True)
    assert cfg.data.name == "ee559" and cfg.data.batch_size == 8
    assert (cfg.optimizer.name, cfg.optimizer.lr, cfg.optimizer.momentum) == ("sgd", 0.055, 0.18)
    assert (cfg.model.activation.name, cfg.model.norm.name, cfg.aug.name, cfg.scheduler.name) == \
        ("leaky_relu", "none", "flip_swap", "none")
    assert cfg.model.init == "torch"  # the seed's learning rate diverges with He initialisation (README)
    assert cfg.trainer.max_epochs >= 1


def test_table2_sweeps_augmentations_and_ten_seeds_over_the_recipe():
    cfg = compose_train(["hparams_search=seed_table2"], return_hydra_config=True)
    params = cfg.hydra.sweeper.params
    assert params.aug.split(",") == ["none", "flip", "flip_swap", "flip_swap_color"]
    assert params.seed.split(",") == [str(s) for s in range(10)]
    assert (cfg.optimizer.name, cfg.optimizer.lr, cfg.data.batch_size) == ("sgd", 0.055, 8)


def test_table1_is_a_tpe_search_over_the_recipe():
    from n2n.search.config import SWEEPER_TARGET

    cfg = compose_train(["hparams_search=seed_table1"], return_hydra_config=True)
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_ == SWEEPER_TARGET and sweeper.direction == "maximize"
    assert sweeper.sampler.name == "tpe" and sweeper.sampler.n_startup_trials == 10
    assert sweeper.pruner.name == "none" and sweeper.max_failure_rate == 1.0
    assert set(sweeper.params) == SEARCHED
    assert sweeper.params["optimizer.lr"] == "tag(log, interval(1e-4, 0.1))"
    assert cfg.optimizer.name == "sgd" and cfg.data.name == "ee559"  # momentum exists only for sgd


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """Table 1 with tiny settings: two processes at once on one sqlite study, 2 + 1 trials. Neither creates the
    study first: the one that loses the race to create the database's tables tries again."""
    root = tmp_path_factory.mktemp("table1")
    train, val = make_ee559(root / "data", n_train=32, n_val=8)
    storage = f"sqlite:///{root / 'study.db'}"
    common = ["train.py", "-m", "hparams_search=seed_table1", f"data.train_path={train}", f"data.val_path={val}",
              f"hydra.sweeper.storage={storage}", "hydra.sweeper.study_name=tiny", *TRIAL]
    workers = [(root / "worker1", 2), (root / "worker2", 1)]
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda w: run_entry([*common, f"hydra.sweep.dir={w[0]}",
                                                     f"hydra.sweeper.n_trials={w[1]}"]), workers))
    for result in results:
        assert result.returncode == 0, result.stderr[-3000:]
    return root, storage


def test_two_processes_share_one_study(study):
    import optuna

    root, storage = study
    trials = optuna.load_study(study_name="tiny", storage=storage).trials
    assert len(trials) == 3 and all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert all(set(t.params) == SEARCHED and 1e-4 <= t.params["optimizer.lr"] <= 0.1 for t in trials)
    # each trial's value is what its run returned: the best val/psnr in its metrics.json
    runs = sorted(root.glob("worker*/[0-9]*"))
    assert len(runs) == 3
    best = sorted(json.loads((r / "metrics.json").read_text())["best_val_psnr"] for r in runs)
    assert sorted(t.value for t in trials) == pytest.approx(best, abs=1e-6)
    config = yaml.safe_load((runs[0] / "config.yaml").read_text())
    assert config["optimizer"]["name"] == "sgd" and config["data"]["batch_size"] == 8


def test_report_on_the_optuna_sweep(study):
    root, _ = study
    out = root / "report"
    parser = argparse.ArgumentParser()
    report.add_parser(parser.add_subparsers())
    args = parser.parse_args(["report", str(root / "worker1"), "--out", str(out)])
    assert args.func(args) == 0
    text = (out / "report.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) == 2  # two trials, two different choices
    common = next(line for line in text.splitlines() if line.startswith("Overrides of every run"))
    for rank, row in enumerate(rows, 1):
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[0] == str(rank) and "optimizer.lr=" in cells[1] and cells[2] == "1"
        assert "activation=" in cells[1] + common  # in the row, or above the table when both trials drew it
    psnrs = [float(row.split("|")[4]) for row in rows]
    assert psnrs == sorted(psnrs, reverse=True)
    assert "## Optuna" in text and "best value" in text and "0 failed" in text
    assert (out / "report.png").stat().st_size > 10_000


def hparams_of(run_dir: Path) -> tuple[dict, list[str], dict]:
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    content = acc.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    values = {k: getattr(v, v.WhichOneof("kind")) for k, v in start.hparams.items()}
    scalars = {t: acc.Scalars(t)[-1].value for t in acc.Tags()["scalars"] if t.startswith("whole_run/")}
    return values, [m.name.tag for m in experiment.metric_infos], scalars


def test_every_run_writes_its_hparams_and_final_metrics_for_tensorboard(study):
    root, _ = study
    for run_dir in sorted(root.glob("worker*/[0-9]*")):
        values, metric_tags, scalars = hparams_of(run_dir)
        overrides = dict(o.split("=", 1) for o in yaml.safe_load((run_dir / ".hydra" / "overrides.yaml").read_text()))
        assert values["activation"] == overrides["activation"] and values["norm"] == overrides["norm"]
        assert values["lr"] == pytest.approx(float(overrides["optimizer.lr"]))
        assert values["momentum"] == pytest.approx(float(overrides["optimizer.momentum"]))
        assert (values["optimizer"], values["aug"], values["batch_size"], values["noise"]) == \
            ("sgd", "flip_swap", "8", "in data")  # integers as text: TensorBoard prints numbers as 8.0000
        assert values["method"] == "n2n"
        assert {"whole_run/best_val_psnr", "whole_run/final_val_psnr", "whole_run/final_train_loss"} <= set(metric_tags)
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert scalars["whole_run/best_val_psnr"] == pytest.approx(metrics["best_val_psnr"], abs=1e-4)
        assert scalars["whole_run/final_val_psnr"] == pytest.approx(metrics["val_psnr"], abs=1e-4)


def test_flat_hparams_leave_out_what_a_run_does_not_have():
    cfg = compose_train(["noise=gaussian", "noise.sigma=[0,50]", "optimizer=adam"])
    from omegaconf import OmegaConf

    flat = flat_hparams(OmegaConf.to_container(cfg, resolve=False))
    assert "momentum" not in flat and flat["optimizer"] == "adam"
    assert flat["noise"] == "gaussian(sigma=[0, 50])" and flat["data"] == "samples"
    assert all(isinstance(v, (int, float, str, bool)) for v in flat.values())


def test_the_hparams_table_opens_on_method_noise_and_what_the_command_line_set():
    from tensorboard.plugins.hparams import plugin_data_pb2

    from n2n.training.hparams import hparams_summaries, method_name, shown_first

    cfg = as_dict(compose_train(["data.batch_size=16", "target=clean"]))
    flat = flat_hparams(cfg)
    assert flat["batch_size"] == "16" and flat["seed"] == "0"  # integers as integers, not 16.000
    assert isinstance(flat["lr"], float) and flat["method"] == "n2c"
    assert method_name({"target": "noisy"}) == "n2n" and method_name({"method": {"name": "n2v"}}) == "n2v"
    first = shown_first(["activation=relu", "optimizer.lr=0.01", "experiment=quick_cpu", "+seed=3"])
    assert first == {"method", "noise", "activation", "lr", "seed"}
    experiment, _, _ = hparams_summaries(flat, {"whole_run/best_val_psnr": 30.0}, first)
    content = plugin_data_pb2.HParamsPluginData.FromString(experiment.value[0].metadata.plugin_data.content)
    marked = {info.name for info in content.experiment.hparam_infos if info.differs}
    assert marked == first & set(flat)  # TensorBoard sorts these first and opens on the first five
    assert [m.display_name for m in content.experiment.metric_infos] == ["best val/psnr"]


def as_dict(cfg):
    from omegaconf import OmegaConf

    return OmegaConf.to_container(cfg, resolve=False)
