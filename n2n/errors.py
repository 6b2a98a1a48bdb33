"""Errors that the command-line entry points turn into one clear message instead of a traceback."""
from __future__ import annotations

import signal
import sys
from contextlib import contextmanager

#: Exit codes follow the shell's convention for a process ended by a signal.
SIGNAL_EXIT_BASE = 128


class N2NError(Exception):
    """Base class: the message alone must tell the user what was wrong and what is allowed."""


class ConfigError(N2NError):
    """A config option has an unknown name or an out-of-range value."""


class DataError(N2NError):
    """A data file or folder is missing, unreadable or of the wrong structure."""


class CheckpointError(N2NError):
    """A checkpoint cannot be used: missing, corrupt, crafted, or of another architecture."""


class DivergenceError(N2NError):
    """The training loss became NaN or infinite."""


class TrainingInterrupted(N2NError):
    """SIGINT or SIGTERM stopped the run after its checkpoint was written."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return SIGNAL_EXIT_BASE + int(self.signum)


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


@contextmanager
def exit_on_error(program: str = "n2n"):
    """Turn our errors (and OmegaConf's missing or bad values) into one message on stderr and exit code 2, and
    Ctrl-C into one line and exit code 130 (128 + SIGINT), as a shell reports it. Files being written are
    never left partial (n2n.atomic); a training run saves its checkpoint first (its interrupt callback).
    A file or folder the system refuses (OSError naming it) is one line too, and printing never fails on a
    file name that is not valid UTF-8 (shown with backslash escapes)."""
    _printable_streams()
    try:
        yield
    except N2NError as exc:
        print(f"{program}: error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    except OSError as exc:
        if exc.filename is None:
            raise
        print(f"{program}: error: {exc.filename}: {exc.strerror or exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        _interrupted(program)
    except Exception as exc:
        if not _is_omegaconf_error(exc):
            raise
        message = str(exc).splitlines()[0]
        key = getattr(exc, "full_key", None)
        print(f"{program}: error: config {key + ': ' if key else ''}{message}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None


def _printable_streams() -> None:
    """stdout and stderr write what they cannot encode as backslash escapes instead of raising
    UnicodeEncodeError half-way through a command (file names are bytes on POSIX, not always UTF-8)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError, OSError):  # replaced streams (pytest's capture, a notebook)
            pass


def _is_omegaconf_error(exc: Exception) -> bool:
    """Whether `exc` is OmegaConf's, without importing OmegaConf (slow: `n2n --help` does without it); an
    OmegaConf error can only come from an OmegaConf that is imported already."""
    errors = sys.modules.get("omegaconf.errors")
    return errors is not None and isinstance(exc, errors.OmegaConfBaseException)


@contextmanager
def imports_shielded(program: str = "n2n"):
    """Hold Ctrl-C while heavy libraries import, then exit with one line: an interrupt in the middle of an import
    leaves the library half-initialised, and the next import of it fails in odd ways (seen: numpy recursing
    until RecursionError inside scipy's import), with a traceback instead of the one line."""
    hit: list[int] = []
    try:
        previous = signal.signal(signal.SIGINT, lambda signum, frame: hit.append(signum))
    except ValueError:  # not the main thread: nothing to shield
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if hit:
        _interrupted(program)


def _interrupted(program: str) -> None:
    print(f"{program}: interrupted (Ctrl-C)", file=sys.stderr, flush=True)
    raise SystemExit(SIGNAL_EXIT_BASE + int(signal.SIGINT)) from None
