"""The paper's recipes (conf/experiment/paper_*.yaml) and scripts/paper_table.py.

The recipes are checked by composing them with Hydra (cheap); one of them trains a few steps on a CPU, and
paper_table.py runs one case end to end (train N2N and N2C, evaluate both, write the table; marked slow).
"""
from __future__ import annotations

import importlib.util
import json
import math
import re

import numpy as np
import pytest
import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf
from PIL import Image

from helpers.images import write_images
from helpers.runs import ROOT, compose_train, resolved, run_entry
from n2n.data.datamodule import N2NDataModule
from n2n.training.module import N2NModule

L2 = {"name": "l2", "ignore_dropped": False}
#: case -> (training noise, loss, validation noise override or None)
CASES = {
    "paper_gaussian25": ({"name": "gaussian", "sigma": 25}, L2, None),
    "paper_poisson30": ({"name": "poisson", "lam": 30}, L2, None),
    "paper_bernoulli50": ({"name": "bernoulli", "p": 0.5}, {**L2, "ignore_dropped": True}, None),
    "paper_text25": ({"name": "text", "coverage": [0, 0.5]}, {"name": "l1"}, {"coverage": 0.25}),
    "paper_impulse70": ({"name": "impulse", "p": [0, 0.95]},
                        {"name": "l0", "eps": 1e-8, "gamma_start": 2.0, "gamma_end": 0.0}, {"p": 0.7}),
}
DIRS = ["data.train_dir=/my/train", "data.val_dir=/my/test"]
#: Overrides that shrink a recipe to a few seconds on a CPU.
TINY = ["trainer=cpu", "trainer.precision=32-true", "data.crop_size=32", "data.batch_size=4",
        "trainer.log_every_n_steps=1", "trainer.num_sanity_val_steps=0", "trainer.enable_progress_bar=false"]


def composed(overrides: list[str], resolve: bool = True):
    return resolved(overrides) if resolve else compose_train(overrides)


