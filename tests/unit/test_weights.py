"""Safetensors weight files (n2n.inference.weights): round trip, refusal of foreign or broken files, no pickle."""
from __future__ import annotations

import json
import pickle

import pytest
import torch

from n2n.errors import CheckpointError
from n2n.inference.weights import load_weights, read_metadata, save_weights
from n2n.models.unet import build_unet

MODEL = {"in_channels": 3, "out_channels": 3, "activation": {"name": "leaky_relu", "negative_slope": 0.1},
         "norm": {"name": "none"}, "init": "he"}


@pytest.fixture
def weights(tmp_path):
    torch.manual_seed(0)
    net = build_unet(MODEL)
    return net, save_weights(net, net.config, tmp_path / "m.safetensors")


def test_round_trip_rebuilds_the_same_network(weights):
    net, path = weights
    loaded = load_weights(path)
    x = torch.rand(1, 3, 64, 32)
    with torch.no_grad():
        assert torch.equal(net.eval()(x), loaded(x))
    assert json.loads(read_metadata(path)["n2n.model"]) == MODEL


def test_loading_never_unpickles(weights, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a weight file was unpickled")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    load_weights(weights[1])


def test_foreign_and_broken_files_are_one_clear_error(weights, tmp_path):
    from safetensors.torch import save_file

    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(CheckpointError, match="not n2n weights"):
        load_weights(foreign)
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(weights[1].read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="truncated.safetensors"):
        load_weights(truncated)
    text = tmp_path / "text.safetensors"
    text.write_text("not weights")
    with pytest.raises(CheckpointError, match="text.safetensors"):
        load_weights(text)


def test_an_untrusted_config_is_only_read_through_the_registries(weights, tmp_path):
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(weights[1]))
    for bad in ({**MODEL, "activation": {"name": "os.system"}}, {**MODEL, "extra": 1}, [1, 2]):
        path = tmp_path / "bad.safetensors"
        save_file(tensors, str(path), metadata={"n2n.format": "n2n-unet/1", "n2n.model": json.dumps(bad)})
        with pytest.raises(CheckpointError, match="cannot build"):
            load_weights(path)
    grey = {**MODEL, "in_channels": 1}
    save_file(tensors, str(path), metadata={"n2n.format": "n2n-unet/1", "n2n.model": json.dumps(grey)})
    with pytest.raises(CheckpointError, match="do not fit"):
        load_weights(path)
