"""The LightningDataModule: training data lives on the training device and batches are built there.

Training batches are not read through a DataLoader: the train "loader" only counts steps, and
`on_after_batch_transfer` draws indices, crops, paired augmentation and noise for the whole batch on the
device, from the module's own generator (whose state is saved in checkpoints, so a resumed run draws the
same batches as an uninterrupted one). Validation pairs are fixed: noise is drawn once per image with a
fixed seed, so every run is scored on the same inputs.

The DataModule assembles the pipeline from the config's sections: the source (`data`, one class per kind of
data in n2n/data/sources/), the noise (`noise`), the paired augmentation (`aug`) and the training method
(`method`, n2n/methods/), which says what each scene must provide (two noisy copies, a noisy and a clean one,
or one noisy copy) and draws its own masks or re-corruptions in `prepare`; each builder receives only its own
section.

`data.noise_draws` (sources of clean images): `fresh` draws new noise at every step, as the paper does; `fixed`
draws each training image's noisy copies once (seeded by `seed`), so that a method trained "from one noisy
capture per scene" really sees one.
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
from n2n.image_files import as_float, set_max_pixels
from n2n.methods import CLEAN, PAIR, Method, method_for_config
from n2n.noise import NoiseModel, build_noise

#: Options of the `data` section that the DataModule itself reads, whatever the source.
COMMON_KEYS = frozenset({"name", "channels", "batch_size", "val_batch_size", "steps_per_epoch", "val_limit",
                         "val_seed", "max_pixels"})
NOISE_DRAWS = ("fresh", "fixed")


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
    set_max_pixels(data_cfg.get("max_pixels"), "data.max_pixels")  # every image file the source reads
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
        self.noise_draws = self.cfg.get("noise_draws", "fresh")
        # bound to its loss and noise level (a missing sigma is refused there); `prepare` draws its masks
        self.method = method_for_config(config)
        check_method_fits_data(self.method, self.source, self.noise_draws)
        self.augment = build_augment(section(config, "aug"))
        if self.augment.levels and not (self.source.clean_train and self.noise_draws == "fresh"):
            raise ConfigError(f"aug.levels={self.augment.levels:g} stretches clean images before noise is added: it "
                              f"needs clean training images with fresh noise (data=folder or samples, "
                              f"data.noise_draws=fresh), not data={self.cfg.get('name')}"
                              + (" with fixed draws" if self.source.clean_train else ""))
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
        volumes = getattr(self.source, "volumetric", False)  # data=volumes draws its own 3D crops (draw_train_batch)
        if stage in (None, "fit") and self.train_bank is None and self.train_stack is None and not volumes:
            if self.source.clean_train and self.noise_draws == "fixed":
                self.train_bank = CropBank(self.fixed_noisy_copies(self.source.train_images()))
            elif self.source.clean_train:
                self.train_bank = CropBank(self.source.train_images())
            elif self.source.random_crops:
                self.train_bank = CropBank(self.source.train_frames())
            else:
                self.train_stack = self.source.train_pairs()
        if self.val_pairs is None:
            self.val_names, self.val_pairs = validation_pairs(self.source.val_data(), self.val_noise,
                                                              self.val_seed, self.val_limit)

    def fixed_noisy_copies(self, images: list[torch.Tensor]) -> list[torch.Tensor]:
        """`noise_draws=fixed`: for each clean image, the frames a step needs, drawn once: the noisy copy,
        then the second noisy copy (methods that need a pair) or the clean image (Noise2Clean). Float16 keeps
        the noise unrounded (to ~1e-3 of a value) at half the memory of float32."""
        frames = []
        for i, image in enumerate(images):
            g = torch.Generator().manual_seed(1_000_003 * self.seed + 7 * i + 1)
            clean = as_float(image[None])
            copies = [self.noise(clean, generator=g)]
            if self.method.needs == PAIR:
                copies.append(self.noise.target(clean, generator=g))  # the target: never clipped by file_like
            elif self.method.needs == CLEAN:
                copies.append(clean)
            frames.append(torch.cat(copies).half())
        return frames

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

    @property
    def validation_metric(self) -> str:
        """What validation scores: val/psnr against clean images, else val/n2n_loss against an independent noisy
        copy, else (one capture per scene) val/self_loss, the method's own loss on held-out images."""
        if self.has_clean_validation:
            return "val/psnr"
        return "val/n2n_loss" if self.source.frames_per_scene >= 2 else "val/self_loss"

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

    def draw_train_batch(self, device: torch.device) -> dict[str, torch.Tensor]:
        """A training batch built on `device`: what the method needs of each scene (`noisy`, plus `other` or
        `clean`; float, [0, 1] before noise), with the method's own random draws added (Method.prepare)."""
        g = self._overfit_generator(device) or self.generator(device)
        return self.method.prepare(self._draw_scenes(device, g), g)

    def _draw_scenes(self, device: torch.device, g: torch.Generator) -> dict[str, torch.Tensor]:
        n, needs = self.batch_size, self.method.needs
        if getattr(self.source, "volumetric", False):  # data=volumes: 3D crops and augmentation, n2n.volumes.batches
            noisy, other = self.source.draw_batch(n, g, device, self.augment)
            return {"noisy": noisy, "other": other}
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
            return _captures(self.augment.pairs(as_float(stack[idx]), generator=g), needs)
        if self.train_bank.flat.device != device:
            self.train_bank.to(device)
        bank = self.train_bank
        if not self.source.clean_train:  # captures of one scene, cropped alike
            if needs == PAIR:
                crops = bank.sample_pairs(n, self.crop_size, g)
            else:  # one capture, any of the scene's
                crops = bank.sample_any(n, self.crop_size, g)[:, None]
            return _captures(self.augment.pairs(as_float(crops), generator=g), needs)
        if self.noise_draws == "fixed":  # the stored noisy copies (and the clean image for Noise2Clean), last
            frames = self.augment.pairs(as_float(bank.sample_all(n, self.crop_size, g)), generator=g,
                                        swappable=2 if needs == PAIR else 1)
            if needs == CLEAN:
                return {"noisy": frames[:, 0], "clean": frames[:, 1]}
            return _captures(frames, needs)
        clean = self.augment.pairs(as_float(bank.sample(n, self.crop_size, g))[:, None], generator=g)[:, 0]
        clean = self.augment.clean_levels(clean, generator=g)
        batch = {"noisy": self.noise(clean, generator=g)}
        if needs == PAIR:
            # the target unclipped even where noise.file_like clips the input (n2n.noise.NoiseModel)
            batch["other"] = self.noise.target(clean, generator=g)
        elif needs == CLEAN:
            batch["clean"] = clean
        return batch

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


