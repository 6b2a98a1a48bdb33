"""Running a trained network on whole images or on overlapping tiles.

Everything goes through a *runner*: a callable that takes a float tensor N x C x h x w with h and w
multiples of 32 (on the CPU) and returns the network's output on the CPU. `TorchRunner` wraps the
PyTorch U-Net and `n2n.export.OnnxRunner` an ONNX Runtime session, so the tiling and padding logic below
serves both.

Precision: `TorchRunner(net, precision="bf16")` runs a channels-last bfloat16 copy of the network on
bfloat16 inputs; only the last convolution stays float32, so that the output values are not rounded to
bf16's 8 significant bits (input pixels are: at most 0.5/255 on 8-bit images, far below the noise). On
CPUs with AMX or AVX512-BF16, oneDNN makes this several times faster than float32, with half the
activation memory, at the same PSNR to 0.05 dB (README, "Speed and memory");
`precision="auto"` picks it where the hardware has it and float32 elsewhere.

Why tiling reproduces the whole-image result: the U-Net is translation-equivariant only on its 32-pixel
pooling grid, and its zero padding makes pixels near any tile edge differ from the whole-image result.
Tiles therefore (a) live in the same padded frame as the whole-image pass (the image is padded to a
multiple of 32 exactly as `UNet.forward` does), (b) start on multiples of 32 so the pooling grid is the
same, and (c) contribute only their centre, at least `overlap` pixels away from any tile edge that is not
also an image edge. Near an image edge the tile is pushed against that edge, where the whole-image pass
sees the very same zero padding, so border pixels match too. The remaining difference comes only from
context further than `overlap` away, which the network barely uses (see DEFAULT_OVERLAP); with
`overlap >= RECEPTIVE_REACH` there is none at all.
"""
from __future__ import annotations

import copy
from typing import Callable, Iterator, Protocol, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from n2n.unet import MULTIPLE, pad_to_multiple

#: Beyond this many pixels of context on every side the result cannot change: the U-Net's receptive
#: field reaches 158 px up/left and 127 px down/right of a pixel (it depends on the pixel's position on
#: the 32-pixel pooling grid). With overlap >= RECEPTIVE_REACH tiled output equals whole-image output
#: for any weights, up to float rounding.
RECEPTIVE_REACH = 160

#: Default context kept around each tile's centre. Measured max |tiled - whole| on 448 x 448 and
#: 480 x 480 smooth + texture + edges images: 128 px -> <= 0.0007/255 with random weights and
#: <= 0.0002/255 with briefly fitted ones; 96 px -> up to 31/255 and 1.5/255, failing the 1/255 target.
#: 128 leaves out only the far, faint edge of the receptive field and costs less than RECEPTIVE_REACH.
DEFAULT_OVERLAP = 128

#: Default tile side for the command line: large enough that the 2 x 128 px margins cost < 80 % extra
#: compute on large images, small enough that one tile's activations stay around 1 GB.
DEFAULT_TILE = 1024

#: Default number of tiles sent to the device per call.
DEFAULT_BATCH = 1

#: Values of `precision`: "auto" = "bf16" where bfloat16 is fast (see fast_bf16), else "fp32".
PRECISIONS = ("auto", "fp32", "bf16")


def fast_bf16(device: str | torch.device = "cpu") -> bool:
    """Whether bfloat16 convolutions are native (hence faster than float32) on `device`.

    CPU: oneDNN (torch.backends.mkldnn) and an x86 CPU with AMX-BF16 or AVX512-BF16 (Sapphire Rapids and
    later Xeons, Cooper Lake, Zen 4); without them oneDNN emulates bf16, which is no faster than float32.
    CUDA: a GPU with native bf16 (Ampere and later).
    """
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type != "cpu" or not torch.backends.mkldnn.is_available():
        return False
    get_capabilities = getattr(torch.cpu, "get_capabilities", None)
    if get_capabilities is None:  # PyTorch before torch.cpu.get_capabilities
        return bool(getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)()
                    or getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)())
    caps = get_capabilities()
    return bool(caps.get("amx_bf16") or caps.get("avx512_bf16"))


