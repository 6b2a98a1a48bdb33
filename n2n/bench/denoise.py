"""Speed, quality and memory of `n2n denoise`: eager float32 against the fast path, in one run.

    python -m n2n.bench.denoise model.ckpt --images /data/CBSD68            # full: a few minutes on 2 cores
    python -m n2n.bench.denoise model.ckpt --short                           # well under a minute
    python -m n2n.bench.denoise model.ckpt --images DIR --json bench.json    # also save the figures

It prints, with the machine, the PyTorch version and the date:

* speed: seconds to denoise one 768x512 RGB image (whole image, model load excluded; median of several
  runs, the paths alternating) in eager float32 (the plain network call: NCHW float32 tensors, as in
  training), in `n2n denoise --precision fp32` (channels-last inputs on a CPU) and in the fast path
  (`--precision`, by default what `n2n denoise --precision auto` picks on this machine), and the
  speed-up of the fast path over eager float32;
* quality: mean PSNR on the images of `--images` (default: scikit-image's `chelsea` and `coffee`) with
  sigma-25 Gaussian noise drawn from a generator seeded with the image's index, as N2NDataModule draws
  its validation noise (unclipped float input), outputs clamped and rounded to 8 bits, for both paths,
  and their difference;
* memory: the peak resident memory (max RSS, from os.wait4) of the real `n2n denoise` command run in a
  subprocess on a synthetic 6000x4000 RGB PNG (1536x1024 in --short mode), with the default tiling.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from n2n.atomic import write_text
from n2n.devices import describe_machine, fast_bf16, pick_device
from n2n.errors import exit_on_error
from n2n.inference.runners import PRECISIONS, TorchRunner, resolve_precision
from n2n.inference.tiling import DEFAULT_TILE, denoise_tensor
from n2n.metrics import psnr, quantize8
from n2n.noise import GaussianNoise

#: The photos scored without --images: the validation photos of conf/data/samples.yaml.
DEFAULT_PHOTOS = ("chelsea", "coffee")
#: The package's parent folder: the subprocess imports n2n from here, whether or not it is installed.
REPO = Path(__file__).resolve().parents[2]


def _size(text: str) -> tuple[int, int]:
    """'768x512' (width x height) -> (768, 512)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 768x512, got {text!r}") from None
    if w < 1 or h < 1:
        raise argparse.ArgumentTypeError(f"sizes must be positive, got {text!r}")
    return w, h


class EagerRunner:
    """The plain float32 network call on NCHW tensors, as a training loop would make it: the baseline."""

    def __init__(self, net: torch.nn.Module, device: str):
        self.device = torch.device(device)
        self.net = net.to(self.device).eval()
        self.in_channels, self.out_channels = net.in_channels, net.out_channels

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return self.net.forward_aligned(x.to(self.device, torch.float32)).float().cpu()


def time_paths(runners: dict[str, Callable], x: torch.Tensor, runs: int, warmup: int = 2) -> dict[str, list[float]]:
    """Seconds per whole-image denoise of x for each runner, the runners alternating run by run."""
    times: dict[str, list[float]] = {name: [] for name in runners}
    for i in range(warmup + runs):
        for name, runner in runners.items():
            t0 = time.perf_counter()
            denoise_tensor(runner, x)  # the runner returns on the CPU: a GPU is synchronised
            if i >= warmup:
                times[name].append(time.perf_counter() - t0)
    return times


def load_images(folder: Path | None, channels: int, limit: int | None) -> tuple[str, list[str], list[torch.Tensor]]:
    """(description, names, C x H x W uint8 tensors) of a folder's images or of the sample photos."""
    from n2n.data.sources import load_image_folder, load_samples

    if folder is None:
        names = list(DEFAULT_PHOTOS)
        images = load_samples(names, channels, "--images")
        source = "scikit-image samples " + ", ".join(names)
    else:
        names, images = load_image_folder(folder, channels, "--images")
        source = str(folder)
    if limit:
        names, images = names[:limit], images[:limit]
    return source, names, images


