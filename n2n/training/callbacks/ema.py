"""`callbacks.ema`: an exponential moving average of the weights, through Lightning's own WeightAveraging.

Lightning's callback keeps the average beside the module, swaps it in for every validation, writes it as the
checkpoint's `state_dict` (the weights being trained go to `current_model_state`, the average's step count to
`averaging_state`) and restores both on resume. So everything that reads a checkpoint's `state_dict` (eval.py,
`n2n denoise`, `n2n export`, `scripts/model_card.py bundle`) uses the averaged weights, and a resumed run
continues the same average. After the last step the average replaces the trained weights.

The decay is warmed up as in TensorFlow's ExponentialMovingAverage (num_updates): after n updates the average
moves with min(decay, (1 + n) / (10 + n)). Lightning's EMAWeightAveraging uses the decay from the first step,
which on a run of a few thousand steps leaves the start-up weights a visible share of the average
(0.999^3000 = 5 %, 0.999^300 = 74 %).
"""
from __future__ import annotations

import torch
from lightning.pytorch.callbacks import WeightAveraging

from n2n.errors import ConfigError


class EMA(WeightAveraging):
    def __init__(self, decay: float):
        if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0 < decay < 1:
            raise ConfigError(f"callbacks.ema={decay!r} must be a decay between 0 and 1 (e.g. 0.999), or null for "
                              f"no weight averaging")
        self.decay = float(decay)
        super().__init__(avg_fn=self.average)

    def average(self, averaged: torch.Tensor, current: torch.Tensor, num_averaged: torch.Tensor) -> torch.Tensor:
        """One update of one tensor; called by torch's AveragedModel with the number of updates so far."""
        if not averaged.is_floating_point():  # counters (batch norm's num_batches_tracked): the current value
            return current
        # as tensors on the weights' device: reading the count back to the host would synchronise every step
        decay = ((1 + num_averaged) / (10 + num_averaged)).clamp(max=self.decay)
        return averaged + (current - averaged) * (1 - decay).to(averaged.dtype)
