"""Random crops of images of any sizes, drawn for a whole batch in one gather on the training device."""
from __future__ import annotations

import torch


class CropBank:
    """Images of any sizes packed into one flat uint8 buffer, so that the crops of a whole batch are
    one gather on the device."""

    def __init__(self, images: list[torch.Tensor]):
        self.channels = images[0].shape[0]
        self.flat = torch.cat([im.reshape(-1) for im in images])
        sizes = torch.tensor([im.numel() for im in images])
        self.offsets = torch.cumsum(sizes, 0) - sizes
        self.heights = torch.tensor([im.shape[1] for im in images])
        self.widths = torch.tensor([im.shape[2] for im in images])

    def __len__(self) -> int:
        return len(self.heights)

    def to(self, device: torch.device) -> "CropBank":
        for name in ("flat", "offsets", "heights", "widths"):
            setattr(self, name, getattr(self, name).to(device))
        return self

    def sample(self, n: int, size: int, generator: torch.Generator) -> torch.Tensor:
        dev = self.flat.device
        idx = torch.randint(0, len(self), (n,), device=dev, generator=generator)
        h, w = self.heights[idx], self.widths[idx]
        y0 = (torch.rand(n, device=dev, generator=generator) * (h - size + 1)).long()
        x0 = (torch.rand(n, device=dev, generator=generator) * (w - size + 1)).long()
        r = torch.arange(size, device=dev)
        c = torch.arange(self.channels, device=dev)
        view = lambda t: t.view(n, 1, 1, 1)  # noqa: E731
        index = (view(self.offsets[idx]) + c.view(1, -1, 1, 1) * view(h * w)
                 + (view(y0) + r.view(1, 1, -1, 1)) * view(w) + view(x0) + r.view(1, 1, 1, -1))
        return self.flat[index]
