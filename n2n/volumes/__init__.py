"""Volumes: 3D denoising of half tomograms and light-microscopy stacks (docs/volumes.md).

- `io`: reading MRC (memory-mapped, header checked) and TIFF stacks as Z x Y x X, writing them back with their
  voxel size, origin and extended header;
- `normalize`: per-volume mean / standard deviation, stored with a model and undone at inference;
- `batches`: 3D random crops with flips, 90-degree rotations about the tilt axis and even/odd swap;
- `validation`: the held-out slab's scores in the training module;
- `tiling` and `denoise`: overlapping 3D tiles within a memory bound, and `n2n denoise VOLUME`.
"""
