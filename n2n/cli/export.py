"""`n2n export MODEL OUT`: a trained network as ONNX (checked against PyTorch) or as shareable safetensors weights."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from n2n.cli import EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, Bounded
from n2n.errors import CheckpointError, N2NError, imports_shielded

FORMATS = (".onnx", ".safetensors")
#: Opsets of the TorchScript exporter that export this network and match PyTorch (9 and 20 checked; 7 and 8
#: lack the Resize that nearest upsampling needs on dynamic sizes).
OPSETS = (9, 20)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `export` on an argparse subparsers object."""
    p = subparsers.add_parser(
        "export",
        help="export a checkpoint's network to ONNX or to safetensors weights",
        description="Export a trained network. OUT.onnx: ONNX (dynamic batch, height and width; height and "
        "width must be multiples of 32, which `n2n denoise` takes care of), checked against PyTorch. "
        "OUT.safetensors: the weights and the config that builds the network, loadable without unpickling "
        "(`n2n denoise --model OUT.safetensors`, `n2n.load`): the format to share a model in.",
    )
    p.add_argument("checkpoint", metavar="MODEL",
                   help="a .ckpt written by training, a .safetensors weight file or a bundled model's name")
    p.add_argument("output", metavar="OUT", help="the file to write: .onnx or .safetensors")
    p.add_argument("--opset", type=Bounded(int, *OPSETS), default=17,
                   help=f"ONNX opset version, {OPSETS[0]} to {OPSETS[1]} (default %(default)s)")
    p.set_defaults(func=run_export)
    return p


def run_export(args: argparse.Namespace) -> int:
    """Export, then (ONNX) check ONNX Runtime against PyTorch."""
    from n2n.extras import require_extra

    with imports_shielded("n2n"):  # torch: Ctrl-C during its import is one line, after it
        from n2n.inference.runners import load_network

    out = Path(args.output)
    try:
        if out.is_dir():
            raise CheckpointError(f"{out} is a folder: give the file to write, e.g. {out / 'model.onnx'}")
        if out.suffix.lower() not in FORMATS:
            raise CheckpointError(f"cannot tell the format of {out}: name it .onnx or .safetensors")
        if out.exists() and out.resolve() == Path(args.checkpoint).resolve():
            raise CheckpointError(f"refusing to overwrite the model {out} with its export")
        if out.suffix.lower() == ".onnx":  # both are needed (export, then the check): say so before any work
            require_extra("onnx", "export", "ONNX export")
            require_extra("onnxruntime", "export", "checking the ONNX export")
        net = load_network(args.checkpoint, "cpu")
        if out.suffix.lower() == ".safetensors":
            from n2n.inference.weights import save_weights

            save_weights(net, getattr(net, "net", net).config, out)
            print(f"wrote {out}", file=sys.stderr)
            return EXIT_OK
        from n2n.inference.onnx import export_onnx, max_abs_diff

        export_onnx(net, out, opset=args.opset)
        diff = max_abs_diff(net, out)
    except N2NError as exc:
        print(f"n2n export: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"wrote {out}: max |ONNX - PyTorch| = {diff:.1e} on random 64x96 and 96x64 inputs", file=sys.stderr)
    if not diff <= 1e-3:  # NaN fails too
        print(f"n2n export: error: the ONNX model disagrees with PyTorch by {diff:.1e} (> 1e-3, or not a number: "
              f"non-finite outputs)", file=sys.stderr)
        return EXIT_SOME_FAILED
    return EXIT_OK
