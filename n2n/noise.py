"""The synthetic corruptions of the Noise2Noise paper (Lehtinen et al. 2018, section 3).

Every model maps a clean float batch (B, C, H, W) in [0, 1] to a noisy one on the same device. Noise2Noise trains
on two independent draws of the same corruption, so the only contract that matters is the noise *distribution*
(means, variances, covered fractions); tests check those against theory.

A level option is a number (fixed) or `[low, high]`: a level drawn uniformly per image, which is how the paper
trains blind denoisers. Levels are sampled as tensors on the batch's device so that no call syncs with the host.
"""
from __future__ import annotations

import math
import numbers
import random
import string
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from n2n.errors import ConfigError
from n2n.registry import build_from_registry


class Level:
    """A fixed noise level or a `[low, high]` range drawn per image, validated against `[minimum, maximum]`."""

    def __init__(self, option: str, value: Any, minimum: float, maximum: float = math.inf,
                 exclusive_min: bool = False):
        is_range = isinstance(value, Sequence) and not isinstance(value, str)
        values = list(value) if is_range else [value]
        if len(values) != (2 if is_range else 1) or not all(_is_number(v) for v in values):
            raise ConfigError(f"noise.{option}={_show(value)} must be a number or a list [low, high] of two numbers")
        low, high = (float(v) for v in values * (1 if is_range else 2))
        if math.isinf(maximum):
            allowed = f"{'>' if exclusive_min else '>='} {minimum:g}"
        else:
            allowed = f"in {'(' if exclusive_min else '['}{minimum:g}, {maximum:g}]"
        for v in (low, high):
            if v < minimum or (exclusive_min and v == minimum) or v > maximum:
                raise ConfigError(f"noise.{option}={_show(value)} is out of range: each value must be {allowed}")
        if low > high:
            raise ConfigError(f"noise.{option}={_show(value)}: low must not exceed high")
        self.option, self.low, self.high, self.is_range = option, low, high, is_range

    def sample(self, batch: int, device: torch.device, generator: torch.Generator | None) -> torch.Tensor:
        """Levels for a batch as a float32 (B,) tensor; a fixed level consumes no random numbers."""
        if not self.is_range:
            return torch.full((batch,), self.low, device=device)
        u = torch.rand(batch, device=device, generator=generator)
        return self.low + (self.high - self.low) * u

    def __repr__(self) -> str:
        return f"[{self.low:g}, {self.high:g}]" if self.is_range else f"{self.low:g}"


def _is_number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def _show(value: Any) -> str:
    # OmegaConf's ListConfig prints fine but is not a list; show what the user wrote.
    return repr(list(value)) if isinstance(value, Sequence) and not isinstance(value, str) else repr(value)


def _per_image(levels: torch.Tensor) -> torch.Tensor:
    return levels.view(-1, 1, 1, 1)


def _pixel_mask(x: torch.Tensor, p: Level, generator: torch.Generator | None) -> torch.Tensor:
    """(N, 1, H, W) booleans: each pixel (all its channels together) chosen with its image's probability p."""
    b, _, h, w = x.shape
    per_image = _per_image(p.sample(b, x.device, generator))
    return torch.rand((b, 1, h, w), device=x.device, generator=generator) < per_image


