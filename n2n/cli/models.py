"""`n2n models`: the bundled models, what they were trained for and their scores (docs/pretrained.md)."""
from __future__ import annotations

import argparse
import json
import sys

from n2n.cli import EXIT_OK


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "models", help="list the bundled models and their scores",
        description="List the models shipped with n2n (usable at once: `n2n denoise --model NAME`, "
        "`n2n.load(NAME)`) with what they were trained on and their PSNR on the standard test sets.")
    p.add_argument("--json", action="store_true", help="print the full model cards as JSON")
    p.set_defaults(func=run)
    return p


def score_line(entry: dict) -> str:
    """'CBSD68 sigma 15/25/50: 33.1 / 30.8 / 27.5 dB' for each test set scored."""
    parts = []
    for dataset, by_sigma in entry.get("scores", {}).items():
        sigmas = sorted(by_sigma, key=float)
        values = " / ".join(f"{by_sigma[s]['psnr_denoised']:.2f}" for s in sigmas)
        parts.append(f"{dataset} sigma {'/'.join(sigmas)}: {values} dB")
    return "; ".join(parts) or "not scored"


def run(args: argparse.Namespace) -> int:
    from n2n import pretrained

    cards = pretrained.cards()
    if args.json:
        print(json.dumps(cards, indent=2))
        return EXIT_OK
    for name, entry in cards.items():
        default = " (default for grey images)" if entry.get("default") and entry["channels"] == 1 else (
            " (default)" if entry.get("default") else "")
        print(f"{name}{default}: {entry['summary']}")
        print(f"    {score_line(entry)}")
    print("Use: n2n denoise --model NAME IMAGE...; in Python: n2n.load(NAME). Model cards: docs/pretrained.md",
          file=sys.stderr)
    return EXIT_OK
