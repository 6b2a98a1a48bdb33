"""The volumes figure: on a synthetic tomogram (n2n.volumes.phantom: blurred spheres, shells and filaments), with two
independent noisy halves at a low SNR, does a 3D U-Net trained between the halves beat the same U-Net in 2D applied
section by section, and the best Gaussian filter?

For each noise (Gaussian; Poisson-Gaussian) it writes two training tomograms and one test tomogram as even/odd MRC
halves, trains with train.py (data=volumes) a 3D model and a 2D model (model.dims=2: sections of the same volumes)
for the same number of steps on the same number of voxels per step (3D: 4 crops of 32^3; 2D: 32 crops of 64^2),
denoises the test tomogram's even half with each (n2n.volumes.denoise), and scores PSNR and SSIM (3D window) against
the clean phantom, in the phantom's range: noisy input, a 3D Gaussian filter with the best sigma (chosen on the
clean phantom, an oracle), 2D section by section, 3D. Writes OUT/volume_benchmark.{md,json} and OUT/slices.png.

    OMP_NUM_THREADS=1 python scripts/volume_benchmark.py OUT --steps 300
"""
from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from n2n.bench.entries import run_entry  # noqa: E402
from n2n.volumes.io import write_like  # noqa: E402
from n2n.volumes.phantom import noisy_halves, phantom  # noqa: E402

NOISES = {
    "gaussian": {"sigma": 0.5},                            # SNR (signal variance / noise variance) about 0.15
    "poisson_gaussian": {"sigma": 0.3, "poisson_peak": 4.0},  # 4 counts at the densest voxel, read noise 0.3
}


def make_data(out: Path, noise: str, shape: tuple[int, int, int]) -> Path:
    folder = out / noise / "data"
    for sub in ("even", "odd", "test_even", "test_odd", "clean"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    opts = NOISES[noise]
    for i, seed in enumerate((0, 1)):
        clean = phantom(shape, seed=seed)
        a, b = noisy_halves(clean, opts["sigma"], seed=100 + seed, poisson_peak=opts.get("poisson_peak"))
        write_like(folder / "even" / f"tomo{i}.mrc", a)
        write_like(folder / "odd" / f"tomo{i}.mrc", b)
    clean = phantom(shape, seed=7)
    a, b = noisy_halves(clean, opts["sigma"], seed=107, poisson_peak=opts.get("poisson_peak"))
    write_like(folder / "test_even" / "test.mrc", a)
    write_like(folder / "test_odd" / "test.mrc", b)
    write_like(folder / "clean" / "test.mrc", clean)
    return folder


def train(run: Path, data: Path, dims: int, args) -> float:
    if (run / "checkpoints" / "last.ckpt").is_file():
        return float("nan")  # trained by an earlier call with the same OUT
    crop, batch = ("32", "4") if dims == 3 else ("64", "32")
    return run_entry(ROOT, f"{dims}D model", "train.py", [
        "data=volumes", f"model.dims={dims}", f"model.depth={args.depth}", f"model.features={args.features}",
        f"data.dir_a={data / 'even'}", f"data.dir_b={data / 'odd'}", f"data.crop_size={crop}",
        f"data.batch_size={batch}", f"data.steps_per_epoch={args.steps}", f"trainer.max_steps={args.steps}",
        "trainer=cpu", "trainer.enable_progress_bar=false", "trainer.num_sanity_val_steps=0", "logger=csv",
        "print_config=false", f"hydra.run.dir={run}"])


def scores(x: np.ndarray, clean: np.ndarray) -> dict:
    import torch

    from n2n.volumes.metrics import psnr, ssim

    tx, tc = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), torch.from_numpy(clean)
    return {"psnr": round(psnr(tx, tc), 2), "ssim": round(ssim(tx, tc), 4)}


