"""The clipping figure of docs/own-data.md: which training keeps black black on clipped 8-bit files?

Noise2Noise learns the statistic of its targets that its loss picks: L2 the mean, L1 the median. On a file,
noise is clipped at 0 and 255, and the mean of clipped noise on black is about 10/255 at sigma 25, while its
median stays 0. This fine-tunes the bundled `gaussian-blind` model (init_from) for the same short length, the
same seed, learning rate (1e-3, ramped down) and blind Gaussian noise (sigma drawn per image from [0, 50]) in
three ways:

  file_like    inputs clipped and rounded to 8 bits as a file holds them, targets unclipped, L2
               (noise=gaussian noise.file_like=1; what synthetic training can do)
  clipped_l2   inputs and targets both clipped and rounded, L2 (what two real 8-bit captures per scene are:
               noise=poisson_gaussian with lam 1e9, i.e. no photon noise, and noise.bits=8)
  clipped_l1   the same clipped pairs with L1

and measures each, beside the bundled model itself: the black and white squares of n2n.bench.black_level
(clipped sigma-25 noise), and PSNR with eval.py on the first N test photos at sigma 25, once with unclipped
noise (as the benchmarks add it) and once clipped and rounded as a file. Prints a Markdown table and writes it,
with the raw numbers, to OUT/clipping.md and OUT/clipping.json; variants already scored in OUT are reused.

    OMP_NUM_THREADS=1 python scripts/clipping_benchmark.py ../shared/data/CBSD432 ../shared/data/CBSD68 OUT \\
        --steps 100 --test-images 10
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from n2n.bench.entries import evaluation, photo_benchmark_parser, run_entry  # noqa: E402

CLIPPED = ["noise=poisson_gaussian", "noise.lam=1000000000", "noise.bits=8", "noise.file_like=0"]
VARIANTS = {
    "file_like": ["noise=gaussian", "noise.file_like=1", "loss=l2"],
    "clipped_l2": [*CLIPPED, "loss=l2"],
    "clipped_l1": [*CLIPPED, "loss=l1"],
}


def scores(model: str, name: str, args: argparse.Namespace) -> dict:
    from n2n.bench.black_level import square_levels

    out: dict = dict(square_levels(model))
    for label, clip in (("unclipped", "0"), ("file", "1")):
        key = "model" if not model.endswith(".ckpt") else "ckpt_path"
        out[f"psnr_{label}"] = evaluation(ROOT, name, args.out / "eval" / f"{name}-{label}", [
            f"{key}={model}", "data=folder", f"data.val_dir={args.test}", f"data.val_limit={args.test_images}",
            "data.channels=3", "noise=gaussian", "noise.sigma=25", f"noise.file_like={clip}", "save_images=false",
            "num_comparisons=0", "device=cpu"])["psnr_denoised"]
    return out


def fine_tune(name: str, overrides: list[str], args: argparse.Namespace) -> dict:
    run = args.out / "runs" / name
    seconds = run_entry(ROOT, name, "train.py", [
        "experiment=pretrained_gaussian_blind", "init_from=gaussian-blind", f"data.train_dir={args.train}",
        f"data.val_dir={args.test}", "data.crop_size=64", "data.batch_size=16", f"data.steps_per_epoch={args.steps}",
        "data.val_limit=2", f"trainer.max_steps={args.steps}", "trainer.precision=32-true", "optimizer.lr=1e-3",
        "callbacks.ema=null", "noise.val=null", "noise.sigma=[0,50]", f"seed={args.seed}", "logger=csv",
        f"hydra.run.dir={run}", *overrides])
    measured = scores(str(run / "checkpoints" / "last.ckpt"), name, args)
    return {**measured, "seconds": seconds, "overrides": overrides}


def main() -> None:
    parser = photo_benchmark_parser(__doc__.split("\n\n")[0], steps=100)
    parser.add_argument("--test-images", type=int, default=10)
    args = parser.parse_args()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    saved = out / "clipping.json"
    results = json.loads(saved.read_text())["results"] if saved.is_file() else {}
    if "bundled" not in results:
        results["bundled"] = scores("gaussian-blind", "bundled", args)
    for name, overrides in VARIANTS.items():
        if name not in results:
            results[name] = fine_tune(name, overrides, args)
            print(f"{name}: {results[name]}", flush=True)
        saved.write_text(json.dumps({"steps": args.steps, "test_images": args.test_images, "results": results},
                                    indent=2) + "\n")
    from n2n.devices import describe_machine

    lines = ["| model | black (0) | white (255) | PSNR, sigma 25 unclipped | PSNR, sigma 25 clipped as a file |",
             "|---|---:|---:|---:|---:|"]
    for name, r in results.items():
        label = "bundled `gaussian-blind`" if name == "bundled" else f"+ {args.steps} steps, {name}"
        lines.append(f"| {label} | {r['black']:.2f} | {r['white']:.2f} | {r['psnr_unclipped']:.3f} | "
                     f"{r['psnr_file']:.3f} |")
    table = "\n".join(lines)
    machine = describe_machine("cpu")
    (out / "clipping.md").write_text(f"{table}\n\nMachine: {machine}\n")
    print(table)
    print(f"Machine: {machine}")


if __name__ == "__main__":
    main()
