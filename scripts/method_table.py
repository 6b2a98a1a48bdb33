"""The comparison table of the training methods, measured on one protocol (docs/methods.md).

    python scripts/method_table.py --data data --steps 150 --batch 4 --crop 128 --limit 16   # the CPU figure
    python scripts/method_table.py --data data --steps 12000 --batch 32 --crop 128 \
        --override trainer=gpu --override trainer.precision=bf16-mixed                          # GPU length

Every method trains the same U-Net with the same optimiser, schedule, batch, crops and number of steps on
CBSD432 (sigma-25 Gaussian noise), with `data.noise_draws=fresh` (new noise at every step, as the official
scripts of the single-image methods do) and `fixed` (one noisy copy per training image, drawn once: "one capture
per scene" taken literally); each run's last checkpoint is scored by eval.py's own code on all CBSD68 images with
the fixed test noise (data.val_seed=0), as each method's inference rule says. Zero-Shot Noise2Noise fits each test
image itself (`--zero-shot-images` of them, `--zero-shot-steps` steps each). Writes per-run folders, table.md,
table.json and table.png under --out; a run folder that already holds a finished run is scored again, not
retrained, so an interrupted table resumes where it stopped.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIGMA = 25

#: (row label, noise draws, method overrides). Fresh noise for the supervised baselines and Neighbor2Neighbor, as
#: the official scripts train; fixed noise for every method that learns from noisy images (the single-capture
#: protocol; Noise2Noise then has two fixed captures per scene).
RUNS = [
    ("n2c", "fresh", ["method=n2c"]),
    ("n2n", "fresh", ["method=n2n"]),
    ("nb2nb", "fresh", ["method=nb2nb"]),
    ("n2n", "fixed", ["method=n2n"]),
    ("nb2nb", "fixed", ["method=nb2nb"]),
    ("nb2nb gamma=0", "fixed", ["method=nb2nb", "method.gamma=0"]),
    ("n2v", "fixed", ["method=n2v"]),
    ("n2s", "fixed", ["method=n2s"]),
    ("r2r", "fixed", ["method=r2r"]),
    ("sure", "fixed", ["method=sure"]),
]
#: Neighbor2Neighbor CVPR 2021, Table 1 (sigma 25, BSD300 test images), for the docs beside ours.
PUBLISHED = {"n2c": 31.05, "n2n": 31.04, "nb2nb": 30.79, "n2v": 29.34, "CBM3D": 30.48}


def run_name(label: str, draws: str) -> str:
    return f"{label.replace(' ', '_').replace('=', '')}-{draws}"


def train(args: argparse.Namespace, label: str, draws: str, overrides: list[str]) -> Path:
    run_dir = Path(args.out) / "runs" / run_name(label, draws)
    if (run_dir / "metrics.json").is_file() and json.loads((run_dir / "metrics.json").read_text()).get(
            "status") == "finished":
        return run_dir
    data = Path(args.data)
    command = [sys.executable, str(ROOT / "train.py"), "data=folder", f"data.train_dir={data / 'CBSD432'}",
               f"data.val_dir={data / 'CBSD68'}", "data.val_limit=2", f"data.noise_draws={draws}",
               "noise=gaussian", f"noise.sigma={SIGMA}", f"data.batch_size={args.batch}",
               f"data.crop_size={args.crop}", f"trainer.max_steps={args.steps}", f"data.steps_per_epoch={args.steps}",
               f"seed={args.seed}", "logger=csv", "print_config=false", "trainer.enable_progress_bar=false",
               *args.override, *overrides, f"hydra.run.dir={run_dir}"]
    if (run_dir / "checkpoints" / "last.ckpt").is_file():
        command.append("ckpt_path=last")
    print(f"[{time.strftime('%H:%M:%S')}] training {label} ({draws}): {' '.join(command[2:])}", flush=True)
    subprocess.run(command, check=True, cwd=ROOT)
    return run_dir


def score(args: argparse.Namespace, run_dir: Path) -> dict:
    """eval.py's scores of the run's last checkpoint, kept in the run folder (scored once per image count)."""
    cached = run_dir / f"eval_cbsd68_{args.limit or 'all'}.json"
    if cached.is_file():
        return json.loads(cached.read_text())
    from hydra import compose, initialize_config_dir

    from n2n.config import RunContext
    from n2n.inference.evaluate import evaluate

    overrides = [f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}", "data=folder",
                 f"data.val_dir={Path(args.data) / 'CBSD68'}", "data.val_seed=0", "noise=gaussian",
                 f"noise.sigma={SIGMA}", "save_images=false", "num_comparisons=0", "device=cpu"]
    if args.limit:
        overrides.append(f"data.val_limit={args.limit}")
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("eval", overrides=overrides)
        with tempfile.TemporaryDirectory() as out:
            metrics = evaluate(cfg, RunContext(run_dir=Path(out)))
    cached.write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def zero_shot(args: argparse.Namespace) -> dict:
    """ZS-N2N on the first test images, their noise drawn as eval.py draws it."""
    import torch

    from n2n.data.datamodule import validation_pairs
    from n2n.data.sources import ValidationData, load_image_folder
    from n2n.methods.zero_shot import ZeroShotNoise2Noise
    from n2n.metrics import psnr, quantize8
    from n2n.noise import build_noise

    names, images = load_image_folder(Path(args.data) / "CBSD68", 3, "--data")
    data = ValidationData(names[: args.zero_shot_images], images[: args.zero_shot_images])
    _, items = validation_pairs(data, build_noise({"name": "gaussian", "sigma": SIGMA}), seed=0)
    method = ZeroShotNoise2Noise(steps=args.zero_shot_steps)
    noisy_scores, scores = [], []
    start = time.perf_counter()
    for item in items:
        clean = item["clean"].float()[None] / 255
        out = method.fit_and_denoise(item["noisy"][None].float())
        noisy_scores.append(float(psnr(quantize8(item["noisy"][None].float()), clean)))
        scores.append(float(psnr(quantize8(out), clean)))
    torch.set_num_threads(torch.get_num_threads())
    return {"num_images": len(scores), "psnr_noisy": sum(noisy_scores) / len(scores),
            "psnr_denoised": sum(scores) / len(scores), "seconds": time.perf_counter() - start}


def write_table(args: argparse.Namespace, rows: list[dict]) -> None:
    out = Path(args.out)
    lines = ["| method | noise draws | CBSD68 PSNR (dB) | SSIM | training s |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['method']} | {r['draws']} | {r['psnr']:.2f} | {r.get('ssim', float('nan')):.4f} | "
                     f"{r.get('train_seconds', float('nan')):.0f} |")
    text = "\n".join(lines) + "\n"
    (out / "table.md").write_text(text)
    (out / "table.json").write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2) + "\n")
    print(text, flush=True)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(no table.png: pip install 'n2n[report]' for matplotlib)", flush=True)
        return
    trained = [r for r in rows if r["draws"] in ("fresh", "fixed")]
    fig, ax = plt.subplots(figsize=(8, 3.6))
    colours = {"fresh": "tab:blue", "fixed": "tab:orange"}
    for i, r in enumerate(trained):
        ax.barh(i, r["psnr"], color=colours[r["draws"]])
        ax.text(r["psnr"] + 0.05, i, f"{r['psnr']:.2f}", va="center", fontsize=8)
    ax.set_yticks(range(len(trained)), [f"{r['method']} ({r['draws']})" for r in trained], fontsize=8)
    low = min(r["psnr"] for r in trained) - 1
    ax.set_xlim(low, max(r["psnr"] for r in trained) + 0.6)
    ax.invert_yaxis()
    images = f"first {args.limit} " if args.limit else ""
    ax.set_xlabel(f"CBSD68 ({images}images) PSNR at sigma {SIGMA} (dB), {args.steps} steps of {args.batch} crops "
                  f"of {args.crop} px")
    fig.tight_layout()
    fig.savefig(out / "table.png", dpi=120)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="folder holding CBSD432/ and CBSD68/")
    p.add_argument("--out", default="outputs/method_table")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=None, help="score only the first N CBSD68 images")
    p.add_argument("--only", default=None, help="comma-separated rows to run, by label (n2n) or run name "
                   "(n2n-fresh); default: all. Several processes with different rows share one --out")
    p.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                   help="a train.py override for every run, e.g. --override trainer=gpu (repeatable)")
    p.add_argument("--zero-shot-images", type=int, default=4)
    p.add_argument("--zero-shot-steps", type=int, default=500)
    args = p.parse_args(argv)
    for folder in ("CBSD432", "CBSD68"):
        if not (Path(args.data) / folder).is_dir():
            p.error(f"--data {args.data} has no {folder}/ folder (docs/data.md says where to get it)")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    wanted = None if args.only is None else set(args.only.split(","))
    rows = []
    for label, draws, overrides in RUNS:
        if wanted is not None and label not in wanted and run_name(label, draws) not in wanted:
            continue
        run_dir = train(args, label, draws, overrides)
        metrics = score(args, run_dir)
        trained = json.loads((run_dir / "metrics.json").read_text())
        rows.append({"method": label, "draws": draws, "psnr": metrics["psnr_denoised"],
                     "ssim": metrics["ssim_denoised"], "psnr_noisy": metrics["psnr_noisy"],
                     "train_seconds": trained.get("train_seconds", float("nan")), "run": str(run_dir)})
        write_table(args, rows)
    if args.zero_shot_images and (wanted is None or "zsn2n" in wanted):  # kept in the rows of this process only
        zs = zero_shot(args)
        rows.append({"method": "zsn2n", "draws": f"each test image ({zs['num_images']} images)",
                     "psnr": zs["psnr_denoised"], "psnr_noisy": zs["psnr_noisy"], "train_seconds": zs["seconds"]})
    write_table(args, rows)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
