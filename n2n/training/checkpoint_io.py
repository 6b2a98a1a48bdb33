"""Checkpoints written atomically (n2n.atomic).

Lightning's own checkpoint writer streams into the final file name: a kill -9 or a full disk in the middle of
a save leaves a truncated (or empty) last.ckpt, and the resume that should rescue the run fails on it. This
writer saves under a temporary name beside the file and renames it into place once it is whole.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning.pytorch.plugins.io import TorchCheckpointIO

from n2n.atomic import atomic_output


class AtomicCheckpointIO(TorchCheckpointIO):
    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(path) as tmp:
            super().save_checkpoint(checkpoint, tmp, storage_options)
