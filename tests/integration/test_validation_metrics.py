"""Validation runs the network and its metrics in float32 even when training runs in bf16 autocast, so that
val/psnr is what eval.py reports for the same checkpoint."""
from __future__ import annotations

import pytest
import torch
from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure

from helpers.images import smooth_image
from helpers.runs import resolved
from n2n.metrics import quantize8
from n2n.training.module import N2NModule


def test_metrics_under_bf16_autocast_are_computed_in_float32():
    config = resolved(["trainer.precision=bf16-mixed"])
    module = N2NModule(config)
    module.log = lambda *args, **kwargs: None  # no Trainer here
    clean = torch.stack([torch.from_numpy(smooth_image(64, 64, i)).permute(2, 0, 1) for i in range(2)]).float() / 255
    noisy = (clean + 0.1 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        module.validation_step({"noisy": noisy, "clean": clean}, 0)
        in_bf16 = module.net(noisy)
    assert in_bf16.dtype == torch.bfloat16  # training's autocast is on around validation_step
    with torch.no_grad():
        output = module.net(noisy)
    scores = {}
    for name, out in (("float32", output), ("bf16", in_bf16)):
        denoised = quantize8(out.float())
        scores[name] = (PeakSignalNoiseRatio(data_range=1.0, dim=(1, 2, 3))(denoised, clean).item(),
                        StructuralSimilarityIndexMeasure(data_range=1.0)(denoised, clean).item())
    assert scores["float32"][0] != scores["bf16"][0]  # the test can tell them apart
    assert module.val_psnr.compute().item() == pytest.approx(scores["float32"][0], abs=1e-6)
    assert module.val_ssim.compute().item() == pytest.approx(scores["float32"][1], abs=1e-7)
