"""Speed and peak memory of the 16-bit colour PNG codecs: n2n's former numpy codec (n2n/image_files.py at
commit 8efd275, loaded from git history) against imagecodecs (libpng), on one W x H 16-bit RGB image.

    python scripts/bench_png16.py                      # 6000 x 4000, prints a table (docs/denoising.md)
    python scripts/bench_png16.py --width 600 --height 400

Each measurement runs in a fresh process: wall time of the operation and how far the process's peak resident
memory rose above what it held before it (VmHWM, reset through /proc/self/clear_refs: Linux), so C allocations
(libpng, zlib) count too. Decoding is measured on two
files: the one n2n's encoder wrote (Sub filter on every row) and the one libpng wrote (adaptive filters,
Paeth among them, as most tools write)."""
from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OLD = "8efd275"


def old_codec():
    """n2n/image_files.py as it was before the codec was replaced, as a module."""
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{OLD}:n2n/image_files.py"], capture_output=True,
                            text=True, check=True).stdout
    path = Path(tempfile.mkdtemp()) / "old_image_files.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("old_image_files", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks itself up there
    spec.loader.exec_module(module)
    return module


def _status_kb(field: str) -> int:
    """A memory figure of this process from /proc/self/status (Linux), in kB."""
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith(field + ":"))
    return int(line.split()[1])


def one(codec: str, op: str, src: str, dst: str) -> dict:
    """One operation in this (fresh) process."""
    if codec == "imagecodecs":
        import imagecodecs
    else:
        old = old_codec()
    data = np.load(src) if op == "encode" else Path(src).read_bytes()
    Path("/proc/self/clear_refs").write_text("5")  # the peak (VmHWM) restarts from the current RSS
    base = _status_kb("VmRSS")
    start = time.perf_counter()
    if op == "encode":
        out = imagecodecs.png_encode(data) if codec == "imagecodecs" else old.encode_png16(data)
        Path(dst).write_bytes(out)
    else:
        arr = imagecodecs.png_decode(data) if codec == "imagecodecs" else old._read_png16(Path(src))[0]
        np.save(dst, arr)
    seconds = time.perf_counter() - start
    return {"codec": codec, "op": op, "input": Path(src).name, "seconds": round(seconds, 3),
            "peak_rise_mb": round((_status_kb("VmHWM") - base) / 1024, 1),
            "bytes": Path(dst).stat().st_size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=6000)
    parser.add_argument("--height", type=int, default=4000)
    parser.add_argument("--one", nargs=4, metavar=("CODEC", "OP", "SRC", "DST"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(*args.one)))
        return
    work = Path(tempfile.mkdtemp())
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:args.height, 0:args.width].astype(np.float32)
    smooth = np.stack([xx / args.width, yy / args.height, (xx + yy) / (args.width + args.height)], axis=-1)
    image = np.clip(smooth * 60000 + rng.normal(0, 800, smooth.shape), 0, 65535).astype(np.uint16)
    np.save(work / "image.npy", image)
    del yy, xx, smooth

    def run(codec, op, src, dst):
        out = subprocess.run([sys.executable, __file__, "--one", codec, op, str(src), str(dst)], capture_output=True,
                             text=True, check=True)
        return json.loads(out.stdout)

    rows = [run("n2n-numpy", "encode", work / "image.npy", work / "n2n.png"),
            run("imagecodecs", "encode", work / "image.npy", work / "libpng.png")]
    for codec in ("n2n-numpy", "imagecodecs"):
        for name in ("n2n.png", "libpng.png"):
            row = run(codec, "decode", work / name, work / f"{codec}-{name}.npy")
            assert np.array_equal(np.load(work / f"{codec}-{name}.npy"), image), (codec, name)
            rows.append(row)
    print(f"{args.width} x {args.height} 16-bit RGB ({image.nbytes / 2**20:.0f} MB of pixels); "
          f"python {sys.version.split()[0]}, numpy {np.__version__}")
    print(f"{'codec':12} {'op':7} {'input':12} {'seconds':>8} {'peak rise MB':>13} {'written bytes':>13}")
    for r in rows:
        print(f"{r['codec']:12} {r['op']:7} {r['input']:12} {r['seconds']:8.2f} {r['peak_rise_mb']:13.0f} "
              f"{r['bytes']:13,}")


if __name__ == "__main__":
    main()
