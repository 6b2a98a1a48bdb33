"""Validation metrics are float32 numbers even when the network runs in bf16 autocast."""
from __future__ import annotations

import pytest
import torch
from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure

from helpers.images import smooth_image
from n2n.metrics import quantize8
from n2n.training.module import N2NModule
from helpers.runs import resolved


def test_metrics_under_bf16_autocast_are_computed_in_float32():
    config = resolved(["trainer.precision=bf16-mixed"])
    module = N2NModule(config)
    module.log = lambda *args, **kwargs: None  # no Trainer here
    clean = torch.stack([torch.from_numpy(smooth_image(64, 64, i)).permute(2, 0, 1) for i in range(2)]).float() / 255
    noisy = (clean + 0.1 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        module.validation_step({"noisy": noisy, "clean": clean}, 0)
        output = module.net(noisy)
    assert output.dtype == torch.bfloat16  # the network did run in bf16
    denoised = quantize8(output.float())
    psnr = PeakSignalNoiseRatio(data_range=1.0, dim=(1, 2, 3))(denoised, clean)
    ssim = StructuralSimilarityIndexMeasure(data_range=1.0)(denoised, clean)
    assert module.val_psnr.compute().item() == pytest.approx(psnr.item(), abs=1e-5)
    assert module.val_ssim.compute().item() == pytest.approx(ssim.item(), abs=1e-6)
