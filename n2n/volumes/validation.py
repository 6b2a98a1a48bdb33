"""Validation of a model trained on volumes (called by N2NModule.validation_step for N x 1 x Z x Y x X batches).

Volumes are normalised, not in [0, 1], so nothing is rounded to 8 bits or clamped: val/n2n_loss is the loss
against the other half's slab, val/psnr and val/ssim are against the clean slab (where data.val_clean_dir gives
one) in the clean slab's range, val/psnr_noisy the same for the input."""
from __future__ import annotations

import torch

from n2n.volumes import metrics


def run_on_volume(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """net on N x C x Z x Y x X: whole for a 3D network, section by section for a 2D one."""
    if getattr(net, "dims", 2) == 3:
        return net(x)
    n, c, z, y, w = x.shape
    sections = x.permute(0, 2, 1, 3, 4).reshape(n * z, c, y, w)
    out = torch.cat([net(part) for part in sections.split(16)])
    return out.reshape(n, z, -1, y, w).permute(0, 2, 1, 3, 4)


def volume_validation_step(module, batch: dict[str, torch.Tensor]) -> None:
    noisy = batch["noisy"]
    n = noisy.shape[0]
    with torch.autocast(module.device.type, enabled=False):
        output = run_on_volume(module.net, noisy.to(next(module.net.parameters()).dtype)).float()
    if "other" in batch:
        module.log("val/n2n_loss", module._n2n_loss(output, batch["other"].float()), prog_bar="clean" not in batch,
                   batch_size=n)
    if "clean" in batch:
        clean = batch["clean"].float()
        scores = {"val/psnr": [metrics.psnr(o, c) for o, c in zip(output, clean)],
                  "val/psnr_noisy": [metrics.psnr(x, c) for x, c in zip(noisy.float(), clean)],
                  "val/ssim": [metrics.ssim(o, c) for o, c in zip(output, clean)]}
        for key, values in scores.items():
            module.log(key, sum(values) / len(values), prog_bar=key == "val/psnr", batch_size=n)