def resolve_precision(precision: str, device: str | torch.device = "cpu") -> str:
    """"fp32" or "bf16" for a `precision` of "auto", "fp32" or "bf16" on `device`."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        return "bf16" if fast_bf16(device) else "fp32"
    return precision


def _cast_input_to_weight(module: nn.Module, args: tuple) -> tuple:
    dtype = module.weight.dtype
    return tuple(a.to(dtype) if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args)


def bf16_network(net: nn.Module) -> nn.Module:
    """A channels-last bfloat16 copy of `net` whose last convolution stays float32 (`net` is not changed).

    Every module with weights casts its input to its own dtype, so the float32 output layer takes the
    bf16 features of the layer before it and returns float32 values that were never rounded to bf16's
    8 significant bits. Feed the copy bf16 channels-last inputs (as TorchRunner does): a float32 input
    would also reach the U-Net's last skip connection, where concatenating it with bf16 features makes
    a float32 copy of the largest activation (measured: 2x the memory of a 1024 px tile, 1.7x the time).
    """
    model = copy.deepcopy(net).eval().to(torch.bfloat16, memory_format=torch.channels_last)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if convs:
        convs[-1].float()  # registration order = the U-Net's forward order: dec_conv1c
    for module in model.modules():
        weight = getattr(module, "weight", None)
        if isinstance(weight, torch.Tensor) and weight.is_floating_point():
            module.register_forward_pre_hook(_cast_input_to_weight)
    return model


class Runner(Protocol):
    """Anything that maps N x C x h x w (h, w multiples of 32, CPU float32) to the network output on CPU."""

    in_channels: int
    out_channels: int

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...


class TorchRunner:
    """Runs a U-Net (anything with `forward_aligned`) on one device; inputs and outputs stay on the CPU.

    `precision`: "fp32", "bf16" (bf16_network on bf16 channels-last inputs) or "auto"
    (bf16 where fast_bf16 says the device has native bfloat16, else fp32). `self.precision` holds the
    resolved choice. Outputs are float32 either way. On the CPU, float32 inputs are also given to the
    network channels-last (the weights are left as they are): same values to ~1e-6, and oneDNN no
    longer reorders each activation (measured on a 1024 px tile: 1.6x faster, 756 instead of 1243 MB).
    """

    def __init__(self, net: nn.Module, device: str | torch.device | None = None, precision: str = "fp32"):
        if device is None:
            device = next(net.parameters()).device
        self.device = torch.device(device)
        self.precision = resolve_precision(precision, self.device)
        self.net = net.to(self.device).eval()
        self.in_channels = getattr(net, "in_channels", None)
        self.out_channels = getattr(net, "out_channels", None)
        self.model = bf16_network(self.net) if self.precision == "bf16" else self.net

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            forward = getattr(self.model, "forward_aligned", self.model)
            if self.precision == "bf16":
                x = x.to(self.device, torch.bfloat16, memory_format=torch.channels_last)
            elif self.device.type == "cpu":
                # oneDNN then skips its reorders of every activation: 1.2-1.6x faster, 40 % less memory
                x = x.to(torch.float32, memory_format=torch.channels_last)
            else:
                x = x.to(self.device, torch.float32)
            return forward(x).float().cpu()


RunnerLike = Union[nn.Module, Runner, Callable[[torch.Tensor], torch.Tensor]]


def as_runner(net: RunnerLike, precision: str | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """A module becomes a TorchRunner on the device its weights are on, in `precision` (default fp32).

    A runner is used as it is: `precision` "auto" or None leaves it alone, and an explicit "fp32" or
    "bf16" must match the runner's own (its `precision` attribute; fp32 if it has none, like OnnxRunner).
    """
    if isinstance(net, nn.Module):
        return TorchRunner(net, precision=precision or "fp32")
    if precision not in (None, "auto"):
        own = getattr(net, "precision", "fp32")
        if resolve_precision(precision) != own:
            raise ValueError(f"precision={precision!r} was asked for, but the runner given runs in {own}: "
                             f"build it with that precision (TorchRunner(net, precision=...)) or pass the network")
    return net


def round_up(n: int, multiple: int = MULTIPLE) -> int:
    return -(-int(n) // multiple) * multiple


def tile_windows(size: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """Split [0, size) along one axis into (window_start, window_end, core_start, core_end).

    `size`, `tile` and `overlap` are multiples of 32. Cores partition [0, size); every window has length
    min(tile, size), starts on a multiple of 32 and holds its core with at least `overlap` pixels of
    context on each side that is not the image border.
    """
    if tile >= size:
        return [(0, size, 0, size)]
    step = tile - 2 * overlap
    out: list[tuple[int, int, int, int]] = []
    for core_start in range(0, size, step):
        core_end = min(core_start + step, size)
        start = min(max(core_start - overlap, 0), size - tile)
        if out and out[-1][0] == start:  # near the far border cores share a window: run it once
            out[-1] = (start, start + tile, out[-1][2], core_end)
        else:
            out.append((start, start + tile, core_start, core_end))
    return out


def _batches(items: Sequence, size: int) -> Iterator[Sequence]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def check_tiling(tile: int, overlap: int) -> tuple[int, int]:
    """Tile and overlap rounded up to multiples of 32, refusing a tile with no room for a centre."""
    if overlap < 0:
        raise ValueError(f"overlap must be >= 0 pixels, got {overlap}")
    t, o = round_up(tile), round_up(overlap)
    if t - 2 * o < MULTIPLE:
        raise ValueError(
            f"tile {tile} (rounded up to {t}) leaves no centre with overlap {overlap} (rounded up to {o}) "
            f"on both sides: use a tile of at least {2 * o + MULTIPLE} pixels or a smaller overlap"
        )
    return t, o


def denoise_tensor(
    net: RunnerLike,
    x: torch.Tensor,
    tile: int | None = None,
    overlap: int = DEFAULT_OVERLAP,
    batch: int = DEFAULT_BATCH,
    precision: str | None = None,
) -> torch.Tensor:
    """Denoise x (B x C x H x W, float in [0, 1], any H and W); returns B x C_out x H x W on the CPU in [0, 1].

    `tile=None` runs the whole image at once. Otherwise the image is cut into overlapping tiles of
    `tile` pixels (rounded up to a multiple of 32) whose centres, `overlap` pixels (rounded up to a
    multiple of 32) away from inner tile edges, are stitched together; at most `batch` tiles of one
    image are on the device at a time and the output is assembled on the CPU in one float32 buffer of
    the output's size (the padded frame is never materialised: each tile is padded on its own).
    `precision` ("auto", "fp32", "bf16"; None = fp32) applies when `net` is a module (see TorchRunner).
    """
    if x.dim() != 4:
        raise ValueError(f"expected a B x C x H x W tensor, got shape {tuple(x.shape)}")
    if batch < 1:
        raise ValueError(f"batch must be >= 1 tile, got {batch}")
    run = as_runner(net, precision)
    h, w = x.shape[-2:]
    with torch.inference_mode():
        x = x.detach().float().cpu()
        hp, wp = round_up(h), round_up(w)
        if tile is None or (tile >= hp and tile >= wp):
            # The same padding as UNet.forward; the tiled pass below works in this very frame.
            out = run(pad_to_multiple(x, MULTIPLE))[..., :h, :w]
        else:
            out = _denoise_tiled(run, x, *check_tiling(tile, overlap), batch)
        return out.clamp_(0.0, 1.0)


def _pad_mode(h: int, w: int) -> str:
    """The mode n2n.unet.pad_to_multiple uses for an h x w image."""
    return "reflect" if (-h) % MULTIPLE < h and (-w) % MULTIPLE < w else "replicate"


def crop_padded(x: torch.Tensor, y0: int, y1: int, x0: int, x1: int) -> torch.Tensor:
    """pad_to_multiple(x)[..., y0:y1, x0:x1], padding only the crop (a view when no padding is needed)."""
    h, w = x.shape[-2:]
    if y1 <= h and x1 <= w:
        return x[..., y0:y1, x0:x1]
    # Bottom/right padding (< 32 px) reflects or repeats the last rows/columns: take up to 32 of them along.
    ya = min(y0, max(h - MULTIPLE, 0)) if y1 > h else y0
    xa = min(x0, max(w - MULTIPLE, 0)) if x1 > w else x0
    part = x[..., ya:min(y1, h), xa:min(x1, w)]
    part = F.pad(part, (0, max(x1 - w, 0), 0, max(y1 - h, 0)), mode=_pad_mode(h, w))
    return part[..., y0 - ya:, x0 - xa:]


def _denoise_tiled(run: Callable, x: torch.Tensor, tile: int, overlap: int, batch: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    windows = [
        (ry, rx)
        for ry in tile_windows(round_up(h), tile, overlap)
        for rx in tile_windows(round_up(w), tile, overlap)
    ]
    out: torch.Tensor | None = None
    for image in range(x.shape[0]):
        for group in _batches(windows, batch):
            # All windows have the same size (each is min(tile, side)), so tiles stack into one batch.
            crops = torch.cat([crop_padded(x[image:image + 1], y0, y1, x0, x1)
                               for (y0, y1, _, _), (x0, x1, _, _) in group])
            pred = run(crops)
            if out is None:  # allocated lazily: the runner decides the number of output channels
                out = torch.empty(x.shape[0], pred.shape[1], h, w, dtype=pred.dtype)
            for k, ((y0, _, cy0, cy1), (x0, _, cx0, cx1)) in enumerate(group):
                cy1, cx1 = min(cy1, h), min(cx1, w)  # cores in the padding are not kept
                if cy0 < cy1 and cx0 < cx1:
                    out[image, :, cy0:cy1, cx0:cx1] = pred[k, :, cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
            del crops, pred
    assert out is not None
    return out
