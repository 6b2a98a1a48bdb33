"""The LightningDataModule: training data lives on the training device and batches are built there.

Training batches are not read through a DataLoader: the train "loader" only counts steps, and
`on_after_batch_transfer` draws indices, crops, paired augmentation and noise for the whole batch on the
device, from the module's own generator (whose state is saved in checkpoints, so a resumed run draws the
same batches as an uninterrupted one). Validation pairs are fixed: noise is drawn once per image with a
fixed seed, so every run is scored on the same inputs.
"""
from __future__ import annotations

from typing import Any, Mapping

import lightning as L
import torch
from torch.utils.data import DataLoader

from n2n.data.augment import build_augment
from n2n.data.sources import (SAMPLE_TRAIN, SAMPLE_VAL, check_min_size, load_image_folder, load_samples,
                              load_tensor_pair)
from n2n.errors import ConfigError, DataError
from n2n.noise import build_noise

COMMON_KEYS = {"name", "channels", "batch_size", "val_batch_size", "steps_per_epoch", "val_limit", "val_seed"}
SOURCE_KEYS = {
    "ee559": COMMON_KEYS | {"train_path", "val_path", "train_limit"},
    "folder": COMMON_KEYS | {"train_dir", "val_dir", "crop_size"},
    "samples": COMMON_KEYS | {"train_images", "val_images", "crop_size"},
}
TARGETS = ("noisy", "clean")


def _positive_int(cfg: Mapping[str, Any], key: str, default: int | None = None, minimum: int = 1) -> int | None:
    value = cfg.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"data.{key}={value!r} must be an integer >= {minimum}")
    return value


class CropBank:
    """Images of any sizes packed into one flat uint8 buffer, so that the crops of a whole batch are
    one gather on the device."""

    def __init__(self, images: list[torch.Tensor]):
        self.channels = images[0].shape[0]
        self.flat = torch.cat([im.reshape(-1) for im in images])
        sizes = torch.tensor([im.numel() for im in images])
        self.offsets = torch.cumsum(sizes, 0) - sizes
        self.heights = torch.tensor([im.shape[1] for im in images])
        self.widths = torch.tensor([im.shape[2] for im in images])

    def __len__(self) -> int:
        return len(self.heights)

    def to(self, device: torch.device) -> "CropBank":
        for name in ("flat", "offsets", "heights", "widths"):
            setattr(self, name, getattr(self, name).to(device))
        return self

    def sample(self, n: int, size: int, generator: torch.Generator) -> torch.Tensor:
        dev = self.flat.device
        idx = torch.randint(0, len(self), (n,), device=dev, generator=generator)
        h, w = self.heights[idx], self.widths[idx]
        y0 = (torch.rand(n, device=dev, generator=generator) * (h - size + 1)).long()
        x0 = (torch.rand(n, device=dev, generator=generator) * (w - size + 1)).long()
        r = torch.arange(size, device=dev)
        c = torch.arange(self.channels, device=dev)
        view = lambda t: t.view(n, 1, 1, 1)  # noqa: E731
        index = (view(self.offsets[idx]) + c.view(1, -1, 1, 1) * view(h * w)
                 + (view(y0) + r.view(1, 1, -1, 1)) * view(w) + view(x0) + r.view(1, 1, 1, -1))
        return self.flat[index]


class _StepCounter:
    """The train 'loader': yields only the step number; the batch itself is built on the device."""

    def __init__(self, steps: int):
        self.steps = steps

    def __len__(self) -> int:
        return self.steps

    def __iter__(self):
        return iter(range(self.steps))


