"""`n2n denoise`: argument parsing and the per-file loop.

n2n.cli registers it with `add_parser(sub)`, which sets `func` on its parser, so `args.func(args)` runs the
command and returns the exit code:
0 all images written, 1 some inputs failed (each is reported by name, the others are written),
2 nothing was attempted (unusable checkpoint, no inputs, outputs that would overwrite inputs, bad options).
"""
from __future__ import annotations

import argparse
import glob
import sys
from pathlib import Path
from typing import Callable, Sequence

from n2n.cli import EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, Bounded
from n2n.errors import DataError, N2NError, imports_shielded

# torch and everything that imports it are imported when the command runs (`run`), not here: the parser must
# stay light for `n2n --help`. These defaults are n2n.inference's (a test checks that they agree).
PRECISIONS = ("auto", "fp32", "bf16")  # n2n.inference.runners.PRECISIONS
DEFAULT_TILE, DEFAULT_OVERLAP = 1024, 128  # n2n.inference.tiling


# ------------------------------------------------------------------------------------------- parsers


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `denoise` on an argparse subparsers object."""
    p = subparsers.add_parser(
        "denoise",
        help="denoise image files with a bundled model, a trained checkpoint or an exported model",
        description="Denoise images with an n2n model: by default the bundled gaussian-blind model (its grey "
        "twin for greyscale images), no training needed. One output per input, with the input's bit depth, "
        "channels and alpha: in OUTDIR under the same file name (plus --suffix), or, without -o, beside the "
        "input as NAME_denoised.EXT. The first argument may also be a model file (the older form "
        "`n2n denoise CKPT INPUT... -o OUTDIR`).",
    )
    p.add_argument("inputs", metavar="INPUT", nargs="+",
                   help="image files, folders (their images, not recursive) or quoted glob patterns")
    p.add_argument("-m", "--model", metavar="NAME|FILE", default=None,
                   help="a bundled model (`n2n models`), a .ckpt written by training, a .safetensors or an "
                   ".onnx from `n2n export` (default: gaussian-blind, or gaussian-blind-grey for grey images)")
    p.add_argument("-o", "--outdir", default=None, metavar="OUTDIR",
                   help="folder for the outputs (created); default: beside each input, with --suffix _denoised")
    p.add_argument("--tile", type=Bounded(int, 0), default=DEFAULT_TILE, metavar="N",
                   help="process images larger than N x N pixels in overlapping tiles of N pixels (rounded "
                   "up to a multiple of 32) to bound memory; 0 = always the whole image at once "
                   "(default %(default)s)")
    p.add_argument("--overlap", type=Bounded(int, 0), default=DEFAULT_OVERLAP, metavar="N",
                   help="pixels of context around each tile (rounded up to a multiple of 32); 128 or more "
                   "keeps tiled output within 1/255 of whole-image output, 160 makes it identical "
                   "(default %(default)s)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="where the network runs; auto (the default) = CUDA when available")
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="arithmetic of a .ckpt model: bf16 = bfloat16 network with a float32 output layer "
                   "(about 4x faster than eager fp32 on a CPU with AMX, PSNR within 0.001 dB on CBSD68), "
                   "fp32 = float32; auto (the default) = bf16 where the CPU or GPU has native bfloat16, else "
                   "fp32. ONNX models always run in fp32")
    p.add_argument("--zero-shot", action="store_true",
                   help="no model: fit Zero-Shot Noise2Noise (Mansour & Heckel 2023) to each image itself, a "
                   "small network trained on the image alone (minutes per image on a CPU; whole images, no tiles)")
    p.add_argument("--zero-shot-steps", type=Bounded(int, 1), default=None, metavar="N",
                   help="fitting steps per image with --zero-shot (default 2000, conf/method/zsn2n.yaml)")
    p.add_argument("--strength", type=Bounded(float, 0, 1), default=1.0, metavar="S",
                   help="how much of the denoised image to keep, 0..1: S x denoised + (1 - S) x input; below 1 "
                   "some of the input's grain and texture stays (0 = the input unchanged; default %(default)s)")
    p.add_argument("--no-declip", dest="declip", action="store_false",
                   help="keep the network's output as it is on black and white: by default, a model trained on "
                   "unclipped Gaussian noise (the bundled ones) has its output corrected for the clipping of a "
                   "file's noise, which otherwise lifts black (about 10/255 at sigma 25); docs/denoising.md")
    p.add_argument("--max-pixels", type=Bounded(int, 1), default=None, metavar="N",
                   help="refuse an input whose header declares more than N pixels, before decoding it "
                   "(default 250000000)")
    p.add_argument("--suffix", default=None, help="appended to each output's file name before the extension "
                   "(default: none with -o, _denoised without)")
    from n2n.cli.denoise_volume import add_volume_options  # volumes: MRC and TIFF stacks (docs/volumes.md)
    add_volume_options(p)
    p.set_defaults(func=run)
    return p


# -------------------------------------------------------------------------------------------- denoise


def collect_inputs(inputs: Sequence[str]) -> tuple[list[Path], list[str]]:
    """(image files in order, without duplicates; inputs that matched nothing)."""
    from n2n.image_files import IMAGE_EXTENSIONS

    files: list[Path] = []
    missing: list[str] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        elif path.is_file():
            found = [path]  # named explicitly: tried whatever its extension
        elif glob.has_magic(item):
            found = sorted(Path(p) for p in glob.glob(item) if Path(p).is_file())
        else:
            found = []
        if not found:
            missing.append(why_missing(item))
        files.extend(found)
    seen: set[Path] = set()
    unique = []
    for f in files:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique, missing


def why_missing(item: str) -> str:
    """`item` and why it gave no image: it does not exist, is a folder without images, or a pattern that matched
    no file."""
    from n2n.image_files import IMAGE_EXTENSIONS

    path = Path(item)
    if path.is_dir():
        return f"{item}: a folder with no image files (looked for {', '.join(sorted(IMAGE_EXTENSIONS))})"
    if glob.has_magic(item):
        return f"{item}: no file matches this pattern"
    return f"{item}: no such file or folder"


def plan_outputs(files: Sequence[Path], outdir: Path | None, suffix: str = "") -> list[tuple[Path, Path]]:
    """(input, output) pairs, in `outdir` or (None) beside each input; refuses outputs that would overwrite an
    input or each other."""
    pairs = [(f, (outdir if outdir is not None else f.parent) / f"{f.stem}{suffix}{f.suffix}") for f in files]
    inodes = {(s.st_dev, s.st_ino): f for f in files for s in [f.stat()]}
    targets: dict[Path, Path] = {}
    for src, dst in pairs:
        if dst.exists():
            st = dst.stat()
            clash = inodes.get((st.st_dev, st.st_ino))
            if clash is not None:
                raise DataError(
                    f"refusing to write {dst}: it is the input {clash} itself; choose another -o OUTDIR "
                    f"or give a --suffix"
                )
        key = dst.resolve()
        if key in targets:
            raise DataError(f"inputs {targets[key]} and {src} would both be written to {dst}; denoise them "
                            f"into different folders")
        targets[key] = src
    return pairs


def denoise_file(pick: Callable[[int], Callable], src: Path, dst: Path, tile: int | None, overlap: int,
                 strength: float = 1.0, declip: bool = True) -> Callable:
    """Read, denoise and write one image with the runner `pick(colour channels)` returns, and return that runner;
    DataError (naming the file) if it cannot be read or written."""
    from n2n.image_files import read_image, to_model_input, write_image
    from n2n.inference.tiling import denoise_tensor

    image, info = read_image(src)
    channels = (image.shape[2] if image.ndim == 3 else 1) - (1 if info.has_alpha else 0)
    runner = pick(channels)
    x, restore = to_model_input(image, int(runner.in_channels), info.has_alpha)
    del image  # restore() keeps what it needs (the alpha plane)
    y = denoise_tensor(runner, x, tile=tile, overlap=overlap, strength=strength, declip=declip)
    del x  # a full-size float copy: free it before restore() makes its own (24 MP RGB: 288 MB each)
    write_image(dst, restore(y), icc_profile=info.icc_profile)  # atomic: never a half-written output
    return runner


def split_model(args: argparse.Namespace) -> tuple[str | None, list[str]]:
    """(the model asked for, or None for the bundled defaults; the inputs). The older form names a model
    file as the first argument."""
    from n2n.pretrained import is_model_file

    inputs = list(args.inputs)
    if args.model is None and is_model_file(inputs[0]):
        return inputs[0], inputs[1:]
    return args.model, inputs


class DefaultModels:
    """The bundled model for each image's colour channels, each loaded on first use."""

    def __init__(self, device: str, precision: str):
        self.device, self.precision = device, precision
        self.runners: dict[str, Callable] = {}

    def name(self, runner: Callable) -> str:
        return next(name for name, r in self.runners.items() if r is runner)

    def __call__(self, image_channels: int) -> Callable:
        from n2n.inference.runners import load_runner
        from n2n.pretrained import default_model

        name = default_model(image_channels)
        if name not in self.runners:
            self.runners[name] = load_runner(name, self.device, self.precision)
        return self.runners[name]


