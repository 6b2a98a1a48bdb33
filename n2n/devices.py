"""Devices: which one a command runs on, whether it has native bfloat16, waiting for it, and naming it.

Training picks its device through `trainer.accelerator` (Lightning), every other command through a
`device` option (auto | cpu | cuda[:N]); both are decided here, so that "auto" means the same everywhere.
"""
from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any, Mapping

import torch

from n2n.errors import ConfigError

DEVICE_CHOICES = "auto, cpu or cuda[:N]"


def training_device(trainer_cfg: Mapping[str, Any] | None) -> torch.device:
    """The device `trainer.accelerator` will train on (Lightning's `auto` picks CUDA where there is one)."""
    accelerator = str((trainer_cfg or {}).get("accelerator", "auto")).lower()
    if accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def pick_device(name: str, option: str = "device") -> torch.device:
    """`auto` (CUDA where there is a GPU, else the CPU), `cpu` or `cuda[:N]`; ConfigError naming `option`
    for anything else, or for CUDA on a machine without it."""
    name = str(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda") and not (name.startswith("cuda:") and name[5:].isdigit()):
        raise ConfigError(f"{option}={name!r} must be {DEVICE_CHOICES}")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"{option}={name} was asked for, but PyTorch sees no CUDA device")
    return torch.device(name)


def fast_bf16(device: str | torch.device = "cpu") -> bool:
    """Whether bfloat16 convolutions are native (hence faster than float32) on `device`.

    CPU: oneDNN (torch.backends.mkldnn) and an x86 CPU with AMX-BF16 or AVX512-BF16 (Sapphire Rapids and
    later Xeons, Cooper Lake, Zen 4); without them oneDNN emulates bf16, which is no faster than float32.
    CUDA: a GPU with native bf16 (Ampere and later).
    """
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type != "cpu" or not torch.backends.mkldnn.is_available():
        return False
    get_capabilities = getattr(torch.cpu, "get_capabilities", None)
    if get_capabilities is None:  # PyTorch before torch.cpu.get_capabilities
        return bool(getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)()
                    or getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)())
    caps = get_capabilities()
    return bool(caps.get("amx_bf16") or caps.get("avx512_bf16"))


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work, so that a wall-clock reading means the work is done."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def describe_machine(device: str | torch.device | None = None) -> str:
    """What a speed figure must name: the GPU, or the CPU model, its cores and bfloat16 hardware."""
    device = torch.device(device) if device is not None else pick_device("auto")
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    caps = getattr(torch.cpu, "get_capabilities", lambda: {})()
    features = [label for key, label in (("avx512_f", "AVX-512"), ("avx512_bf16", "AVX512-BF16"),
                                         ("amx_bf16", "AMX-BF16")) if caps.get(key)]
    return (f"CPU {name}, {os.cpu_count()} cores, {torch.get_num_threads()} threads"
            + (f", {', '.join(features)}" if features else ""))
