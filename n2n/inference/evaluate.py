"""Evaluation of a checkpoint (eval.py): PSNR/SSIM of noisy input and output per image, denoised images,
comparisons.

The model is rebuilt from the checkpoint alone (`ckpt_path=`), or is a bundled model or weight file (`model=`).
The data and noise are those the checkpoint was trained with unless `data=` / `noise=` are given on the command
line (they must be for `model=`, which records none); only the validation part of the data pipeline
is built (the source's held-out images and the fixed validation noise), never the training one.
"""
from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from omegaconf import DictConfig
from tqdm import tqdm

from n2n.atomic import atomic_output, write_text
from n2n.config import RunContext, resolve_eval_config
from n2n.config_schema import EVAL_OPTIONS, check_options
from n2n.data.datamodule import build_noises, build_source, validation_pairs
from n2n.devices import pick_device
from n2n.errors import ConfigError
from n2n.image_files import as_float, set_max_pixels, write_image
from n2n.inference.checkpoints import (
    check_image_model,
    inference_network,
    read_checkpoint,
    training_config,
    unet_from_checkpoint,
)
from n2n.inference.runners import load_network
from n2n.inference.tiling import denoise_tensor
from n2n.metrics import psnr, quantize8, ssim
from n2n.pretrained import resolve
from n2n.training.run_folder import claim, eval_results_in
from n2n.visualize import COLUMNS, comparison_grid, psnr_caption, to_uint8_hwc


def load_model(cfg: Mapping[str, Any], device: torch.device) -> tuple[str, torch.nn.Module, dict[str, Any]]:
    """(what was evaluated, the network, its training config: empty for weight files and bundled models)."""
    ckpt_path, model = cfg.get("ckpt_path"), cfg.get("model")
    if (ckpt_path is None) == (model is None):
        raise ConfigError("give exactly one of ckpt_path=RUN/checkpoints/last.ckpt (a training checkpoint) and "
                          "model=NAME|FILE (a bundled model, `n2n models`, or a .safetensors / .ckpt file)")
    path = resolve(ckpt_path if ckpt_path is not None else model)
    if path.suffix.lower() == ".ckpt":
        ckpt = read_checkpoint(path)
        net = inference_network(ckpt, unet_from_checkpoint(ckpt, path, device), path)
        return str(ckpt_path or model), net, training_config(ckpt, path)
    return str(model or ckpt_path), load_network(path, device), {}


def evaluate(cfg: DictConfig | Mapping[str, Any], context: RunContext) -> dict[str, Any]:
    """Evaluate as eval.py's config says (a DictConfig or plain dicts: resolved and checked first, by
    n2n.config.resolve_eval_config; nothing below reads the Hydra object)."""
    cfg = given = resolve_eval_config(cfg)
    device = pick_device(str(cfg["device"]))
    label, net, trained = load_model(cfg, device)
    if (given.get("data") or {}).get("name") == "volumes":  # whole test volumes of other folders, tiled
        from n2n.volumes.evaluate import prepare_test_volumes
        job = prepare_test_volumes(cfg, given["data"], label, net)  # every check before anything is written
    else:
        job = _prepare(cfg, given, label, net, trained, device)

    # one evaluation per folder, as one run per run folder: an earlier evaluation's results are never mixed
    # with or replaced by this one's (overwrite=true removes them first), and a refused one writes nothing
    with claim(context.run_dir, None, bool(cfg.get("overwrite", False)), context.records, results=eval_results_in,
               what="evaluation", resume_hint=""):
        try:
            return job(context.run_dir)
        except BaseException:  # no half evaluation: the folder held no results before this one (claim)
            for name in eval_results_in(context.run_dir):
                path = context.run_dir / name
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
            raise


def _prepare(cfg: Mapping[str, Any], given: Mapping[str, Any], label: str, net: torch.nn.Module,
             trained: Mapping[str, Any], device: torch.device) -> Callable[[Path], dict[str, Any]]:
    """The evaluation of the given (or the checkpoint's own) validation data, its config checked."""
    data_cfg = given.get("data") or trained.get("data")
    noise_cfg = given.get("noise") or trained.get("noise")
    if not isinstance(data_cfg, dict) or not isinstance(noise_cfg, dict):
        raise ConfigError(f"{label} records no data or noise to evaluate on: give them on the command line, e.g. "
                          f"data=folder data.val_dir=DIR noise=gaussian noise.sigma=25")
    # a checkpoint's own data and noise sections are untrusted input: the same checks as the command line's
    check_options({"data": data_cfg, "noise": noise_cfg}, EVAL_OPTIONS)
    source = build_source(data_cfg)
    if not getattr(source, "volumetric", False):  # images in [0, 1]: not the units of a micrograph model
        check_image_model(net, label, "score it on its own data (eval.py ckpt_path=... alone) or on MRC files "
                                      "(data=volumes data.dir_a=EVEN data.dir_b=ODD; docs/volumes.md)")
    if cfg.get("max_pixels") is not None:  # eval.py's own option wins over the data section's
        set_max_pixels(cfg.get("max_pixels"), "max_pixels")
    if source.channels != net.in_channels:
        raise ConfigError(f"the model {label} takes {net.in_channels}-channel images but "
                          f"data.channels={source.channels}: set data.channels={net.in_channels}")
    names, pairs = validation_pairs(source.val_data(), build_noises(noise_cfg)[1],
                                    int(data_cfg.get("val_seed") or 0), data_cfg.get("val_limit"))
    return lambda out_dir: _evaluate(cfg, out_dir, label, net, device, names, pairs, source)


