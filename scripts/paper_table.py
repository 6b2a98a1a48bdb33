#!/usr/bin/env python
"""Reproduce the Noise2Noise paper's cases as Noise2Noise and as the Noise2Clean baseline, and tabulate them.

For each case (a recipe conf/experiment/paper_*.yaml) this runs, one after the other and each in its own process:

    python train.py experiment=CASE data.train_dir=TRAIN data.val_dir=TEST [OVERRIDES]                # N2N
    python train.py experiment=CASE data.train_dir=TRAIN data.val_dir=TEST [OVERRIDES] method=n2c   # N2C
    python eval.py ckpt_path=<best checkpoint of each> data=folder data.val_dir=TEST

and writes a Markdown table (PSNR of both on the test folder, of the noisy input, training times and the commands)
to OUT/paper_table.md and to stdout. Every run folder (config, checkpoints, TensorBoard logs, metrics, the console
output in console.log) is under OUT/CASE/n2n and OUT/CASE/n2c, and its evaluation under .../eval.

Examples, from the repository root:

    # the paper's recipe on a GPU: 10 runs of 12 000 steps (the reference loop took 2.5 min a run on an H100)
    python scripts/paper_table.py --train-dir CBSD432 --test-dir CBSD68
    # a check of a few minutes on a CPU: one case, 20 steps, small crops, 4 test images
    python scripts/paper_table.py --train-dir TRAIN --test-dir TEST --cases gaussian25 --max-steps 20 \\
        trainer=cpu trainer.precision=32-true perf.channels_last=false data.crop_size=64 data.batch_size=4 \\
        data.val_limit=4

Extra positional arguments are Hydra overrides for train.py (they come last, so they win over the recipe and over
--max-steps). Those starting with `data.` are also given to eval.py, so that it scores the same images.
The script exits with 1 if any run failed (its row then says so and names its log), 2 on bad arguments.
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
CASES = ("paper_gaussian25", "paper_poisson30", "paper_bernoulli50", "paper_text25", "paper_impulse70")
MODES = {"n2n": [], "n2c": ["method=n2c"]}  # what each mode adds to the case's command
VALIDATIONS = 6  # with --max-steps, data.steps_per_epoch is chosen so that validation runs about this often
SAFE_VALUE = re.compile(r"[\w./:@+-]+")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Train and evaluate the paper's cases as Noise2Noise and Noise2Clean; write a Markdown table.",
        epilog="Cases: " + ", ".join(CASES) + ". Example: python scripts/paper_table.py --train-dir TRAIN "
               "--test-dir TEST --cases gaussian25 --max-steps 20 trainer=cpu trainer.precision=32-true",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-dir", required=True, type=Path, help="folder of clean training images")
    parser.add_argument("--test-dir", required=True, type=Path,
                        help="folder of clean test images (validation during training and the scores)")
    parser.add_argument("--cases", default=",".join(CASES),
                        help="comma-separated subset of the cases, with or without the paper_ prefix "
                             "(default: all five)")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder for the runs and paper_table.md "
                             "(default: outputs/paper_table/DATE_TIME)")
    parser.add_argument("--max-steps", type=int, default=None,
                        help="training steps a run, instead of the recipe's 12 000 (a quick check)")
    parser.add_argument("--eval-override", action="append", default=[], metavar="KEY=VALUE",
                        help="an extra override for eval.py, e.g. device=cpu or tile=512 (repeatable)")
    parser.add_argument("overrides", nargs="*", metavar="OVERRIDE",
                        help="extra Hydra overrides for train.py, e.g. trainer=cpu trainer.precision=32-true")
    args = parser.parse_intermixed_args(argv)

    cases = []
    for name in filter(None, (c.strip() for c in args.cases.split(","))):
        case = name if name.startswith("paper_") else f"paper_{name}"
        if case not in CASES:
            parser.error(f"--cases: unknown case {name!r}; choose from {', '.join(CASES)}")
        if case not in cases:
            cases.append(case)
    if not cases:
        parser.error("--cases: give at least one case")
    args.cases = cases
    for option in ("train_dir", "test_dir"):
        folder = getattr(args, option)
        if not folder.is_dir():
            parser.error(f"--{option.replace('_', '-')}={folder} is not a folder")
        setattr(args, option, folder.resolve())
    if args.max_steps is not None and args.max_steps < 1:
        parser.error(f"--max-steps={args.max_steps} must be at least 1")
    for override in args.overrides + args.eval_override:
        if override.startswith("-"):
            parser.error(f"{override}: not an option of this script; Hydra overrides are KEY=VALUE")
    stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    args.out = (args.out or Path("outputs") / "paper_table" / stamp).resolve()
    return args


def hydra_value(value: str | Path) -> str:
    """A path as a Hydra override value: quoted when it holds characters the override grammar treats specially."""
    text = str(value)
    if SAFE_VALUE.fullmatch(text):
        return text
    # In a quoted value a backslash is literal except in a run of them before a quote or the closing quote,
    # where each pair stands for one.
    escaped = re.sub(r"(\\*)('|$)", lambda m: m.group(1) * 2 + ("\\'" if m.group(2) else ""), text)
    return f"'{escaped}'"


def train_command(case: str, mode: str, args: argparse.Namespace, run_dir: Path | None = None) -> list[str]:
    cmd = [sys.executable, "train.py", f"experiment={case}", f"data.train_dir={hydra_value(args.train_dir)}",
           f"data.val_dir={hydra_value(args.test_dir)}"]
    if args.max_steps is not None:
        cmd += [f"trainer.max_steps={args.max_steps}",
                f"data.steps_per_epoch={max(1, math.ceil(args.max_steps / VALIDATIONS))}"]
    cmd += args.overrides + MODES[mode]
    if run_dir is not None:
        cmd.append(f"hydra.run.dir={hydra_value(run_dir)}")
    return cmd


def eval_command(ckpt: Path, args: argparse.Namespace, out_dir: Path) -> list[str]:
    data = [o for o in args.overrides if o.lstrip("+~").startswith("data.")]
    return [sys.executable, "eval.py", f"ckpt_path={hydra_value(ckpt)}", "data=folder",
            f"data.val_dir={hydra_value(args.test_dir)}", *data, *args.eval_override,
            f"hydra.run.dir={hydra_value(out_dir)}"]


def run_logged(cmd: list[str], log: Path) -> int:
    """Run `cmd` in the repository root, its output going to `log`; returns the exit code."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as f:
        f.write(f"$ {shlex.join(cmd)}\n\n")
        f.flush()
        return subprocess.run(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT).returncode


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def best_checkpoint(run_dir: Path, metrics: dict[str, Any]) -> Path | None:
    path = metrics.get("best_checkpoint")
    if path and Path(path).is_file():
        return Path(path)
    found = sorted((run_dir / "checkpoints").glob("best-*.ckpt")) or sorted((run_dir / "checkpoints").glob("last.ckpt"))
    return found[-1] if found else None


