"""Noisy captures made from clean photos, for tests and the own-data benchmark (not a user feature).

Each clean image becomes two noisy captures (folders A/ and B/, for `data=pairs`) or an N-frame multi-page TIFF
(for `data=stacks`), with a sensor's noise: photon noise poisson(lam * x) / lam plus Gaussian read noise of
sigma (0..255 scale), independent between captures, optionally spatially correlated (the read noise blurred
by a Gaussian of `correlation` pixels, then rescaled to keep its variance: noise that Noise2Noise cannot tell
from signal). Saved as 8- or 16-bit files; the clean images can be written beside them.

    python scripts/make_noisy_captures.py CLEAN_DIR OUT --mode pairs --bits 16 --grey
    python scripts/make_noisy_captures.py CLEAN_DIR OUT --mode stacks --frames 4 --clean
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import tifffile
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from n2n.data.sources.folder import list_images  # noqa: E402
from n2n.image_files import read_image, write_image  # noqa: E402
from n2n.noise import PoissonGaussianNoise  # noqa: E402


def captures(clean: np.ndarray, count: int, lam: float, sigma: float, correlation: float,
             generator: torch.Generator) -> np.ndarray:
    """`count` noisy captures (count x H x W x C floats in the clean image's [0, 1] scale)."""
    x = torch.from_numpy(clean.astype(np.float32) / np.iinfo(clean.dtype).max).permute(2, 0, 1)[None]
    x = x.expand(count, -1, -1, -1).contiguous()
    photons = PoissonGaussianNoise(lam=lam, sigma=0)(x, generator)
    read = torch.randn(x.shape, generator=generator)
    if correlation > 0:
        read = blur(read, correlation)
        read = read / read.std(dim=(1, 2, 3), keepdim=True)
    return (photons + read * sigma / 255).permute(0, 2, 3, 1).numpy()


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, int(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-t ** 2 / (2 * sigma ** 2))
    k = k / k.sum()
    c = x.shape[1]
    x = torch.nn.functional.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), padding=(0, radius), groups=c)
    return torch.nn.functional.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), padding=(radius, 0), groups=c)


def quantise(x: np.ndarray, bits: int) -> np.ndarray:
    maximum = 255 if bits == 8 else 65535
    return np.clip(np.round(x * maximum), 0, maximum).astype(np.uint8 if bits == 8 else np.uint16)


def make(clean_dir: Path, out: Path, mode: str = "pairs", frames: int = 4, bits: int = 8, grey: bool = False,
         lam: float = 30.0, sigma: float = 5.0, correlation: float = 0.0, limit: int | None = None,
         write_clean: bool = False, seed: int = 0) -> list[str]:
    """Write the captures of every image of `clean_dir` into `out` (see the module docstring); the names."""
    generator = torch.Generator().manual_seed(seed)
    files = list_images(clean_dir, "CLEAN_DIR")[:limit]
    names = []
    for path in files:
        clean, _ = read_image(path)
        clean = clean[:, :, :3]
        if grey and clean.shape[2] == 3:
            clean = np.round(clean @ np.array([0.299, 0.587, 0.114]))[:, :, None].astype(clean.dtype)
        clean = quantise(clean.astype(np.float64) / np.iinfo(clean.dtype).max, bits)
        count = 2 if mode == "pairs" else frames
        noisy = quantise(captures(clean, count, lam, sigma, correlation, generator), bits)
        stem = path.stem
        if mode == "pairs":
            name = f"{stem}.png" if bits == 8 else f"{stem}.tif"
            for side, image in zip("AB", noisy):
                (out / side).mkdir(parents=True, exist_ok=True)
                write_image(out / side / name, image)
        else:
            name = f"{stem}.tif"
            (out / "stacks").mkdir(parents=True, exist_ok=True)
            tifffile.imwrite(out / "stacks" / name, noisy[..., 0] if noisy.shape[-1] == 1 else noisy,
                             photometric="minisblack" if noisy.shape[-1] == 1 else "rgb")
        if write_clean:
            (out / "clean").mkdir(parents=True, exist_ok=True)
            write_image(out / "clean" / name, clean)
        names.append(name)
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("clean_dir", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--mode", choices=("pairs", "stacks"), default="pairs")
    parser.add_argument("--frames", type=int, default=4, help="frames per stack (--mode stacks)")
    parser.add_argument("--bits", type=int, choices=(8, 16), default=8)
    parser.add_argument("--grey", action="store_true", help="make the images greyscale first")
    parser.add_argument("--lam", type=float, default=30.0, help="photons at white: larger is less noisy")
    parser.add_argument("--sigma", type=float, default=5.0, help="read noise on the 0..255 scale")
    parser.add_argument("--correlation", type=float, default=0.0, help="read-noise blur in pixels (0: white)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N images")
    parser.add_argument("--clean", action="store_true", help="also write the clean images to OUT/clean")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.frames < 2:
        parser.error("--frames must be at least 2")
    names = make(args.clean_dir, args.out, args.mode, args.frames, args.bits, args.grey, args.lam, args.sigma,
                 args.correlation, args.limit, args.clean, args.seed)
    print(f"wrote the {args.mode} of {len(names)} image(s) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
