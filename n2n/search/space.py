"""The search space, written in Hydra's override grammar, as Optuna distributions.

`hydra.sweeper.params` and the sweeps on the command line use the grammar of any Hydra sweep:

| override | Optuna distribution |
|---|---|
| `choice(a, b, c)` or `a,b,c` | `CategoricalDistribution` (unordered) |
| `interval(low, high)` | `FloatDistribution(low, high)` (Hydra reads interval bounds as floats) |
| `tag(log, interval(low, high))` | `FloatDistribution(low, high, log=True)` |
| `range(start, stop[, step])` | `IntDistribution` (a stepped `FloatDistribution` for floats); `stop` excluded |
| `tag(log, range(start, stop))` | `IntDistribution(..., log=True)` (step 1) |

Any other override (`data=folder`, `trainer.max_epochs=3`) is passed to every trial as written. A later entry
for the same key wins, so a fixed value on the command line takes a key out of the search.
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from n2n.errors import ConfigError

_PRIMITIVE = (str, int, float, bool)
#: Unquoted words that Hydra reads as something other than a string.
_KEYWORDS = {"true", "false", "null", "nan", "inf"}
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_\-./]*")


@dataclass
class SearchSpace:
    """What each trial samples, and the overrides every trial gets."""

    distributions: dict[str, Any] = field(default_factory=dict)  #: param name -> optuna distribution
    fixed: list[str] = field(default_factory=list)
    #: choices that are override text already (lists, dicts: Optuna's categorical only holds primitives)
    verbatim: dict[str, set[str]] = field(default_factory=dict)

    def overrides(self, params: Mapping[str, Any]) -> list[str]:
        """The overrides of one trial: the fixed ones, then its sampled values."""
        sampled = [f"{name}={value if value in self.verbatim.get(name, ()) else encode(value)}"
                   for name, value in params.items()]
        return [*self.fixed, *sampled]

    def grid(self) -> dict[str, list[Any]]:
        """Every value of each parameter, for Optuna's GridSampler (discrete parameters only)."""
        from optuna.distributions import (
            CategoricalDistribution,
            FloatDistribution,
            IntDistribution,
        )

        out: dict[str, list[Any]] = {}
        for name, dist in self.distributions.items():
            if isinstance(dist, CategoricalDistribution):
                out[name] = list(dist.choices)
            elif isinstance(dist, IntDistribution) and not dist.log:
                out[name] = list(range(dist.low, dist.high + 1, dist.step))
            elif isinstance(dist, FloatDistribution) and dist.step is not None:
                n = round((dist.high - dist.low) / dist.step) + 1
                out[name] = [dist.low + i * dist.step for i in range(n)]
            else:
                raise ConfigError(f"hydra.sweeper.sampler=grid needs discrete parameters (choice(...) or "
                                  f"range(...)); {name} is continuous ({type(dist).__name__})")
        return out


def parse(overrides: Iterable[str]) -> SearchSpace:
    """The search space of `overrides` (the sweeper's `params` as `key=value` strings, then the command line's)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    entries: dict[str, tuple[str, Any, set[str]]] = {}  # key -> (param name or override, distribution, verbatim)
    for line in overrides:
        try:
            (override,) = parser.parse_overrides([line])
        except HydraException as exc:
            raise ConfigError(f"search space: cannot read {line!r}: {str(exc).splitlines()[0]}") from None
        key = override.get_key_element().lstrip("~+")
        entries.pop(key, None)  # the later entry wins, and keeps its place at the end
        if override.is_sweep_override():
            dist, verbatim = _distribution(override, line)
            entries[key] = (override.get_key_element(), dist, verbatim)
        else:
            entries[key] = (override.input_line or line, None, set())
    space = SearchSpace()
    for name, dist, verbatim in entries.values():
        if dist is None:
            space.fixed.append(name)
            continue
        space.distributions[name] = dist
        if verbatim:
            space.verbatim[name] = verbatim
    return space


def _distribution(override: Any, line: str) -> tuple[Any, set[str]]:
    from hydra.core.override_parser.types import Transformer
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    value = override.value()
    tags = set(getattr(value, "tags", ()) or ())
    try:
        if override.is_choice_sweep():
            values = list(override.sweep_iterator())
            texts = list(override.sweep_iterator(transformer=Transformer.encode))
            verbatim = {str(t) for v, t in zip(values, texts) if not isinstance(v, _PRIMITIVE)}
            choices = [v if isinstance(v, _PRIMITIVE) else str(t) for v, t in zip(values, texts)]
            return CategoricalDistribution(choices), verbatim
        if override.is_range_sweep():
            values = sorted(override.sweep_iterator())  # shuffle(range(...)) orders nothing for a sampler
            if not values:
                raise ConfigError(f"search space: {line!r} is an empty range")
            step = abs(value.step)
            if all(isinstance(v, int) for v in values) and isinstance(step, int):
                if "log" in tags and step != 1:
                    raise ConfigError(f"search space: {line!r}: a log range needs step 1 (Optuna's log-scaled "
                                      f"integers have no step)")
                return IntDistribution(values[0], values[-1], log="log" in tags, step=step), set()
            if "log" in tags:
                raise ConfigError(f"search space: {line!r}: a log scale needs integers or an interval: "
                                  f"tag(log, interval(low, high))")
            low = float(values[0])
            return FloatDistribution(low, low + (len(values) - 1) * float(step), step=float(step)), set()
        if override.is_interval_sweep():
            return FloatDistribution(value.start, value.end, log="log" in tags), set()
    except ValueError as exc:  # Optuna's own checks: low > high, a log scale reaching 0
        raise ConfigError(f"search space: {line!r}: {exc}") from None
    raise ConfigError(f"search space: {line!r} is not a choice(...), interval(...) or range(...) sweep")


def encode(value: Any) -> str:
    """`value` as override text that Hydra reads back as the same value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    text = str(value)
    if _PLAIN.fullmatch(text) and text.lower() not in _KEYWORDS:
        return text
    # Hydra's quoted strings: a quote is escaped by a backslash, and backslashes are literal except a run of
    # them before a quote (and before the closing quote), which must be doubled
    text = re.sub(r"(\\*)'", lambda m: m.group(1) * 2 + "\\'", text)
    text = re.sub(r"(\\+)$", lambda m: m.group(1) * 2, text)
    return f"'{text}'"
