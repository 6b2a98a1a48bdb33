"""Whole-image and tiled inference: sizes, seams, memory bound, runners, bf16 precision."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from n2n.devices import fast_bf16
from n2n.inference.runners import TorchRunner, as_runner, resolve_precision
from n2n.inference.tiling import (
    DEFAULT_OVERLAP,
    RECEPTIVE_REACH,
    check_tiling,
    crop_padded,
    denoise_tensor,
    tile_windows,
)
from n2n.models.unet import UNet, pad_to_multiple

ONE_LEVEL = 1 / 255


def realistic(h: int, w: int, seed: int = 0, noise: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """(clean, noisy) 1 x 3 x h x w: smooth shading, fine texture and sharp-edged patches, like a photo."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.empty((3, h, w), np.float32)
    for c in range(3):
        img[c] = 0.5 + 0.25 * np.sin(xx / (17 + 5 * c) + yy / (23 - 3 * c)) * np.cos(yy / 31)
        img[c] += 0.1 * np.sin(xx * 0.9 + c) * np.sin(yy * 0.7)
    for _ in range(6):
        y0, x0 = rng.integers(0, h), rng.integers(0, w)
        img[:, y0:y0 + rng.integers(8, 60), x0:x0 + rng.integers(8, 60)] = rng.random((3, 1, 1))
    clean = np.clip(img, 0, 1)
    noisy = np.clip(clean + rng.normal(0, noise, clean.shape), 0, 1).astype(np.float32)
    return torch.from_numpy(clean)[None], torch.from_numpy(noisy)[None]


class CountingRunner:
    """Wraps a runner and records the shape of every batch it is given."""

    def __init__(self, runner):
        self.runner, self.shapes = runner, []
        self.in_channels, self.out_channels = runner.in_channels, runner.out_channels

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.shapes.append(tuple(x.shape))
        return self.runner(x)


class BlurRunner:
    """A local operator (5 x 5 blur, zero padding): tiling with any overlap >= 32 must reproduce it exactly."""

    in_channels = out_channels = 3

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[-2] % 32 == 0 and x.shape[-1] % 32 == 0, "runners only ever see multiples of 32"
        k = torch.ones(3, 1, 5, 5) / 25
        return F.conv2d(x, k, padding=2, groups=3) * 0.9 + 0.05


@pytest.fixture(scope="module")
def random_net() -> UNet:
    torch.manual_seed(0)
    return UNet(3, 3).eval()


@pytest.fixture(scope="module")
def fitted_net() -> UNet:
    """A U-Net briefly trained to denoise: weights with real structure, unlike the random init."""
    torch.manual_seed(1)
    net = UNet(3, 3)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    losses = []
    for step in range(40):
        clean, noisy = realistic(32, 32, seed=100 + step, noise=0.15)
        loss = F.mse_loss(net(noisy), clean)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5]), "the brief fit did not learn anything"
    return net.eval()


@pytest.mark.parametrize("h, w", [(1, 1), (33, 47), (100, 31), (32, 64)])
def test_any_size_comes_back_the_same_size(random_net, h, w):
    x = torch.rand(2, 3, h, w)
    y = denoise_tensor(random_net, x)
    assert y.shape == x.shape
    assert y.min() >= 0 and y.max() <= 1
    assert not y.requires_grad
    tiled = denoise_tensor(random_net, x, tile=32, overlap=0)
    assert tiled.shape == x.shape


@pytest.mark.parametrize("size", [32, 64, 224, 320, 352, 1024, 1056])
@pytest.mark.parametrize("tile, overlap", [(96, 32), (288, 128), (224, 96), (352, 160)])
def test_tile_windows_cover_with_enough_context(size, tile, overlap):
    windows = tile_windows(size, tile, overlap)
    covered = np.zeros(size, int)
    for start, end, core_start, core_end in windows:
        covered[core_start:core_end] += 1
        assert start % 32 == 0 and end - start == min(tile, size)  # pooling grid kept, one tile shape
        assert 0 <= start <= core_start < core_end <= end <= size
        assert core_start - start >= overlap or start == 0  # context, unless at the image border
        assert end - core_end >= overlap or end == size
    assert (covered == 1).all(), "cores must partition the image"


def test_check_tiling_rounds_up_and_refuses_tiles_without_a_centre():
    assert check_tiling(100, 30) == (128, 32)
    with pytest.raises(ValueError, match="at least 288"):
        check_tiling(256, 128)
    with pytest.raises(ValueError):
        check_tiling(256, -1)


def test_tiles_are_stitched_in_place_for_a_local_operator():
    """Seams, shifts or swapped tiles show up exactly: a 5 x 5 blur only needs 2 px of context."""
    x = torch.rand(2, 3, 200, 300)
    runner = CountingRunner(BlurRunner())
    whole = denoise_tensor(BlurRunner(), x)
    tiled = denoise_tensor(runner, x, tile=96, overlap=32, batch=3)
    assert len(runner.shapes) > 2 * 6  # split along both axes, for both images
    assert torch.allclose(tiled, whole, atol=1e-6)


@pytest.mark.parametrize("h, w", [(200, 300), (64, 640)])  # the long strip has pixels 128-158 px from a tile edge
def test_tiled_equals_whole_with_random_weights(random_net, h, w):
    _, x = realistic(h, w, seed=3)
    runner = CountingRunner(TorchRunner(random_net))
    whole = denoise_tensor(random_net, x)
    tiled = denoise_tensor(runner, x, tile=288, overlap=DEFAULT_OVERLAP, batch=4)
    assert sum(n for n, *_ in runner.shapes) > 1, "the image was not tiled"
    assert all(tw == 288 for *_, tw in runner.shapes)
    assert (tiled - whole).abs().max() <= ONE_LEVEL


