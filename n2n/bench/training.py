"""Training throughput: the project's real Trainer path against a naive seed-style loop, in one run.

    python -m n2n.bench --short            # CPU, under a minute
    python -m n2n.bench                    # full mode, meant for a GPU: every preset at batch 8 and 1024
    python -m n2n.bench --presets graph --batch-sizes 8 --project optimizer.fused=false

The project path is what `train.py` builds (N2NDataModule, N2NModule, lightning.Trainer with n2n's callbacks,
no progress bar and no logger) on course-format data (`data=ee559`, 32x32 RGB pairs of random uint8: content
does not change speed), with the speed switches of each preset (PRESETS below). The naive loop is
written like the seed report's: CPU tensors, a per-item Dataset that flips and swaps each pair, a
DataLoader, batch 8, fp32, SGD and a `.item()` of the loss every step.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback

from n2n.atomic import write_text
from n2n.config import resolve_speed
from n2n.config_schema import TRAIN_OPTIONS, check_options
from n2n.devices import describe_machine, pick_device, synchronize
from n2n.errors import exit_on_error
from n2n.models.unet import UNet
from n2n.training.module import N2NModule

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
EPOCH_IMAGES = 50_000
_FAST = ["trainer.precision=bf16-mixed", "perf.channels_last=true"]
#: Named sets of speed switches; `--project` overrides are added to every preset.
PRESETS = {
    "fp32": ["trainer.precision=32-true", "perf.channels_last=false"],  # eager float32, the naive loop's arithmetic
    "bf16": _FAST,                                  # bf16 autocast and channels-last
    "graph": [*_FAST, "perf.cuda_graph=true"],      # + forward and backward replayed as one CUDA graph
    "compiled": [*_FAST, "perf.cuda_graph=true", "perf.compile=max-autotune-no-cudagraphs"],
}
DEFAULT_PRESETS = {"cuda": ["fp32", "graph", "compiled"], "cpu": ["fp32", "bf16"]}


class _PairDataset(torch.utils.data.Dataset):
    """Seed-style: per-item random swap and flips on CPU uint8 tensors."""

    def __init__(self, a: torch.Tensor, b: torch.Tensor):
        self.pairs = torch.stack([a, b], 1)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> torch.Tensor:
        x = self.pairs[i]
        if torch.rand(1) < 0.5:
            x = x[[1, 0]]
        if torch.rand(1) < 0.5:
            x = x.flip(-1)
        if torch.rand(1) < 0.5:
            x = x.flip(-2)
        return x


def naive_loop(a: torch.Tensor, b: torch.Tensor, steps: int, warmup: int, device: torch.device,
               batch: int = 8, workers: int = 2) -> float:
    """Images/s of the seed report's kind of loop."""
    net = UNet().to(device)
    opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.8)
    loader = torch.utils.data.DataLoader(_PairDataset(a, b), batch_size=batch, shuffle=True, drop_last=True,
                                         num_workers=workers, pin_memory=device.type == "cuda",
                                         persistent_workers=workers > 0)
    it = iter(loader)
    t0 = 0.0
    for step in range(warmup + steps):
        if step == warmup:
            synchronize(device)
            t0 = time.perf_counter()
        try:
            pair = next(it)
        except StopIteration:
            it = iter(loader)
            pair = next(it)
        src = pair[:, 0].to(device).float() / 255
        tgt = pair[:, 1].to(device).float() / 255
        loss = F.mse_loss(net(src), tgt)
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss.item()  # the seed shows the loss every step
    synchronize(device)
    return steps * batch / (time.perf_counter() - t0)


class _Throughput(Callback):
    """Times optimizer steps after `warmup`, with the device synchronised at both ends."""

    def __init__(self, warmup: int):
        self.warmup = warmup
        self.start = self.end = 0.0
        self.steps = 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.warmup and not self.start:
            synchronize(pl_module.device)
            self.start = time.perf_counter()

    def on_train_end(self, trainer, pl_module) -> None:
        synchronize(pl_module.device)
        self.end = time.perf_counter()
        self.steps = trainer.global_step - self.warmup