class N2NDataModule(L.LightningDataModule):
    def __init__(self, config: Mapping[str, Any]):
        super().__init__()
        self.cfg = dict(config["data"])
        self.source = self.cfg.get("name")
        if self.source not in SOURCE_KEYS:
            raise ConfigError(f"data.name={self.source!r} is not known; choose one of: {', '.join(SOURCE_KEYS)}")
        unknown = sorted(set(self.cfg) - SOURCE_KEYS[self.source])
        if unknown:
            raise ConfigError(f"data={self.source}: unknown option(s) {unknown}; "
                              f"allowed: {sorted(SOURCE_KEYS[self.source])}")
        self.channels = _positive_int(self.cfg, "channels", 3)
        if self.channels not in (1, 3):
            raise ConfigError(f"data.channels={self.channels} must be 1 (greyscale) or 3 (RGB)")
        self.batch_size = _positive_int(self.cfg, "batch_size", 8)
        self.val_batch_size = _positive_int(self.cfg, "val_batch_size", 1)
        self.steps_per_epoch = _positive_int(self.cfg, "steps_per_epoch")
        self.val_limit = _positive_int(self.cfg, "val_limit")
        self.val_seed = _positive_int(self.cfg, "val_seed", 0, minimum=0)
        self.crop_size = _positive_int(self.cfg, "crop_size", 64, minimum=1)
        if self.source != "ee559" and self.crop_size % 32:
            raise ConfigError(f"data.crop_size={self.crop_size} must be a multiple of 32 (the U-Net pools 5 times)")
        self.target = config.get("target", "noisy")
        if self.target not in TARGETS:
            raise ConfigError(f"target={self.target!r} must be one of {TARGETS} (noisy: Noise2Noise, "
                              f"clean: the supervised Noise2Clean baseline)")
        if self.source == "ee559" and self.target == "clean":
            raise ConfigError("target=clean needs clean training images, which data=ee559 does not have; "
                              "use data=folder or data=samples")
        self.augment = build_augment(config.get("aug", {}))
        noise_cfg = dict(config.get("noise") or {"name": "gaussian", "sigma": 25})
        val_override = noise_cfg.pop("val", None) or {}
        self.noise = build_noise(noise_cfg)
        self.val_noise = build_noise({**noise_cfg, **val_override})
        self.seed = int(config.get("seed", 0))
        self.train_bank: CropBank | None = None
        self.train_stack: torch.Tensor | None = None  # (N, 2, C, H, W) uint8: both noisy copies of each pair
        self.val_pairs: list[tuple[torch.Tensor, torch.Tensor]] | None = None
        self.val_names: list[str] = []
        self._generator: torch.Generator | None = None
        self._generator_state: torch.Tensor | None = None
        self._perm: torch.Tensor | None = None
        self._pos = 0

    # ------------------------------------------------------------------------------------------- loading
    def setup(self, stage: str | None = None) -> None:
        """Reads the files once; safe to call again (Lightning calls it too)."""
        if stage in (None, "fit") and self.train_bank is None and self.train_stack is None:
            self._load_train()
        if self.val_pairs is None:
            self._load_val()

    def _load_train(self) -> None:
        cfg = self.cfg
        if self.source == "ee559":
            a, b = load_tensor_pair(cfg.get("train_path"), "data.train_path", ("noisy_imgs_1", "noisy_imgs_2"))
            self._check_channels(a, "data.train_path")
            limit = _positive_int(cfg, "train_limit")
            # stacked, so that a batch is one gather and each augmentation one operation on both copies
            self.train_stack = torch.stack([a[:limit], b[:limit]] if limit else [a, b], dim=1)
            return
        if self.source == "folder":
            names, images = load_image_folder(cfg.get("train_dir"), self.channels, "data.train_dir")
            check_min_size(images, names, self.crop_size, "data.train_dir")
        else:
            names = list(cfg.get("train_images") or SAMPLE_TRAIN)
            images = load_samples(names, self.channels, "data.train_images")
            check_min_size(images, names, self.crop_size, "data.train_images")
        self.train_bank = CropBank(images)

    def _load_val(self) -> None:
        cfg = self.cfg
        if self.source == "ee559":
            noisy, clean = load_tensor_pair(cfg.get("val_path"), "data.val_path", ("noisy_imgs", "clean_imgs"))
            self._check_channels(noisy, "data.val_path")
            if self.val_limit:
                noisy, clean = noisy[: self.val_limit], clean[: self.val_limit]
            self.val_pairs = list(zip(noisy, clean))
            self.val_names = [f"{i:05d}" for i in range(len(noisy))]
            return
        if self.source == "folder":
            names, images = load_image_folder(cfg.get("val_dir"), self.channels, "data.val_dir")
        else:
            names = list(cfg.get("val_images") or SAMPLE_VAL)
            images = load_samples(names, self.channels, "data.val_images")
        if self.val_limit:
            names, images = names[: self.val_limit], images[: self.val_limit]
        self.val_names = [str(n) for n in names]
        self.val_pairs = [(self.noisy_copy(im, i), im) for i, im in enumerate(images)]

    def noisy_copy(self, clean: torch.Tensor, index: int) -> torch.Tensor:
        """The fixed noisy version of validation image `index`: the same in every run and every process."""
        g = torch.Generator().manual_seed(1_000_003 * self.val_seed + index)
        return self.val_noise(clean[None].float() / 255, generator=g)[0]

    def _check_channels(self, images: torch.Tensor, option: str) -> None:
        if images.shape[1] != self.channels:
            raise DataError(f"{option}={self.cfg.get(option.split('.')[-1])} holds {images.shape[1]}-channel "
                            f"images but data.channels={self.channels}")

    # --------------------------------------------------------------------------------------- loaders
    @property
    def num_train(self) -> int:
        return len(self.train_stack) if self.train_stack is not None else len(self.train_bank)

    def train_dataloader(self):
        steps = self.steps_per_epoch
        if steps is None:
            if self.train_stack is None:
                raise ConfigError(f"data={self.source} draws random crops: set data.steps_per_epoch")
            steps = max(1, self.num_train // self.batch_size)  # one pass over the pairs, like the seed
        return _StepCounter(steps)

    def val_dataloader(self):
        same_size = len({tuple(c.shape) for _, c in self.val_pairs}) == 1
        return DataLoader(self.val_pairs, batch_size=self.val_batch_size if same_size else 1, shuffle=False)

    # ----------------------------------------------------------------------------- batches on device
    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        if isinstance(batch, int):
            return self.draw_train_batch(self._device())
        noisy, clean = batch
        return _as_float(noisy), _as_float(clean)

    def _device(self) -> torch.device:
        trainer = getattr(self, "trainer", None)
        return trainer.strategy.root_device if trainer is not None else torch.device("cpu")

    def _rank(self) -> int:
        trainer = getattr(self, "trainer", None)
        return trainer.global_rank if trainer is not None else 0

    def generator(self, device: torch.device) -> torch.Generator:
        if self._generator is None or self._generator.device != device:
            # each process of a data-parallel run draws its own batches
            rank = self._rank()
            self._generator = torch.Generator(device=device).manual_seed(self.seed + 7919 * rank)
            if self._generator_state is not None:
                if rank == 0:
                    self._generator.set_state(self._generator_state)
                else:
                    # a checkpoint holds process 0's generator only: the other processes of a resumed
                    # data-parallel run reseed from the step, so that they do not all draw process 0's batches
                    step = getattr(self.trainer, "global_step", 0)
                    self._generator.manual_seed(self.seed + 7919 * rank + 1_000_003 * (step + 1))
                self._generator_state = None
        return self._generator

    def draw_train_batch(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(source, target) float batches in [0, 1], built on `device`."""
        g = self.generator(device)
        n = self.batch_size
        if self.train_stack is not None:
            if self.train_stack.device != device:
                self.train_stack = self.train_stack.to(device)
            stack = self.train_stack
            if self._perm is not None and self._perm.device != device:
                self._perm = self._perm.to(device)
            if self._perm is None or self._pos + n > len(stack):
                self._perm = torch.randperm(len(stack), device=device, generator=g)
                self._pos = 0
            idx = self._perm[self._pos: self._pos + n]
            self._pos += n
            # (float before the flips: PyTorch's CPU `where` is several times slower on uint8)
            return self.augment.pairs(_as_float(stack[idx]), generator=g).unbind(1)
        if self.train_bank.flat.device != device:
            self.train_bank.to(device)
        clean = self.augment.pairs(_as_float(self.train_bank.sample(n, self.crop_size, g))[:, None], generator=g)[:, 0]
        source = self.noise(clean, generator=g)
        target = self.noise(clean, generator=g) if self.target == "noisy" else clean
        return source, target

    # ------------------------------------------------------------------------------ resumable state
    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"pos": self._pos}
        if self._generator is not None:
            state["generator"] = self._generator.get_state()
        if self._perm is not None:
            state["perm"] = self._perm.cpu()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._pos = int(state.get("pos", 0))
        self._generator_state = state.get("generator")
        self._generator = None
        perm = state.get("perm")
        self._perm = perm if perm is not None else None


def _as_float(x: torch.Tensor) -> torch.Tensor:
    return x.float().div_(255) if x.dtype == torch.uint8 else x.float()