def test_tiled_equals_whole_with_fitted_weights(fitted_net):
    _, x = realistic(200, 300, seed=4)
    whole = denoise_tensor(fitted_net, x)
    tiled = denoise_tensor(fitted_net, x, tile=288, overlap=DEFAULT_OVERLAP)
    assert (tiled - whole).abs().max() <= ONE_LEVEL


def test_overlap_at_receptive_reach_is_exact_and_too_little_overlap_shows_seams(random_net):
    _, x = realistic(64, 416, seed=5)
    whole = denoise_tensor(random_net, x)
    exact = denoise_tensor(random_net, x, tile=352, overlap=RECEPTIVE_REACH)
    assert (exact - whole).abs().max() < 1e-5
    # The checks above can fail: with only 32 px of context the tile edges are visible.
    seams = denoise_tensor(random_net, x, tile=96, overlap=32)
    assert (seams - whole).abs().max() > ONE_LEVEL


def test_memory_bound_one_small_batch_of_tiles_at_a_time(random_net):
    x = torch.rand(1, 3, 150, 170)
    runner = CountingRunner(TorchRunner(random_net))
    out = denoise_tensor(runner, x, tile=64, overlap=0, batch=2)
    assert out.device.type == "cpu" and out.shape == x.shape
    assert all(n <= 2 and h <= 64 and w <= 64 for n, _, h, w in runner.shapes)
    assert sum(n for n, *_ in runner.shapes) == 3 * 3  # padded to 160 x 192: 3 x 3 tiles of 64 px
    assert len(runner.shapes) == 5


def test_runner_may_be_any_callable_and_output_is_clamped():
    x = torch.rand(1, 3, 40, 40)
    y = denoise_tensor(lambda t: 2 * t - 0.5, x, tile=32, overlap=0)
    assert y.min() == 0 and y.max() == 1
    assert torch.allclose(y, (2 * x - 0.5).clamp(0, 1))


# ------------------------------------------------------------------------------------------ padding


@pytest.mark.parametrize("h, w", [(200, 300), (40, 70), (5, 9), (64, 96), (33, 64)])
def test_crop_padded_equals_a_crop_of_the_padded_image(h, w):
    """Tiles are padded one by one instead of padding the whole image: the pixels must be the same."""
    x = torch.rand(2, 3, h, w)
    full = pad_to_multiple(x)
    hp, wp = full.shape[-2:]
    for y0, y1, x0, x1 in [(0, hp, 0, wp), (hp - 32, hp, wp - 32, wp), (0, 32, wp - 32, wp),
                           (hp - 32, hp, 0, min(64, wp)), (0, min(64, hp), 0, min(64, wp))]:
        assert torch.equal(crop_padded(x, y0, y1, x0, x1), full[..., y0:y1, x0:x1]), (y0, y1, x0, x1)


# ---------------------------------------------------------------------------------------- precision


def test_precision_names_and_auto(monkeypatch):
    with pytest.raises(ValueError, match="precision"):
        resolve_precision("fp16")
    assert resolve_precision("fp32") == "fp32" and resolve_precision("bf16") == "bf16"
    assert resolve_precision("auto") == ("bf16" if fast_bf16("cpu") else "fp32")
    # auto follows the CPU's bf16 hardware
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: True)
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx512_f": True, "amx_bf16": True})
    assert resolve_precision("auto", "cpu") == "bf16"
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx2": True})
    assert resolve_precision("auto", "cpu") == "fp32"


def test_bf16_runner_leaves_the_network_alone(random_net):
    runner = TorchRunner(random_net, precision="bf16")
    assert runner.precision == "bf16"
    dtypes = [p.dtype for p in runner.model.parameters()]
    assert dtypes.count(torch.bfloat16) == len(dtypes) - 2  # all but the last convolution's weight and bias
    assert dtypes[0] == torch.bfloat16 and dtypes[-1] == torch.float32
    assert all(p.dtype == torch.float32 for p in random_net.parameters())
    y = runner(torch.rand(1, 3, 32, 64))
    assert y.dtype == torch.float32 and y.shape == (1, 3, 32, 64)


def test_bf16_agrees_with_fp32_on_a_fitted_net(fitted_net):
    clean, x = realistic(160, 224, seed=6)
    fp32 = denoise_tensor(fitted_net, x)
    bf16 = denoise_tensor(fitted_net, x, precision="bf16")
    diff = (bf16 - fp32).abs()
    assert diff.max() > 0, "the bf16 path ran in float32"
    assert diff.mean() <= 0.5 * ONE_LEVEL and diff.max() <= 4 * ONE_LEVEL  # measured: 0.32/255 and 2.1/255
    mse32, mse16 = F.mse_loss(fp32, clean).item(), F.mse_loss(bf16, clean).item()
    assert abs(10 * np.log10(mse32 / mse16)) < 0.05  # the same PSNR to 0.05 dB


def test_bf16_tiled_equals_bf16_whole(fitted_net):
    _, x = realistic(200, 300, seed=7)
    runner = TorchRunner(fitted_net, precision="bf16")
    whole = denoise_tensor(runner, x)
    tiled = denoise_tensor(runner, x, tile=288, overlap=DEFAULT_OVERLAP, batch=2)
    assert (tiled - whole).abs().max() <= ONE_LEVEL


def test_a_runner_refuses_another_explicit_precision(random_net):
    runner = TorchRunner(random_net, precision="fp32")
    assert as_runner(runner, "auto") is runner and as_runner(runner, "fp32") is runner
    with pytest.raises(ValueError, match="runs in fp32"):
        denoise_tensor(runner, torch.rand(1, 3, 32, 32), precision="bf16")
