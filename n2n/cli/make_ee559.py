"""`n2n make-ee559`: turn a folder of clean images into the EE-559 course's pickles.

The seed report trained on `train_data.pkl` (two independently noisy copies of 50 000 32x32 RGB patches) and
scored on `val_data.pkl` (1 000 noisy patches and their clean originals). The course's files are not public, so
this writes files of exactly that format from any images, for `python train.py data=ee559` (or
`experiment=seed_report`) to read:

    train_data.pkl: (noisy_imgs_1, noisy_imgs_2), two uint8 tensors N x 3 x P x P
    val_data.pkl:   (noisy_imgs, clean_imgs),    two uint8 tensors M x 3 x P x P

Everything random (which image, where, the noise) comes from one generator seeded by --seed, so the same
command writes the same files.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from n2n.atomic import atomic_output
from n2n.cli import Bounded
from n2n.errors import DataError, imports_shielded

if TYPE_CHECKING:
    import torch

# torch, PIL and n2n's data modules are imported when the command runs, not here: the parser must stay light
# for `n2n --help`.
#: The smallest --patch: n2n.data.sources.base.MIN_VALIDATION_SIDE (a test checks that they agree).
MIN_PATCH = 11

TRAIN_FILE, VAL_FILE = "train_data.pkl", "val_data.pkl"
#: Patches noised at once: bounds the float32 working memory (4096 x 3 x 32 x 32 floats are 48 MiB).
CHUNK = 4096


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "make-ee559", help="write the EE-559 course pickles (train_data.pkl, val_data.pkl) from a folder of images",
        description="Cut random patches from clean images and write train_data.pkl (two independently noisy "
                    "copies of each patch) and val_data.pkl (noisy and clean patches) in the format of "
                    "`python train.py data=ee559`.")
    p.add_argument("--images", required=True, type=Path, metavar="DIR", help="folder of clean training images")
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="folder to write the two pickles to")
    p.add_argument("--train-count", type=Bounded(int, 1), default=50_000, metavar="N",
                   help="training pairs (default 50000)")
    p.add_argument("--val-images", type=Path, metavar="DIR",
                   help="folder of clean validation images (default: every 10th image of --images is held out "
                        "for validation and never cut into training patches)")
    p.add_argument("--val-count", type=Bounded(int, 1), default=1000, metavar="N",
                   help="validation patches (default 1000)")
    p.add_argument("--sigma", type=Bounded(float, 0), default=25.0, metavar="S",
                   help="Gaussian noise standard deviation on the 0..255 scale (default 25)")
    p.add_argument("--seed", type=Bounded(int, 0, 2**32 - 1), default=0, metavar="K",
                   help="seed of patch positions and noise (default 0)")
    p.add_argument("--patch", type=Bounded(int, MIN_PATCH), default=32, metavar="P",
                   help="patch side in pixels (default 32)")
    p.add_argument("--force", action="store_true", help="overwrite existing pickles in --out")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # the counts, --patch, --seed and --sigma were range-checked when parsed (Bounded)
    with imports_shielded("n2n"):  # Ctrl-C while torch imports: one line, after the import
        import torch
        from tqdm import tqdm

        from n2n.data.sources import load_tensor_pair
        from n2n.metrics import psnr
        from n2n.noise import build_noise

    out = Path(args.out)
    targets = (out / TRAIN_FILE, out / VAL_FILE)
    existing = [str(t) for t in targets if t.exists()]
    if existing and not args.force:  # checked before any work: a long run must not end in a refusal
        raise DataError(f"{' and '.join(existing)} already exist(s); pass --force to overwrite")
    if out.exists() and not out.is_dir():
        raise DataError(f"--out={out} is a file; expected a folder")

    train_files, val_files = _split(args)
    noise = build_noise({"name": "gaussian", "sigma": args.sigma})
    g = torch.Generator().manual_seed(args.seed)

    clean = cut_patches(train_files, args.train_count, args.patch, g, "--images", "training patches")
    noisy_1, noisy_2 = torch.empty_like(clean), torch.empty_like(clean)
    for start in tqdm(range(0, len(clean), CHUNK), desc="noising training pairs", unit="chunk",
                      disable=None, leave=False):
        x = clean[start:start + CHUNK].float() / 255
        noisy_1[start:start + CHUNK] = to_uint8(noise(x, generator=g))
        noisy_2[start:start + CHUNK] = to_uint8(noise(x, generator=g))
    del clean

    val_clean = cut_patches(val_files, args.val_count, args.patch, g,
                            "--val-images" if args.val_images else "--images", "validation patches")
    val_noisy = torch.cat([to_uint8(noise(val_clean[s:s + CHUNK].float() / 255, generator=g))
                           for s in range(0, len(val_clean), CHUNK)])

    out.mkdir(parents=True, exist_ok=True)
    _save((noisy_1, noisy_2), targets[0])
    _save((val_noisy, val_clean), targets[1])
    # Read back with the loader train.py uses, so a file that data=ee559 would refuse is never left behind.
    load_tensor_pair(targets[0], "train", ("noisy_imgs_1", "noisy_imgs_2"))
    load_tensor_pair(targets[1], "val", ("noisy_imgs", "clean_imgs"))

    noisy_psnr = psnr(val_noisy.float(), val_clean.float(), data_range=255)
    shape = "x".join(map(str, noisy_1.shape[1:]))
    print(f"wrote {targets[0]} ({len(noisy_1)} noisy pairs of {shape} from {len(train_files)} image(s)) and "
          f"{targets[1]} ({len(val_noisy)} noisy/clean pairs from {len(val_files)} image(s)); "
          f"noisy validation input: {noisy_psnr:.2f} dB PSNR")
    print(f"train with: python train.py experiment=seed_report data.train_path={targets[0]} "
          f"data.val_path={targets[1]}")
    return 0


def _split(args: argparse.Namespace) -> tuple[list[Path], list[Path]]:
    """Training and validation image files; without --val-images, every 10th image is held out so that no
    validation patch comes from an image that was trained on."""
    from n2n.data.sources import list_images

    files = list_images(args.images, "--images")
    if args.val_images is not None:
        return files, list_images(args.val_images, "--val-images")
    if len(files) < 2:
        raise DataError(f"--images={args.images} holds only {len(files)} image; at least 2 are needed to hold one "
                        f"out for validation, or pass --val-images DIR")
    held_out = files[::10]
    return [f for i, f in enumerate(files) if i % 10], held_out


def image_size(path: Path) -> tuple[int, int]:
    """(height, width) from the header alone; EXIF rotation may swap them, which the caller's min() ignores."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            width, height = im.size
    except (OSError, ValueError, Image.DecompressionBombError, SyntaxError) as exc:
        raise DataError(f"image {path} cannot be read: {exc}") from None
    return height, width