def score(runners: dict[str, Callable], images: list[torch.Tensor], sigma: float) -> dict[str, list[float]]:
    """Per-image PSNR (dB) of the 8-bit noisy input and of each runner's 8-bit output."""
    noise = GaussianNoise(sigma)
    scores: dict[str, list[float]] = {"noisy": [], **{name: [] for name in runners}}
    for index, image in enumerate(images):
        clean = image[None].float() / 255
        g = torch.Generator().manual_seed(index)  # n2n.data.datamodule.validation_pairs with data.val_seed=0
        noisy = noise(clean, generator=g)
        scores["noisy"].append(psnr(quantize8(noisy), clean))
        for name, runner in runners.items():
            scores[name].append(psnr(quantize8(denoise_tensor(runner, noisy)), clean))
    return scores


def synthetic_photo(width: int, height: int, seed: int = 0) -> np.ndarray:
    """H x W x 3 uint8: smooth colour gradients, edges and sigma-25 noise (content does not change speed)."""
    rng = np.random.default_rng(seed)
    y = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    x = np.linspace(0, 1, width, dtype=np.float32)[None, :]
    out = np.empty((height, width, 3), np.uint8)
    for c in range(3):
        plane = 128 + 70 * np.sin(7 * x + 5 * y + 2 * c) + 40 * ((x + 0.3 * c) % 0.25 > 0.12)
        plane += rng.normal(0, 25, (height, width)).astype(np.float32)
        out[..., c] = np.clip(plane, 0, 255).astype(np.uint8)
    return out


