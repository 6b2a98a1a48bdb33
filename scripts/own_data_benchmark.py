"""The own-data figure: does training from files of real-style noisy captures match training with the same noise
drawn on the fly, do 4-frame stacks do at least as well as pairs, and does val/n2n_loss pick checkpoints as the
true val/psnr would?

From a folder of clean training photos and one of clean test photos (CBSD432 and CBSD68 in the docs), it makes
noisy captures with scripts/make_noisy_captures.py (Poisson-Gaussian, lam 30, read noise sigma 5, 8-bit RGB):
two per training photo (data=pairs), four per training photo (data=stacks) and two per test photo, with the
clean test photos beside them. Then, with one recipe and the same number of steps, it trains

  folder  data=folder on the clean training photos + noise=poisson_gaussian drawn on the fly (the reference),
          once as unclipped floats and once clipped and rounded to 8 bits as the files are (noise.bits=8),
  pairs   data=pairs on the two capture folders,
  stacks  data=stacks on the 4-frame stacks,

each validated on the same noisy test pairs with their clean images (val/psnr and val/n2n_loss at every
validation, from Lightning's CSV log), and scores each final model with eval.py on all test pairs. It prints a
Markdown table and writes it, with the raw numbers, to OUT/own_data.md and OUT/own_data.json.

    python scripts/own_data_benchmark.py data/CBSD432 data/CBSD68 OUT --steps 600   # docs/data.md: the photos
"""
from __future__ import annotations

import argparse
import csv
import datetime
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from make_noisy_captures import make  # noqa: E402

from n2n.bench.entries import evaluation as eval_entry  # noqa: E402
from n2n.bench.entries import run_entry  # noqa: E402

NOISE = {"lam": 30.0, "sigma": 5.0}


def train(name: str, data: list[str], args, out: Path) -> dict:
    run = out / "runs" / name
    evaluation = out / "eval" / name
    if (evaluation / "metrics.json").is_file():  # measured by an earlier call with the same OUT: reuse it
        return {"history": history_of(run), "test": json.loads((evaluation / "metrics.json").read_text()),
                "seconds": None}
    start = time.perf_counter()
    run_entry(ROOT, name, "train.py", [
        *data, f"data.val_limit={args.val_limit}", "logger=csv", f"data.crop_size={args.crop}",
        f"data.batch_size={args.batch}", f"data.steps_per_epoch={args.validate_every}",
        f"trainer.max_steps={args.steps}", "trainer.max_epochs=-1", "trainer.enable_progress_bar=false",
        "trainer.num_sanity_val_steps=0", f"seed={args.seed}", f"hydra.run.dir={run}", *args.overrides])
    history = history_of(run)
    test = out / "test"
    scores = eval_entry(ROOT, name, evaluation, [
        f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}", "data=pairs", f"data.dir_a={test / 'A'}",
        f"data.dir_b={test / 'B'}", f"data.val_dir_a={test / 'A'}", f"data.val_dir_b={test / 'B'}",
        f"data.val_clean_dir={test / 'clean'}", "data.channels=3"])
    print(f"{name}: test PSNR {scores['psnr_denoised']:.3f} dB after {args.steps} steps "
          f"({time.perf_counter() - start:.0f} s)", flush=True)
    return {"history": history, "test": scores, "seconds": time.perf_counter() - start}


def history_of(run: Path) -> list[dict]:
    """val/psnr and val/n2n_loss at each validation, from Lightning's CSV log."""
    history = []
    with open(run / "csv" / "metrics.csv") as f:
        for row in csv.DictReader(f):
            if row.get("val/psnr"):
                loss = row.get("val/n2n_loss")  # not where validation has synthetic noise (data=folder)
                history.append({"step": int(row["step"]), "val_psnr": float(row["val/psnr"]),
                                "val_n2n_loss": float(loss) if loss else float("nan")})
    return history