def run(args: argparse.Namespace) -> int:
    """`n2n denoise`: returns the exit code (see the module docstring)."""
    from n2n.volumes.denoise import run_volumes, wants_volumes  # volumes go their own way (n2n.volumes.denoise)
    if wants_volumes(args):
        return run_volumes(args)
    with imports_shielded("n2n"):  # Ctrl-C while torch imports: one line, after the import
        import torch
        from tqdm import tqdm

        from n2n.image_files import set_max_pixels
        from n2n.inference.checkpoints import check_image_model
        from n2n.inference.runners import load_runner
        from n2n.inference.tiling import check_tiling

    def fail(message: str) -> None:
        tqdm.write(f"n2n denoise: {message}", file=sys.stderr)

    try:
        model, inputs = split_model(args)
        set_max_pixels(getattr(args, "max_pixels", None), "--max-pixels")
        tile = args.tile if args.tile and args.tile > 0 else None
        if tile is not None:
            check_tiling(tile, args.overlap)
        files, missing = collect_inputs(inputs)
        if not files:
            raise DataError("; ".join(missing) if missing else "no INPUT given")
        suffix = args.suffix if args.suffix is not None else ("" if args.outdir else "_denoised")
        pairs = plan_outputs(files, Path(args.outdir) if args.outdir else None, suffix)
        precision = getattr(args, "precision", "auto")
        zero_shot = getattr(args, "zero_shot", False)
        if zero_shot and model is not None:
            raise DataError(f"--zero-shot fits a network to each image and uses no model: drop --model {model}")
        if not zero_shot and getattr(args, "zero_shot_steps", None) is not None:
            raise DataError("--zero-shot-steps goes with --zero-shot")
        if zero_shot:
            from n2n.inference.zero_shot import ZeroShotRunner

            pick = lambda channels: ZeroShotRunner(1 if channels == 1 else 3, args.zero_shot_steps)  # noqa: E731
            model_name = lambda runner: f"zero-shot ({runner.method.steps} steps)"  # noqa: E731
        elif model is None:
            pick = DefaultModels(args.device, precision)
            pick(3)  # a missing or broken bundled model stops here, before any output
            model_name = pick.name
        else:
            runner = load_runner(model, args.device, precision)
            check_image_model(runner, str(model))  # a micrograph model is given .mrc files (run_volumes)
            pick = lambda channels: runner  # noqa: E731 - one model for every image
            model_name = lambda runner: str(model)  # noqa: E731
        if args.outdir:
            Path(args.outdir).mkdir(parents=True, exist_ok=True)
    except (N2NError, ValueError, OSError) as exc:
        fail(f"error: {exc.filename}: {exc.strerror}" if isinstance(exc, OSError) and exc.filename else f"error: {exc}")
        return EXIT_USAGE

    failed = list(missing)
    used_names: list[str] = []
    strength = getattr(args, "strength", 1.0)
    strength_note = f", strength {strength:g}" if strength < 1 else ""
    for reason in missing:
        fail(f"skipped {reason}")
    for src, dst in tqdm(pairs, desc="denoising", unit="image", disable=len(pairs) < 2, file=sys.stderr):
        try:
            used = denoise_file(pick, src, dst, tile, args.overlap, strength, getattr(args, "declip", True))
            used_names.append(model_name(used))
            # one line per file written, on stdout (scripts read it; the progress bar and errors go to stderr)
            tqdm.write(f"wrote {dst} (from {src}; model {used_names[-1]}{strength_note})", file=sys.stdout)
        except N2NError as exc:
            failed.append(str(src))
            fail(f"skipped: {exc}" if str(src) in str(exc) else f"skipped {src}: {exc}")
        except torch.OutOfMemoryError:
            failed.append(str(src))
            fail(f"skipped {src}: out of device memory; try a smaller --tile")
            if torch.cuda.is_available():
                torch.cuda.empty_cache()  # give the next image the memory back
    done = len(pairs) - (len(failed) - len(missing))
    where = Path(args.outdir) if args.outdir else f"beside the inputs (suffix {suffix})"
    models = f" with model {', '.join(dict.fromkeys(used_names))}{strength_note}" if used_names else ""
    print(f"wrote {done} image(s) to {where}{models}"
          + (f"; {len(failed)} failed" if failed else ""), file=sys.stderr)
    return EXIT_SOME_FAILED if failed else EXIT_OK