class NoiseModel:
    """Base class: subclasses set `name`, declare their levels in `__init__` and implement `_apply`.

    Calling the model draws a network *input*; `target` draws a training target. They differ only with
    `file_like` (additive noises): that fraction of inputs, drawn per image, is clipped to [0, 1] and rounded to
    8 bits as an image file holds it, while targets stay unclipped. Noise2Noise learns the mean of its targets, and
    the mean of clipped noise is biased near black and white (about 10/255 on black at sigma 25): clipped targets
    would teach that bias, unclipped ones teach the clean value (docs/own-data.md)."""

    name: str = ""
    file_like: float = 0.0

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        noisy = self.target(x, generator)
        if not self.file_like:  # no random numbers drawn: seeded runs without the option are unchanged
            return noisy
        as_file = noisy.float().clamp(0, 1).mul(255).round().div(255)
        chosen = torch.rand((x.shape[0], 1, 1, 1), device=x.device, generator=generator) < self.file_like
        return torch.where(chosen, as_file, noisy.float()).to(x.dtype)

    def target(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """A noisy copy as the noise makes it, never clipped by `file_like`: the training target."""
        if x.dim() != 4 or not x.is_floating_point():
            raise ValueError(f"{self.name} noise expects a float (B, C, H, W) batch, got {tuple(x.shape)} {x.dtype}")
        # At least float32: random draws and thresholds in half precision would be visibly quantised.
        work = x if x.dtype == torch.float64 else x.float()
        return self._apply(work, generator).to(x.dtype)

    def _apply(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        raise NotImplementedError

    def _levels(self) -> dict[str, Level]:
        return {k: v for k, v in vars(self).items() if isinstance(v, Level)}

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in self._levels().items())
        if self.file_like:
            options += f", file_like={self.file_like:g}"
        return f"{type(self).__name__}({options})"

    def _set_file_like(self, value: Any) -> None:
        if not _is_number(value) or not 0 <= value <= 1:
            raise ConfigError(f"noise.file_like={_show(value)} must be a number in [0, 1]: the fraction of network "
                              f"inputs clipped to [0, 1] and rounded to 8 bits as an image file holds them")
        self.file_like = float(value)


class GaussianNoise(NoiseModel):
    """Additive white Gaussian noise; `sigma` on the 0..255 scale. Left unclipped, as in the paper."""

    name = "gaussian"

    def __init__(self, sigma: Any = 25, file_like: Any = 0):
        self.sigma = Level("sigma", sigma, minimum=0)
        self._set_file_like(file_like)

    def _apply(self, x, generator):
        sigma = _per_image(self.sigma.sample(x.shape[0], x.device, generator)) / 255
        return x + sigma * torch.randn(x.shape, device=x.device, generator=generator)


class PoissonNoise(NoiseModel):
    """Photon noise `poisson(lam * x) / lam`: mean x, variance x / lam, so larger `lam` means less noise."""

    name = "poisson"

    def __init__(self, lam: Any = 30, file_like: Any = 0):
        self.lam = Level("lam", lam, minimum=0, exclusive_min=True)
        self._set_file_like(file_like)

    def _apply(self, x, generator):
        lam = _per_image(self.lam.sample(x.shape[0], x.device, generator))
        # A negative rate is an error in torch.poisson; the input is [0, 1] by contract, this only guards rounding.
        return torch.poisson((lam * x).clamp_min(0), generator=generator) / lam


class PoissonGaussianNoise(NoiseModel):
    """The noise of a camera or microscope sensor: photon noise `poisson(lam * x) / lam` plus read noise, Gaussian
    of `sigma` on the 0..255 scale. Mean x, variance x / lam + (sigma / 255)^2: signal-dependent, unlike
    `gaussian`; both parts are independent between two captures, which is what Noise2Noise needs."""

    name = "poisson_gaussian"
    BITS = (0, 8, 16)

    def __init__(self, lam: Any = 30, sigma: Any = 5, bits: Any = 0, file_like: Any = 0):
        self.lam = Level("lam", lam, minimum=0, exclusive_min=True)
        self.sigma = Level("sigma", sigma, minimum=0)
        self._set_file_like(file_like)
        if bits not in self.BITS or isinstance(bits, bool):
            raise ConfigError(f"noise.bits={_show(bits)} must be 0 (floats, unclipped), 8 or 16 (what an image "
                              f"file of that depth holds: clipped to [0, 1] and rounded)")
        self.bits = int(bits)

    def _apply(self, x, generator):
        lam = _per_image(self.lam.sample(x.shape[0], x.device, generator))
        sigma = _per_image(self.sigma.sample(x.shape[0], x.device, generator)) / 255
        photons = torch.poisson((lam * x).clamp_min(0), generator=generator) / lam
        noisy = photons + sigma * torch.randn(x.shape, device=x.device, generator=generator)
        if self.bits:  # as a camera writes it: clipped, then rounded to the file's levels
            levels = 2 ** self.bits - 1
            noisy = noisy.clamp(0, 1).mul(levels).round().div(levels)
        return noisy


class BernoulliNoise(NoiseModel):
    """Multiplicative Bernoulli noise: each pixel (all channels together) kept with probability `p`, else 0.

    Note that the paper's p is the probability of *dropping* a pixel; here `p` is the probability of keeping it.
    """

    name = "bernoulli"

    def __init__(self, p: Any = 0.5):
        self.p = Level("p", p, minimum=0, maximum=1)

    def _apply(self, x, generator):
        return x * _pixel_mask(x, self.p, generator)


class ImpulseNoise(NoiseModel):
    """Random-valued impulse noise: a fraction `p` of pixels replaced by colours uniform in [0, 1]^C."""

    name = "impulse"

    def __init__(self, p: Any = 0.7):
        self.p = Level("p", p, minimum=0, maximum=1)

    def _apply(self, x, generator):
        hit = _pixel_mask(x, self.p, generator)
        colours = torch.rand(x.shape, device=x.device, generator=generator)
        return torch.where(hit, colours, x)


class TextBank:
    """Binary masks of random single strings, rendered once with PIL and cropped to their ink.

    Font sizes are in pixels, not relative to the image: a denoiser trained on 256x256 crops then sees text of the
    same size on full-size test images. A fixed seed makes the bank, and hence seeded noise, identical across runs.
    """

    CHARS = string.ascii_letters + string.digits + string.punctuation + "   "

    def __init__(self, count: int = 256, sizes: tuple[int, int] = (12, 40), lengths: tuple[int, int] = (3, 16),
                 seed: int = 0):
        rng = random.Random(seed)
        fonts: dict[int, Any] = {}
        tiles: list[np.ndarray] = []
        while len(tiles) < count:
            size = rng.randint(*sizes)
            text = "".join(rng.choice(self.CHARS) for _ in range(rng.randint(*lengths)))
            font = fonts.setdefault(size, ImageFont.load_default(size=size))
            left, top, right, bottom = font.getbbox(text)
            image = Image.new("L", (max(right - left, 1), max(bottom - top, 1)))
            ImageDraw.Draw(image).text((-left, -top), text, fill=255, font=font)
            ink = np.asarray(image) >= 128  # binary, so "covered" is well defined
            rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
            if rows.size:  # all-space strings have no ink
                tiles.append(ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1])
        th, tw = max(t.shape[0] for t in tiles), max(t.shape[1] for t in tiles)
        self.masks = np.zeros((count, th, tw), dtype=bool)  # each tile at the top-left of its slot
        for i, t in enumerate(tiles):
            self.masks[i, :t.shape[0], :t.shape[1]] = t
        self.sizes = np.array([t.shape for t in tiles], dtype=np.int64)
        self.ink = self.masks.sum(axis=(1, 2))

    def mean_visible_ink(self, height: int, width: int) -> float:
        """Expected ink pixels of one string inside a height x width image when its centre is uniform over it."""
        def inside(t: np.ndarray, side: int) -> np.ndarray:  # expected fraction of a length-t span kept
            return np.where(t <= 2 * side, 1 - t / (4 * side), side / t)
        return float((self.ink * inside(self.sizes[:, 0], height) * inside(self.sizes[:, 1], width)).mean())