def shown_name(name: str) -> str:
    """A file name as text that can be printed and written in UTF-8: bytes that are not UTF-8 (kept by Python
    as surrogates) are shown as backslash escapes, e.g. \\xff. The file itself keeps its name."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _evaluate(cfg: Mapping[str, Any], out_dir: Path, label: str, net: torch.nn.Module, device: torch.device,
              names: list[str], pairs: list[dict[str, torch.Tensor]], source: Any = None) -> dict[str, Any]:
    if getattr(source, "volumetric", False):  # data=volumes: 3D slabs in their own units (n2n.volumes.evaluate)
        from n2n.volumes.evaluate import evaluate_volumes
        return evaluate_volumes(cfg, source, names, pairs, net, label, out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    images_dir = out_dir / "denoised"
    if cfg['save_images']:
        images_dir.mkdir(parents=True, exist_ok=True)
    rows, grid_rows, grid_captions = [], [], []
    num_comparisons = int(cfg['num_comparisons'])
    outputs = output_names(names)
    renamed = [f"{shown_name(n)} -> {shown_name(o)}" for n, o in zip(names, outputs) if o != f"{Path(n).stem}.png"]
    if cfg['save_images'] and renamed:
        print(f"inputs that share a name are written under distinct names: {'; '.join(renamed)}", flush=True)
    for i, (name, item) in enumerate(tqdm(list(zip(names, pairs)), desc="evaluating", unit="image")):
        noisy = as_float(item["noisy"])
        denoised = quantize8(denoise_tensor(net, noisy[None].to(device), tile=cfg.get('tile'),
                                                  declip=bool(cfg.get('declip', True)))[0].cpu())
        noisy8 = quantize8(noisy)
        row: dict[str, Any] = {"image": shown_name(name)}
        reference = None
        if "clean" in item:  # against the clean image
            reference = clean = as_float(item["clean"])
            row.update(psnr_noisy=psnr(noisy8, clean), psnr_denoised=psnr(denoised, clean),
                       ssim_noisy=ssim(noisy8, clean), ssim_denoised=ssim(denoised, clean))
        if "other" in item:  # no clean image: against an independent noisy copy (docs/own-data.md)
            other = as_float(item["other"])
            reference = other if reference is None else reference
            row.update(n2n_loss_noisy=float(((noisy - other) ** 2).mean()),
                       n2n_loss_denoised=float(((denoised - other) ** 2).mean()))
        rows.append(row)
        if cfg['save_images']:
            write_image(images_dir / outputs[i], to_pixels(denoised, item["noisy"].dtype))
        if i < num_comparisons:
            grid_rows.append([noisy8, denoised, reference.clamp(0, 1)])
            noisy_psnr = psnr_caption(row.get("psnr_noisy"))  # empty without a clean image
            grid_captions.append([f"{row['image']}: {noisy_psnr}" if noisy_psnr else row["image"],
                                  psnr_caption(row.get("psnr_denoised")), ""])

    if grid_rows:
        labels = COLUMNS if "psnr_noisy" in rows[0] else ("noisy", "denoised", "other noisy copy")
        grid = comparison_grid(grid_rows, labels=labels, captions=grid_captions)
        write_image(out_dir / "comparison.png", to_uint8_hwc(grid))
    metrics = summarize(rows, label)
    with atomic_output(out_dir / "per_image.csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    write_text(out_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    parts = []
    if "psnr_noisy" in metrics:
        parts.append(f"PSNR noisy {metrics['psnr_noisy']:.3f} dB -> denoised {metrics['psnr_denoised']:.3f} dB; "
                     f"SSIM noisy {metrics['ssim_noisy']:.4f} -> denoised {metrics['ssim_denoised']:.4f}")
    if "n2n_loss_noisy" in metrics:
        parts.append(f"mean squared difference to the other noisy copy: noisy {metrics['n2n_loss_noisy']:.6f} -> "
                     f"denoised {metrics['n2n_loss_denoised']:.6f}" + ("" if parts else " (no clean images)"))
    print(f"{metrics['num_images']} images: {'; '.join(parts)}\nwritten to {shown_name(str(out_dir))}", flush=True)
    return metrics


def output_names(names: list[str]) -> list[str]:
    """One PNG name per input, never the same for two inputs: NAME.png, or NAME_EXT.png where inputs share a
    stem (photo.png and photo.jpg become photo_png.png and photo_jpg.png)."""
    stems = [Path(n).stem for n in names]
    shared = {s for s in stems if stems.count(s) > 1}
    out = [f"{Path(n).stem}_{Path(n).suffix.lstrip('.').lower()}.png" if Path(n).stem in shared
           else f"{Path(n).stem}.png"
           for n in names]
    taken: dict[str, int] = {}
    for i, name in enumerate(out):  # e.g. a.PNG and a.png
        taken[name] = taken.get(name, 0) + 1
        if taken[name] > 1:
            out[i] = f"{Path(name).stem}_{taken[name]}.png"
    return out


def summarize(rows: list[dict[str, Any]], ckpt_path: str) -> dict[str, Any]:
    def mean(key: str) -> float:
        values = [r[key] for r in rows if not math.isnan(r[key])]
        return sum(values) / len(values) if values else float("nan")

    keys = [k for k in rows[0] if k != "image"]
    return {"checkpoint": str(ckpt_path), "num_images": len(rows), **{k: mean(k) for k in keys}}


def to_pixels(image: torch.Tensor, dtype: torch.dtype):
    """A C x H x W float image in [0, 1] as H x W x C pixels of the input's bit depth (8 or 16)."""
    maximum = 65535 if dtype == torch.int32 else 255
    array = (image.clamp(0, 1) * maximum).round().permute(1, 2, 0).numpy()
    return array.astype("uint16" if maximum == 65535 else "uint8")
