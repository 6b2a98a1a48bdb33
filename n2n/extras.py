"""Optional dependencies: each feature that needs one imports it through `require_extra`, which turns a missing
package into one line naming the extra that installs it (pyproject.toml, [project.optional-dependencies]):

    ort = require_extra("onnxruntime", "export", "running an ONNX model")

The core install (`pip install -e .`) trains, evaluates and denoises; the extras add ONNX (`export`), the
report figure (`report`), the Optuna search (`hpo`), the MLflow and W&B loggers (`loggers`) and Zarr volumes
(`volumes`); `dev` has them all. `MissingExtra` is an N2NError, so the commands print it as one line and exit
with code 2.
"""
from __future__ import annotations

import importlib
from types import ModuleType

from n2n.errors import N2NError

#: Each optional top-level module and the extra that installs it (a test checks this against pyproject.toml).
EXTRA_OF = {"onnx": "export", "onnxruntime": "export", "matplotlib": "report", "optuna": "hpo",
            "mlflow": "loggers", "wandb": "loggers", "zarr": "volumes"}


class MissingExtra(N2NError):
    """An optional package that a feature needs is not installed (or cannot be imported)."""


def require_extra(module: str, extra: str | None = None, for_what: str | None = None) -> ModuleType:
    """Import `module` and return it. If it is not installed, raise MissingExtra: '`for_what` needs `module`,
    which is not installed: pip install -e ".[extra]" in the n2n folder, or pip install REQUIREMENTS'.
    `extra` defaults to EXTRA_OF of the top-level package; `for_what` names the feature ("ONNX export")."""
    top = module.partition(".")[0]
    extra = extra or EXTRA_OF.get(top)
    if extra is None:
        raise ValueError(f"require_extra: no extra is known for {module!r}; pass extra=")
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtra(missing_message(module, extra, for_what, exc)) from None


def missing_message(module: str, extra: str, for_what: str | None, exc: ImportError | None = None) -> str:
    """The one line MissingExtra carries."""
    who = f"{for_what} needs {module}" if for_what else f"{module} is an optional package"
    install = f'pip install -e ".[{extra}]" in the n2n folder, or pip install {" ".join(requirements(extra))}'
    missing = isinstance(exc, ModuleNotFoundError) and (exc.name or "").partition(".")[0] == module.partition(".")[0]
    if exc is None or missing:
        return f"{who}, which is not installed: {install}"
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"{who}, which is installed but cannot be imported ({reason}): reinstall it: {install}"


def requirements(extra: str) -> list[str]:
    """The requirements of `extra` as n2n's installed metadata lists them, quoted for a shell
    (['"onnx>=1.15"', '"onnxruntime>=1.17"']); the extra's modules by name when n2n's metadata is not there."""
    from importlib import metadata

    try:
        listed = metadata.requires("n2n") or []
    except metadata.PackageNotFoundError:
        listed = []
    found = []
    for line in listed:
        spec, _, marker = line.partition(";")
        if f'extra == "{extra}"' in marker.replace("'", '"'):
            found.append(f'"{spec.strip()}"' if any(c in spec for c in "<>=!~[ ") else spec.strip())
    return found or sorted(m for m, e in EXTRA_OF.items() if e == extra)
