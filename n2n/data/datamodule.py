"""The LightningDataModule: training data lives on the training device and batches are built there.

Training batches are not read through a DataLoader: the train "loader" only counts steps, and
`on_after_batch_transfer` draws indices, crops, paired augmentation and noise for the whole batch on the
device, from the module's own generator (whose state is saved in checkpoints, so a resumed run draws the
same batches as an uninterrupted one). Validation pairs are fixed: noise is drawn once per image with a
fixed seed, so every run is scored on the same inputs.

The DataModule assembles the pipeline from the config's sections: the source (`data`, one class per kind of
data in n2n/data/sources/), the noise (`noise`), the paired augmentation (`aug`) and `target`; each builder
receives only its own section.
"""
from __future__ import annotations

from typing import Any, Mapping

import lightning as L
import torch
from torch.utils.data import DataLoader

from n2n.config import require, section
from n2n.data.augment import build_augment
from n2n.data.crops import CropBank
from n2n.data.sources import SOURCES, DataSource, ValidationData, source_class
from n2n.errors import ConfigError
from n2n.image_files import as_float
from n2n.noise import NoiseModel, build_noise

#: Options of the `data` section that the DataModule itself reads, whatever the source.
COMMON_KEYS = frozenset({"name", "channels", "batch_size", "val_batch_size", "steps_per_epoch", "val_limit",
                         "val_seed"})
TARGETS = ("noisy", "clean")


def _int_option(cfg: Mapping[str, Any], key: str, minimum: int = 1, required: bool = True) -> int | None:
    value = require(cfg, key, "data") if required else cfg.get(key)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"data.{key}={value!r} must be an integer >= {minimum}")
    return value


def build_source(data_cfg: Mapping[str, Any]) -> DataSource:
    """The data source of a `data` section, its common options checked."""
    cls = source_class(data_cfg, COMMON_KEYS)
    channels = _int_option(data_cfg, "channels")
    if channels not in (1, 3):
        raise ConfigError(f"data.channels={channels} must be 1 (greyscale) or 3 (RGB)")
    if cls.random_crops:
        crop = _int_option(data_cfg, "crop_size")
        if crop % 32:
            raise ConfigError(f"data.crop_size={crop} must be a multiple of 32 (the U-Net pools 5 times)")
    return cls(data_cfg, channels)


def build_noises(noise_cfg: Mapping[str, Any]) -> tuple[NoiseModel, NoiseModel]:
    """The training noise and that of validation inputs: the training noise with `noise.val` overriding
    some of its options (e.g. a fixed sigma where training draws one per image)."""
    noise_cfg = dict(noise_cfg)
    val_override = noise_cfg.pop("val", None) or {}
    return build_noise(noise_cfg), build_noise({**noise_cfg, **val_override})


