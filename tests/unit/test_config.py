"""The config resolved once (n2n.config): `trainer.precision=auto` and `perf.channels_last=auto` decided for the
training device, `ckpt_path` made a file name, sections handed to the builders, missing keys named."""
from __future__ import annotations

import pytest
import torch

import n2n.config
from helpers.runs import resolved
from n2n.config import resolve_speed
from n2n.devices import training_device


@pytest.mark.parametrize("native, expected", [(True, ("bf16-mixed", True)), (False, ("32-true", False))])
def test_auto_follows_native_bf16(monkeypatch, native, expected):
    asked = []
    monkeypatch.setattr(n2n.config, "fast_bf16", lambda device: asked.append(device) or native)
    config = {"trainer": {"precision": "auto", "accelerator": "cpu"}, "perf": {"channels_last": "auto"}}
    assert resolve_speed(config) is config
    assert (config["trainer"]["precision"], config["perf"]["channels_last"]) == expected
    assert asked == [torch.device("cpu")]


def test_explicit_choices_are_kept(monkeypatch):
    monkeypatch.setattr(n2n.config, "fast_bf16", lambda device: pytest.fail("nothing to decide"))
    config = {"trainer": {"precision": "32-true"}, "perf": {"channels_last": True}}
    resolve_speed(config)
    assert config == {"trainer": {"precision": "32-true"}, "perf": {"channels_last": True}}
    # channels-last on auto follows an explicit precision
    config = {"trainer": {"precision": "bf16-mixed"}, "perf": {"channels_last": "auto"}}
    assert resolve_speed(config)["perf"]["channels_last"] is True


def test_training_device_of_the_accelerator(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert training_device({"accelerator": "auto"}) == torch.device("cpu")
    assert training_device({"accelerator": "gpu"}) == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert training_device({"accelerator": "auto"}) == torch.device("cuda")
    assert training_device({"accelerator": "cpu"}) == torch.device("cpu")


def test_progress_bar_redraws_every_few_steps(tmp_path):
    from n2n.config import RunContext
    from n2n.errors import ConfigError
    from n2n.training.callbacks import LossProgressBar
    from n2n.training.run import build_trainer

    config = resolved(["trainer.accelerator=cpu"], tmp_path)
    trainer, _ = build_trainer(config, RunContext(tmp_path))
    bars = [c for c in trainer.callbacks if isinstance(c, LossProgressBar)]
    assert len(bars) == 1 and bars[0].refresh_rate == 10
    config["callbacks"]["progress_bar_refresh_rate"] = 0
    with pytest.raises(ConfigError, match="callbacks.progress_bar_refresh_rate=0 must be an integer >= 1"):
        build_trainer(config, RunContext(tmp_path))
    config["trainer"]["enable_progress_bar"] = False  # no bar, nothing to check
    assert not any(isinstance(c, LossProgressBar) for c in build_trainer(config, RunContext(tmp_path))[0].callbacks)


def test_resolved_once_at_the_entry_point(tmp_path):
    """What train.py hands on has nothing left to decide: no `auto`, ckpt_path a file name or None."""
    config = resolved(["trainer.accelerator=cpu"], tmp_path)
    assert config["trainer"]["precision"] in ("bf16-mixed", "32-true")
    assert config["perf"]["channels_last"] in (True, False)
    assert config["ckpt_path"] is None
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"x")
    assert resolved(["ckpt_path=last"], tmp_path)["ckpt_path"] == str(tmp_path / "checkpoints" / "last.ckpt")


def test_defaults_live_in_the_yaml_a_missing_key_is_named(tmp_path):
    """Builders take no defaults of their own: a hand-made section without a key says which key."""
    from n2n.errors import ConfigError
    from n2n.models.unet import build_unet
    from n2n.training.module import N2NModule

    config = resolved(["trainer.accelerator=cpu"], tmp_path)
    model = dict(config["model"])
    del model["activation"]
    with pytest.raises(ConfigError, match="model.activation is missing"):
        build_unet(model)
    del config["loss"]
    with pytest.raises(ConfigError, match="no 'loss' section"):
        N2NModule(config)


def test_run_context_without_hydra_and_the_resume_command(tmp_path):
    from n2n.config import RunContext, run_context
    from n2n.search.config import SWEEPER_TARGET

    assert run_context({"output_dir": str(tmp_path)}).run_dir == tmp_path
    single = RunContext(tmp_path)
    assert single.resume_command() == f"python train.py ckpt_path=last hydra.run.dir={tmp_path}"
    # the run's own options come back, quoted for the shell; those the resume sets itself are replaced
    run = RunContext(tmp_path / "a b", overrides=("data=folder", "data.train_dir=my photos", "ckpt_path=x.ckpt",
                                                  "overwrite=true", "trainer.fast_dev_run=true"))
    assert run.resume_command() == ("python train.py data=folder 'data.train_dir=my photos' trainer.fast_dev_run=true "
                                    f"ckpt_path=last 'hydra.run.dir={tmp_path / 'a b'}'")
    job = RunContext(tmp_path, multirun=True, sweeper={"_target_": SWEEPER_TARGET})
    # a sweep's job resumes as a single run in its own folder
    assert job.optuna and job.resume_command() == f"python train.py ckpt_path=last hydra.run.dir={tmp_path}"