def _captures(frames: torch.Tensor, needs: str) -> dict[str, torch.Tensor]:
    """Noisy captures (N, K, C, H, W) as a batch: the first, and the second too for methods that need a pair."""
    if needs == PAIR:
        return {"noisy": frames[:, 0], "other": frames[:, 1]}
    return {"noisy": frames[:, 0]}


def check_method_fits_data(method: Method, source: DataSource, noise_draws: Any) -> None:
    """Refuses, in one line and before any file is read, a method whose needs the data cannot meet."""
    if not method.trains:
        raise ConfigError(f"method={method.name} fits one image at denoising time and trains no model: run "
                          f"`n2n denoise --zero-shot IMAGE` (docs/methods.md)")
    if noise_draws not in NOISE_DRAWS:
        raise ConfigError(f"data.noise_draws={noise_draws!r} must be one of: {', '.join(NOISE_DRAWS)}")
    if noise_draws == "fixed" and not source.clean_train:
        raise ConfigError(f"data.noise_draws=fixed draws the noise of clean images once; data={source.name} holds "
                          f"noisy captures already")
    if getattr(source, "volumetric", False) and method.name != "n2n":
        what = "half volumes" if source.name == "volumes" else "MRC micrographs"
        raise ConfigError(f"data={source.name} trains Noise2Noise between two {what} (method=n2n); "
                          f"method={method.name} is not available for {what.split()[-1]} yet")
    if method.needs == CLEAN and not source.clean_train:
        with_clean = [name for name, cls in SOURCES.items() if cls.clean_train]
        raise ConfigError(f"method={method.name} (Noise2Clean) needs clean training images, which data={source.name} "
                          f"does not have; use data={' or data='.join(with_clean)}, or a method that learns from "
                          f"noisy images (method=n2n, nb2nb, n2v, ...)")
    if method.needs == PAIR and not source.clean_train and source.frames_per_scene < 2:
        raise ConfigError(f"method={method.name} needs two noisy captures of each scene, and data={source.name} has "
                          f"one; use a single-capture method: method=nb2nb, n2v, n2s, r2r or sure (docs/methods.md)")
