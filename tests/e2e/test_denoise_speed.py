"""The denoising benchmark's short mode runs end to end and reports consistent figures (no timing assertions)."""
from __future__ import annotations

import json

import pytest
import torch

from helpers.files import save_checkpoint
from helpers.images import smooth_image
from n2n.bench.denoise import main
from n2n.image_files import write_image
from n2n.models.unet import UNet


@pytest.mark.slow  # a benchmark run, ~15 s on 2 cores
def test_short_benchmark_writes_consistent_json(tmp_path, capsys):
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "tiny.ckpt", UNet(3, 3))
    images = tmp_path / "images"
    images.mkdir()
    for i, (h, w) in enumerate([(48, 64), (40, 50), (64, 32)]):
        write_image(images / f"im{i}.png", smooth_image(h, w, seed=i))
    out = tmp_path / "bench.json"
    results = main([str(tmp_path / "tiny.ckpt"), "--short", "--images", str(images), "--precision", "bf16",
                    "--size", "96x64", "--runs", "1", "--limit", "2", "--large", "320x200", "--json", str(out)])
    saved = json.loads(out.read_text())
    assert saved == json.loads(json.dumps(results))
    assert saved["mode"] == "short" and saved["precision"] == "bf16" and saved["torch"] == torch.__version__
    speed = saved["speed"]
    assert speed["size"] == "96x64" and sorted(speed["times"]) == ["eager", "fast", "fp32"]
    assert all(len(t) == 1 for t in speed["times"].values())
    assert speed["speedup"] == pytest.approx(speed["eager_fp32_s"] / speed["fast_s"])
    quality = saved["quality"]
    assert quality["count"] == 2 and sorted(quality["per_image"]) == ["im0.png", "im1.png"]
    assert quality["diff_db"] == pytest.approx(quality["psnr_fast"] - quality["psnr_eager_fp32"])
    assert abs(quality["diff_db"]) < 1  # random weights: bf16 and fp32 outputs still nearly agree
    assert 5 < quality["psnr_noisy"] < 30 and quality["psnr_eager_fp32"] > 0
    memory = saved["memory"]
    assert memory["exit_code"] == 0 and memory["size"] == "320x200"
    assert 50 < memory["peak_rss_mib"] < 4096  # a real process's peak (PyTorch alone takes > 50 MiB)
    printed = capsys.readouterr().out
    assert "eager fp32" in printed and "peak RSS" in printed and "difference" in printed
