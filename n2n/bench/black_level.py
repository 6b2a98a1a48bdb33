"""Does black stay black? `python -m n2n.bench.black_level [MODEL ...]`

A 128 x 128 image, mid-grey with a black 64 x 64 square (and one with a white square), under Gaussian noise of
sigma 25 clipped to [0, 255] and rounded to 8 bits as an image file holds it; prints the mean of the denoised
square's inner 48 x 48 pixels on the 0..255 scale, beside the noisy input's (about 10 on black: clipping lifts the
mean of the noise, and a model that learnt the mean of clipped targets keeps that lift). MODEL is a bundled
model's name, a .safetensors file or a training .ckpt; default: every bundled model. tests/integration/
test_pretrained.py asks every bundled model for a black mean below 2/255.
"""
from __future__ import annotations

import argparse
from typing import Any

import torch

#: The bound of the issue ("a black square under clipped sigma-25 noise denoises to a mean below 2/255").
BLACK_BOUND = 2.0


def square_levels(model: Any, sigma: float = 25, seed: int = 0) -> dict[str, float]:
    """{"black_noisy", "black", "white_noisy", "white"}: mean levels (0..255) of the squares' inner pixels;
    `model` is a loaded n2n.Denoiser or anything `n2n.load` takes."""
    import n2n
    from n2n.noise import build_noise

    denoiser = model if isinstance(model, n2n.Denoiser) else n2n.load(model, device="cpu", precision="fp32")
    noise = build_noise({"name": "gaussian", "sigma": sigma, "file_like": 1})  # clipped and 8-bit, as a file
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


def main(argv: list[str] | None = None) -> None:
    from n2n import pretrained

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", help="bundled model names or model files (default: every bundled one)")
    parser.add_argument("--sigma", type=float, default=25)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print("| model | black: noisy | black: denoised | white: noisy | white: denoised |")
    print("|---|---|---|---|---|")
    for model in args.models or pretrained.names():
        v = square_levels(model, args.sigma, args.seed)
        print(f"| {model} | {v['black_noisy']:.2f} | {v['black']:.2f} | {v['white_noisy']:.2f} | {v['white']:.2f} |",
              flush=True)


if __name__ == "__main__":
    main()