def peak_rss_of_denoise(ckpt: Path, width: int, height: int, device: str, precision: str,
                        tile: int) -> dict[str, Any]:
    """Max RSS (MiB) and wall time of `python -m n2n.cli denoise` on a synthetic width x height PNG."""
    from PIL import Image

    with tempfile.TemporaryDirectory(prefix="n2n_bench_denoise_") as tmp:
        src = Path(tmp) / "large.png"
        Image.fromarray(synthetic_photo(width, height)).save(src, compress_level=1)
        cmd = [sys.executable, "-m", "n2n.cli", "denoise", str(ckpt), str(src), "-o", str(Path(tmp) / "out"),
               "--device", device, "--precision", precision, "--tile", str(tile)]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        log = Path(tmp) / "log.txt"
        t0 = time.perf_counter()
        with open(log, "w") as out:
            proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
            _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak, unlike RUSAGE_CHILDREN
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - t0
        output = log.read_text(errors="replace")
        out_ok = (Path(tmp) / "out" / "large.png").is_file()
    result = {"size": f"{width}x{height}", "tile": tile, "precision": precision, "exit_code": code,
              "peak_rss_mib": usage.ru_maxrss / 1024, "seconds": seconds,
              "command": "n2n denoise CKPT large.png -o OUT " + " ".join(cmd[8:])}
    if code != 0 or not out_ok:
        raise RuntimeError(f"`{' '.join(cmd)}` failed (exit {code}):\n{output[-2000:]}")
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m n2n.bench.denoise", description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", metavar="CKPT", type=Path,
                        help="a .ckpt written by training, a .safetensors weight file "
                        "or a bundled model's name (`n2n models`)")
    parser.add_argument("--images", type=Path, default=None, metavar="DIR",
                        help="clean test images (default: scikit-image's chelsea and coffee)")
    parser.add_argument("--short", action="store_true",
                        help="3 timed runs, 4 images, a 1536x1024 large image: well under a minute on a CPU")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="the fast path compared with eager fp32 (default auto: what `n2n denoise` picks)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu")
    parser.add_argument("--size", type=_size, default=(768, 512), metavar="WxH", help="timed image (default 768x512)")
    parser.add_argument("--runs", type=int, default=None, help="timed runs per path (default 7, --short 3)")
    parser.add_argument("--limit", type=int, default=None, help="score only the first N images (--short: 4)")
    parser.add_argument("--large", type=_size, default=None, metavar="WxH",
                        help="image for the memory measurement (default 6000x4000, --short 1536x1024)")
    parser.add_argument("--tile", type=int, default=DEFAULT_TILE, help="--tile of the memory run (default %(default)s)")
    parser.add_argument("--sigma", type=float, default=25.0, help="Gaussian noise level on 0..255 (default 25)")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT", help="also write the results here")
    args = parser.parse_args(argv)

    from n2n.inference.runners import load_network

    device = str(pick_device(args.device, "--device"))
    runs = args.runs or (3 if args.short else 7)
    limit = args.limit if args.limit is not None else (4 if args.short else None)
    large = args.large or ((1536, 1024) if args.short else (6000, 4000))
    fast = resolve_precision(args.precision, device)
    now = datetime.datetime.now(datetime.timezone.utc)

    results: dict[str, Any] = {
        "machine": describe_machine(device), "device": device, "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "date": now.strftime("%Y-%m-%d %H:%M UTC"), "mode": "short" if args.short else "full",
        "checkpoint": str(args.checkpoint), "precision": fast, "precision_asked": args.precision,
        "native_bf16": fast_bf16(device),
    }
    print(f"{results['machine']}; torch {torch.__version__}, {results['threads']} threads; {results['date']}")
    print(f"fast path: --precision {args.precision} -> {fast}", flush=True)

    net = load_network(args.checkpoint, device)
    eager, fast_runner = EagerRunner(net, device), TorchRunner(net, device, fast)
    timed = {"eager": eager, "fp32": TorchRunner(net, device, "fp32"), "fast": fast_runner}
    if fast == "fp32":
        del timed["fp32"]  # the fast path itself
        print("(no native bfloat16 here: the fast path is n2n's float32 path)")

    # Speed: one noisy photo-like image, whole-image path as `n2n denoise` runs images under --tile.
    w, h = args.size
    x = torch.from_numpy(synthetic_photo(w, h, seed=1)).permute(2, 0, 1)[None].float().div(255)
    if net.in_channels == 1:
        x = x.mean(1, keepdim=True)
    times = time_paths(timed, x, runs)
    med = {name: statistics.median(t) for name, t in times.items()}
    t_eager, t_fast = med["eager"], med["fast"]
    results["speed"] = {"size": f"{w}x{h}", "runs": runs, "eager_fp32_s": t_eager,
                        "n2n_fp32_s": med.get("fp32", t_fast), "fast_s": t_fast, "speedup": t_eager / t_fast,
                        "times": times}
    print(f"\nspeed: {w}x{h} image, whole, median of {runs} (model load excluded)")
    print(f"  eager fp32          {t_eager:7.3f} s")
    if "fp32" in med:
        print(f"  n2n fp32            {med['fp32']:7.3f} s   {t_eager / med['fp32']:.2f}x")
    print(f"  n2n {fast} (fast)     {t_fast:7.3f} s   {t_eager / t_fast:.2f}x", flush=True)

    # Quality.
    source, names, images = load_images(args.images, int(net.in_channels), limit)
    scores = score({"eager": eager, "fast": fast_runner}, images, args.sigma)
    mean = {k: statistics.fmean(v) for k, v in scores.items()}
    per_image = [b - a for a, b in zip(scores["eager"], scores["fast"])]
    results["quality"] = {"images": source, "count": len(images), "sigma": args.sigma,
                          "psnr_noisy": mean["noisy"], "psnr_eager_fp32": mean["eager"], "psnr_fast": mean["fast"],
                          "diff_db": mean["fast"] - mean["eager"], "max_abs_image_diff_db": max(map(abs, per_image)),
                          "per_image": {n: {k: scores[k][i] for k in scores} for i, n in enumerate(names)}}
    print(f"\nquality: sigma-{args.sigma:g} Gaussian noise (seed = image index), 8-bit outputs, "
          f"{len(images)} image(s) of {source}")
    print(f"  noisy input         {mean['noisy']:7.3f} dB")
    print(f"  eager fp32          {mean['eager']:7.3f} dB")
    print(f"  n2n {fast} (fast)     {mean['fast']:7.3f} dB   difference {mean['fast'] - mean['eager']:+.4f} dB "
          f"(largest per image {max(map(abs, per_image)):.4f} dB)", flush=True)

    # Memory: the real command, default options, in a fresh process.
    del timed, eager, fast_runner, net
    mem = peak_rss_of_denoise(args.checkpoint, *large, device=args.device, precision=args.precision, tile=args.tile)
    results["memory"] = mem
    print(f"\nmemory: `{mem['command']}` on a {mem['size']} RGB PNG")
    print(f"  peak RSS            {mem['peak_rss_mib']:7.0f} MiB   ({mem['seconds']:.1f} s including start-up)",
          flush=True)

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        write_text(args.json, json.dumps(results, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return results


if __name__ == "__main__":
    with exit_on_error("python -m n2n.bench.denoise"):
        main()
