"""Every file n2n writes goes through here: written under a temporary name in the same folder, flushed to disk,
then renamed into place. A reader (or a resume after kill -9, a power cut, a full disk) therefore finds either
the previous file or the new one, whole, never a partial file under the real name. The rename is atomic because
the temporary file is in the target's own folder, hence on its filesystem (a run folder on a network or scratch
filesystem included); a failure leaves the previous file in place and says so in one line.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from n2n.errors import DataError


def temporary_name(path: Path) -> Path:
    """A name beside `path`, hidden, unique to this process, keeping the extension (writers choose the format
    from it)."""
    return path.with_name(f".{path.stem}.{os.getpid()}.partial{path.suffix}")


@contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yields a temporary path to write to; when the block ends without error it replaces `path`. An OSError
    (disk full, permission denied, ...) becomes a DataError naming `path`; the temporary file is always removed."""
    path = Path(path)
    tmp = temporary_name(path)
    try:
        yield tmp
        _fsync(tmp)
        # some writers (safetensors, tempfile-based ones) create 0600 files: give the file the permissions a
        # plain open() would have, or those of the file it replaces
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else _default_mode())
        os.replace(tmp, path)
    except OSError as exc:
        kept = "the previous file is kept" if path.exists() else "nothing was written"
        raise DataError(f"cannot write {path}: {exc.strerror or exc}; {kept}") from None
    finally:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass


@contextmanager
def atomic_folder(path: str | Path) -> Iterator[Path]:
    """atomic_output for a format that is a folder (Zarr): yields a temporary folder name beside `path`; when the
    block ends without error the folder replaces `path` (a previous folder is moved aside first and removed after),
    so `path` holds the old folder or the new one, whole. OSError becomes a DataError naming `path`."""
    import shutil

    path = Path(path)
    tmp = temporary_name(path)
    old = path.with_name(f".{path.stem}.{os.getpid()}.old{path.suffix}")
    try:
        yield tmp
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
    except OSError as exc:
        if old.exists() and not path.exists():
            os.replace(old, path)
        kept = "the previous one is kept" if path.exists() else "nothing was written"
        raise DataError(f"cannot write {path}: {exc.strerror or exc}; {kept}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def _default_mode() -> int:
    """0o666 less the process's umask (read without changing it where /proc allows)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def _fsync(path: Path) -> None:
    """The data on disk before the rename makes it visible (else a crash could leave an empty file behind it)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_text(path: str | Path, text: str) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(text)


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)
