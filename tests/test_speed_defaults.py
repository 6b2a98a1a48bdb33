"""`trainer.precision=auto` and `perf.channels_last=auto`: decided for the training device, written into the config."""
from __future__ import annotations

import pytest
import torch

import n2n.module
from n2n.module import resolve_auto_speed, training_device


@pytest.mark.parametrize("native, expected", [(True, ("bf16-mixed", True)), (False, ("32-true", False))])
def test_auto_follows_native_bf16(monkeypatch, native, expected):
    asked = []
    monkeypatch.setattr(n2n.module, "fast_bf16", lambda device: asked.append(device) or native)
    config = {"trainer": {"precision": "auto", "accelerator": "cpu"}, "perf": {"channels_last": "auto"}}
    assert resolve_auto_speed(config) is config
    assert (config["trainer"]["precision"], config["perf"]["channels_last"]) == expected
    assert asked == [torch.device("cpu")]


def test_explicit_choices_are_kept(monkeypatch):
    monkeypatch.setattr(n2n.module, "fast_bf16", lambda device: pytest.fail("nothing to decide"))
    config = {"trainer": {"precision": "32-true"}, "perf": {"channels_last": True}}
    resolve_auto_speed(config)
    assert config == {"trainer": {"precision": "32-true"}, "perf": {"channels_last": True}}
    # channels-last on auto follows an explicit precision
    config = {"trainer": {"precision": "bf16-mixed"}, "perf": {"channels_last": "auto"}}
    assert resolve_auto_speed(config)["perf"]["channels_last"] is True


def test_training_device_of_the_accelerator(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert training_device({"accelerator": "auto"}) == torch.device("cpu")
    assert training_device({"accelerator": "gpu"}) == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert training_device({"accelerator": "auto"}) == torch.device("cuda")
    assert training_device({"accelerator": "cpu"}) == torch.device("cpu")


def test_the_run_records_what_it_used(tmp_path):
    """config.yaml and the checkpoint say which precision ran, not `auto`."""
    import yaml

    from conftest import TINY, run_entry, write_images
    write_images(tmp_path / "train", [(64, 64), (64, 64)])
    write_images(tmp_path / "val", [(64, 64)], seed=5)
    run = tmp_path / "run"
    result = run_entry(["train.py", "data=folder", f"data.train_dir={tmp_path / 'train'}", f"data.val_dir={tmp_path / 'val'}",
                        "data.crop_size=32", "trainer.max_epochs=1", f"hydra.run.dir={run}",
                        *[o for o in TINY if not o.startswith("trainer.max_epochs")]])
    assert result.returncode == 0, result.stderr[-2000:]
    saved = yaml.safe_load((run / "config.yaml").read_text())
    from n2n.inference import fast_bf16
    expected = "bf16-mixed" if fast_bf16("cpu") else "32-true"
    assert saved["trainer"]["precision"] == expected
    assert saved["perf"]["channels_last"] is (expected == "bf16-mixed")
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["hyper_parameters"]["config"]["trainer"]["precision"] == expected


def test_progress_bar_redraws_every_few_steps(tmp_path):
    from omegaconf import OmegaConf

    from n2n.errors import ConfigError
    from n2n.train import LossProgressBar, build_trainer
    from test_resume import compose_train

    config = OmegaConf.to_container(compose_train(["trainer.accelerator=cpu"]), resolve=True)
    bars = [c for c in build_trainer(config, tmp_path).callbacks if isinstance(c, LossProgressBar)]
    assert len(bars) == 1 and bars[0].refresh_rate == 10
    config["callbacks"]["progress_bar_refresh_rate"] = 0
    with pytest.raises(ConfigError, match="callbacks.progress_bar_refresh_rate=0 must be an integer >= 1"):
        build_trainer(config, tmp_path)
    config["trainer"]["enable_progress_bar"] = False  # no bar, nothing to check
    assert not any(isinstance(c, LossProgressBar) for c in build_trainer(config, tmp_path).callbacks)
