"""Does black stay black? `python -m n2n.bench.black_level [MODEL ...] [--photos DIR]`

A 128 x 128 image, mid-grey with a black 64 x 64 square (and one with a white square), under Gaussian noise of
sigma 25 clipped to [0, 255] and rounded to 8 bits as an image file holds it; prints the mean of the denoised
square's inner 48 x 48 pixels on the 0..255 scale, beside the noisy input's (about 10 on black: clipping lifts the
mean of the noise, and a model that learnt the mean of unclipped or clipped targets keeps that lift unless its
output is declipped, n2n.inference.declip). Each model is measured with and without that correction (`--no-declip`
in `n2n denoise`). MODEL is a bundled model's name, a .safetensors file or a training .ckpt; default: every
bundled model. tests/integration/test_pretrained.py asks every bundled model for a black mean below 2/255.

`--photos DIR` also scores each model on the photos of DIR (e.g. CBSD68; `--limit N` the first N) under the
same file-like noise at sigma 15, 25 and 50 (`--sigmas`), PSNR of the 8-bit output against the clean photo,
with and without declipping: what the correction is worth on whole photos, not only on squares.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

#: The bound of the issue ("a black square under clipped sigma-25 noise denoises to a mean below 2/255").
BLACK_BOUND = 2.0


def _loaded(model: Any, declip: bool) -> Any:
    import n2n

    if isinstance(model, n2n.Denoiser):
        return n2n.Denoiser(model.runner, model.name, model.tile, model.overlap, model.strength, declip)
    return n2n.load(model, device="cpu", precision="fp32", declip=declip)


def _file_like(sigma: float):
    from n2n.noise import build_noise

    return build_noise({"name": "gaussian", "sigma": sigma, "file_like": 1})  # clipped and 8-bit, as a file


def square_levels(model: Any, sigma: float = 25, seed: int = 0, declip: bool = True) -> dict[str, float]:
    """{"black_noisy", "black", "white_noisy", "white"}: mean levels (0..255) of the squares' inner pixels;
    `model` is a loaded n2n.Denoiser or anything `n2n.load` takes."""
    denoiser = _loaded(model, declip)
    noise = _file_like(sigma)
    out: dict[str, float] = {}
    for name, level in (("black", 0.0), ("white", 1.0)):
        clean = torch.full((1, denoiser.channels, 128, 128), 0.5)
        clean[..., 32:96, 32:96] = level
        noisy = noise(clean, torch.Generator().manual_seed(seed))[0]
        denoised = denoiser(noisy).clamp(0, 1).mul(255).round()  # as the 8-bit file `n2n denoise` writes
        inner = (slice(None), slice(40, 88), slice(40, 88))
        out[f"{name}_noisy"] = 255 * float(noisy[inner].mean())
        out[name] = float(denoised[inner].mean())
    return out


def photo_psnr(model: Any, folder: str | Path, sigma: float, limit: int | None = None,
               declip: bool = True) -> dict[str, float]:
    """{"noisy", "denoised"}: mean PSNR (dB) over the photos of `folder` (the first `limit`) under file-like
    Gaussian noise of `sigma` (one seeded draw per photo), of the 8-bit output against the clean photo."""
    from n2n.data.sources import load_image_folder
    from n2n.metrics import psnr, quantize8

    denoiser = _loaded(model, declip)
    _, images = load_image_folder(folder, denoiser.channels, "--photos")
    images = images[:limit] if limit else images
    noise = _file_like(sigma)
    scores: dict[str, list[float]] = {"noisy": [], "denoised": []}
    for i, clean in enumerate(images):
        clean = clean.float() / 255 if not clean.is_floating_point() else clean
        noisy = noise(clean[None], torch.Generator().manual_seed(i))[0]
        scores["noisy"].append(psnr(quantize8(noisy), clean))
        scores["denoised"].append(psnr(quantize8(denoiser(noisy)), clean))
    return {k: sum(v) / len(v) for k, v in scores.items()}


def main(argv: list[str] | None = None) -> None:
    from n2n import pretrained

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", help="bundled model names or model files (default: every bundled one)")
    parser.add_argument("--sigma", type=float, default=25, help="noise of the squares (0..255 scale)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--photos", default=None, metavar="DIR", help="also score on the photos of DIR")
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="the first N photos of DIR")
    parser.add_argument("--sigmas", nargs="*", type=float, default=[15, 25, 50], help="noise levels for --photos")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    models = args.models or pretrained.names()
    print("| model | declip | black: noisy | black: denoised | white: noisy | white: denoised |")
    print("|---|---|---:|---:|---:|---:|")
    for model in models:
        for declip in (True, False):
            v = square_levels(model, args.sigma, args.seed, declip)
            print(f"| {model} | {'yes' if declip else 'no'} | {v['black_noisy']:.2f} | {v['black']:.2f} | "
                  f"{v['white_noisy']:.2f} | {v['white']:.2f} |", flush=True)
    if args.photos:
        sigmas = " | ".join(f"sigma {s:g}" for s in args.sigmas)
        print(f"\nPSNR (dB) on {args.photos}{f', first {args.limit}' if args.limit else ''}, noise clipped and "
              f"rounded as a file holds it:\n\n| model | declip | {sigmas} |\n|---|---|" + "---:|" * len(args.sigmas))
        noisy_cells: dict[int, list[str]] = {}
        for model in models:
            for declip in (True, False):
                cells = []
                for sigma in args.sigmas:
                    v = photo_psnr(model, args.photos, sigma, args.limit, declip)
                    cells.append(f"{v['denoised']:.3f}")
                    noisy_cells.setdefault(_channels(model), []).append(f"{v['noisy']:.3f}")
                print(f"| {model} | {'yes' if declip else 'no'} | {' | '.join(cells)} |", flush=True)
        for channels, cells in noisy_cells.items():
            print(f"| noisy input ({'RGB' if channels == 3 else 'grey'}) | | "
                  f"{' | '.join(cells[:len(args.sigmas)])} |")


def _channels(model: Any) -> int:
    return _loaded(model, True).channels


if __name__ == "__main__":
    main()
