import pytest
import torch

from n2n.data.augment import PairedAugment, build_augment
from n2n.errors import ConfigError


def _pair(n=64, c=3, h=8, w=8):
    src = torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(0))
    return src, src + 10.0  # the target carries the source's pattern, shifted: easy to match up


def test_flip_applies_the_same_transform_to_both_images():
    src, tgt = _pair()
    out_s, out_t = PairedAugment(flip=True)(src, tgt, torch.Generator().manual_seed(1))
    assert torch.allclose(out_t - out_s, torch.full_like(out_s, 10.0))
    flipped = [not torch.equal(a, b) for a, b in zip(out_s, src)]
    assert 0.5 < sum(flipped) / len(flipped) < 0.95  # each of two flips with p = 0.5: ~75 % changed
    for a, b in zip(out_s, src):  # every output is one of the four flips of its input
        assert any(torch.equal(a, f) for f in (b, b.flip(-1), b.flip(-2), b.flip(-1).flip(-2)))


def test_swap_really_swaps_source_and_target():
    src, tgt = _pair()
    out_s, out_t = PairedAugment(swap=True)(src, tgt, torch.Generator().manual_seed(2))
    swapped = torch.tensor([torch.equal(a, t) and torch.equal(b, s) for a, b, s, t in zip(out_s, out_t, src, tgt)])
    kept = torch.tensor([torch.equal(a, s) and torch.equal(b, t) for a, b, s, t in zip(out_s, out_t, src, tgt)])
    assert torch.all(swapped ^ kept)
    assert 16 < swapped.sum() < 48


def test_colour_change_is_shared_and_keeps_grey_grey():
    src = torch.rand(32, 3, 8, 8)
    out_s, out_t = PairedAugment(color=True, hue=0.25, brightness=0.2)(src, src.clone(), torch.Generator().manual_seed(3))
    assert torch.allclose(out_s, out_t)
    assert not torch.allclose(out_s, src)
    grey = torch.rand(32, 1, 8, 8).expand(32, 3, 8, 8)
    g_s, _ = PairedAugment(color=True)(grey, grey, torch.Generator().manual_seed(4))
    assert torch.allclose(g_s[:, 0], g_s[:, 1], atol=1e-5) and torch.allclose(g_s[:, 1], g_s[:, 2], atol=1e-5)
    ratio = g_s[:, 0] / grey[:, 0]
    assert ratio.min() >= 0.8 - 1e-4 and ratio.max() <= 1.2 + 1e-4


def test_none_is_identity_and_same_seed_same_result():
    src, tgt = _pair()
    a = PairedAugment()(src, tgt)
    assert torch.equal(a[0], src) and torch.equal(a[1], tgt)
    aug = PairedAugment(flip=True, swap=True, color=True)
    r1 = aug(src, tgt, torch.Generator().manual_seed(5))
    r2 = aug(src, tgt, torch.Generator().manual_seed(5))
    assert torch.equal(r1[0], r2[0]) and torch.equal(r1[1], r2[1])


def test_build_augment_refuses_unknown_options():
    assert build_augment({"name": "flip_swap", "flip": True, "swap": True}) == PairedAugment(flip=True, swap=True)
    with pytest.raises(ConfigError, match="rotate"):
        build_augment({"rotate": True})
    with pytest.raises(ConfigError, match="aug.brightness"):
        build_augment({"color": True, "brightness": 1.5})


@pytest.mark.parametrize("choice", [{}, {"flip": True}, {"swap": True}, {"flip": True, "swap": True},
                                    {"flip": True, "swap": True, "color": True}])
def test_stacked_pairs_get_the_same_transforms_as_separate_images(choice):
    """`pairs` (what the training batches use: one operation per transform on (N, 2, C, H, W)) draws and
    applies exactly what `__call__` does on two separate batches."""
    aug = PairedAugment(**choice)
    src, tgt = _pair()
    expected = aug(src, tgt, torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    got = aug.jitter_colour(*aug.pairs(torch.stack([src, tgt], 1), g).unbind(1), generator=g)
    assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])
