"""The models shipped in the package (n2n.pretrained): each one denoises a real photo, loads without pickle,
and is what `n2n denoise` uses when no model is given."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from skimage import data as skdata

import n2n
from n2n import pretrained
from n2n.cli import main
from n2n.image_files import read_image, write_image
from n2n.metrics import psnr

SIGMA = 25


def noisy_photo(channels: int) -> tuple[np.ndarray, np.ndarray]:
    """(clean, noisy) 192 x 256 crops of scikit-image's astronaut, Gaussian sigma 25, as uint8."""
    clean = skdata.astronaut()[40:232, 128:384]
    if channels == 1:
        clean = np.rint(clean @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)
    noise = np.random.default_rng(0).normal(0, SIGMA, clean.shape)
    return clean, np.clip(np.rint(clean + noise), 0, 255).astype(np.uint8)


def db(a: np.ndarray, b: np.ndarray) -> float:
    return psnr(torch.from_numpy(a / 255.0), torch.from_numpy(b / 255.0))


@pytest.fixture(scope="module")
def loaded(one_thread):
    return {name: n2n.load(name, device="cpu", precision="fp32") for name in pretrained.names()}


def test_both_defaults_are_bundled():
    assert pretrained.default_model(3) == "gaussian-blind"
    assert pretrained.default_model(1) == "gaussian-blind-grey"
    assert {"gaussian-blind", "gaussian-blind-grey"} <= set(pretrained.names())


@pytest.mark.parametrize("name", pretrained.names())
def test_every_bundled_model_denoises_a_real_photo(name, loaded):
    model = loaded[name]
    channels = pretrained.card(name)["channels"]
    assert model.channels == channels  # a swapped or wrong-channel file fails here
    clean, noisy = noisy_photo(channels)
    gain = db(model(noisy), clean) - db(noisy, clean)
    # trained: about +8 dB here; an untrained U-Net or the other channel count's model stays far below
    assert gain > 6.0, f"{name}: {gain:.2f} dB"


def test_a_swapped_model_would_fail_the_quality_bound(loaded):
    """The bound above is tight enough to tell a model from an untrained one of the same shape."""
    from n2n.inference.denoiser import Denoiser
    from n2n.inference.runners import TorchRunner, load_network

    torch.manual_seed(0)
    untrained = load_network("gaussian-blind")
    for p in untrained.parameters():
        torch.nn.init.normal_(p, std=0.02)
    clean, noisy = noisy_photo(3)
    model = Denoiser(TorchRunner(untrained, "cpu"), "untrained")
    assert db(model(noisy), clean) - db(noisy, clean) < 6.0


@pytest.mark.parametrize("name", pretrained.names())
def test_black_stays_black_on_a_clipped_file(name, loaded):
    """A black square under sigma-25 noise clipped and rounded as an 8-bit file holds it (mean about 10/255:
    clipping lifts the noise's mean) denoises to a mean below 2/255: the bundled models learnt unclipped noise,
    and their outputs on clipped inputs are declipped (n2n.inference.declip)."""
    from n2n.bench.black_level import BLACK_BOUND, square_levels

    levels = square_levels(loaded[name])
    assert levels["black_noisy"] > 8  # the input is lifted: the test asks the model to undo that
    assert levels["black"] < BLACK_BOUND, f"{name}: black at {levels['black']:.2f}/255"


def test_bundled_weights_load_without_unpickling(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a bundled model was unpickled")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    monkeypatch.setattr(torch, "load", refuse)
    for name in pretrained.names():
        n2n.load(name, device="cpu")


def test_denoise_without_a_model_picks_the_bundled_one_for_each_image(loaded, tmp_path):
    for channels in (3, 1):
        _, noisy = noisy_photo(channels)
        write_image(tmp_path / f"photo{channels}.png", noisy)
    assert main(["denoise", str(tmp_path / "photo3.png"), str(tmp_path / "photo1.png"), "--device", "cpu",
                 "--precision", "fp32"]) == 0
    for channels, name in ((3, "gaussian-blind"), (1, "gaussian-blind-grey")):
        written, _ = read_image(tmp_path / f"photo{channels}_denoised.png")
        _, noisy = noisy_photo(channels)
        expected = loaded[name](noisy)
        assert np.array_equal(written.reshape(expected.shape), expected)


def test_models_command_lists_every_model_with_its_scores(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in pretrained.names():
        assert name in out
        assert "CBSD68 sigma 15/25/50" in out


def test_the_readme_python_example_runs(tmp_path, monkeypatch):
    from helpers.runs import ROOT

    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- python-api-example -->", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)
    _, noisy = noisy_photo(3)
    write_image(tmp_path / "noisy.png", noisy)
    exec(compile(block, "README.md", "exec"), {})
    assert (tmp_path / "denoised.png").is_file()
