"""n2n: Noise2Noise image denoising with PyTorch Lightning and Hydra.

The Python API (n2n.inference.denoiser), imported on first use so that `import n2n` stays light:
    n2n.load(model)      a Denoiser for a bundled model's name or a .ckpt / .safetensors / .onnx file
    n2n.denoise(image)   denoise a NumPy array, PIL image or tensor with the bundled model for its channels
    n2n.denoise_zero_shot(image)   Zero-Shot Noise2Noise: a small network fitted to this image alone
    n2n.models()         the bundled models' names
"""

__version__ = "0.1.0"
__all__ = ["Denoiser", "denoise", "denoise_zero_shot", "load", "models"]


def models() -> list[str]:
    """The names of the bundled models (`n2n models` shows their scores)."""
    from n2n import pretrained

    return pretrained.names()


def __getattr__(name: str):
    if name in ("Denoiser", "denoise", "denoise_zero_shot", "load"):
        from n2n.inference import denoiser

        return getattr(denoiser, name)
    raise AttributeError(f"module 'n2n' has no attribute {name!r}")
