"""Benchmarks: `python -m n2n.bench` (training throughput) and `python -m n2n.bench.denoise` (denoising)."""
