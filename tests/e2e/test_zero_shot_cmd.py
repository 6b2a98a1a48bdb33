"""`n2n denoise --zero-shot` and `n2n.denoise_zero_shot`: Zero-Shot Noise2Noise fitted to each image, end to end."""
from __future__ import annotations

import numpy as np
import torch
from skimage import data

import n2n
from n2n.cli import main
from n2n.image_files import read_image, write_image
from n2n.metrics import psnr


def noisy_crop(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    clean = data.astronaut()[180:244, 180:244]
    rng = np.random.default_rng(seed)
    noisy = np.clip(clean + rng.normal(0, 25, clean.shape), 0, 255).round().astype(np.uint8)
    return clean, noisy


def score(image: np.ndarray, clean: np.ndarray) -> float:
    as_t = lambda a: torch.from_numpy(a).permute(2, 0, 1).float()[None] / 255  # noqa: E731
    return float(psnr(as_t(image), as_t(clean)))


def test_zero_shot_command_writes_a_denoised_image(tmp_path, capsys):
    clean, noisy = noisy_crop()
    src = tmp_path / "noisy.png"
    write_image(src, noisy)
    assert main(["denoise", str(src), "--zero-shot", "--zero-shot-steps", "60", "-o", str(tmp_path / "out")]) == 0
    out, _ = read_image(tmp_path / "out" / "noisy.png")
    assert out.dtype == np.uint8 and out.shape == noisy.shape
    assert score(out, clean) > score(noisy, clean) + 1.0
    assert "model zero-shot (60 steps)" in capsys.readouterr().out


def test_zero_shot_takes_no_model(tmp_path, capsys):
    _, noisy = noisy_crop()
    write_image(tmp_path / "a.png", noisy)
    assert main(["denoise", str(tmp_path / "a.png"), "--zero-shot", "--model", "gaussian-blind"]) == 2
    assert "uses no model" in capsys.readouterr().err
    assert main(["denoise", str(tmp_path / "a.png"), "--zero-shot-steps", "5"]) == 2
    assert not (tmp_path / "a_denoised.png").exists()


def test_python_api_keeps_the_type_grey_and_colour():
    clean, noisy = noisy_crop(1)
    out = n2n.denoise_zero_shot(noisy, steps=5)
    assert out.dtype == np.uint8 and out.shape == noisy.shape
    grey = n2n.denoise_zero_shot(noisy[:, :, 0].astype(np.float32) / 255, steps=5)
    assert grey.dtype == np.float32 and grey.shape == noisy.shape[:2]