def validation_pairs(data: ValidationData, noise: NoiseModel, seed: int,
                     limit: int | None = None) -> tuple[list[str], list[dict[str, torch.Tensor]]]:
    """(names, items): each item holds `noisy` (the input), `clean` where the source has a clean reference and
    `other` where it has an independent noisy copy instead. Sources without noisy inputs get fixed noise drawn
    on their clean images (the same in every run and every process, whatever the order of the calls)."""
    count = min(len(data.names), limit) if limit else len(data.names)
    noisy = data.noisy
    if noisy is None:
        noisy = [noise(as_float(im[None]), generator=torch.Generator().manual_seed(1_000_003 * seed + i))[0]
                 for i, im in enumerate(data.clean[:count])]
    items = []
    for i in range(count):
        item = {"noisy": noisy[i]}
        if data.clean is not None:
            item["clean"] = data.clean[i]
        if data.other is not None:
            item["other"] = data.other[i]
        items.append(item)
    return [str(n) for n in data.names[:count]], items


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
        self.cfg = section(config, "data")
        self.source = build_source(self.cfg)
        self.channels = self.source.channels
        self.batch_size = _int_option(self.cfg, "batch_size")
        self.val_batch_size = _int_option(self.cfg, "val_batch_size")
        self.steps_per_epoch = _int_option(self.cfg, "steps_per_epoch", required=False)
        self.val_limit = _int_option(self.cfg, "val_limit", required=False)
        self.val_seed = _int_option(self.cfg, "val_seed", minimum=0)
        self.crop_size = self.cfg["crop_size"] if self.source.random_crops else None
        self.target = require(config, "target", "config")
        if self.target not in TARGETS:
            raise ConfigError(f"target={self.target!r} must be one of {TARGETS} (noisy: Noise2Noise, "
                              f"clean: the supervised Noise2Clean baseline)")
        if self.target == "clean" and not self.source.clean_train:
            with_clean = [name for name, cls in SOURCES.items() if cls.clean_train]
            raise ConfigError(f"target=clean needs clean training images, which data={self.source.name} does not "
                              f"have; use data={' or data='.join(with_clean)}")
        self.augment = build_augment(section(config, "aug"))
        self.noise, self.val_noise = build_noises(section(config, "noise"))
        self.seed = int(require(config, "seed", "config"))
        self.train_bank: CropBank | None = None  # clean images, or the noisy captures of each scene
        self.train_stack: torch.Tensor | None = None  # (N, 2, C, H, W) uint8: both noisy copies of each pair
        self.val_pairs: list[dict[str, torch.Tensor]] | None = None
        self.val_names: list[str] = []
        self._generator: torch.Generator | None = None
        self._generator_state: torch.Tensor | None = None
        self._perm: torch.Tensor | None = None
        self._pos = 0

    # ------------------------------------------------------------------------------------------- loading
    def setup(self, stage: str | None = None) -> None:
        """Reads the files once; safe to call again (Lightning calls it too)."""
        if stage in (None, "fit") and self.train_bank is None and self.train_stack is None:
            if self.source.clean_train:
                self.train_bank = CropBank(self.source.train_images())
            elif self.source.random_crops:
                self.train_bank = CropBank(self.source.train_frames())
            else:
                self.train_stack = self.source.train_pairs()
        if self.val_pairs is None:
            self.val_names, self.val_pairs = validation_pairs(self.source.val_data(), self.val_noise,
                                                              self.val_seed, self.val_limit)

    # --------------------------------------------------------------------------------------- loaders
    @property
    def num_train(self) -> int:
        return len(self.train_stack) if self.train_stack is not None else len(self.train_bank)

    def train_dataloader(self):
        steps = self.steps_per_epoch
        if steps is None:
            if self.train_stack is None:
                raise ConfigError(f"data={self.source.name} draws random crops: set data.steps_per_epoch")
            steps = max(1, self.num_train // self.batch_size)  # one pass over the pairs, like the seed
        return _StepCounter(steps)

    @property
    def has_clean_validation(self) -> bool:
        """Whether validation has clean references (val/psnr, val/ssim) or only noisy copies (val/n2n_loss)."""
        return self.source.clean_validation

    def val_dataloader(self):
        same_size = len({tuple(item["noisy"].shape) for item in self.val_pairs}) == 1
        return DataLoader(self.val_pairs, batch_size=self.val_batch_size if same_size else 1, shuffle=False)

    # ----------------------------------------------------------------------------- batches on device
    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        if isinstance(batch, int):
            return self.draw_train_batch(self._device())
        return {key: as_float(value) for key, value in batch.items()}

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

    def _overfit_generator(self, device: torch.device) -> torch.Generator | None:
        """With `trainer.overfit_batches=N` (debug=overfit): a generator seeded by the step modulo N, so that the
        same N batches come back again and again."""
        trainer = getattr(self, "trainer", None)
        count = getattr(trainer, "overfit_batches", 0)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            return None
        self._perm, self._pos = None, 0  # course pairs: the batch is the start of a permutation drawn anew
        which = trainer.global_step % count
        return torch.Generator(device=device).manual_seed(self.seed + 7919 * self._rank() + 104_729 * which)

    def draw_train_batch(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(source, target) float batches in [0, 1], built on `device`."""
        g = self._overfit_generator(device) or self.generator(device)
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
            return self.augment.pairs(as_float(stack[idx]), generator=g).unbind(1)
        if self.train_bank.flat.device != device:
            self.train_bank.to(device)
        if not self.source.clean_train:  # two different captures of one scene, cropped alike
            pairs = as_float(self.train_bank.sample_pairs(n, self.crop_size, g))
            return self.augment.pairs(pairs, generator=g).unbind(1)
        clean = self.augment.pairs(as_float(self.train_bank.sample(n, self.crop_size, g))[:, None], generator=g)[:, 0]
        source = self.noise(clean, generator=g)
        # the target unclipped even where noise.file_like clips the input (n2n.noise.NoiseModel)
        target = self.noise.target(clean, generator=g) if self.target == "noisy" else clean
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

