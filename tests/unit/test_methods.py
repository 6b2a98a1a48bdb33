"""Each training method checked on the property that makes it right: what a blind spot hides, what the
Neighbor2Neighbor sub-sampler pairs, what R2R's noises are, what SURE estimates (n2n/methods/)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from n2n.errors import ConfigError
from n2n.losses import build_loss
from n2n.methods import METHODS, build_method, inference_method
from n2n.methods.neighbor2neighbor import NEIGHBOUR_PAIRS, cell_pixels, draw_neighbour_pairs
from n2n.methods.sure import mc_divergence
from n2n.models.unet import build_unet

L2 = build_loss({"name": "l2"})


def small_unet(channels: int = 3) -> nn.Module:
    torch.manual_seed(0)
    return build_unet({"in_channels": channels, "out_channels": channels, "init": "he",
                       "activation": {"name": "leaky_relu", "negative_slope": 0.1}, "norm": {"name": "none"}}).eval()


BLIND_SPOT = [
    {"name": "n2v"},
    {"name": "n2v", "replacement": "median"},
    {"name": "n2v", "struct_axis": "row", "struct_span": 3},
    {"name": "n2v", "struct_axis": "column", "struct_span": 2, "mask_ratio": 0.01, "window": 5},
    {"name": "n2s"},
    {"name": "n2s", "replacement": "zero", "grid": 3},
]


@pytest.mark.parametrize("cfg", BLIND_SPOT, ids=lambda c: "-".join(map(str, c.values())))
def test_blind_spot_output_has_zero_gradient_wrt_its_own_input_pixel(cfg):
    method = build_method(cfg).bind(L2)
    y = torch.rand(2, 3, 64, 64, requires_grad=True)
    batch = method.prepare({"noisy": y}, torch.Generator().manual_seed(1))
    mask = batch["mask"][:, 0].bool()
    assert mask.sum() > 0
    out = small_unet()(batch["input"])
    (out * mask[:, None]).sum().backward()
    hidden = y.grad.abs().sum(1)[mask]
    assert torch.count_nonzero(hidden) == 0  # exactly zero: no path from a hidden pixel's value to its output
    assert y.grad.abs().sum() > 0  # the neighbours do reach the output

    # the control: the same outputs without the blind spot do depend on those pixels
    y.grad = None
    (small_unet()(y) * mask[:, None]).sum().backward()
    assert torch.count_nonzero(y.grad.abs().sum(1)[mask]) == int(mask.sum())


def test_blind_spot_loss_counts_only_the_hidden_pixels():
    method = build_method({"name": "n2v"}).bind(L2)
    y = torch.rand(1, 1, 64, 64)
    batch = method.prepare({"noisy": y}, torch.Generator().manual_seed(0))
    outside = ~batch["mask"].bool()
    loss_a = method.loss(lambda x: torch.zeros_like(x), batch)
    loss_b = method.loss(lambda x: torch.where(outside, torch.ones_like(x), torch.zeros_like(x)), batch)
    assert torch.equal(loss_a, loss_b)  # what the network outputs elsewhere does not count


def test_noise2void_hides_a_stratified_fraction():
    method = build_method({"name": "n2v", "mask_ratio": 0.002})
    mask = method.prepare({"noisy": torch.rand(4, 1, 256, 256)}, torch.Generator().manual_seed(0))["mask"]
    per_box = mask[0, 0].unfold(0, method.box, method.box).unfold(1, method.box, method.box).sum((-1, -2))
    assert torch.all(per_box == 1)  # one hidden pixel in every whole box
    assert 0.0015 < mask.mean() < 0.003


def test_noise2void_replacement_is_a_neighbour_in_the_window():
    method = build_method({"name": "n2v", "window": 5})
    y = torch.arange(64 * 64, dtype=torch.float32).view(1, 1, 64, 64)
    batch = method.prepare({"noisy": y}, torch.Generator().manual_seed(3))
    where = batch["mask"][0, 0].nonzero()
    for i, j in where.tolist():
        value = int(batch["input"][0, 0, i, j])
        vi, vj = divmod(value, 64)
        assert (vi, vj) != (i, j) and max(abs(vi - i), abs(vj - j)) <= 2


@pytest.mark.parametrize("bad", [{"mask_ratio": 0.2}, {"window": 4}, {"struct_axis": "row"},
                                 {"replacement": "mean"}, {"struct_axis": "diagonal", "struct_span": 1}])
def test_noise2void_refuses_bad_options(bad):
    with pytest.raises(ConfigError, match="method\\."):
        build_method({"name": "n2v", **bad})


def test_neighbor2neighbor_sub_images_are_orthogonal_neighbours_sharing_no_pixel():
    first, second = draw_neighbour_pairs(8, 32, 32, torch.device("cpu"), torch.Generator().manual_seed(0))
    fy, fx, sy, sx = first // 2, first % 2, second // 2, second % 2
    assert torch.all((fy - sy).abs() + (fx - sx).abs() == 1)  # adjacent, never diagonal, never the same pixel
    seen = {tuple(p) for p in torch.stack([first, second], -1).view(-1, 2).tolist()}
    assert seen == {tuple(p) for p in NEIGHBOUR_PAIRS.tolist()}  # all 8 ordered pairs occur

    y = torch.arange(2 * 3 * 32 * 32, dtype=torch.float32).view(2, 3, 32, 32)
    f, s = draw_neighbour_pairs(2, 32, 32, torch.device("cpu"), torch.Generator().manual_seed(1))
    g1, g2 = cell_pixels(y, f), cell_pixels(y, s)
    assert g1.shape == (2, 3, 16, 16)
    assert not set(g1.flatten().tolist()) & set(g2.flatten().tolist())
    # each sub-image pixel comes from its own 2 x 2 cell, the same position in every channel
    index = g1 - y[:, :1, :1, :1]
    channel, rest = index // (32 * 32), index % (32 * 32)
    assert torch.equal(channel, torch.arange(3).view(1, 3, 1, 1).expand_as(channel).float())
    rows, cols = rest // 32, rest % 32
    assert torch.equal(rows // 2, torch.arange(16).view(1, 1, 16, 1).expand_as(rows).float())
    assert torch.equal(cols // 2, torch.arange(16).view(1, 1, 1, 16).expand_as(cols).float())


def test_neighbor2neighbor_gamma_ramps_and_the_regulariser_uses_the_full_image_without_gradient():
    method = build_method({"name": "nb2nb", "gamma": 2.0}).bind(L2)
    method.set_progress(0.25)
    assert float(method.current_gamma) == pytest.approx(0.5)
    y = torch.rand(2, 1, 32, 32)
    batch = method.prepare({"noisy": y}, torch.Generator().manual_seed(0))
    calls = []

    def forward(x):
        calls.append((tuple(x.shape), torch.is_grad_enabled()))
        return x * 0.5

    method.loss(forward, batch)
    assert calls == [((2, 1, 16, 16), True), ((2, 1, 32, 32), False)]
    constant = build_method({"name": "nb2nb", "gamma": 1.0, "gamma_schedule": "constant"}).bind(L2)
    constant.set_progress(0.9)
    assert float(constant.current_gamma) == 1.0


def test_r2r_noises_are_uncorrelated_with_the_right_expectations():
    sigma, alpha = 25.0, 0.5
    method = build_method({"name": "r2r", "alpha": alpha}).bind(L2, sigma)
    g = torch.Generator().manual_seed(0)
    clean = torch.full((1, 1, 1000, 1000), 0.5)
    y = clean + sigma / 255 * torch.randn(clean.shape, generator=g)
    batch = method.prepare({"noisy": y}, g)
    n_in, n_out = (batch["input"] - clean).flatten(), (batch["target"] - clean).flatten()
    corr = torch.corrcoef(torch.stack([n_in, n_out]))[0, 1]
    assert abs(float(corr)) < 0.01
    s = sigma / 255
    assert float(batch["target"].mean()) == pytest.approx(0.5, abs=1e-3)
    assert float(n_in.var()) == pytest.approx(s ** 2 * (1 + alpha ** 2), rel=0.01)
    assert float(n_out.var()) == pytest.approx(s ** 2 * (1 + 1 / alpha ** 2), rel=0.01)


def test_r2r_inference_averages_fixed_recorruptions():
    method = build_method({"name": "r2r", "samples": 3}).bind(L2, 25)
    wrapped = method.inference_network(nn.Identity())
    x = torch.rand(1, 1, 32, 32)
    once, again = wrapped(x), wrapped(x)
    assert torch.equal(once, again)  # the same re-corruptions on every call
    assert (once - x).std() == pytest.approx(method.alpha * 25 / 255 / 3 ** 0.5, rel=0.05)
    rebuilt = inference_method(wrapped.method_config).inference_network(nn.Identity())
    assert torch.equal(rebuilt(x), once)  # what exported weights store rebuilds the same rule


def test_n2s_j_invariant_inference_takes_each_pixel_from_the_pass_that_hid_it():
    method = build_method({"name": "n2s", "grid": 2, "inference": "jinv"}).bind(L2)
    x = torch.rand(1, 1, 8, 8, requires_grad=True)
    out = method.inference_network(nn.Conv2d(1, 1, 3, padding=1))(x)
    for i, j in [(0, 0), (3, 5), (7, 7)]:
        (grad,) = torch.autograd.grad(out[0, 0, i, j], x, retain_graph=True)
        assert grad[0, 0, i, j] == 0  # J-invariant: no output pixel depends on its own input


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.a = nn.Conv2d(1, 4, 3, padding=1).double()
        self.b = nn.Conv2d(4, 1, 3, padding=1).double()

    def forward(self, x):
        return self.b(torch.tanh(self.a(x)))


def test_sure_monte_carlo_divergence_matches_autograd():
    net = TinyNet()
    y = torch.rand(1, 1, 8, 8, dtype=torch.float64)
    jacobian = torch.autograd.functional.jacobian(net, y).reshape(64, 64)
    exact = torch.trace(jacobian)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        out = net(y)
    for _ in range(3):  # each direction: b' J b to the finite difference's accuracy
        b = torch.randn(y.shape, generator=g, dtype=torch.float64)
        with torch.no_grad():
            mc = float(mc_divergence(net, y, out, b, 1e-6))
        assert mc == pytest.approx(float(b.flatten() @ jacobian @ b.flatten()), rel=1e-4)
    with torch.no_grad():
        b = torch.randn((4000, 1, 8, 8), generator=g, dtype=torch.float64)
        estimates = mc_divergence(net, y.expand_as(b), out.expand_as(b), b, 1e-5).tolist()
    assert sum(estimates) / len(estimates) == pytest.approx(float(exact), rel=0.05)  # unbiased for the trace


def test_sure_estimates_the_mse_to_the_clean_image():
    sigma = 25.0
    method = build_method({"name": "sure", "tau": 1e-3}).bind(L2, sigma)
    g = torch.Generator().manual_seed(0)
    clean = torch.rand(4, 1, 128, 128, generator=g)
    y = clean + sigma / 255 * torch.randn(clean.shape, generator=g)
    shrink = lambda x: 0.8 * x + 0.1  # noqa: E731 - a linear denoiser: divergence 0.8 per pixel
    batch = method.prepare({"noisy": y}, g)
    assert float(method.loss(shrink, batch)) == pytest.approx(float(((shrink(y) - clean) ** 2).mean()), rel=0.03)


def test_sure_needs_l2_and_sigma():
    with pytest.raises(ConfigError, match="loss=l2"):
        build_method({"name": "sure"}).bind(build_loss({"name": "l1"}), 25)
    with pytest.raises(ConfigError, match="method.sigma"):
        build_method({"name": "r2r"}).bind(L2, None)


def test_zero_shot_denoises_a_noisy_photo():
    from skimage import data

    from n2n.metrics import psnr

    clean = torch.from_numpy(data.camera()[200:264, 200:264]).float()[None, None] / 255
    noisy = clean + 25 / 255 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    denoised = METHODS["zsn2n"](steps=100).fit_and_denoise(noisy)
    gain = float(psnr(denoised, clean)) - float(psnr(noisy.clamp(0, 1), clean))
    assert denoised.shape == noisy.shape
    assert gain > 4.0, gain  # measured: +5.8 dB at 100 steps on this 64 x 64 crop (+6.2 dB at 150)
