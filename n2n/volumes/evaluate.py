"""eval.py on a model trained on volumes: the held-out slab of each volume (data=volumes validation), scored as in
training (n2n.volumes.validation) and written as float32 MRC in the input's units when save_images is on."""
from __future__ import annotations

import csv
import json
from typing import Any

import numpy as np
import torch

from n2n.atomic import atomic_output, write_text
from n2n.volumes import metrics
from n2n.volumes.io import write_like
from n2n.volumes.validation import run_on_volume


def evaluate_volumes(cfg, source, names: list[str], items: list[dict[str, torch.Tensor]], net, label: str,
                     out_dir) -> dict[str, Any]:
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    device = next(net.parameters()).device
    for name, item in zip(names, items):
        noisy = item["noisy"].float()[None]
        with torch.inference_mode():
            output = run_on_volume(net, noisy.to(device)).float().cpu()[0]
        row: dict[str, Any] = {"volume": name}
        if "clean" in item:
            clean = item["clean"].float()
            row.update(psnr_noisy=metrics.psnr(noisy[0], clean), psnr_denoised=metrics.psnr(output, clean),
                       ssim_noisy=metrics.ssim(noisy[0], clean), ssim_denoised=metrics.ssim(output, clean))
        if "other" in item:
            other = item["other"].float()
            row.update(n2n_loss_noisy=float(((noisy[0] - other) ** 2).mean()),
                       n2n_loss_denoised=float(((output - other) ** 2).mean()))
        rows.append(row)
        if cfg.get("save_images", True):
            norm = source._norms[name]
            (out_dir / "denoised").mkdir(exist_ok=True)
            write_like(out_dir / "denoised" / f"{name.rsplit('.', 1)[0]}_slab.mrc", norm.undo(output[0].numpy()))
    keys = [k for k in rows[0] if k != "volume"]
    summary = {"checkpoint": label, "num_volumes": len(rows),
               **{k: float(np.nanmean([r[k] for r in rows])) for k in keys}}
    with atomic_output(out_dir / "per_volume.csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    write_text(out_dir / "metrics.json", json.dumps(summary, indent=2) + "\n")
    parts = [f"{k} {summary[k]:.4g}" for k in keys]
    print(f"{len(rows)} validation slab(s): {'; '.join(parts)}\nwritten to {out_dir}", flush=True)
    return summary