def best_gaussian(noisy: np.ndarray, clean: np.ndarray) -> tuple[float, np.ndarray]:
    from scipy.ndimage import gaussian_filter

    best = None
    for sigma in np.arange(0.5, 4.01, 0.25):
        smooth = gaussian_filter(noisy, float(sigma))
        mse = float(((smooth - clean) ** 2).mean())
        if best is None or mse < best[0]:
            best = (mse, float(sigma), smooth)
    return best[1], best[2]


def slices_png(rows: list[tuple[str, np.ndarray]], clean: np.ndarray, path: Path) -> None:
    """One row per method: the central x-y section and the central x-z section, on the clean volume's grey scale."""
    from PIL import Image, ImageDraw

    lo, hi = float(clean.min()), float(clean.max())
    z, y = clean.shape[0] // 2, clean.shape[1] // 2
    tiles = []
    for name, vol in rows:
        xy, xz = vol[z], vol[:, y, :]
        pad = np.full((xy.shape[0], 4), hi)
        both = np.concatenate([xy, pad, np.pad(xz, ((0, xy.shape[0] - xz.shape[0]), (0, 0)), constant_values=hi)],
                              axis=1)
        grey = (np.clip((both - lo) / (hi - lo), 0, 1) * 255).astype(np.uint8)
        label = np.full((14, grey.shape[1]), 255, np.uint8)
        image = Image.fromarray(np.concatenate([label, grey]))
        ImageDraw.Draw(image).text((2, 1), name, fill=0)
        tiles.append(np.asarray(image))
    Image.fromarray(np.concatenate(tiles, axis=0)).resize(
        (tiles[0].shape[1] * 2, sum(t.shape[0] for t in tiles) * 2), Image.NEAREST).save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--shape", type=int, nargs=3, default=(64, 128, 128), metavar=("Z", "Y", "X"))
    parser.add_argument("--noise", choices=(*NOISES, "all"), default="all")
    args = parser.parse_args()
    from n2n.volumes.denoise import VolumeDenoiser
    from n2n.volumes.io import read_volume

    results = {"command": " ".join(sys.argv), "date": datetime.date.today().isoformat(),
               "machine": f"{platform.processor() or platform.machine()}, OMP_NUM_THREADS="
                          f"{__import__('os').environ.get('OMP_NUM_THREADS', 'unset')}, float32", "noises": {}}
    lines = ["| noise | method | PSNR (dB) | SSIM |", "|---|---|---|---|"]
    for noise in (NOISES if args.noise == "all" else [args.noise]):
        data = make_data(args.out, noise, tuple(args.shape))
        with read_volume(data / "clean" / "test.mrc") as v:
            clean = np.array(v.data)
        with read_volume(data / "test_even" / "test.mrc") as v:
            noisy = np.array(v.data)
        sigma, smooth = best_gaussian(noisy, clean)
        rows = [("noisy (even half)", noisy), (f"Gaussian filter, best sigma {sigma:g}", smooth)]
        seconds = {}
        for dims in (2, 3):
            run = args.out / noise / f"run{dims}d"
            seconds[dims] = train(run, data, dims, args)
            denoiser = VolumeDenoiser(run / "checkpoints" / "last.ckpt", device="cpu", slices=dims == 2)
            rows.append((f"{dims}D U-Net" + (" section by section" if dims == 2 else ""), denoiser(noisy)))
        entry = {"sigma_best_gaussian": sigma, "train_seconds": seconds, "methods": {}}
        for name, vol in rows:
            entry["methods"][name] = scores(vol, clean)
            lines.append(f"| {noise} | {name} | {entry['methods'][name]['psnr']:.2f} | "
                         f"{entry['methods'][name]['ssim']:.4f} |")
        results["noises"][noise] = entry
        slices_png([("clean", clean)] + rows, clean, args.out / f"slices_{noise}.png")
        print("\n".join(lines), flush=True)
    (args.out / "volume_benchmark.json").write_text(json.dumps(results, indent=2))
    (args.out / "volume_benchmark.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
