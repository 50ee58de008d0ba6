"""The window size with very few labels, from the scene's own pixels instead of cross-validation.

With two labelled pixels per class, cross-validation cannot tell window sizes apart (one sample
per fold), and the size it picks varies from draw to draw. The scene itself says which way to
lean: where neighbouring pixels are much alike compared with pixels far apart (a low
*neighbour contrast*), one pixel's bands already say what it is and a small window keeps
neighbouring objects out; where neighbours differ a lot (noisy or mixed pixels), a larger
window averages the noise. Measured at 2 shots (README, "Few labels").
"""
from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np

from .config import Preset
from .normalize import BandStats
from .source import PixelSource
from .windows import extract_windows, sample_valid_pixels

PIXELS = 4000   # random pixels the contrast is measured on


def neighbour_contrast(source: PixelSource, stats: Sequence[BandStats], seed: int = 0) -> float:
    """Mean distance of a pixel to its four direct neighbours over the mean distance between random pixels.

    Distances are over every scaled band of every modality; pixels whose 3 x 3 window is not
    wholly valid are left out. 0: neighbours identical; 1: neighbours as unlike as any two pixels.
    """
    rows, cols = sample_valid_pixels(source, stats, PIXELS, seed)
    keep = (rows > 0) & (cols > 0) & (rows < source.height - 1) & (cols < source.width - 1)
    windows, valid = extract_windows(source, stats, rows[keep], cols[keep], 3)
    x = np.concatenate([w.reshape(len(w), w.shape[1], 9) for w in windows], axis=1)[valid].astype(np.float64)
    x = x[np.isfinite(x).all(axis=(1, 2))]
    if len(x) < 2:
        return 0.0
    centre = x[:, :, 4]
    near = np.linalg.norm(centre[:, :, None] - x[:, :, [1, 3, 5, 7]], axis=1).mean()
    other = np.random.default_rng(seed).permutation(len(centre))
    far = np.linalg.norm(centre - centre[other], axis=1).mean()
    return float(near / far) if far > 0 else 0.0


def takes_window_from_scene(preset: Preset, median_per_class: float) -> bool:
    """Whether the window comes from this rule: window 'auto', the rule on, and few labels per class (median)."""
    ft = preset.finetune
    return preset.window == "auto" and ft.few_label_window and median_per_class <= ft.few_label_max_shots


def few_label_window(contrast: float, split: float, sizes: Tuple[int, int], largest: int) -> int:
    """The small size below ``split``, else the large one; never above ``largest``."""
    return min(sizes[0] if contrast < split else sizes[1], largest)
