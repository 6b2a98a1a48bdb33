"""`torch.load` restricted to tensors and plain containers, with one clear message when a file is refused.

Pickles and checkpoints may come from strangers: unpickling arbitrary objects can run code, so only the
weights-only unpickler is ever used.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import torch

from n2n.errors import N2NError


def _weights_only_detail(exc: BaseException) -> str:
    text = str(exc)
    marker = "WeightsUnpickler error:"
    if marker in text:
        detail = text.split(marker, 1)[1].strip().splitlines()
        return detail[0] if detail else ""
    return text.splitlines()[0] if text else type(exc).__name__


def safe_torch_load(path: str | Path, what: str, error: type[N2NError], expected: str) -> object:
    """Load `path` with the weights-only unpickler, or raise `error` naming `what` and the file."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{what} {path} does not exist (expected {expected})")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise error(
            f"{what} {path} was refused: it is not {expected} holding only tensors and plain containers "
            f"(it is corrupt, or holds objects that could run code when loaded: {_weights_only_detail(exc)})"
        ) from None
    except MemoryError:
        raise error(f"{what} {path} asks for more memory than this machine has: it is corrupt or not "
                    f"{expected}") from None
    except Exception as exc:  # noqa: BLE001 - torch.load fails in many ways on garbage (IndexError, struct.error, ...)
        detail = str(exc).splitlines()[0] if str(exc) else ""
        raise error(f"{what} {path} is not a readable torch file ({expected}): {type(exc).__name__}"
                    f"{': ' + detail if detail else ''}") from None
