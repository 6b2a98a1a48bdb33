"""Bundle a trained run as a package model, and score the bundled models for their model card.

    # 1. the run's last checkpoint becomes n2n/pretrained/NAME.safetensors plus its entry in models.json
    python scripts/model_card.py bundle RUN_DIR NAME --summary "..." [--default]
    # 2. PSNR/SSIM of every bundled model on CBSD68 and Set14 at sigma 15, 25 and 50 (eval.py's own code),
    #    written into models.json and printed as the Markdown table of docs/pretrained.md
    python scripts/model_card.py score --data data

Scoring runs `n2n.inference.evaluate.evaluate` on configs composed from conf/eval.yaml, exactly as
`python eval.py model=NAME data=folder data.val_dir=DIR data.channels=C noise=gaussian noise.sigma=S` does.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
REGISTRY = ROOT / "n2n" / "pretrained" / "models.json"
TEST_SETS = ("CBSD68", "Set14")
SIGMAS = (15, 25, 50)


def read_registry() -> dict:
    return json.loads(REGISTRY.read_text()) if REGISTRY.exists() else {"models": {}}


def write_registry(registry: dict) -> None:
    from n2n.atomic import write_text

    write_text(REGISTRY, json.dumps(registry, indent=2) + "\n")


def bundle(args: argparse.Namespace) -> None:
    from n2n.devices import describe_machine
    from n2n.inference.checkpoints import inference_network, read_checkpoint, training_config, unet_from_checkpoint
    from n2n.inference.weights import save_weights

    run = Path(args.run_dir)
    ckpt_path = run / "checkpoints" / "last.ckpt"
    ckpt = read_checkpoint(ckpt_path)
    config = training_config(ckpt, ckpt_path)
    # as inference applies it: the method's rule (an average over masks...) and the declipping rule go with it
    net = inference_network(ckpt, unet_from_checkpoint(ckpt, ckpt_path), ckpt_path)
    metrics = json.loads((run / "metrics.json").read_text())
    overrides = yaml.safe_load((run / ".hydra" / "overrides.yaml").read_text())
    hidden = ("hydra.", "logger=")  # where this machine wrote the run: not part of the recipe
    shown = [o.split("=", 1)[0] + "=" + Path(o.split("=", 1)[1]).name if o.split("=", 1)[0].endswith("_dir") else o
             for o in overrides if not o.startswith(hidden)]  # folders by name: CBSD432, not this machine's path
    command = "python train.py " + " ".join(shown)
    file = f"{args.name}.safetensors"
    save_weights(net, getattr(net, "net", net).config, REGISTRY.parent / file, {"n2n.name": args.name})
    registry = read_registry()
    registry["models"][args.name] = {
        "file": file,
        "channels": int(config["model"]["in_channels"]),
        "default": bool(args.default),
        "summary": args.summary,
        "noise": config["noise"],
        "training": {
            "recipe": next((o.split("=", 1)[1] for o in overrides if o.startswith("experiment=")), None),
            "command": command,
            "steps": int(metrics["global_step"]),
            "batch_size": int(config["data"]["batch_size"]),
            "crop_size": int(config["data"]["crop_size"]),
            "seconds": metrics.get("train_seconds"),
            "precision": config["trainer"]["precision"],
            "machine": args.machine or describe_machine("cpu"),
        },
        "scores": {},  # new weights: scored again by `score`
    }
    write_registry(registry)
    print(f"wrote {REGISTRY.parent / file} and its entry in {REGISTRY}")


def score(args: argparse.Namespace) -> None:
    from hydra import compose, initialize_config_dir

    from n2n.config import RunContext
    from n2n.inference.evaluate import evaluate

    registry = read_registry()
    names = args.names or list(registry["models"])
    rows = []
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        for name in names:
            entry = registry["models"][name]
            scores: dict = {}
            for dataset in args.sets:
                for sigma in args.sigmas:
                    overrides = [f"model={name}", "data=folder", f"data.val_dir={Path(args.data) / dataset}",
                                 f"data.channels={entry['channels']}", "noise=gaussian", f"noise.sigma={sigma}",
                                 "save_images=false", "num_comparisons=0", "device=cpu"]
                    cfg = compose("eval", overrides=overrides)
                    with tempfile.TemporaryDirectory() as out:
                        start = time.perf_counter()
                        metrics = evaluate(cfg, RunContext(run_dir=Path(out)))
                    scores.setdefault(dataset, {})[str(sigma)] = {
                        k: round(metrics[k], 4) for k in ("psnr_noisy", "psnr_denoised", "ssim_noisy", "ssim_denoised")}
                    print(f"{name} {dataset} sigma {sigma}: {metrics['psnr_denoised']:.2f} dB "
                          f"({time.perf_counter() - start:.0f} s)", file=sys.stderr, flush=True)
            rows.append((name, scores))
    registry = read_registry()  # read again: another `score` may have written other models meanwhile
    for name, scores in rows:
        registry["models"][name]["scores"] = scores
    write_registry(registry)
    print(markdown_table(rows))


def markdown_table(rows: list[tuple[str, dict]]) -> str:
    head = "| model | test set | " + " | ".join(f"sigma {s}: PSNR / SSIM" for s in SIGMAS) + " |"
    lines = [head, "|" + "---|" * (2 + len(SIGMAS))]
    for name, scores in rows:
        for dataset, by_sigma in scores.items():
            cells = [f"{by_sigma[str(s)]['psnr_denoised']:.2f} / {by_sigma[str(s)]['ssim_denoised']:.4f}"
                     if str(s) in by_sigma else "" for s in SIGMAS]
            lines.append(f"| {name} | {dataset} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("bundle", help="a run's last checkpoint becomes a bundled model")
    b.add_argument("run_dir")
    b.add_argument("name")
    b.add_argument("--summary", required=True, help="one line: what the model denoises")
    b.add_argument("--default", action="store_true", help="the default model for its channel count")
    b.add_argument("--machine", default=None, help="where it was trained (default: this machine)")
    b.set_defaults(func=bundle)
    s = sub.add_parser("score", help="score the bundled models on the test sets")
    s.add_argument("--data", required=True, help="folder holding CBSD68/ and Set14/ (docs/data.md: where to get them)")
    s.add_argument("--names", nargs="*", default=None, help="models to score (default: all)")
    s.add_argument("--sets", nargs="*", default=list(TEST_SETS))
    s.add_argument("--sigmas", nargs="*", type=int, default=list(SIGMAS))
    s.set_defaults(func=score)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
