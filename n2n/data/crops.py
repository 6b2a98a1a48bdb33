"""Random crops of images of any sizes, drawn for a whole batch in one gather on the training device."""
from __future__ import annotations

import torch


class CropBank:
    """Images of any sizes packed into one flat buffer, so that the crops of a whole batch are one gather on
    the device. Each image is F x C x H x W: F frames of one scene (F = 1 for clean images, 2 for noisy pairs,
    N for frame stacks; C x H x W is taken as F = 1). `sample` crops frame 0; `sample_pairs` crops two
    different frames of one scene at the same position."""

    def __init__(self, images: list[torch.Tensor]):
        images = [im if im.dim() == 4 else im[None] for im in images]
        self.channels = images[0].shape[1]
        self.flat = torch.cat([im.reshape(-1) for im in images])
        sizes = torch.tensor([im.numel() for im in images])
        self.offsets = torch.cumsum(sizes, 0) - sizes
        self.frames = torch.tensor([im.shape[0] for im in images])
        self.heights = torch.tensor([im.shape[2] for im in images])
        self.widths = torch.tensor([im.shape[3] for im in images])

    def __len__(self) -> int:
        return len(self.heights)

    def to(self, device: torch.device) -> "CropBank":
        for name in ("flat", "offsets", "frames", "heights", "widths"):
            setattr(self, name, getattr(self, name).to(device))
        return self

    def _windows(self, n: int, size: int, generator: torch.Generator):
        """Which image and where, for n crops: (image index, flat index of the crop in frame 0, h * w)."""
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
        return idx, index, view(h * w * self.channels)

    def sample(self, n: int, size: int, generator: torch.Generator) -> torch.Tensor:
        """n crops (n, C, size, size) of frame 0 of random images, at random positions."""
        _, index, _ = self._windows(n, size, generator)
        return self.flat[index]

    def sample_any(self, n: int, size: int, generator: torch.Generator) -> torch.Tensor:
        """n crops (n, C, size, size), each of a random frame of a random scene, at random positions."""
        idx, index, frame_size = self._windows(n, size, generator)
        which = (torch.rand(n, device=self.flat.device, generator=generator) * self.frames[idx]).long()
        return self.flat[index + which.view(n, 1, 1, 1) * frame_size]

    def sample_all(self, n: int, size: int, generator: torch.Generator) -> torch.Tensor:
        """n crops (n, F, C, size, size) of all F frames of random scenes, at the same random position (every
        scene must have F frames)."""
        _, index, frame_size = self._windows(n, size, generator)
        frames = int(self.frames[0])
        return torch.stack([self.flat[index + f * frame_size] for f in range(frames)], dim=1)

    def sample_pairs(self, n: int, size: int, generator: torch.Generator) -> torch.Tensor:
        """n pairs (n, 2, C, size, size): two different frames of one random scene, cropped at the same random
        position; every ordered pair of frames is equally likely (N frames: N (N - 1) pairs)."""
        idx, index, frame_size = self._windows(n, size, generator)
        frames = self.frames[idx]
        first = (torch.rand(n, device=frames.device, generator=generator) * frames).long()
        step = 1 + (torch.rand(n, device=frames.device, generator=generator) * (frames - 1)).long()
        second = (first + step) % frames
        return torch.stack([self.flat[index + first.view(n, 1, 1, 1) * frame_size],
                            self.flat[index + second.view(n, 1, 1, 1) * frame_size]], dim=1)
