import pytest
import torch
from torch import nn

from n2n.errors import ConfigError
from n2n.models.unet import UNet, build_unet, pad_to_multiple

#: The `model` section as conf/train.yaml composes it by default.
MODEL = {"in_channels": 3, "out_channels": 3, "activation": {"name": "leaky_relu", "negative_slope": 0.1},
         "norm": {"name": "none"}, "init": "he"}


def layer_table(n: int = 3, m: int = 3) -> list[tuple[str, int]]:
    """(layer, output channels) of the paper's table (appendix, table 2) for n input and m output channels,
    in forward order: the reference the network is checked against."""
    return [
        ("enc_conv0", 48), ("enc_conv1", 48), ("pool1", 48),
        ("enc_conv2", 48), ("pool2", 48),
        ("enc_conv3", 48), ("pool3", 48),
        ("enc_conv4", 48), ("pool4", 48),
        ("enc_conv5", 48), ("pool5", 48),
        ("enc_conv6", 48),
        ("upsample5", 48), ("concat5", 96), ("dec_conv5a", 96), ("dec_conv5b", 96),
        ("upsample4", 96), ("concat4", 144), ("dec_conv4a", 96), ("dec_conv4b", 96),
        ("upsample3", 96), ("concat3", 144), ("dec_conv3a", 96), ("dec_conv3b", 96),
        ("upsample2", 96), ("concat2", 144), ("dec_conv2a", 96), ("dec_conv2b", 96),
        ("upsample1", 96), ("concat1", 96 + n), ("dec_conv1a", 64), ("dec_conv1b", 32),
        ("dec_conv1c", m),
    ]


def _trace(net: UNet, x: torch.Tensor) -> list[tuple[str, int, int]]:
    """(name, channels, height) of every named conv block's output, in execution order."""
    seen = []
    for name, mod in net.named_children():
        mod.register_forward_hook(lambda m, i, o, name=name: seen.append((name, o.shape[1], o.shape[2])))
    net(x)
    return seen


@pytest.mark.parametrize("n,m", [(3, 3), (1, 1), (3, 1)])
def test_layer_table_matches_paper(n, m):
    net = UNet(in_channels=n, out_channels=m)
    seen = _trace(net, torch.rand(1, n, 64, 64))
    convs = [(name, c) for name, c in layer_table(n, m) if "conv" in name]
    assert [(name, c) for name, c, _ in seen] == convs
    heights = {name: h for name, _, h in seen}
    # five 2x2 max-pools: enc_conv5 works at 1/16, enc_conv6 at 1/32, decoder climbs back to full size
    assert heights["enc_conv1"] == 64 and heights["enc_conv5"] == 4 and heights["enc_conv6"] == 2
    assert heights["dec_conv5b"] == 4 and heights["dec_conv2b"] == 32 and heights["dec_conv1c"] == 64
    # concatenations: 96 = 48 + 48 at the bottom, 144 = 96 + 48 above it, 96 + n at the top
    assert net.dec_conv5a[0].in_channels == 96
    assert net.dec_conv4a[0].in_channels == 144 and net.dec_conv2a[0].in_channels == 144
    assert net.dec_conv1a[0].in_channels == 96 + n


def test_parameter_count_and_linear_output():
    net = UNet()
    assert sum(p.numel() for p in net.parameters()) == 991_203
    assert isinstance(net.dec_conv1c, nn.Conv2d)  # no activation after the last convolution
    assert sum(isinstance(mod, nn.LeakyReLU) for mod in net.modules()) == 17
    assert all(mod.negative_slope == 0.1 for mod in net.modules() if isinstance(mod, nn.LeakyReLU))


@pytest.mark.parametrize("h,w", [(1, 1), (5, 70), (33, 47), (100, 31), (64, 96)])
def test_any_size_keeps_shape(h, w):
    net = UNet().eval()
    with torch.no_grad():
        assert net(torch.rand(2, 3, h, w)).shape == (2, 3, h, w)


def test_padding_is_reflection_and_cropped_output_matches():
    x = torch.rand(1, 3, 40, 50)
    padded = pad_to_multiple(x)
    assert padded.shape[-2:] == (64, 64)
    assert torch.equal(padded[..., 40, :50], x[..., 38, :])  # reflected row, not zeros
    net = UNet().eval()
    with torch.no_grad():
        assert torch.allclose(net(x), net.forward_aligned(padded)[..., :40, :50])


def test_activation_and_norm_are_injected_from_config():
    net = build_unet({**MODEL, "activation": {"name": "relu"}, "norm": {"name": "batch"}})
    assert sum(isinstance(mod, nn.ReLU) for mod in net.modules()) == 17
    assert sum(isinstance(mod, nn.BatchNorm2d) for mod in net.modules()) == 17
    assert not any(isinstance(mod, nn.LeakyReLU) for mod in net.modules())
    assert net.enc_conv0[0].bias is None  # batch norm makes the bias redundant
    gelu = build_unet({**MODEL, "activation": {"name": "gelu"}, "in_channels": 1, "out_channels": 1})
    assert any(isinstance(mod, nn.GELU) for mod in gelu.modules())
    assert gelu(torch.rand(1, 1, 32, 32)).shape == (1, 1, 32, 32)


def test_unknown_activation_or_norm_is_refused_with_choices():
    with pytest.raises(ConfigError, match="leaky_relu"):
        build_unet({**MODEL, "activation": {"name": "tanhh"}})
    with pytest.raises(ConfigError, match="model.norm"):
        build_unet({**MODEL, "norm": {"name": "group"}})
    with pytest.raises(ConfigError, match="model.activation.slope is not an option"):
        build_unet({**MODEL, "activation": {"name": "relu", "slope": 2}})


def test_init_choices():
    """`he` (default) scales each convolution for its fan-in and zeroes biases; `torch` keeps PyTorch's smaller
    default weights and non-zero biases; anything else is refused with the choices."""
    torch.manual_seed(0)
    he = build_unet(MODEL)
    torch.manual_seed(0)
    small = build_unet({**MODEL, "init": "torch"})
    w_he, w_small = he.dec_conv2b[0].weight, small.dec_conv2b[0].weight
    fan_in = w_he[0].numel()
    assert w_he.std().item() == pytest.approx((2 / (1 + 0.1 ** 2) / fan_in) ** 0.5, rel=0.05)
    assert w_small.std().item() < 0.5 * w_he.std().item()
    assert torch.count_nonzero(he.dec_conv2b[0].bias) == 0 and torch.count_nonzero(small.dec_conv2b[0].bias) > 0
    with pytest.raises(ConfigError, match=r"model.init='xavier' is not known; choose one of: he, torch"):
        build_unet({**MODEL, "init": "xavier"})
