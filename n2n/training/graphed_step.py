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


Forward = Callable[[torch.Tensor], torch.Tensor]


class GraphedStep:
    """`step(batch)` -> the loss (a detached scalar); leaves the gradients in `p.grad` of `params`. `batch` is a
    dict of tensors (a training method's prepared batch, n2n/methods/) and `step_loss(forward, batch)` the
    method's loss; every tensor of the batch becomes a static input of the graph."""

    def __init__(self, forward: Forward, step_loss: Callable[[Forward, dict[str, torch.Tensor]], torch.Tensor],
                 params: list[torch.nn.Parameter], autocast_dtype: torch.dtype | None = None,
                 warmup_steps: int = WARMUP_STEPS):
        self.forward = forward
        self.step_loss = step_loss
        self.params = [p for p in params if p.requires_grad]
        self.autocast_dtype = autocast_dtype
        self.warmup_steps = warmup_steps
        self.graph: torch.cuda.CUDAGraph | None = None
        self.eager_steps = 0
        self._batch: dict[str, torch.Tensor] | None = None
        self._loss: torch.Tensor | None = None

    @property
    def captured(self) -> bool:
        return self.graph is not None

    def body(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        grads = [p.grad for p in self.params if p.grad is not None]
        if grads:
            torch._foreach_zero_(grads)  # in place: the graph keeps writing into these same tensors
        device = batch["noisy"].device.type

        def forward(x: torch.Tensor) -> torch.Tensor:
            # Lightning's own autocast caches the weights' low-precision copies; a graph must not reuse a copy made
            # before the capture (it would train against frozen weights), hence a context of its own without it.
            with torch.autocast(device, dtype=self.autocast_dtype or torch.bfloat16,
                                enabled=self.autocast_dtype is not None, cache_enabled=False):
                return self.forward(x)

        loss = self.step_loss(forward, batch)
        loss.backward()
        return loss.detach()

    def __call__(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        device = batch["noisy"].device
        if device.type != "cuda":
            return self.body(batch)
        if self.graph is None and self.eager_steps < self.warmup_steps:
            self.eager_steps += 1
            # warm-up work on a side stream, as PyTorch asks before a capture
            side = torch.cuda.Stream(device)
            side.wait_stream(torch.cuda.current_stream(device))
            with torch.cuda.stream(side):
                loss = self.body(batch)
            torch.cuda.current_stream(device).wait_stream(side)
            return loss
        if self.graph is None:
            self._capture(batch)
        shapes = {k: tuple(v.shape) for k, v in batch.items()}
        captured = {k: tuple(v.shape) for k, v in self._batch.items()}
        if shapes != captured:
            raise ConfigError(f"perf.cuda_graph: the training batch changed shape ({captured} -> {shapes}); a graph "
                              f"replays fixed shapes. Use perf.cuda_graph=false")
        for key, value in batch.items():
            self._batch[key].copy_(value)
        self.graph.replay()
        return self._loss.clone()  # the graph overwrites its output at the next replay

    def _capture(self, batch: dict[str, torch.Tensor]) -> None:
        missing = [p for p in self.params if p.grad is None]
        if missing:  # every gradient must exist before the capture, so that the graph writes into it in place
            raise RuntimeError(f"perf.cuda_graph: {len(missing)} parameter(s) got no gradient in the warm-up steps")
        self._batch = {k: torch.empty_like(v) for k, v in batch.items()}  # keeps channels-last strides
        for key, value in batch.items():
            self._batch[key].copy_(value)
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                self._loss = self.body(self._batch)
        except RuntimeError as exc:  # an operation that cannot be captured (a host sync, a CPU tensor...)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise N2NError(f"perf.cuda_graph: capturing the training step as a CUDA graph failed ({first}); "
                           f"train without it: perf.cuda_graph=false") from exc
        self.graph = graph