def load_paper_table():
    spec = importlib.util.spec_from_file_location("paper_table", ROOT / "scripts" / "paper_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------------------------- recipes
def test_every_paper_case_has_a_recipe_and_the_script_knows_them_all():
    recipes = {p.stem for p in (ROOT / "conf" / "experiment").glob("paper_*.yaml")} - {"paper_base"}
    assert recipes == set(CASES)
    assert set(load_paper_table().CASES) == set(CASES)


@pytest.mark.parametrize("case", sorted(CASES))
def test_recipe_composes_to_the_paper_case_on_the_reference_recipe(case):
    noise, loss, val = CASES[case]
    config = composed([f"experiment={case}", *DIRS])
    expected_noise = {**noise, "val": val} if val else noise
    assert {k: v for k, v in config["noise"].items() if k != "file_like"} == expected_noise
    assert config["noise"].get("file_like", 0) == 0  # the paper's inputs are never clipped like files
    assert config["loss"] == loss
    assert config["method"] == {"name": "n2n"}
    # the folders are the user's, from the command line
    assert config["data"]["name"] == "folder"
    assert (config["data"]["train_dir"], config["data"]["val_dir"]) == ("/my/train", "/my/test")
    # the reference quality loop's recipe
    data, trainer = config["data"], config["trainer"]
    assert (data["crop_size"], data["batch_size"]) == (128, 32)
    assert config["optimizer"]["name"] == "adam" and config["optimizer"]["lr"] == pytest.approx(3e-4)
    assert config["optimizer"]["betas"] == [0.9, 0.99]
    assert config["scheduler"] == {"name": "rampdown", "fraction": 0.3}
    assert config["aug"]["flip"] is True and config["aug"]["swap"] is False and config["aug"]["color"] is False
    assert trainer["accelerator"] == "gpu" and trainer["precision"] == "bf16-mixed"
    assert trainer["max_steps"] == 12000 and trainer["max_epochs"] == -1  # max_steps alone sets the length
    assert 3 <= trainer["max_steps"] / data["steps_per_epoch"] <= 10  # validation a handful of times
    assert config["perf"]["channels_last"] is True
    # the code accepts every option, and the validation images get the test noise level
    module, datamodule = N2NModule(config), N2NDataModule(config)
    assert module.method.loss_fn.name == loss["name"]
    for option, level in (val or {}).items():
        train_level, val_level = getattr(datamodule.noise, option), getattr(datamodule.val_noise, option)
        assert train_level.is_range and (train_level.low, train_level.high) == tuple(noise[option])
        assert not val_level.is_range and val_level.low == pytest.approx(level)


@pytest.mark.parametrize("case", sorted(CASES))
def test_noise2clean_twin_is_the_same_run_with_clean_targets(case):
    n2n = composed([f"experiment={case}", *DIRS])
    n2c = composed([f"experiment={case}", *DIRS, "method=n2c"])
    assert n2c["method"] == {"name": "n2c"}
    assert {k for k in n2n if n2n[k] != n2c[k]} == {"method"}
    assert composed([f"experiment={case}", *DIRS, "target=clean"]) == n2c  # the old spelling


def test_recipes_name_no_data_folder_and_the_command_line_wins():
    for path in (ROOT / "conf" / "experiment").glob("paper_*.yaml"):
        assert "../shared" not in path.read_text(), path
        data = (yaml.safe_load(path.read_text()) or {}).get("data") or {}
        assert not {"train_dir", "val_dir"} & set(data), path
    cfg = composed(["experiment=paper_gaussian25"], resolve=False)
    assert OmegaConf.is_missing(cfg.data, "train_dir") and OmegaConf.is_missing(cfg.data, "val_dir")
    config = composed(["experiment=paper_text25", *DIRS, "trainer=cpu", "trainer.precision=32-true",
                            "noise.val.coverage=0.4", "trainer.max_steps=10"])
    assert config["trainer"]["accelerator"] == "cpu" and config["trainer"]["precision"] == "32-true"
    assert config["noise"]["val"] == {"coverage": 0.4} and config["trainer"]["max_steps"] == 10
    assert config["loss"]["name"] == "l1"


def impulse_psnr(clean: np.ndarray, p: float) -> float:
    """Expected PSNR of an image under random-valued impulse noise hitting a fraction p of its pixels:
    a hit pixel's squared error averages (u - x)^2 over u uniform in [0, 1], i.e. x^2 - x + 1/3."""
    x = clean.astype(np.float64) / 255
    return -10 * math.log10(p * float(np.mean(x * x - x + 1 / 3)))


def test_a_recipe_trains_a_few_steps_on_a_cpu(tmp_path, image_dirs):
    train, val = image_dirs
    run_dir = tmp_path / "run"
    result = run_entry(["train.py", "experiment=paper_impulse70", f"data.train_dir={train}", f"data.val_dir={val}",
                        *TINY, "trainer.max_steps=4", "data.steps_per_epoch=2", f"hydra.run.dir={run_dir}"])
    assert result.returncode == 0, result.stderr[-3000:]
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["noise"] == {"name": "impulse", "p": [0, 0.95], "val": {"p": 0.7}}
    assert config["loss"]["name"] == "l0" and config["aug"]["swap"] is False
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["global_step"] == 4 and math.isfinite(metrics["train_loss"])
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    # validation was scored at the test level p = 0.7, not at levels drawn from the training range
    expected = np.mean([impulse_psnr(np.asarray(Image.open(f)), 0.7) for f in sorted(val.iterdir())])
    assert metrics["val_psnr_noisy"] == pytest.approx(expected, abs=0.15)  # the range gives ~0.8 dB more


# ---------------------------------------------------------------------------------------- paper_table.py
def test_paper_table_quotes_paths_hydra_reads_back():
    table = load_paper_table()
    parser = OverridesParser.create()
    for path in ("/data/CBSD68", "/my data/it's, [here]=1", "C:\\x y\\z\\", "a\\'b"):
        value = table.hydra_value(path)
        assert parser.parse_override(f"data.val_dir={value}").value() == path


def test_paper_table_refuses_unknown_cases_and_missing_folders(tmp_path, capsys):
    table = load_paper_table()
    with pytest.raises(SystemExit) as exc:
        table.parse_args(["--train-dir", str(tmp_path), "--test-dir", str(tmp_path), "--cases", "gaussian50"])
    assert exc.value.code == 2 and "gaussian50" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        table.parse_args(["--train-dir", str(tmp_path / "missing"), "--test-dir", str(tmp_path)])
    assert "missing" in capsys.readouterr().err
    args = table.parse_args(["--train-dir", str(tmp_path), "--test-dir", str(tmp_path), "--cases",
                             "text25,paper_gaussian25", "trainer=cpu", "--max-steps", "12", "data.val_limit=1"])
    assert args.cases == ["paper_text25", "paper_gaussian25"]
    assert args.overrides == ["trainer=cpu", "data.val_limit=1"]
    cmd = table.train_command("paper_text25", "n2c", args)
    assert cmd[1:] == ["train.py", "experiment=paper_text25", f"data.train_dir={tmp_path}", f"data.val_dir={tmp_path}",
                       "trainer.max_steps=12", "data.steps_per_epoch=2", "trainer=cpu", "data.val_limit=1",
                       "method=n2c"]


def table_row(table: str, case: str) -> dict[str, str]:
    lines = [line for line in table.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    for line in lines[2:]:
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
        if cells[0] == case:
            return dict(zip(header, cells))
    raise AssertionError(f"no row for {case} in\n{table}")


@pytest.mark.slow  # four training/evaluation processes: about 50 s on two busy cores
def test_paper_table_runs_a_case_as_n2n_and_n2c_and_writes_the_table(tmp_path):
    train, test = tmp_path / "train", tmp_path / "test"
    write_images(train, [(96, 128), (80, 80)], seed=0)
    write_images(test, [(64, 96), (45, 70)], seed=100)
    out = tmp_path / "out"
    result = run_entry(["scripts/paper_table.py", "--train-dir", str(train), "--test-dir", str(test),
                        "--cases", "text25", "--max-steps", "2", "--out", str(out), *TINY, "logger=csv"],
                       timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    table = (out / "paper_table.md").read_text()
    assert table in result.stdout
    row = table_row(table, "paper_text25")
    assert row["noise"] == "text coverage=[0, 0.5], tested at coverage=0.25" and row["loss"] == "l1"
    assert "experiment=paper_text25" in row["command (N2C: add `method=n2c`)"]

    scores = {}
    for mode in ("n2n", "n2c"):
        run_dir = out / "paper_text25" / mode
        assert yaml.safe_load((run_dir / "config.yaml").read_text())["method"]["name"] == mode
        trained = json.loads((run_dir / "metrics.json").read_text())
        assert trained["global_step"] == 2
        scores[mode] = json.loads((run_dir / "eval" / "metrics.json").read_text())
        assert scores[mode]["num_images"] == 2
        assert row[f"{mode.upper()} PSNR"] == f"{scores[mode]['psnr_denoised']:.2f}"
        # eval.py scored the checkpoint on the same fixed test noise (coverage 0.25) as the training's validation
        assert scores[mode]["psnr_denoised"] == pytest.approx(trained["best_val_psnr"], abs=0.05)
        assert scores[mode]["psnr_noisy"] == pytest.approx(trained["val_psnr_noisy"], abs=0.05)
    assert scores["n2n"]["psnr_noisy"] == scores["n2c"]["psnr_noisy"]  # both scored on the same noisy inputs
    assert row["noisy input PSNR"] == f"{scores['n2n']['psnr_noisy']:.2f}"
    assert re.fullmatch(r"\d+ s / \d+ s", row["training time N2N / N2C"])
