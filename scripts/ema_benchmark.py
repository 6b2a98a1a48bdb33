"""The EMA figure of docs/pretrained.md: what `callbacks.ema` is worth on a short CPU run.

Trains the `gaussian-blind` recipe (experiment=pretrained_gaussian_blind) twice with the same seed and length,
without and with an exponential moving average of the weights (callbacks.ema=DECAY), on a CPU-sized batch (16
crops of 64 px, float32, no clipped inputs), and scores each run's last.ckpt (the averaged weights where EMA is
on) with eval.py on every image of TEST at Gaussian sigma 25. Prints a Markdown table and writes it, with the
raw numbers, to OUT/ema.md and OUT/ema.json. Runs that already have their score in OUT are not trained again.

    OMP_NUM_THREADS=1 python scripts/ema_benchmark.py ../shared/data/CBSD432 ../shared/data/CBSD68 OUT --steps 200
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from n2n.bench.entries import evaluation, photo_benchmark_parser, run_entry  # noqa: E402


def run(name: str, ema: str, args: argparse.Namespace) -> dict:
    train_dir, eval_dir = args.out / "runs" / name, args.out / "eval" / name
    if (eval_dir / "metrics.json").is_file():  # measured by an earlier call with the same OUT: reuse it
        return {"test": json.loads((eval_dir / "metrics.json").read_text()), "seconds": None}
    seconds = run_entry(ROOT, name, "train.py", [
        "experiment=pretrained_gaussian_blind", f"data.train_dir={args.train}", f"data.val_dir={args.test}",
        "data.crop_size=64", "data.batch_size=16", f"data.steps_per_epoch={args.steps}", "data.val_limit=2",
        f"trainer.max_steps={args.steps}", "trainer.precision=32-true", "noise.file_like=0", f"callbacks.ema={ema}",
        f"seed={args.seed}", "logger=csv", f"hydra.run.dir={train_dir}"])
    scores = evaluation(ROOT, name, eval_dir, [
        f"ckpt_path={train_dir / 'checkpoints' / 'last.ckpt'}", "data=folder", f"data.val_dir={args.test}",
        "noise=gaussian", "noise.sigma=25", "save_images=false", "num_comparisons=0", "device=cpu"])
    print(f"{name}: {scores['psnr_denoised']:.3f} dB on {scores['num_images']} images at sigma 25 after "
          f"{args.steps} steps ({seconds:.0f} s of training)", flush=True)
    return {"test": scores, "seconds": seconds}


def main() -> None:
    parser = photo_benchmark_parser(__doc__.split("\n\n")[0], steps=200)
    parser.add_argument("--decay", type=float, default=0.999)
    args = parser.parse_args()
    from n2n.devices import describe_machine

    runs = {"without EMA": run("without", "null", args), f"EMA {args.decay:g}": run("with", str(args.decay), args)}
    lines = [f"| {args.steps} steps of 16 crops of 64 px | CBSD68, sigma 25: PSNR (dB) / SSIM | training time |",
             "|---|---|---|"]
    for name, r in runs.items():
        t = r["test"]
        took = f"{r['seconds']:.0f} s" if r.get("seconds") else "(earlier call)"
        lines.append(f"| {name} | {t['psnr_denoised']:.3f} / {t['ssim_denoised']:.4f} | {took} |")
    table = "\n".join(lines)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    machine = describe_machine("cpu")
    (out / "ema.md").write_text(f"{table}\n\nMachine: {machine}\n")
    (out / "ema.json").write_text(json.dumps({"steps": args.steps, "decay": args.decay, "machine": machine,
                                              "runs": {"without": runs["without EMA"],
                                                       "with": runs[f"EMA {args.decay:g}"]}}, indent=2) + "\n")
    print(table)
    print(f"Machine: {machine}")


if __name__ == "__main__":
    main()
