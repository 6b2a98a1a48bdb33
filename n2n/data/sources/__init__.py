"""Data sources, chosen by `data.name`. To add one: a `DataSource` subclass in its own module here, an entry
in SOURCES, and `conf/data/NAME.yaml` with its options and their defaults."""
from __future__ import annotations

from typing import Any, Mapping

from n2n.data.sources.base import DataSource, ValidationData, check_min_size
from n2n.data.sources.ee559 import CoursePickles, load_tensor_pair
from n2n.data.sources.folder import ImageFolder, list_images, load_image_folder
from n2n.data.sources.pairs import NoisyPairs
from n2n.data.sources.samples import PHOTOS, SamplePhotos, load_samples
from n2n.data.sources.singles import SingleCaptures
from n2n.data.sources.stacks import FrameStacks
from n2n.data.sources.volumes import HalfVolumes
from n2n.errors import ConfigError

SOURCES: dict[str, type[DataSource]] = {
    cls.name: cls for cls in (SamplePhotos, ImageFolder, CoursePickles, NoisyPairs, FrameStacks, SingleCaptures,
                                     HalfVolumes)}

__all__ = ["SOURCES", "DataSource", "ValidationData", "source_class", "check_min_size", "load_tensor_pair",
           "list_images", "load_image_folder", "load_samples", "resolve_data", "PHOTOS"]


def source_class(data_cfg: Mapping[str, Any], common: frozenset[str]) -> type[DataSource]:
    """The class for `data.name` (or its variant for the files given: DataSource.for_config), after checking that
    every key of the section is one it or the DataModule (`common`) takes."""
    name = data_cfg.get("name")
    if name not in SOURCES:
        raise ConfigError(f"data.name={name!r} is not known; choose one of: {', '.join(SOURCES)}")
    cls = SOURCES[name]
    allowed = common | cls.options
    unknown = sorted(set(data_cfg) - allowed)
    if unknown:
        raise ConfigError(f"data={name}: unknown option(s) {unknown}; allowed: {sorted(allowed)}")
    return cls.for_config(data_cfg)


def resolve_data(config: dict[str, Any]) -> dict[str, Any]:
    """The `data` section's `auto` options decided from its files, in place (DataSource.resolve)."""
    data = config.get("data")
    if isinstance(data, dict) and data.get("name") in SOURCES:
        SOURCES[data["name"]].resolve(data)
    return config
