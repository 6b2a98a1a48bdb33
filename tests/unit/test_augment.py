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
    augment = PairedAugment(color=True, hue=0.25, brightness=0.2)
    out_s, out_t = augment(src, src.clone(), torch.Generator().manual_seed(3))
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
    """`pairs` (what the training batches use: one operation per transform on (N, 2, C, H, W)) applies, image by
    image, what a plain per-image implementation does with the same draws (swap, flips, hue, brightness)."""
    aug = PairedAugment(**choice)
    src, tgt = _pair()
    got = aug.pairs(torch.stack([src, tgt], 1), torch.Generator().manual_seed(3)).unbind(1)
    g = torch.Generator().manual_seed(3)
    n = len(src)
    coins = {k: torch.rand(n, generator=g) < 0.5 for k in ("swap", "flip_w", "flip_h") if
             (k == "swap" and aug.swap) or (k != "swap" and aug.flip)}
    if aug.color:
        angle = (torch.rand(n, generator=g) * 2 - 1) * (2 * torch.pi * aug.hue)
        gain = 1 + (torch.rand(n, generator=g) * 2 - 1) * aug.brightness
    for i in range(n):
        s, t = src[i], tgt[i]
        if coins.get("swap", torch.zeros(n, dtype=torch.bool))[i]:
            s, t = t, s
        for key, dim in (("flip_w", -1), ("flip_h", -2)):
            if coins.get(key, torch.zeros(n, dtype=torch.bool))[i]:
                s, t = s.flip(dim), t.flip(dim)
        if aug.color:
            c, si = torch.cos(angle[i]), torch.sin(angle[i])
            a, b, d = c + (1 - c) / 3, (1 - c) / 3 - si / 3 ** 0.5, (1 - c) / 3 + si / 3 ** 0.5
            m = torch.stack([torch.stack([a, b, d]), torch.stack([d, a, b]), torch.stack([b, d, a])])
            s, t = (torch.einsum("ij,jhw->ihw", m, x) * gain[i] for x in (s, t))
        assert torch.allclose(got[0][i], s, atol=1e-6) and torch.allclose(got[1][i], t, atol=1e-6)
        if not aug.color:
            assert torch.equal(got[0][i], s) and torch.equal(got[1][i], t)


def test_single_images_get_the_flips_of_the_pairs():
    """K = 1 (clean crops): the same draws as pairs, so a stack of one image follows its pair's first image."""
    aug = PairedAugment(flip=True, swap=True, color=True)
    src, _ = _pair()
    single = aug.pairs(src[:, None], torch.Generator().manual_seed(4))[:, 0]
    paired = aug.pairs(torch.stack([src, src], 1), torch.Generator().manual_seed(4))[:, 0]
    assert torch.allclose(single, paired, atol=1e-6)


def test_levels_stretch_a_fraction_of_clean_images_to_pure_black_and_white():
    clean = torch.linspace(0, 1, 64).repeat(400, 1, 64, 1)  # 400 ramps from black to white
    out = PairedAugment(levels=0.25).clean_levels(clean, torch.Generator().manual_seed(0))
    changed = (out != clean).flatten(1).any(1)
    assert 0.18 < changed.float().mean() < 0.32  # the fraction asked for, drawn per image
    for ramp in out[changed][:, 0, 0]:
        black, white = int((ramp == 0).sum()), int((ramp == 1).sum())
        assert 1 <= black <= 0.3 * 64 + 1 and 1 <= white <= 0.3 * 64 + 1  # up to 30 % at each end
        inner = ramp[(ramp > 0) & (ramp < 1)]
        assert torch.all(inner.diff() > 0)  # a linear stretch: the order of the levels kept
    assert torch.equal(out[~changed], clean[~changed])


def test_no_levels_draw_nothing_so_seeded_runs_are_unchanged():
    g = torch.Generator().manual_seed(3)
    clean = torch.rand(8, 3, 16, 16)
    assert PairedAugment().clean_levels(clean, g) is clean
    assert torch.equal(torch.rand(4, generator=g), torch.rand(4, generator=torch.Generator().manual_seed(3)))


def test_levels_out_of_range_are_refused():
    with pytest.raises(ConfigError, match="aug.levels"):
        build_augment({"levels": 1.5})
