"""The options of `n2n denoise` that only volumes use; kept free of heavy imports (the parser serves `--help`).
The work is n2n.volumes.denoise's: n2n.cli.denoise hands it volume inputs, --pair, --slices and 3D models."""
from __future__ import annotations

import argparse

#: Default memory bound of `n2n denoise` on volumes: a 1024 x 1024 x 300 tomogram (1.2 GB out) fits in it.
DEFAULT_MAX_MEMORY = "8G"


def add_volume_options(parser: argparse.ArgumentParser) -> None:
    """The options of `n2n denoise` that only volumes use."""
    group = parser.add_argument_group("volumes (MRC, TIFF stacks, Zarr; docs/volumes.md)")
    group.add_argument("--pair", metavar="ODD", default=None,
                       help="the other half of the one input volume (e.g. odd frames): both are denoised and "
                       "averaged")
    group.add_argument("--slices", action="store_true",
                       help="denoise a volume section by section with a 2D model")
    group.add_argument("--max-memory", metavar="SIZE", default=DEFAULT_MAX_MEMORY,
                       help="memory for a volume's (or micrograph's) output and tiles, e.g. 16G or 512M; the tile "
                       "size follows from it (default %(default)s); --tile N and --overlap N set them in voxels "
                       "(pixels for a 2D model) instead")