def project_config(train_pkl: Path, batch: int, overrides: list[str]) -> dict[str, Any]:
    """The resolved train.py config for course-format data at `train_pkl`, plus the user's overrides."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        cfg = compose("train", overrides=[
            "data=ee559", f"data.train_path={train_pkl}", f"data.val_path={train_pkl}", f"data.batch_size={batch}",
            "optimizer=sgd", "scheduler=none", "logger=none", *overrides])
    config = OmegaConf.to_container(cfg, resolve=True)
    check_options(config, TRAIN_OPTIONS)  # the user's overrides get train.py's checks
    return resolve_speed(config)


def project_loop(config: dict[str, Any], steps: int, warmup: int, device: torch.device) -> dict[str, Any]:
    """Images/s of the project's own training path, as train.py builds it."""
    from n2n.config import RunContext
    from n2n.data.datamodule import N2NDataModule
    from n2n.training.run import build_trainer, quiet_lightning

    quiet_lightning()
    torch.manual_seed(0)
    batch = config["data"]["batch_size"]
    datamodule = N2NDataModule(config)
    module = N2NModule(config)
    datamodule.setup("fit")
    timer = _Throughput(warmup)
    accelerator = "gpu" if device.type == "cuda" else "cpu"
    with tempfile.TemporaryDirectory() as run_dir:
        # n2n's own per-step callbacks (divergence guard, interrupt handler, clock...) are part of the real path;
        # no checkpoints: nothing is validated here
        config = {**config, "callbacks": {**config["callbacks"], "checkpoint": None}}
        trainer, _ = build_trainer(config, RunContext(Path(run_dir)), [timer], logger=False,
                                   enable_checkpointing=False, max_steps=warmup + steps, max_epochs=-1,
                                   limit_val_batches=0, num_sanity_val_steps=0, enable_progress_bar=False,
                                   accelerator=accelerator, devices=1)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        trainer.fit(module, datamodule=datamodule)
    seconds = timer.end - timer.start
    return {"images_per_s": timer.steps * batch / seconds,
            "peak_gpu_mib": torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m n2n.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", action="store_true", help="few steps, CPU-sized: under a minute")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=None,
                        help="project batch sizes (default: 8 1024 on a GPU, 8 32 on a CPU)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per measurement")
    parser.add_argument("--presets", nargs="+", choices=list(PRESETS), default=None,
                        help="speed switches of the project path: " + "; ".join(
                            f"{k}: {' '.join(v) or 'none (defaults)'}" for k, v in PRESETS.items())
                        + " (default: fp32 graph compiled on a GPU, fp32 bf16 on a CPU)")
    parser.add_argument("--project", nargs="*", default=[], metavar="OVERRIDE",
                        help="Hydra overrides added to every preset, e.g. optimizer.fused=false")
    parser.add_argument("--images", type=int, default=None, help="training pairs in memory (default 50000)")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers of the naive loop (the seed's: 2)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)

    device = pick_device(args.device, "--device")
    gpu = device.type == "cuda"
    batch_sizes = args.batch_sizes or ([8, 1024] if gpu else [8, 32])
    presets = args.presets or DEFAULT_PRESETS["cuda" if gpu else "cpu"]
    steps = args.steps or (15 if args.short else (1500 if gpu else 100))
    warmup = 5 if args.short else 50
    n = args.images or (2_000 if args.short else EPOCH_IMAGES)
    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    b = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    if gpu:
        torch.backends.cudnn.benchmark = True

    results: dict[str, Any] = {"machine": describe_machine(device), "torch": torch.__version__,
                               "date": time.strftime("%Y-%m-%d"),
                               "mode": "short" if args.short else "full", "project_overrides": args.project,
                               "presets": {name: PRESETS[name] for name in presets}}
    print(f"{results['machine']}, torch {torch.__version__}, {steps} timed steps", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        train_pkl = Path(tmp) / "train_data.pkl"
        torch.save((a, b), train_pkl)
        configs = {(name, batch): project_config(train_pkl, batch, [*PRESETS[name], *args.project])
                   for name in presets for batch in batch_sizes}
        for config in configs.values():
            N2NModule(config)  # refuse bad overrides before timing anything
        naive = naive_loop(a, b, steps, warmup, device, workers=args.workers)
        results["naive_bs8"] = {"images_per_s": naive}
        _print_row("naive seed-style loop, batch 8", naive, naive, None)
        _save(results, args.json)
        for (name, batch), config in configs.items():
            # big batches need fewer steps for a stable figure
            batch_steps = max(50 if gpu else 10, steps * 8 // batch) if batch > 8 else steps
            try:
                r = project_loop(config, batch_steps, warmup, device)
            except Exception as exc:  # one preset failing (a compiler missing, say) must not lose the others
                results[f"project_{name}_bs{batch}"] = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
                print(f"project {name}, batch {batch}: failed: {type(exc).__name__}: {str(exc)[:300]}", flush=True)
                _save(results, args.json)
                continue
            finally:
                if gpu:
                    torch.cuda.empty_cache()
            r["ratio_to_naive"] = r["images_per_s"] / naive
            results[f"project_{name}_bs{batch}"] = r
            _print_row(f"project {name}, batch {batch}", r["images_per_s"], naive, r["peak_gpu_mib"])
            _save(results, args.json)  # after every row: a run stopped half-way keeps what it measured
    return results


def _save(results: dict[str, Any], path: Path | None) -> None:
    if path is not None:
        write_text(path, json.dumps(results, indent=2) + "\n")


def failed(results: dict[str, Any]) -> list[str]:
    return [name for name, r in results.items() if isinstance(r, dict) and "error" in r]


def _print_row(name: str, ips: float, naive: float, peak: float | None) -> None:
    mem = f", peak GPU memory {peak:.0f} MiB" if peak is not None else ""
    print(f"{name:34s} {ips:10,.0f} images/s   50k-image epoch {EPOCH_IMAGES / ips:8.1f} s   "
          f"{ips / naive:5.2f}x naive{mem}", flush=True)


if __name__ == "__main__":
    with exit_on_error("python -m n2n.bench"):
        raise SystemExit(1 if failed(main()) else 0)
