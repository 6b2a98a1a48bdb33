"""The forward and backward half of a training step, captured once as a CUDA graph and replayed (`perf.cuda_graph`).

Why: at the seed's batch of 8 a step of the paper's U-Net is a few hundred small kernels. Launched one by one
from Python they take longer to launch than the GPU takes to run them, so the GPU waits on the CPU. A CUDA graph
launches the whole sequence with one call, and the CPU is free to run ahead (Lightning's loop, the next batch).

The graph holds: zero the gradients, forward (in autocast where the run is mixed precision), loss, backward.
The optimiser update stays outside it (PyTorch's fused optimisers are a handful of kernels), so Lightning still
counts steps, steps the learning-rate schedule, clips gradients and restores checkpoints exactly as without the
graph, and the learning rate stays a Python float that the graph does not freeze.

On any device other than CUDA the same body runs eagerly every step: same code, same numbers, so this path is
trained and tested on a CPU too.
"""
from __future__ import annotations

from typing import Callable

import torch

from n2n.errors import ConfigError, N2NError

WARMUP_STEPS = 3  # eager steps before the capture: cuDNN picks its algorithms, autograd and allocators settle


class GraphedStep:
    """`step(source, target)` -> the loss (a detached scalar); leaves the gradients in `p.grad` of `params`."""

    def __init__(self, forward: Callable[[torch.Tensor], torch.Tensor], loss_fn: Callable,
                 params: list[torch.nn.Parameter], autocast_dtype: torch.dtype | None = None,
                 warmup_steps: int = WARMUP_STEPS):
        self.forward = forward
        self.loss_fn = loss_fn
        self.params = [p for p in params if p.requires_grad]
        self.autocast_dtype = autocast_dtype
        self.warmup_steps = warmup_steps
        self.graph: torch.cuda.CUDAGraph | None = None
        self.eager_steps = 0
        self._source = self._target = self._loss = None

    @property
    def captured(self) -> bool:
        return self.graph is not None

    def body(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        grads = [p.grad for p in self.params if p.grad is not None]
        if grads:
            torch._foreach_zero_(grads)  # in place: the graph keeps writing into these same tensors
        # Lightning's own autocast caches the weights' low-precision copies; a graph must not reuse a copy made
        # before the capture (it would train against frozen weights), hence a context of its own without the cache.
        with torch.autocast(source.device.type, dtype=self.autocast_dtype or torch.bfloat16,
                            enabled=self.autocast_dtype is not None, cache_enabled=False):
            output = self.forward(source)
        loss = self.loss_fn(output, target)
        loss.backward()
        return loss.detach()

    def __call__(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if source.device.type != "cuda":
            return self.body(source, target)
        if self.graph is None and self.eager_steps < self.warmup_steps:
            self.eager_steps += 1
            # warm-up work on a side stream, as PyTorch asks before a capture
            side = torch.cuda.Stream(source.device)
            side.wait_stream(torch.cuda.current_stream(source.device))
            with torch.cuda.stream(side):
                loss = self.body(source, target)
            torch.cuda.current_stream(source.device).wait_stream(side)
            return loss
        if self.graph is None:
            self._capture(source, target)
        if source.shape != self._source.shape or target.shape != self._target.shape:
            raise ConfigError(f"perf.cuda_graph: the training batch changed shape ({tuple(self._source.shape)} -> "
                              f"{tuple(source.shape)}); a graph replays fixed shapes. Use perf.cuda_graph=false")
        self._source.copy_(source)
        self._target.copy_(target)
        self.graph.replay()
        return self._loss.clone()  # the graph overwrites its output at the next replay

    def _capture(self, source: torch.Tensor, target: torch.Tensor) -> None:
        missing = [p for p in self.params if p.grad is None]
        if missing:  # every gradient must exist before the capture, so that the graph writes into it in place
            raise RuntimeError(f"perf.cuda_graph: {len(missing)} parameter(s) got no gradient in the warm-up steps")
        self._source = torch.empty_like(source)  # keeps channels-last strides
        self._target = torch.empty_like(target)
        self._source.copy_(source)
        self._target.copy_(target)
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                self._loss = self.body(self._source, self._target)
        except RuntimeError as exc:  # an operation that cannot be captured (a host sync, a CPU tensor...)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise N2NError(f"perf.cuda_graph: capturing the training step as a CUDA graph failed ({first}); "
                           f"train without it: perf.cuda_graph=false") from exc
        self.graph = graph
