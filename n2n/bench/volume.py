"""Speed and memory of volumes: training steps per second and peak memory for 3D crops, and the time and peak
memory of denoising a 512 x 512 x 128 volume with the default tiles of `n2n denoise` (docs/volumes.md).

    python -m n2n.bench.volume                       # CPU: 32^3 and 64^3 crops, one tile of the 512 x 512 x 128 run
    python -m n2n.bench.volume --tiles 0             # every tile (on a GPU, or with time to spare)
    python -m n2n.bench.volume --crops 32 --steps 5 --model-depth 3 --model-features 16

Each case runs in a fresh process, so that its peak resident memory (ru_maxrss; on CUDA
torch.cuda.max_memory_allocated) is its own. Training: the default U-Net (model.depth 5, 48 features) in 3D,
Adam, batch `--batch`, random crops in float32 (bf16 where the device has it natively and --bf16 is given),
timed after one warm-up step. Denoising: n2n.volumes.tiling with plan_tiles for `--max-memory`; with
`--tiles N` only the first N tiles are run and the full time is the mean per tile times the tile count.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def train_case(crop: int, batch: int, steps: int, depth: int, features: int, device: str, bf16: bool) -> dict:
    import torch

    from n2n.models.unet import UNet

    torch.manual_seed(0)
    net = UNet(1, 1, dims=3, depth=depth, features=features).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    x = torch.randn(batch, 1, crop, crop, crop, device=device)
    y = torch.randn_like(x)

    def step():
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=bf16):
            loss = torch.nn.functional.mse_loss(net(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    step()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = (time.perf_counter() - start) / steps
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else _peak_mb()
    return {"case": f"train {crop}^3 x {batch}", "steps_per_s": round(1 / seconds, 4), "s_per_step": round(seconds, 2),
            "peak_mb": round(peak), "precision": "bf16-mixed" if bf16 else "float32"}


def denoise_case(shape: tuple[int, int, int], max_memory: str, tiles: int, depth: int, features: int,
                 device: str) -> dict:
    import numpy as np
    import torch

    from n2n.models.unet import UNet
    from n2n.volumes.denoise import parse_memory
    from n2n.volumes.tiling import denoise_volume, plan_tiles, windows

    torch.manual_seed(0)
    net = UNet(1, 1, dims=3, depth=depth, features=features).to(device).eval()
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    tile, overlap = plan_tiles(shape, depth, features, parse_memory(max_memory))
    all_windows = windows(shape, tile, overlap, 2 ** depth)
    done = []

    def limited(it):
        for i, w in enumerate(it):
            if tiles and i >= tiles:
                return
            done.append(w)
            yield w

    def run(t):
        return net.forward_aligned(t.to(device)).float().cpu()

    start = time.perf_counter()
    denoise_volume(run, x, depth, tile, overlap, progress=limited)
    seconds = time.perf_counter() - start
    total = seconds / max(len(done), 1) * len(all_windows)
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else _peak_mb()
    return {"case": f"denoise {' x '.join(map(str, shape))} (Z x Y x X)", "tile": list(tile), "overlap": overlap,
            "tiles": len(all_windows), "tiles_run": len(done), "seconds_run": round(seconds, 1),
            "seconds_total": round(total, 1), "estimated": len(done) < len(all_windows), "peak_mb": round(peak),
            "max_memory": max_memory}


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(prog="python -m n2n.bench.volume", description=__doc__.splitlines()[0])
    parser.add_argument("--crops", type=int, nargs="*", default=[32, 64])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--model-depth", type=int, default=5)
    parser.add_argument("--model-features", type=int, default=48)
    parser.add_argument("--shape", type=int, nargs=3, default=[128, 512, 512], metavar=("Z", "Y", "X"))
    parser.add_argument("--max-memory", default="8G")
    parser.add_argument("--tiles", type=int, default=1, help="run only the first N tiles (0: all)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--bf16", action="store_true", help="bf16-mixed training where the device has it natively")
    parser.add_argument("--skip-denoise", action="store_true")
    parser.add_argument("--json", default=None, help="write the results here too")
    parser.add_argument("--case", default=None, help=argparse.SUPPRESS)  # one case, in this process
    args = parser.parse_args(argv)
    if args.case:
        kind, value = args.case.split(":")
        if kind == "train":
            result = train_case(int(value), args.batch, args.steps, args.model_depth, args.model_features,
                                args.device, args.bf16)
        else:
            result = denoise_case(tuple(args.shape), args.max_memory, args.tiles, args.model_depth,
                                  args.model_features, args.device)
        print(json.dumps(result), flush=True)
        return [result]
    from n2n.devices import describe_machine

    cases = [f"train:{c}" for c in args.crops] + ([] if args.skip_denoise else ["denoise:0"])
    results = []
    given = list(argv if argv is not None else sys.argv[1:])
    base = [a for i, a in enumerate(given)  # the cases run with the same options, less --json FILE
            if not a.startswith("--json") and not (i > 0 and given[i - 1] == "--json")]
    for case in cases:
        out = subprocess.run([sys.executable, "-m", "n2n.bench.volume", *base, "--case", case], capture_output=True,
                             text=True)
        if out.returncode != 0:
            raise SystemExit(f"{case} failed:\n{out.stderr[-2000:]}")
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(json.dumps(results[-1]), flush=True)
    machine = describe_machine(args.device)
    print(f"machine: {machine}; model depth {args.model_depth}, {args.model_features} features", flush=True)
    if args.json:
        from n2n.atomic import write_text

        write_text(args.json, json.dumps({"machine": machine, "argv": base, "results": results}, indent=2))
    return results


if __name__ == "__main__":
    main()
