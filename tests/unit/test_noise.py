"""Noise models: statistics against theory, per-image ranges, seeding, configs."""
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from n2n.errors import ConfigError
from n2n.noise import NOISE_MODELS, build_noise

CONF = Path(__file__).resolve().parents[2] / "conf" / "noise"


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def constant(value: float, shape=(4, 3, 64, 64)) -> torch.Tensor:
    return torch.full(shape, value)


def changed(clean: torch.Tensor, noisy: torch.Tensor) -> torch.Tensor:
    """(B, H, W) mask of pixels where any channel differs."""
    return (noisy != clean).any(dim=1)


# --- Gaussian -------------------------------------------------------------------------------------------------------

def test_gaussian_mean_and_std_match_sigma():
    clean = constant(0.5)
    diff = build_noise({"name": "gaussian", "sigma": 25})(clean, seeded()) - clean
    assert abs(diff.mean().item()) < 0.003  # 49k samples: standard error 0.0004
    assert diff.std().item() == pytest.approx(25 / 255, rel=0.02)


def test_gaussian_is_not_clipped():
    noisy = build_noise({"name": "gaussian", "sigma": 50})(constant(0.05), seeded())
    assert (noisy < 0).float().mean().item() > 0.1


def test_gaussian_sigma_zero_is_identity():
    clean = torch.rand(2, 3, 16, 16, generator=seeded(1))
    assert torch.equal(build_noise({"name": "gaussian", "sigma": 0})(clean, seeded()), clean)


# --- Poisson --------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [0.2, 0.8])
def test_poisson_mean_is_x_and_variance_is_x_over_lam(value):
    lam = 30
    noisy = build_noise({"name": "poisson", "lam": lam})(constant(value), seeded())
    assert noisy.mean().item() == pytest.approx(value, abs=0.003)
    assert noisy.var().item() == pytest.approx(value / lam, rel=0.05)
    counts = noisy * lam  # photon counts are whole numbers
    assert torch.allclose(counts, counts.round(), atol=1e-3)


@pytest.mark.parametrize("value", [0.1, 0.5, 0.9])
def test_poisson_gaussian_mean_is_x_and_variance_adds_read_noise(value):
    lam, sigma = 20.0, 10.0
    noisy = build_noise({"name": "poisson_gaussian", "lam": lam, "sigma": sigma})(constant(value), seeded())
    assert noisy.mean().item() == pytest.approx(value, abs=0.01)
    assert noisy.var().item() == pytest.approx(value / lam + (sigma / 255) ** 2, rel=0.05)


def test_poisson_gaussian_bits_clip_and_round_like_a_file():
    x = torch.rand(2, 3, 32, 32, generator=seeded(1))
    noisy = build_noise({"name": "poisson_gaussian", "lam": 5, "sigma": 20, "bits": 8})(x, seeded())
    assert noisy.min() >= 0 and noisy.max() <= 1
    assert torch.equal(noisy, (noisy * 255).round() / 255)
    with pytest.raises(ConfigError, match="noise.bits=12 must be 0"):
        build_noise({"name": "poisson_gaussian", "bits": 12})


# --- file_like: inputs as an 8-bit file holds them, targets unclipped ------------------------------------------------

def is_file_like(x: torch.Tensor) -> torch.Tensor:
    """(B,) booleans: each image within [0, 1] and on the 8-bit levels k/255."""
    on_levels = torch.isclose(x * 255, (x * 255).round(), atol=1e-4)
    return ((x >= 0) & (x <= 1) & on_levels).flatten(1).all(1)


@pytest.mark.parametrize("cfg", [{"name": "gaussian", "sigma": 25}, {"name": "poisson", "lam": 7},
                                 {"name": "poisson_gaussian", "lam": 7, "sigma": 10}])
