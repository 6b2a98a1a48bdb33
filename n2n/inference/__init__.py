"""Inference apart from training: checkpoints, runners (PyTorch, ONNX), tiling and evaluation."""
