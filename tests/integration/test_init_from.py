"""init_from: a run starts from given weights (fine-tuning) with a fresh optimiser and schedule."""
from __future__ import annotations

import pytest
import torch
from lightning.pytorch.callbacks import Callback

from helpers.runs import run_in_process, tiny
from n2n.errors import ConfigError
from n2n.inference.checkpoints import read_checkpoint
from n2n.inference.runners import load_network


class FirstWeights(Callback):
    def on_train_start(self, trainer, pl_module) -> None:
        self.weights = {k: v.detach().clone() for k, v in pl_module.net.state_dict().items()}
        self.step = trainer.global_step


def test_a_run_starts_from_the_weights_of_a_bundled_model(images, one_thread, tmp_path):
    first = FirstWeights()
    run_in_process([*tiny(*images, steps=2, epochs=1), "init_from=gaussian-blind"], tmp_path, first)
    bundled = load_network("gaussian-blind").state_dict()
    assert first.step == 0  # a new run: step count, optimiser and schedule start afresh
    for k, v in bundled.items():
        assert torch.equal(first.weights[k], v), k
    ckpt = read_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    assert ckpt["hyper_parameters"]["config"]["init_from"] == "gaussian-blind"  # recorded with the run


def test_weights_of_another_network_are_refused_naming_the_option(images, tmp_path):
    with pytest.raises(ConfigError, match=r"init_from=gaussian-blind-grey holds another network: model.in_channels"):
        run_in_process([*tiny(*images), "init_from=gaussian-blind-grey"], tmp_path)
    with pytest.raises(ConfigError, match=r"init_from=nothing.safetensors: model file nothing.safetensors does not"):
        run_in_process([*tiny(*images), "init_from=nothing.safetensors"], tmp_path / "b")