def test_file_like_clips_and_rounds_that_fraction_of_inputs_and_never_the_target(cfg):
    clean = constant(0.3, (400, 1, 8, 8))
    noise = build_noise({**cfg, "file_like": 0.5})
    fraction = is_file_like(noise(clean, seeded())).float().mean().item()
    assert 0.4 < fraction < 0.6  # the other half is left as the noise makes it
    assert not is_file_like(noise.target(clean, seeded())).any()
    assert is_file_like(build_noise({**cfg, "file_like": 1})(clean, seeded())).all()


def test_file_like_inputs_are_biased_on_black_and_unclipped_targets_are_not():
    """What the option is for: on black, clipped noise has a mean of about 10/255 at sigma 25 (what a network
    trained on clipped targets learns to output), the unclipped target's mean is 0."""
    black = constant(0.0, (64, 1, 32, 32))
    noise = build_noise({"name": "gaussian", "sigma": 25, "file_like": 1})
    assert 255 * noise(black, seeded()).mean().item() == pytest.approx(25 / (2 * torch.pi) ** 0.5, abs=0.3)
    assert abs(255 * noise.target(black, seeded()).mean().item()) < 0.2


def test_without_file_like_the_draws_are_unchanged():
    """Seeded runs written before the option keep their batches: no random numbers are drawn for it."""
    clean = torch.rand(2, 3, 16, 16, generator=seeded(3))
    noise = build_noise({"name": "gaussian", "sigma": [0, 50]})
    assert torch.equal(noise(clean, seeded()), noise.target(clean, seeded()))
    as_input, as_target = seeded(), seeded()
    noise(clean, as_input)
    noise.target(clean, as_target)
    assert torch.equal(as_input.get_state(), as_target.get_state())


@pytest.mark.parametrize("value", [-0.1, 1.5, "half", True])
def test_bad_file_like_is_refused(value):
    with pytest.raises(ConfigError, match="noise.file_like"):
        build_noise({"name": "gaussian", "file_like": value})


def test_poisson_larger_lam_is_less_noisy():
    clean = constant(0.5)
    low = build_noise({"name": "poisson", "lam": 5})(clean, seeded()).var().item()
    high = build_noise({"name": "poisson", "lam": 50})(clean, seeded()).var().item()
    assert low == pytest.approx(0.5 / 5, rel=0.05)
    assert high == pytest.approx(0.5 / 50, rel=0.05)


# --- Bernoulli ------------------------------------------------------------------------------------------------------

def test_bernoulli_keeps_fraction_p_and_zeroes_whole_pixels():
    clean = 0.1 + 0.9 * torch.rand(4, 3, 64, 64, generator=seeded(1))  # never 0, so zeros mean dropped
    noisy = build_noise({"name": "bernoulli", "p": 0.3})(clean, seeded())
    kept = noisy != 0
    # All channels of a pixel share one fate.
    assert torch.equal(kept.all(dim=1), kept.any(dim=1))
    assert kept[:, 0].float().mean().item() == pytest.approx(0.3, abs=0.01)
    assert torch.equal(noisy[kept], clean[kept])


@pytest.mark.parametrize("p", [0.0, 1.0])
def test_bernoulli_extremes(p):
    clean = constant(0.5, (2, 3, 8, 8))
    assert torch.equal(build_noise({"name": "bernoulli", "p": p})(clean, seeded()), clean * p)


# --- Impulse --------------------------------------------------------------------------------------------------------

def test_impulse_replaces_fraction_p_with_uniform_colours():
    clean = constant(0.5)
    noisy = build_noise({"name": "impulse", "p": 0.4})(clean, seeded())
    hit = changed(clean, noisy)
    assert hit.float().mean().item() == pytest.approx(0.4, abs=0.01)
    values = noisy.permute(0, 2, 3, 1)[hit]  # (N, C) replacement colours
    assert values.min() >= 0 and values.max() <= 1
    assert values.mean().item() == pytest.approx(0.5, abs=0.01)
    assert values.var().item() == pytest.approx(1 / 12, rel=0.05)
    assert torch.equal(noisy.permute(0, 2, 3, 1)[~hit], clean.permute(0, 2, 3, 1)[~hit])


