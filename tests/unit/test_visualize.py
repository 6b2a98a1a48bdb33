"""The noisy | denoised | clean pictures: columns named, images captioned, small images enlarged."""
import torch

from n2n.visualize import comparison_grid


def _ink(grid: torch.Tensor, top: int, bottom: int) -> int:
    """Dark pixels (text) in rows top..bottom of a white-background grid."""
    return int((grid[:, top:bottom].min(dim=0).values < 0.5).sum())


def test_the_grid_names_its_columns_and_captions_each_image():
    rows = [[torch.full((3, 32, 32), 0.8), torch.full((3, 32, 32), 0.9), torch.ones(3, 32, 32)]]
    plain = comparison_grid(rows, min_side=128, labels=("", "", ""))
    labelled = comparison_grid(rows, min_side=128, captions=[["20.17 dB", "29.80 dB", ""]])
    assert plain.shape[0] == 3 and 0 <= float(labelled.min()) and float(labelled.max()) <= 1
    assert _ink(plain, 0, 20) == 0 and _ink(labelled, 0, 20) > 20  # the header: noisy | denoised | clean
    assert labelled.shape[1] > plain.shape[1] and _ink(labelled, labelled.shape[1] - 20, labelled.shape[1]) > 20
    # 32 px images are shown 4 times larger, pixel for pixel
    assert plain.shape[2] >= 3 * 128


def test_grey_images_give_a_grey_grid_and_large_ones_are_cropped():
    rows = [[torch.rand(1, 600, 500)] * 3]
    grid = comparison_grid(rows, max_side=256)
    assert grid.shape[0] == 1 and grid.shape[2] < 3 * 256 + 40


def test_text_is_enlarged_to_read_at_the_width_the_grid_is_shown_at():
    rows = [[torch.full((3, 32, 32), 0.8)] * 3]
    normal = comparison_grid(rows, min_side=128)  # about 400 px wide, 14 px text
    shrunk = comparison_grid(rows, min_side=128, shown_width=normal.shape[2] // 2)  # shown at half width
    assert shrunk.shape[2] == normal.shape[2] and shrunk.shape[1] > normal.shape[1] + 10
    assert _ink(normal, 20, 26) == 0 and _ink(shrunk, 20, 26) > 20  # the header's text twice as tall
