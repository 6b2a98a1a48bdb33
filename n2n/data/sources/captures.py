"""What the sources of real noisy captures share: reading frames at full bit depth, checking that the captures
of one scene agree, splitting off validation scenes, and the validation data without clean images."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from n2n.data.sources.base import DataSource, ValidationData, check_min_size
from n2n.errors import ConfigError, DataError
from n2n.image_files import as_float


class NoisyCaptures(DataSource):
    """Sources of real noisy captures: validated against clean images only where the user gives them."""

    clean_train = False

    @property
    def clean_validation(self) -> bool:
        return bool(self.cfg.get("val_clean_dir"))

    @property
    def copy_validation(self) -> bool:
        return self.frames_per_scene >= 2


def val_fraction(cfg: Mapping[str, Any]) -> float:
    value = cfg.get("val_fraction")
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise ConfigError(f"data.val_fraction={value!r} must be a number between 0 and 1 (exclusive), or null")
    return float(value)


def held_out_fraction(cfg: Mapping[str, Any], source: str, what: str) -> float:
    """For sources of one folder (`data.dir`): the fraction held out for validation, checked against
    `data.val_dir` (exactly one of the two); `what` names the source's scenes in the message."""
    fraction = val_fraction(cfg)
    if cfg.get("val_dir") and fraction:
        raise ConfigError("data.val_fraction splits data.dir for validation; with data.val_dir given, set "
                          "data.val_fraction=null")
    if not cfg.get("val_dir") and not fraction:
        raise ConfigError(f"data={source} needs validation {what}: data.val_dir=DIR, or data.val_fraction=0.1 to "
                          f"hold out a tenth of data.dir")
    return fraction


def split(names: Sequence[str], fraction: float, option: str) -> tuple[list[str], list[str]]:
    """(training, validation) names: every k-th scene held out, k = round(1 / fraction), so that held-out
    scenes are spread over the whole (sorted) folder; at least one of each."""
    names = list(names)
    if len(names) < 2:
        raise DataError(f"{option} holds {len(names)} scene(s): data.val_fraction needs at least 2 (one to train "
                        f"on, one to validate), or give separate validation data")
    every = max(2, round(1 / fraction))
    held = names[::every]
    return [n for n in names if n not in held], held


#: What a file's channel count says about its colours, for messages.
LAYOUTS = {1: "grey", 2: "grey with alpha", 3: "RGB", 4: "RGBA"}


def read_capture(path: str | Path, channels: int) -> tuple[torch.Tensor, str]:
    """One capture as C x H x W (uint8, or int32 holding 16-bit values) with `channels` channels, and its
    colour layout in the file ("grey", "RGB", ...): captures of one scene are compared on what the files hold,
    before grey is replicated to RGB or RGB reduced to grey."""
    from n2n.image_files import read_image, to_chw

    array, _ = read_image(path)
    layout = LAYOUTS.get(array.shape[2], f"{array.shape[2]}-channel")
    try:
        return to_chw(array, channels), layout
    except DataError as exc:
        raise DataError(f"image {path}: {exc}") from None


def check_scene(frames: Sequence[torch.Tensor], labels: Sequence[str], layouts: Sequence[str] | None = None) -> None:
    """The captures of one scene: same size, same channels and bit depth, and (`layouts`) the same colours in
    their files: a grey and an RGB capture are not two captures of one signal."""
    first = frames[0]
    for layout, label in zip((layouts or [])[1:], labels[1:]):
        if layout != layouts[0]:
            raise DataError(f"{labels[0]} is {layouts[0]} but {label} is {layout}: the captures of a scene must have "
                            f"the same channels (convert one of them, or remove the scene)")
    for frame, label in zip(frames[1:], labels[1:]):
        if frame.shape != first.shape or frame.dtype != first.dtype:
            raise DataError(f"{labels[0]} is {describe(first)} but {label} is {describe(frame)}: the captures of a "
                            f"scene must have the same size, channels and bit depth")


def describe(t: torch.Tensor) -> str:
    bits = 8 if t.dtype == torch.uint8 else 16
    return f"{t.shape[-1]}x{t.shape[-2]} {bits}-bit with {t.shape[-3]} channel(s)"


def check_depths(scenes: Sequence[torch.Tensor], names: Sequence[str], option: str) -> None:
    """All scenes of a source at one bit depth: training holds them in one buffer."""
    depths = {t.dtype for t in scenes}
    if len(depths) > 1:
        eight = [n for n, t in zip(names, scenes) if t.dtype == torch.uint8][:3]  # (floats: never mixed)
        raise DataError(f"{option} mixes 8-bit and 16-bit images (8-bit: {', '.join(eight)}): convert them to one "
                        f"bit depth")


def training_frames(scenes: list[torch.Tensor], names: list[str], crop: int, option: str) -> list[torch.Tensor]:
    check_depths(scenes, names, option)
    check_min_size([s[0] for s in scenes], names, crop, option)
    return scenes


def validation_from_scenes(names: list[str], scenes: list[torch.Tensor],
                           clean: list[torch.Tensor] | None) -> ValidationData:
    """Input: the first capture of each scene; `other`: the mean of the other captures (independent of the
    input, and less noisy than one capture when there are several), as floats in [0, 1]."""
    noisy = [s[0] for s in scenes]
    other = [as_float(s[1:]).mean(0) for s in scenes]
    return ValidationData(names, clean, noisy, other)


def clean_references(folder: str | Path | None, names: Sequence[str], channels: int,
                     like: Sequence[torch.Tensor]) -> list[torch.Tensor] | None:
    """Clean images of `folder` matched to the validation scenes by name (file name, or its stem for a
    stack); None without a folder."""
    if folder in (None, ""):
        return None
    from n2n.data.sources.folder import list_images

    files = {p.name: p for p in list_images(folder, "data.val_clean_dir")}
    stems = {p.stem: p for p in files.values()}
    missing = [n for n in names if n not in files and Path(n).stem not in stems]
    if missing:
        raise DataError(f"data.val_clean_dir={folder} has no clean image for {len(missing)} validation scene(s): "
                        f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''} (matched by file name)")
    out = []
    for name, noisy in zip(names, like):
        path = files.get(name) or stems[Path(name).stem]
        image, _ = read_capture(path, channels)
        if image.shape != noisy.shape or image.dtype != noisy.dtype:
            raise DataError(f"clean image {path} is {describe(image)} but its noisy scene {name} is {describe(noisy)}")
        out.append(image)
    return out