# --- Text -----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("coverage", [0.1, 0.25, 0.5])
def test_text_covers_the_target_fraction(coverage):
    clean = constant(0.5, (8, 3, 128, 128))
    noisy = build_noise({"name": "text", "coverage": coverage})(clean, seeded())
    covered = changed(clean, noisy).float().mean(dim=(1, 2))
    assert covered.mean().item() == pytest.approx(coverage, abs=0.02)
    assert (covered - coverage).abs().max().item() < 0.05


def test_text_is_coloured_strings_in_range():
    clean = constant(0.5, (2, 3, 128, 128))
    noisy = build_noise({"name": "text", "coverage": 0.3})(clean, seeded())
    colours = noisy.permute(0, 2, 3, 1)[changed(clean, noisy)].unique(dim=0)
    assert len(colours) >= 5  # several strings, each with its own colour
    assert noisy.min() >= 0 and noisy.max() <= 1


def test_text_zero_coverage_is_identity():
    clean = torch.rand(2, 3, 32, 32, generator=seeded(1))
    assert torch.equal(build_noise({"name": "text", "coverage": 0})(clean, seeded()), clean)


def test_text_handles_other_sizes_and_grayscale():
    clean = constant(0.5, (3, 1, 40, 72))
    noisy = build_noise({"name": "text", "coverage": 0.25})(clean, seeded())
    assert noisy.shape == clean.shape
    assert changed(clean, noisy).float().mean().item() == pytest.approx(0.25, abs=0.05)


# --- Ranges: a level drawn per image --------------------------------------------------------------------------------

def test_gaussian_range_draws_sigma_per_image():
    clean = constant(0.5, (16, 3, 32, 32))
    stds = (build_noise({"name": "gaussian", "sigma": [5, 50]})(clean, seeded()) - clean).std(dim=(1, 2, 3)) * 255
    assert stds.min() > 5 * 0.9 and stds.max() < 50 * 1.1
    assert stds.max() - stds.min() > 15


def test_poisson_range_draws_lam_per_image():
    clean = constant(0.5, (16, 3, 32, 32))
    lams = 0.5 / build_noise({"name": "poisson", "lam": [5, 50]})(clean, seeded()).var(dim=(1, 2, 3))
    assert lams.min() > 5 * 0.85 and lams.max() < 50 * 1.15
    assert lams.max() - lams.min() > 15


@pytest.mark.parametrize("name, option, measure", [
    ("bernoulli", "p", lambda clean, noisy: (noisy != 0).any(dim=1)),
    ("impulse", "p", changed),
    ("text", "coverage", changed),
])
def test_fraction_ranges_draw_per_image(name, option, measure):
    low, high = 0.1, 0.5
    clean = constant(0.5, (16, 3, 64, 64))
    fractions = measure(clean, build_noise({"name": name, option: [low, high]})(clean, seeded())).float()
    fractions = fractions.mean(dim=(1, 2))
    assert fractions.min() > low - 0.04 and fractions.max() < high + 0.04
    assert fractions.max() - fractions.min() > 0.15


# --- All models -----------------------------------------------------------------------------------------------------

ALL = [{"name": "gaussian"}, {"name": "poisson"}, {"name": "poisson_gaussian"}, {"name": "bernoulli"}, {"name": "text"},
       {"name": "impulse"}, {"name": "gaussian", "sigma": [0, 50]}, {"name": "text", "coverage": [0, 0.5]}]


@pytest.mark.parametrize("cfg", ALL, ids=lambda c: f"{c['name']}-{len(c)}")
def test_same_seed_same_noise_other_seed_other_noise(cfg):
    model = build_noise(cfg)
    clean = torch.rand(4, 3, 32, 32, generator=seeded(7))
    first = model(clean, seeded(1))
    assert torch.equal(first, model(clean, seeded(1)))
    assert not torch.equal(first, model(clean, seeded(2)))
    assert not torch.equal(first, clean)


