"""`n2n export CKPT MODEL.onnx`: the trained network in ONNX, checked against PyTorch."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from n2n.cli import EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE
from n2n.errors import CheckpointError, N2NError


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `export` on an argparse subparsers object."""
    p = subparsers.add_parser(
        "export",
        help="export a checkpoint's network to ONNX",
        description="Export a trained network to ONNX (dynamic batch, height and width; height and width "
        "must be multiples of 32, which `n2n denoise` takes care of) and check it against PyTorch.",
    )
    p.add_argument("checkpoint", metavar="CKPT", help="a .ckpt written by training")
    p.add_argument("output", metavar="MODEL.onnx", help="the ONNX file to write")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset version (default %(default)s)")
    p.set_defaults(func=run_export)
    return p


def run_export(args: argparse.Namespace) -> int:
    """`n2n export CKPT MODEL.onnx`: export, then check ONNX Runtime against PyTorch."""
    from n2n.inference.checkpoints import load_unet
    from n2n.inference.onnx import export_onnx, max_abs_diff  # onnx is only imported when it is used

    out = Path(args.output)
    try:
        if out.exists() and out.resolve() == Path(args.checkpoint).resolve():
            raise CheckpointError(f"refusing to overwrite the checkpoint {out} with the ONNX export")
        net = load_unet(args.checkpoint, "cpu")
        export_onnx(net, out, opset=args.opset)
        diff = max_abs_diff(net, out)
    except N2NError as exc:
        print(f"n2n export: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"wrote {out}: max |ONNX - PyTorch| = {diff:.1e} on random 64x96 and 96x64 inputs", file=sys.stderr)
    if diff > 1e-3:
        print(f"n2n export: error: the ONNX model disagrees with PyTorch by {diff:.1e} (> 1e-3)", file=sys.stderr)
        return EXIT_SOME_FAILED
    return EXIT_OK
