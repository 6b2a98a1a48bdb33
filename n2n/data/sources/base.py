"""What every data source is: a class that declares its options, reads its files once and says what it holds.

A source turns what the user has into uint8 tensors C x H x W (or stacks of them), on the CPU, with one
clear message per problem; the DataModule moves them to the training device and draws batches there.
Sources are chosen by `data.name` from the registry in `n2n/data/sources/__init__.py`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Mapping, Sequence

import torch

from n2n.errors import DataError
from n2n.metrics import SSIM_WINDOW

#: The smallest side of a validation image that validation can score (SSIM's window).
MIN_VALIDATION_SIDE = SSIM_WINDOW


@dataclass
class ValidationData:
    """Held-out images: clean references where the source has them, noisy inputs where it has them (else the
    DataModule draws fixed noise on the clean ones), and `other`, an independent noisy copy of each input,
    for the Noise2Noise validation loss where there is no clean image. Every source's validation images pass
    through here, so a size validation cannot score is refused here, naming the images."""

    names: list[str]
    clean: list[torch.Tensor] | None
    noisy: list[torch.Tensor] | None = None
    other: list[torch.Tensor] | None = None
    origin: str = ""  #: where the images come from, for messages (e.g. "data.val_path=FILE")

    def __post_init__(self) -> None:
        images = self.clean if self.clean is not None else self.noisy
        small = [f"{n} ({im.shape[-1]}x{im.shape[-2]})" for n, im in zip(self.names, images or [])
                 if min(im.shape[-2:]) < MIN_VALIDATION_SIDE]
        if small:
            where = f"{self.origin}: " if self.origin else ""
            raise DataError(f"{where}{len(small)} validation image(s) are smaller than {MIN_VALIDATION_SIDE}x"
                            f"{MIN_VALIDATION_SIDE} pixels, the smallest that validation can score (SSIM's "
                            f"window): {', '.join(small[:5])}{' ...' if len(small) > 5 else ''}; remove them "
                            f"or use larger ones")


class DataSource:
    """Base class. Subclasses set the class attributes and implement `val_data` and one of the train methods.

    - `options`: the source's own keys in the `data` section (the DataModule's common keys come on top);
    - `clean_train`: whether training images are clean (noise is synthesised on the device: `train_images`)
      or come as noisy copies of each scene;
    - `random_crops`: whether training draws random crops of `data.crop_size` from images of any size
      (`train_images`, or `train_frames` for noisy sources) or takes fixed-size pairs whole (`train_pairs`).
    """

    name: ClassVar[str]
    options: ClassVar[frozenset[str]] = frozenset()
    clean_train: ClassVar[bool] = True
    random_crops: ClassVar[bool] = True
    frames_per_scene: ClassVar[int] = 2  #: noisy sources: 1 for single captures (data=singles), else 2 or more

    def __init__(self, cfg: Mapping[str, Any], channels: int):
        self.cfg = dict(cfg)
        self.channels = channels

    @classmethod
    def resolve(cls, cfg: dict[str, Any]) -> None:
        """Decides the section's `auto` options from the files, in place, when the training config is resolved
        (n2n.config.resolve_train_config): the config, and so the checkpoint, then records what was read."""

    @classmethod
    def for_config(cls, cfg: Mapping[str, Any]) -> type["DataSource"]:
        """The class that reads the files of this section: `cls`, or a variant of it (data=pairs of MRC
        micrographs: n2n.data.sources.micrographs)."""
        return cls

    @property
    def clean_validation(self) -> bool:
        """Whether validation has clean references (val/psnr) or only independent noisy copies (val/n2n_loss)."""
        return True

    @property
    def copy_validation(self) -> bool:
        """Whether validation items carry an independent noisy copy of their scene (`other`), scored by
        val/n2n_loss: noisy captures of two or more frames, half volumes."""
        return False

    def train_images(self) -> list[torch.Tensor]:
        """Clean training images (clean_train sources)."""
        raise NotImplementedError

    def train_pairs(self) -> torch.Tensor:
        """Fixed-size noisy training pairs as one uint8 tensor N x 2 x C x H x W (random_crops false)."""
        raise NotImplementedError

    def train_frames(self) -> list[torch.Tensor]:
        """Noisy captures of each training scene, F x C x H x W with F >= 2 (noisy sources with random crops)."""
        raise NotImplementedError

    def val_data(self) -> ValidationData:
        raise NotImplementedError

    def check_channels(self, images: torch.Tensor, key: str) -> None:
        if images.shape[1] != self.channels:
            raise DataError(f"data.{key}={self.cfg.get(key)} holds {images.shape[1]}-channel images but "
                            f"data.channels={self.channels}")


def check_min_size(images: Sequence[torch.Tensor], names: Sequence[str], size: int, option: str) -> None:
    """Every image at least `size` pixels on each side (random crops of that size are drawn from them)."""
    small = [f"{n} ({im.shape[2]}x{im.shape[1]})" for n, im in zip(names, images) if min(im.shape[1:]) < size]
    if small:
        raise DataError(f"{option}: {len(small)} image(s) are smaller than data.crop_size={size}: "
                        f"{', '.join(small[:5])}{' ...' if len(small) > 5 else ''}; lower data.crop_size "
                        f"or remove them")
