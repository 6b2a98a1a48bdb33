"""n2n: Noise2Noise image denoising with PyTorch Lightning and Hydra."""

__version__ = "0.1.0"