@pytest.mark.parametrize("cfg", ALL[:5], ids=lambda c: c["name"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_shape_and_dtype_are_kept(cfg, dtype):
    clean = torch.rand(2, 3, 24, 40).to(dtype)
    noisy = build_noise(cfg)(clean)  # no generator: the global RNG
    assert noisy.shape == clean.shape and noisy.dtype == dtype and noisy.device == clean.device
    assert torch.isfinite(noisy).all()


def test_rejects_non_batch_input():
    with pytest.raises(ValueError, match="B, C, H, W"):
        build_noise({"name": "gaussian"})(torch.rand(3, 8, 8))


def test_registry_name_and_repr():
    assert set(NOISE_MODELS) == {"gaussian", "poisson", "poisson_gaussian", "bernoulli", "text", "impulse"}
    model = build_noise({"name": "gaussian", "sigma": [0, 50]})
    assert model.name == "gaussian"
    assert repr(model) == "GaussianNoise(sigma=[0, 50])"
    assert repr(build_noise({"name": "poisson", "lam": 30})) == "PoissonNoise(lam=30)"


def test_text_model_pickles_without_its_cache():
    import pickle

    model = build_noise({"name": "text"})
    clean = constant(0.5, (1, 3, 32, 32))
    before = model(clean, seeded())
    copy = pickle.loads(pickle.dumps(model))
    assert copy._on_device == {} and copy._bank is None
    assert torch.equal(copy(clean, seeded()), before)  # the bank re-renders identically


# --- Configs --------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", sorted(CONF.glob("*.yaml")), ids=lambda p: p.stem)
def test_config_files_build(path):
    cfg = OmegaConf.load(path)
    assert "_target_" not in cfg
    model = build_noise(cfg)
    assert model.name == path.stem


def test_config_files_cover_every_model():
    assert {p.stem for p in CONF.glob("*.yaml")} == set(NOISE_MODELS)


def test_accepts_omegaconf_ranges():
    cfg = OmegaConf.create({"name": "impulse", "p": [0.0, 0.95]})
    assert repr(build_noise(cfg)) == "ImpulseNoise(p=[0, 0.95])"


@pytest.mark.parametrize("cfg, message", [
    ({"name": "salt"}, "noise.name='salt' is not known"),
    ({}, "noise.name=None"),
    ({"name": "gaussian", "sigma": -1}, "noise.sigma"),
    ({"name": "gaussian", "sigma": [30, 10]}, "noise.sigma"),
    ({"name": "gaussian", "sigma": [1, 2, 3]}, "noise.sigma"),
    ({"name": "gaussian", "sigma": "25"}, "noise.sigma"),
    ({"name": "gaussian", "sigma": True}, "noise.sigma"),
    ({"name": "gaussian", "sigma": float("nan")}, "noise.sigma"),
    ({"name": "gaussian", "lam": 3}, "noise.lam is not an option of noise 'gaussian'"),
    ({"name": "poisson", "lam": 0}, "noise.lam"),
    ({"name": "poisson", "lam": [0, 50]}, "noise.lam"),
    ({"name": "bernoulli", "p": 1.5}, "noise.p"),
    ({"name": "bernoulli", "p": [-0.1, 0.5]}, "noise.p"),
    ({"name": "impulse", "p": [0.9, 0.1]}, "noise.p"),
    ({"name": "text", "coverage": 0.95}, "noise.coverage"),
    ({"name": "text", "sigma": 25}, "noise.sigma"),
])
def test_bad_configs_name_the_option(cfg, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")):
        build_noise(cfg)


def test_bad_config_messages_say_what_is_allowed():
    with pytest.raises(ConfigError, match=r"bernoulli, gaussian, impulse, poisson, poisson_gaussian, text"):
        build_noise({"name": "salt"})
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        build_noise({"name": "bernoulli", "p": 2})
    with pytest.raises(ConfigError, match="low must not exceed high"):
        build_noise({"name": "gaussian", "sigma": [30, 10]})
