"""Training batches of volumes: random 3D crops at the same place in both halves, flips and 90-degree rotations
in the plane normal to the tilt axis, and a random swap of the halves; drawn from the generator the DataModule
saves in checkpoints, so a resumed run draws the batches an uninterrupted one would.

Why that plane: rotations about the tilt axis and mirror images across planes containing it keep the tilt axis
where it is, so the elongation a tomogram has along the beam direction stays a rotation of itself (a 90-degree
turn does move it from z to x; cryoCARE trains with the same turns). A 90-degree turn needs a crop square in
that plane; otherwise only the flips are drawn. Light microscopy: `data.tilt_axis=z` turns within the image
planes and leaves the optical axis alone. `data.tilt_axis=null`: flips of y and x only.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

AXES = {"z": 0, "y": 1, "x": 2}


@dataclass
class VolumeBatches:
    """`pairs`: each volume's two normalised halves as a 2 x Z x Y x X float32 tensor, restricted to the training
    region (the validation slab is not in it). `crop`: (z, y, x) sizes; dims 2 crops single sections (z = 1)
    and returns N x 1 x Y x X batches for a 2D model trained slice by slice."""

    pairs: list[torch.Tensor]
    crop: tuple[int, int, int]
    dims: int = 3
    tilt_axis: str | None = "y"
    flip: bool = True
    swap: bool = True

    def plane(self) -> tuple[int, int]:
        """The two volume axes (0 z, 1 y, 2 x) of the plane normal to the tilt axis."""
        if self.dims == 2:
            return (1, 2)  # sections are y-x planes
        tilt = AXES[self.tilt_axis] if self.tilt_axis else None
        return tuple(a for a in range(3) if a != tilt)[:2] if tilt is not None else (1, 2)

    def draw(self, n: int, generator: torch.Generator, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(source, target): n crops each, N x 1 x Z x Y x X (dims 3) or N x 1 x Y x X (dims 2), on `device`."""
        if self.pairs[0].device != device:
            self.pairs = [p.to(device) for p in self.pairs]
        g = generator
        cz, cy, cx = self.crop
        which = torch.randint(0, len(self.pairs), (n,), device=device, generator=g).tolist()
        corner = torch.rand(n, 3, device=device, generator=g).cpu()
        coins = torch.rand(n, 4, device=device, generator=g).cpu()  # swap, flip a, flip b, rotation
        crops = []
        a, b = self.plane()
        square = self.crop[a] == self.crop[b]
        rotate = self.flip and (self.dims == 3 and self.tilt_axis is not None) and square
        for i, v in enumerate(which):
            pair = self.pairs[v]
            z0, y0, x0 = (int(corner[i, k] * (pair.shape[k + 1] - s + 1)) for k, s in enumerate((cz, cy, cx)))
            crop = pair[:, z0:z0 + cz, y0:y0 + cy, x0:x0 + cx]
            if self.swap and coins[i, 0] < 0.5:
                crop = crop.flip(0)
            if self.flip:
                if coins[i, 1] < 0.5:
                    crop = crop.flip(a + 1)
                if coins[i, 2] < 0.5:
                    crop = crop.flip(b + 1)
            if rotate and coins[i, 3] < 0.5:
                crop = crop.rot90(1, (a + 1, b + 1))
            crops.append(crop)
        batch = torch.stack(crops).contiguous()  # N x 2 x Z x Y x X
        if self.dims == 2:
            batch = batch[:, :, 0]  # N x 2 x Y x X: single sections
        return batch[:, 0:1], batch[:, 1:2]
