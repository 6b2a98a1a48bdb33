"""Evaluation of a checkpoint: PSNR/SSIM of noisy input and output per image, denoised images, comparisons.

The model is rebuilt from the checkpoint alone. The data and noise are those the checkpoint was trained
with unless `data=` / `noise=` are given on the command line.
"""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from PIL import Image
from torchmetrics.functional.image import structural_similarity_index_measure
from tqdm import tqdm

from n2n.checkpoint import read_checkpoint, training_config, unet_from_checkpoint
from n2n.data.datamodule import N2NDataModule
from n2n.errors import ConfigError
from n2n.inference import denoise_tensor
from n2n.module import quantize8
from n2n.train import run_dir_of
from n2n.visualize import comparison_grid, to_uint8_hwc


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise ConfigError(f"device={name!r} must be auto, cpu or cuda[:N]")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={name} was asked for but no CUDA GPU is available")
    return torch.device(name)


def psnr(x: torch.Tensor, y: torch.Tensor) -> float:
    mse = float(torch.mean((x.double() - y.double()) ** 2))  # double: no float32 rounding in the sum
    return 10 * math.log10(1.0 / mse) if mse > 0 else float("inf")


def ssim(x: torch.Tensor, y: torch.Tensor) -> float:
    if min(x.shape[-2:]) < 11:  # smaller than SSIM's Gaussian window
        return float("nan")
    return float(structural_similarity_index_measure(x[None], y[None], data_range=1.0))


def run(cfg: DictConfig) -> dict[str, Any]:
    ckpt = read_checkpoint(cfg.ckpt_path)
    trained = training_config(ckpt, cfg.ckpt_path)
    device = pick_device(str(cfg.get("device", "auto")))
    net = unet_from_checkpoint(ckpt, cfg.ckpt_path, device)
    given = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    config = {"data": given.get("data") or trained["data"], "noise": given.get("noise") or trained.get("noise"),
              "seed": 0}
    datamodule = N2NDataModule(config)
    datamodule.setup("validate")
    if datamodule.channels != net.in_channels:
        raise ConfigError(f"the checkpoint's model takes {net.in_channels}-channel images but "
                          f"data.channels={datamodule.channels}")

    out_dir = run_dir_of(cfg)
    images_dir = out_dir / "denoised"
    if cfg.save_images:
        images_dir.mkdir(parents=True, exist_ok=True)
    rows, grid_rows = [], []
    num_comparisons = int(cfg.get("num_comparisons", 4))
    for i, (name, (noisy, clean)) in enumerate(tqdm(list(zip(datamodule.val_names, datamodule.val_pairs)),
                                                    desc="evaluating", unit="image")):
        noisy = noisy.float() / 255 if noisy.dtype == torch.uint8 else noisy.float()
        clean = clean.float() / 255
        denoised = quantize8(denoise_tensor(net, noisy[None].to(device), tile=cfg.get("tile"))[0].cpu())
        noisy8 = quantize8(noisy)
        rows.append({"image": name, "psnr_noisy": psnr(noisy8, clean), "psnr_denoised": psnr(denoised, clean),
                     "ssim_noisy": ssim(noisy8, clean), "ssim_denoised": ssim(denoised, clean)})
        if cfg.save_images:
            Image.fromarray(_squeeze(to_uint8_hwc(denoised))).save(images_dir / f"{Path(name).stem}.png")
        if i < num_comparisons:
            grid_rows.append([noisy8, denoised, clean])

    if grid_rows:
        grid = comparison_grid(grid_rows)
        Image.fromarray(_squeeze(to_uint8_hwc(grid))).save(out_dir / "comparison.png")
    metrics = summarize(rows, cfg.ckpt_path)
    with open(out_dir / "per_image.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"{metrics['num_images']} images: PSNR noisy {metrics['psnr_noisy']:.3f} dB -> denoised "
          f"{metrics['psnr_denoised']:.3f} dB; SSIM noisy {metrics['ssim_noisy']:.4f} -> denoised "
          f"{metrics['ssim_denoised']:.4f}\nwritten to {out_dir}", flush=True)
    return metrics


def summarize(rows: list[dict[str, Any]], ckpt_path: str) -> dict[str, Any]:
    def mean(key: str) -> float:
        values = [r[key] for r in rows if not math.isnan(r[key])]
        return sum(values) / len(values) if values else float("nan")

    return {"checkpoint": str(ckpt_path), "num_images": len(rows),
            **{k: mean(k) for k in ("psnr_noisy", "psnr_denoised", "ssim_noisy", "ssim_denoised")}}


def _squeeze(array):
    return array[:, :, 0] if array.shape[2] == 1 else array