def _failed(result: dict[str, Any], error: str) -> dict[str, Any]:
    result["error"] = error
    print(f"    {error}", flush=True)
    return result


def run_mode(case: str, mode: str, args: argparse.Namespace, label: str) -> dict[str, Any]:
    """Train one case in one mode, then evaluate its best checkpoint on the test folder."""
    run_dir = args.out / case / mode
    result: dict[str, Any] = {"run_dir": run_dir, "train_cmd": train_command(case, mode, args, run_dir),
                              "train_log": run_dir / "console.log", "ok": False}
    print(f"{label} {case} {mode.upper()}: training, log {result['train_log']}", flush=True)
    start = time.perf_counter()
    rc = run_logged(result["train_cmd"], result["train_log"])
    metrics = read_json(run_dir / "metrics.json") if rc == 0 else None
    if metrics is None:
        return _failed(result, f"training failed (exit code {rc}), see {result['train_log']}")
    result["config"] = yaml.safe_load((run_dir / "config.yaml").read_text())
    result["train_seconds"] = float(metrics.get("train_seconds", time.perf_counter() - start))
    result["global_step"] = metrics.get("global_step")
    ckpt = best_checkpoint(run_dir, metrics)
    if ckpt is None:
        return _failed(result, f"no checkpoint in {run_dir / 'checkpoints'}")
    eval_dir = run_dir / "eval"
    result["eval_cmd"] = eval_command(ckpt, args, eval_dir)
    result["eval_log"] = eval_dir / "console.log"
    rc = run_logged(result["eval_cmd"], result["eval_log"])
    scores = read_json(eval_dir / "metrics.json") if rc == 0 else None
    if scores is None:
        return _failed(result, f"evaluation failed (exit code {rc}), see {result['eval_log']}")
    result.update(ok=True, psnr=scores["psnr_denoised"], psnr_noisy=scores["psnr_noisy"],
                  ssim=scores["ssim_denoised"], num_images=scores["num_images"], checkpoint=ckpt)
    print(f"    {scores['psnr_denoised']:.2f} dB on {scores['num_images']} test images (noisy input "
          f"{scores['psnr_noisy']:.2f} dB), trained {result['global_step']} steps in {result['train_seconds']:.0f} s",
          flush=True)
    return result