class TextNoise(NoiseModel):
    """Random strings of random size, colour and position drawn until a fraction `coverage` of pixels is text.

    Composition is vectorised over the batch: a fixed number of layers, each offering every image one string from
    the bank at a random position. An image takes a string only if that brings its covered fraction closer to its
    target, so the achieved coverage lands within half a string of the target instead of overshooting it.
    """

    name = "text"
    MAX_COVERAGE = 0.9  # beyond this almost every string is hidden under others and the layer count explodes

    def __init__(self, coverage: Any = 0.25):
        self.coverage = Level("coverage", coverage, minimum=0, maximum=self.MAX_COVERAGE)
        self._bank: TextBank | None = None
        self._on_device: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    def __getstate__(self) -> dict:
        # Data-loader workers get a copy: device tensors must not travel with it; the bank re-renders in 0.1 s.
        return {**self.__dict__, "_bank": None, "_on_device": {}}

    @property
    def bank(self) -> TextBank:
        if self._bank is None:  # lazily: most runs never use text noise
            self._bank = TextBank()
        return self._bank

    def _masks(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        if device not in self._on_device:
            self._on_device[device] = (torch.from_numpy(self.bank.masks).to(device),
                                       torch.from_numpy(self.bank.sizes).to(device))
        return self._on_device[device]

    def layer_count(self, height: int, width: int) -> int:
        """Layers to offer: twice the strings that random placement needs, on average, to reach the top target."""
        area = min(self.bank.mean_visible_ink(height, width) / (height * width), 0.5)
        needed = math.log1p(-self.coverage.high) / math.log1p(-area)
        return math.ceil(2 * needed) + 4

    def _apply(self, x, generator):
        b, c, h, w = x.shape
        dev = x.device
        masks, sizes = self._masks(dev)
        target = self.coverage.sample(b, dev, generator)
        layers = self.layer_count(h, w)
        # Every random number up front, in a few large draws.
        picks = torch.randint(masks.shape[0], (layers, b), device=dev, generator=generator)
        centres = torch.rand((layers, b, 2), device=dev, generator=generator)
        colours = torch.rand((b, c, layers), device=dev, generator=generator)

        rows, cols = torch.arange(h, device=dev), torch.arange(w, device=dev)
        th, tw = masks.shape[1:]
        covered = torch.zeros((b, h, w), dtype=torch.bool, device=dev)
        owner = torch.zeros((b, h, w), dtype=torch.long, device=dev)  # topmost string at each pixel
        fraction = torch.zeros(b, device=dev)
        for i in range(layers):
            k = picks[i]
            # Tile centre uniform over the image, so strings may be cut off at the borders.
            top = (centres[i, :, 0] * h).long() - sizes[k, 0] // 2
            left = (centres[i, :, 1] * w).long() - sizes[k, 1] // 2
            r = rows - top[:, None]
            q = cols - left[:, None]
            inside = ((r >= 0) & (r < th))[:, :, None] & ((q >= 0) & (q < tw))[:, None, :]
            layer = masks[k[:, None, None], r.clamp(0, th - 1)[:, :, None], q.clamp(0, tw - 1)[:, None, :]] & inside
            union = covered | layer
            new = union.float().mean((1, 2))
            take = new + fraction < 2 * target  # |new - target| < |fraction - target|, as new >= fraction
            covered = torch.where(take[:, None, None], union, covered)
            owner = torch.where(take[:, None, None] & layer, i, owner)
            fraction = torch.where(take, new, fraction)
        text = colours.gather(2, owner.view(b, 1, h * w).expand(b, c, h * w)).view(b, c, h, w)
        return torch.where(covered[:, None], text, x)


#: Choices for `noise.name`.
NOISE_MODELS: dict[str, type[NoiseModel]] = {
    m.name: m for m in (GaussianNoise, PoissonNoise, PoissonGaussianNoise, BernoulliNoise, TextNoise, ImpulseNoise)
}

def build_noise(cfg: Mapping[str, Any]) -> NoiseModel:
    """`{"name": "gaussian", "sigma": 25}` -> the noise model; any bad name, key or value raises ConfigError."""
    return build_from_registry(NOISE_MODELS, cfg, "noise")
