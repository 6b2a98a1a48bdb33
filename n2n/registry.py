"""Building a component by name from a registry, with messages that say what is allowed.

Configs choose activations, norms, schedules, noise models and losses as `{"name": ..., **options}`;
the registry maps each name to a factory whose keyword parameters are the allowed options.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, Mapping

from n2n.errors import ConfigError


def build_from_registry(registry: Mapping[str, Callable[..., Any]], cfg: Any, section: str) -> Any:
    """`registry[cfg["name"]](**other keys)`; an unknown name or option raises ConfigError naming `section`."""
    if not isinstance(cfg, Mapping):
        raise ConfigError(f"{section} must be a mapping with a 'name', got {cfg!r}")
    options = dict(cfg)
    name = options.pop("name", None)
    if name not in registry:
        raise ConfigError(f"{section}.name={name!r} is not known; choose one of: {', '.join(sorted(registry))}")
    allowed = inspect.signature(registry[name]).parameters
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        taken = ", ".join(allowed) or "no options"
        raise ConfigError(f"{section}.{unknown[0]} is not an option of {section} '{name}'; it takes: {taken}")
    return registry[name](**options)