# ------------------------------------------------------------------------------------------------ the table
def _number(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_number(v) for v in value) + "]"
    return f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def describe_noise(noise: dict[str, Any]) -> str:
    noise = dict(noise)
    name, val = noise.pop("name", "?"), noise.pop("val", None) or {}
    text = " ".join([name, *(f"{k}={_number(v)}" for k, v in noise.items())])
    if val:
        text += ", tested at " + " ".join(f"{k}={_number(v)}" for k, v in val.items())
    return text


def describe_loss(loss: dict[str, Any]) -> str:
    name = loss.get("name", "?")
    if name == "l2" and loss.get("ignore_dropped"):
        return "l2, dropped pixels ignored"
    if name == "l0":
        return f"l0, gamma {_number(loss.get('gamma_start'))} -> {_number(loss.get('gamma_end'))}"
    return str(name)


def short_command(case: str, args: argparse.Namespace) -> str:
    """The N2N training command as a user would type it (N2C adds method=n2c)."""
    cmd = ["python", *train_command(case, "n2n", args)[1:]]
    return "`" + shlex.join(cmd).replace("|", "\\|") + "`"


def make_table(results: dict[str, dict[str, dict[str, Any]]], args: argparse.Namespace) -> str:
    def psnr(r: dict[str, Any]) -> str:
        return f"{r['psnr']:.2f}" if r.get("ok") else "failed"

    def seconds(r: dict[str, Any]) -> str:
        return f"{r['train_seconds']:.0f} s" if "train_seconds" in r else "-"

    from n2n.devices import describe_machine

    steps = args.max_steps if args.max_steps is not None else "the recipe's 12 000"
    lines = [
        f"PSNR in dB on the test folder `{args.test_dir}`, models trained on `{args.train_dir}` for {steps} steps"
        + (f" with the extra overrides `{' '.join(args.overrides)}`" if args.overrides else "")
        + f"; {datetime.datetime.now():%Y-%m-%d %H:%M}, {describe_machine()}. Run folders under `{args.out}`.",
        "",
        "| case | noise | loss | N2N PSNR | N2C PSNR | noisy input PSNR | training time N2N / N2C "
        "| command (N2C: add `method=n2c`) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for case, modes in results.items():
        n2n, n2c = modes["n2n"], modes["n2c"]
        config = n2n.get("config") or n2c.get("config") or {}
        noisy = next((r["psnr_noisy"] for r in (n2n, n2c) if r.get("ok")), None)
        lines.append("| " + " | ".join([
            case, describe_noise(config.get("noise", {})) if config else "-",
            describe_loss(config.get("loss", {})) if config else "-",
            psnr(n2n), psnr(n2c), f"{noisy:.2f}" if noisy is not None else "-",
            f"{seconds(n2n)} / {seconds(n2c)}", short_command(case, args)]) + " |")
    lines += ["", "Commands run (each from the repository root):", ""]
    for case, modes in results.items():
        for mode, r in modes.items():
            lines.append(f"- {case} {mode.upper()}: `{shlex.join(r['train_cmd'])}`")
            if "eval_cmd" in r:
                lines.append(f"  then `{shlex.join(r['eval_cmd'])}`")
            if not r.get("ok"):
                lines.append(f"  **{r.get('error', 'failed')}**")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    existing = [args.out / case / mode for case in args.cases for mode in MODES if (args.out / case / mode).exists()]
    if existing:
        print(f"paper_table.py: error: {existing[0]} already exists; give another --out", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, dict[str, Any]]] = {}
    total = len(args.cases) * len(MODES)
    for i, case in enumerate(args.cases):
        results[case] = {}
        for j, mode in enumerate(MODES):
            results[case][mode] = run_mode(case, mode, args, f"[{i * len(MODES) + j + 1}/{total}]")
    table = make_table(results, args)
    path = args.out / "paper_table.md"
    from n2n.atomic import write_text

    write_text(path, table)
    print(f"\n{table}\nwritten to {path}", flush=True)
    return 0 if all(r.get("ok") for modes in results.values() for r in modes.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
