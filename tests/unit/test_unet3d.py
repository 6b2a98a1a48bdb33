"""model.dims / model.depth / model.features: the 3D U-Net, and the 2D default unchanged to the bit."""
from pathlib import Path

import pytest
import torch
from torch import nn

import n2n.pretrained
from n2n.errors import ConfigError
from n2n.inference.weights import load_weights
from n2n.models.unet import UNet, build_unet, receptive_reach

MODEL = {"in_channels": 3, "out_channels": 3, "activation": {"name": "leaky_relu", "negative_slope": 0.1},
         "norm": {"name": "batch"}}

#: Outputs computed with the U-Net before dims/depth/features existed (commit 8efd275) on
#: torch.rand(1, 3, 40, 56) after torch.manual_seed(0): (sum in float64, values at flat indices 0, 777, -1).
#: gaussian-blind-grey's weights were fine-tuned since (2026-12-05, docs/pretrained.md): its line holds the
#: outputs of the new weights, computed then (before them: 1120.0675386488438 with the old weights).
BEFORE = {
    "gaussian-blind-grey": (1117.5393340289593, (0.4957626760005951, 0.4925767481327057, 0.5536205172538757)),
    "gaussian-blind": (3328.7625911533833, (0.40126463770866394, 0.5224069952964783, 0.5182210803031921)),
    "he": (3040.2872804555045, (0.18834632635116577, 0.6192665696144104, 0.10550602525472641)),
    "torch": (-170.56844075582922, (-0.03982268273830414, -0.027699990198016167, -0.023035744205117226)),
}


def _input() -> torch.Tensor:
    torch.manual_seed(0)
    return torch.rand(1, 3, 40, 56)


def _check(out: torch.Tensor, key: str) -> None:
    total, values = BEFORE[key]
    assert out.double().sum().item() == total
    assert tuple(out.flatten()[[0, 777, -1]].tolist()) == values


@pytest.mark.parametrize("name", ["gaussian-blind", "gaussian-blind-grey"])
def test_bundled_models_give_the_same_outputs_as_before(name):
    net = load_weights(Path(n2n.pretrained.__file__).parent / f"{name}.safetensors")
    assert (net.dims, net.depth, net.features) == (2, 5, 48)
    with torch.no_grad():
        _check(net(_input()[:, :net.in_channels]), name)


@pytest.mark.parametrize("init", ["he", "torch"])
def test_default_network_initialises_as_before(init):
    """Same layer names, creation order and random draws: a seeded run starts from the same weights."""
    torch.manual_seed(1)
    net = build_unet({**MODEL, "init": init}).eval()
    x = _input()
    with torch.no_grad():
        _check(net(x), init)
    assert "dims" not in net.config  # weight files of a 2D model keep the schema earlier versions read


@pytest.mark.parametrize("depth", [1, 2, 3, 5])
def test_3d_network_keeps_any_shape(depth):
    net = UNet(1, 1, dims=3, depth=depth, features=8).eval()
    assert all(not isinstance(m, nn.Conv2d) for m in net.modules())
    with torch.no_grad():
        assert net(torch.rand(2, 1, 9, 20, 13)).shape == (2, 1, 9, 20, 13)
    names = [n for n, _ in net.named_children()]
    assert names[0] == "enc_conv0" and names[depth + 1] == f"enc_conv{depth + 1}" and names[-1] == "dec_conv1c"


def test_3d_network_with_batch_norm_uses_3d_layers():
    net = build_unet({**MODEL, "in_channels": 1, "out_channels": 1, "init": "he", "dims": 3, "depth": 3,
                      "features": 16})
    assert isinstance(net.enc_conv0[1], nn.BatchNorm3d)
    assert net.dec_conv1a[0].out_channels == 21 and net.dec_conv1b[0].out_channels == 10
    net(torch.rand(2, 1, 16, 16, 16)).sum().backward()


def test_receptive_reach_bounds_the_context():
    """Output at the origin does not change when voxels beyond the reach change, and does within it."""
    depth = 2
    net = UNet(1, 1, dims=3, depth=depth, features=4).eval()
    reach = receptive_reach(depth)
    x = torch.rand(1, 1, 8, 8, 48)
    far, near = x.clone(), x.clone()
    far[..., reach + 1:] = 0
    near[..., reach - 4:] = 0
    with torch.no_grad():
        base = net(x)[..., 0, 0, 0]
        assert torch.equal(net(far)[..., 0, 0, 0], base)
        assert not torch.equal(net(near)[..., 0, 0, 0], base)


@pytest.mark.parametrize("key,value", [("dims", 4), ("depth", 0), ("depth", 9), ("features", 0)])
def test_bad_options_are_refused(key, value):
    with pytest.raises(ConfigError, match=f"model.{key}"):
        build_unet({**MODEL, "init": "he", key: value})


def test_wrong_rank_input_is_refused():
    with pytest.raises(ValueError, match="3D U-Net takes N x C x D x H x W"):
        UNet(1, 1, dims=3, depth=2, features=4)(torch.rand(1, 1, 16, 16))