def ranks(values: list[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    out = [0.0] * len(values)
    for rank, i in enumerate(order):
        out[i] = float(rank)
    return out


def spearman(a: list[float], b: list[float]) -> float:
    ra, rb = ranks(a), ranks(b)
    n = len(a)
    ma, mb = sum(ra) / n, sum(rb) / n
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    var = (sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb)) ** 0.5
    return cov / var if var else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("train_dir", type=Path)
    parser.add_argument("test_dir", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--validate-every", type=int, default=100)
    parser.add_argument("--crop", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--val-limit", type=int, default=16, help="test pairs scored at each validation")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overrides", nargs="*", default=[], help="Hydra overrides added to every training")
    args = parser.parse_args(argv)
    out = args.out
    if not (out / "test" / "clean").is_dir():
        make(args.train_dir, out / "train", "pairs", **NOISE, seed=1)
        make(args.train_dir, out / "train", "stacks", frames=4, **NOISE, seed=2)
        make(args.test_dir, out / "test", "pairs", write_clean=True, **NOISE, seed=3)
    val = [f"data.val_dir_a={out / 'test' / 'A'}", f"data.val_dir_b={out / 'test' / 'B'}",
           f"data.val_clean_dir={out / 'test' / 'clean'}", "data.channels=3"]
    noise = [f"noise.lam={NOISE['lam']}", f"noise.sigma={NOISE['sigma']}"]
    runs = {
        # the reference validates on synthetic noise of its own; its final score comes from the same test files
        "folder": train("folder", ["data=folder", f"data.train_dir={args.train_dir}",
                                   f"data.val_dir={out / 'test' / 'clean'}", "noise=poisson_gaussian", *noise],
                        args, out),
        "pairs": train("pairs", ["data=pairs", f"data.dir_a={out / 'train' / 'A'}",
                                 f"data.dir_b={out / 'train' / 'B'}", *val], args, out),
        "stacks": train("stacks", stacks_options(args, out), args, out),
        # the same, with the noise also clipped and rounded to 8 bits as the files are
        "folder_8bit": train("folder_8bit", ["data=folder", f"data.train_dir={args.train_dir}",
                                             f"data.val_dir={out / 'test' / 'clean'}", "noise=poisson_gaussian",
                                             *noise, "noise.bits=8"], args, out),
    }
    lines = [f"{datetime.date.today()}, `python scripts/own_data_benchmark.py {args.train_dir} {args.test_dir} OUT "
             f"--steps {args.steps}`; Poisson-Gaussian noise lam {NOISE['lam']:g}, sigma {NOISE['sigma']:g}; "
             f"{args.steps} steps of {args.batch} crops of {args.crop} px, validation every {args.validate_every} "
             f"steps on {args.val_limit} test pairs; test: all {runs['pairs']['test']['num_images']} test pairs.", "",
             "| training data | test PSNR (dB) | test SSIM | noisy input PSNR "
             "| val/n2n_loss vs val/psnr: Spearman over validations "
             "| checkpoint picked by val/n2n_loss: its val/psnr vs the best |",
             "|---|---:|---:|---:|---:|---|"]
    for name, label in (("folder", "clean photos + the same noise drawn on the fly, unclipped floats (`data=folder`)"),
                        ("folder_8bit", "clean photos + the same noise drawn on the fly, clipped and rounded to 8 bits "
                                        "like the files (`noise.bits=8`)"),
                        ("pairs", "2 noisy captures per photo (`data=pairs`)"),
                        ("stacks", "4 noisy captures per photo (`data=stacks`)")):
        r = runs[name]
        test, history = r["test"], r["history"]
        if name.startswith("folder"):
            rank = pick = "(validated on synthetic noise)"
        else:
            rho = spearman([-h["val_n2n_loss"] for h in history], [h["val_psnr"] for h in history])
            picked = min(history, key=lambda h: h["val_n2n_loss"])
            best = max(history, key=lambda h: h["val_psnr"])
            rank = f"{rho:.2f} ({len(history)} validations)"
            pick = f"step {picked['step']}: {picked['val_psnr']:.3f} vs step {best['step']}: {best['val_psnr']:.3f} dB"
        lines.append(f"| {label} | {test['psnr_denoised']:.3f} | {test['ssim_denoised']:.4f} | "
                     f"{test['psnr_noisy']:.3f} | {rank} | {pick} |")
    table = "\n".join(lines) + "\n"
    (out / "own_data.md").write_text(table)
    (out / "own_data.json").write_text(json.dumps(runs, indent=2) + "\n")
    print("\n" + table)
    return 0


def stacks_options(args, out: Path) -> list[str]:
    """data=stacks validated on the same test pairs: a folder of 2-frame test stacks made from them."""
    import numpy as np
    import tifffile

    from n2n.image_files import read_image

    folder = out / "test" / "stacks"
    if not folder.is_dir():
        folder.mkdir(parents=True)
        for a in sorted((out / "test" / "A").iterdir()):
            frames = np.stack([read_image(a)[0], read_image(out / "test" / "B" / a.name)[0]])
            tifffile.imwrite(folder / f"{a.stem}.tif", frames if frames.shape[-1] == 3 else frames[..., 0],
                             photometric="rgb" if frames.shape[-1] == 3 else "minisblack")
    return ["data=stacks", f"data.dir={out / 'train' / 'stacks'}", f"data.val_dir={folder}",
            f"data.val_clean_dir={out / 'test' / 'clean'}", "data.channels=3"]


if __name__ == "__main__":
    sys.exit(main())
