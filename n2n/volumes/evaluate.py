"""eval.py on volumes.

- A model trained on volumes, without `data=`: the held-out slab of each of its own volumes (data=volumes
  validation), scored as in training (n2n.volumes.validation) and written as float32 MRC in the input's units when
  save_images is on (`evaluate_volumes`).
- `data=volumes data.dir_a=EVEN data.dir_b=ODD [data.val_clean_dir=CLEAN]`: every whole test volume of those
  folders (`prepare_test_volumes`), denoised as `n2n denoise EVEN/NAME` does it (normalised with its own
  statistics, tiled within `max_memory`, un-normalised), scored against the odd half (the Noise2Noise loss, in the
  normalised units the network sees) and against the clean volume of the same name (PSNR and SSIM with the clean
  volume's range as peak, as n2n.volumes.metrics), and written with the input's header. Every volume is checked
  (names, shapes, sizes, headers, finite voxels, memory) before the first is denoised: a refusal writes nothing.
"""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch

from n2n.atomic import atomic_output, write_text
from n2n.errors import ConfigError, DataError
from n2n.volumes import metrics
from n2n.volumes.io import check_finite, check_partner, read_volume, write_like
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
    return write_results(rows, label, out_dir, "validation slab(s)")


def write_results(rows: list[dict[str, Any]], label: str, out_dir: Path, what: str) -> dict[str, Any]:
    """per_volume.csv, and metrics.json with the mean of each score over the volumes; prints the means."""
    keys = [k for k in rows[0] if k != "volume"]
    summary = {"checkpoint": label, "num_volumes": len(rows),
               **{k: float(np.nanmean([r[k] for r in rows])) for k in keys}}
    with atomic_output(out_dir / "per_volume.csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    write_text(out_dir / "metrics.json", json.dumps(summary, indent=2) + "\n")
    parts = [f"{k} {summary[k]:.4g}" for k in keys]
    print(f"{len(rows)} {what}: {'; '.join(parts)}\nwritten to {out_dir}", flush=True)
    return summary


# ------------------------------------------------------------------------------------------ test volumes


def prepare_test_volumes(cfg: Mapping[str, Any], data: Mapping[str, Any], label: str,
                         net: torch.nn.Module) -> Callable[[Path], dict[str, Any]]:
    """The evaluation of the whole volumes of data.dir_a (denoised) against data.dir_b and data.val_clean_dir,
    after every check: ConfigError or DataError (one line) for anything that does not fit the model."""
    from n2n.cli.denoise_volume import DEFAULT_MAX_MEMORY
    from n2n.data.datamodule import build_source
    from n2n.data.sources.volumes import list_volumes, matched_halves
    from n2n.volumes.denoise import normalization_for, parse_memory, volume_model
    from n2n.volumes.tiling import plan_tiles

    if cfg.get("noise") is not None:
        raise ConfigError("noise= does not apply to data=volumes: the two halves are the noisy data; leave it out")
    if cfg.get("tile") is not None:
        raise ConfigError(f"tile={cfg['tile']} is for images; eval.py cuts volumes into tiles that fit "
                          f"max_memory=SIZE (as n2n denoise --max-memory): give that instead")
    model = volume_model(net, label, label)
    data = {**data, "dims": model.dims, "depth": model.depth}  # they follow the model
    build_source(data)  # the section's options, checked as for training
    try:
        memory = parse_memory(cfg.get("max_memory") or DEFAULT_MAX_MEMORY)
    except ValueError:
        raise ConfigError(f"max_memory={cfg.get('max_memory')!r}: give a size such as 8G, 512M or a number of "
                          f"bytes") from None
    evens, odds = matched_halves(data)
    clean_dir = data.get("val_clean_dir")
    cleans = list_volumes(clean_dir, "data.val_clean_dir") if clean_dir else {}
    flat = model.dims == 2  # a 2D model denoises each section (or a single-section file), in 2D tiles
    m = 2 ** model.depth
    jobs = []
    for name in sorted(evens):
        where = f"data.dir_a/{name}"
        paths = [evens[name], odds[name]]
        if clean_dir:
            if name not in cleans:
                raise DataError(f"data.val_clean_dir={clean_dir} has no volume {name}: clean volumes are matched to "
                                f"those of data.dir_a by name (give one for each, or leave data.val_clean_dir out)")
            paths.append(cleans[name])
        volumes = [read_volume(p, o, allow_2d=flat) for p, o in zip(paths, ("data.dir_a", "data.dir_b",
                                                                            "data.val_clean_dir"))]
        try:
            check_partner(volumes[0], volumes[1], "data.dir_a", "data.dir_b")
            shape = volumes[0].shape
            if len(volumes) == 3 and volumes[2].shape != shape:
                raise DataError(f"data.val_clean_dir/{name} is {' x '.join(map(str, volumes[2].shape))} but its "
                                f"noisy halves are {' x '.join(map(str, shape))} (Z x Y x X)")
            small = [f"{axis} {n}" for axis, n in zip("zyx", shape) if n < m and not (flat and axis == "z")]
            if small:
                raise DataError(f"{where} ({' x '.join(map(str, shape))}, Z x Y x X) is smaller than the network's "
                                f"minimum of {m} voxels per axis ({', '.join(small)}; model.depth={model.depth} "
                                f"pools {model.depth} times): remove it, or use a model of smaller depth")
            for v in volumes:
                check_finite(v.data, str(v.path))
            norm = normalization_for(model, volumes[0].data, where=where)  # its own statistics, as n2n denoise
            try:
                plan = plan_tiles(shape, model.depth, int(getattr(net, "features", 48)), memory, dims=model.dims)
            except ValueError as exc:
                raise ConfigError(f"{where}: {str(exc).replace('--max-memory', 'max_memory=')}") from None
        finally:
            for v in volumes:
                v.close()
        jobs.append((name, paths, norm, plan))
    return lambda out_dir: _score_test_volumes(cfg, model, jobs, label, out_dir, memory)


def _score_test_volumes(cfg: Mapping[str, Any], model, jobs: list, label: str, out_dir: Path,
                        memory: int) -> dict[str, Any]:
    from tqdm import tqdm

    from n2n.volumes.denoise import denoise_volume_array

    out_dir.mkdir(parents=True, exist_ok=True)
    flat = model.dims == 2
    rows = []
    for name, paths, norm, (tile, overlap) in jobs:
        volumes = [read_volume(p, allow_2d=flat) for p in paths]
        try:
            even, odd = (v.data for v in volumes[:2])
            tiles = f"in tiles of {' x '.join(map(str, tile))} {'pixels' if flat else 'voxels'}, overlap {overlap}"
            how = f"section by section (2D model), {tiles}" if flat else tiles
            print(f"{name} ({' x '.join(map(str, even.shape))}, Z x Y x X) {how}", file=sys.stderr, flush=True)
            unit = "section" if flat and even.shape[0] > 1 else "tile"  # a micrograph's bar counts its tiles
            bar = lambda it: tqdm(it, desc=f"denoising {name}", unit=unit, file=sys.stderr)  # noqa: E731
            out = denoise_volume_array(model, even, norm, tile, overlap, slices=flat, progress=bar)
            row: dict[str, Any] = {"volume": name}
            if len(volumes) == 3:
                clean = volumes[2].data
                within = max(memory - out.nbytes, 2**28)  # slab by slab beside the output: never a whole copy
                row.update(psnr_noisy=metrics.psnr_volume(even, clean), psnr_denoised=metrics.psnr_volume(out, clean),
                           ssim_noisy=metrics.ssim(even, clean, within), ssim_denoised=metrics.ssim(out, clean, within))
            # against the other half, in the units the network sees (the input's normalisation)
            row.update(n2n_loss_noisy=metrics.mean_squared(even, odd, norm.std),
                       n2n_loss_denoised=metrics.mean_squared(out, odd, norm.std))
            if cfg.get("save_images", True):
                (out_dir / "denoised").mkdir(exist_ok=True)
                write_like(out_dir / "denoised" / name, out, volumes[0])
        finally:
            for v in volumes:
                v.close()
        rows.append(row)
    return write_results(rows, label, out_dir, "test volume(s)")