def cut_patches(files: list[Path], count: int, size: int, g: torch.Generator, option: str,
                what: str) -> torch.Tensor:
    """`count` random size x size RGB patches (uint8, count x 3 x size x size): each from an image drawn
    uniformly (as training crops are drawn), at a uniform position. Each image is decoded once and then
    dropped, so a folder of large photos never has to fit in memory."""
    import torch
    from tqdm import tqdm

    from n2n.image_files import read_training_image

    usable = [f for f in files if min(image_size(f)) >= size]
    skipped = len(files) - len(usable)
    if not usable:
        raise DataError(f"{option}: none of the {len(files)} image(s) for {what} is at least {size}x{size} pixels; "
                        f"lower --patch or add larger images")
    if skipped:
        print(f"make-ee559: {what}: skipping {skipped} image(s) of {option} smaller than {size}x{size}",
              file=sys.stderr, flush=True)
    owner = torch.randint(0, len(usable), (count,), generator=g)
    patches = torch.empty(count, 3, size, size, dtype=torch.uint8)
    for i in tqdm(range(len(usable)), desc=f"cutting {what}", unit="image", disable=None, leave=False):
        slots = (owner == i).nonzero().flatten()
        if len(slots) == 0:
            continue
        image = read_training_image(usable[i], channels=3)
        h, w = image.shape[1:]
        ys = torch.randint(0, h - size + 1, (len(slots),), generator=g).tolist()
        xs = torch.randint(0, w - size + 1, (len(slots),), generator=g).tolist()
        for slot, y, x in zip(slots.tolist(), ys, xs):
            patches[slot] = image[:, y:y + size, x:x + size]
    return patches


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] floats -> the course's uint8 values (noise beyond black or white is clipped, as in 8-bit images)."""
    import torch

    return (x * 255).round_().clamp_(0, 255).to(torch.uint8)


def _save(pair: tuple[torch.Tensor, torch.Tensor], path: Path) -> None:
    """Atomically (n2n.atomic): an interrupted run leaves no half-written pickle."""
    import torch

    with atomic_output(path) as tmp:
        torch.save(tuple(t.contiguous() for t in pair), tmp)
