"""`torch.load` restricted to tensors and plain containers, with one clear message when a file is refused.

Pickles and checkpoints may come from strangers: unpickling arbitrary objects can run code, so only the
weights-only unpickler is ever used.
"""
from __future__ import annotations

import io
import pickle
import pickletools
import zipfile
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


def check_archive(path: Path, what: str, error: type[N2NError], max_bytes: int | None = None,
                  limit_hint: str = "") -> None:
    """Refuse, before torch.load allocates anything, a file whose tensors could not all be in it: torch.load
    allocates each tensor at the size the archive declares, so a small file declaring gigabytes (a compressed
    entry, or the pre-1.6 format, which declares sizes before their data) would take the machine down.
    torch.save writes uncompressed zip entries, whose declared sizes the file's own size bounds. `max_bytes`
    bounds the tensors' total size further (`limit_hint`: how to raise it)."""
    if not zipfile.is_zipfile(path):
        raise _not_an_archive(path, what, error)
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise error(f"{what} {path} is not a readable torch file: {exc}") from None
    packed = [e.filename for e in entries if e.compress_type != zipfile.ZIP_STORED]
    declared = sum(e.file_size for e in entries)
    if packed or declared > path.stat().st_size:
        raise error(f"{what} {path} declares {declared:,} bytes of content in a {path.stat().st_size:,}-byte file"
                    f"{' (compressed entries: ' + ', '.join(packed[:3]) + ')' if packed else ''}: torch.save "
                    f"never writes that; it is corrupt or crafted, refused before loading")
    tensors = sum(e.file_size for e in entries if "/data/" in e.filename)  # torch.save: archive/data/<key>
    if max_bytes is not None and tensors > max_bytes:
        raise error(f"{what} {path} holds {tensors:,} bytes of tensors, more than the limit of {max_bytes:,}"
                    f"{'; ' + limit_hint if limit_hint else ''}")


#: Pickle opcodes that import or call something: what makes unpickling run code.
_CODE_OPCODES = frozenset({"GLOBAL", "STACK_GLOBAL", "REDUCE", "INST", "OBJ", "NEWOBJ", "NEWOBJ_EX", "BUILD"})


def _not_an_archive(path: Path, what: str, error: type[N2NError]) -> N2NError:
    """Why a file that is no zip archive is refused, found by reading its pickle opcodes (pickletools runs
    nothing): a plain pickle that imports or calls something, or else a file torch.save did not write whole."""
    with path.open("rb") as f:
        head = f.read(1 << 20)
    try:
        ops = {op.name for op, _, _ in pickletools.genops(io.BytesIO(head))}
    except Exception:  # noqa: BLE001 - not a pickle, or a truncated one
        ops = set()
    if ops & _CODE_OPCODES:
        return error(f"{what} {path} was refused: it is a plain pickle that imports or calls objects, which could "
                     f"run code when loaded; only torch.save archives (PyTorch >= 1.6) of tensors are read")
    return error(f"{what} {path} is not a readable torch file: not a zip archive as torch.save writes (PyTorch "
                 f">= 1.6) but truncated, corrupt, or in torch's legacy format, which n2n does not load (it "
                 f"allocates declared tensor sizes before reading them): re-save it with torch.save")


def safe_torch_load(path: str | Path, what: str, error: type[N2NError], expected: str,
                    max_bytes: int | None = None, limit_hint: str = "") -> object:
    """Load `path` with the weights-only unpickler, or raise `error` naming `what` and the file. The archive
    is checked first (check_archive): nothing is allocated for sizes the file cannot hold."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{what} {path} does not exist (expected {expected})")
    check_archive(path, what, error, max_bytes, limit_hint)
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
