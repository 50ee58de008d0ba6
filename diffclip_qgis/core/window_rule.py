"""The window size from the scene's own pixels, before (or instead of) cross-validation.

A window helps by averaging away noise and hurts by mixing in neighbouring objects. The rule asks
what the differences between neighbouring pixels are made of: where they lie inside the scene's
few main spectral components, neighbours differ by real changes of material and the pixel alone
is classified (with more labels, unless cross-validation finds a window clearly better: classes
defined by their surroundings); where they lie outside them (the *noise share* is high),
neighbours differ by sensor noise and a window averages it. Which window then comes from
cross-validation, except with very few labels (one sample per fold: it cannot tell sizes apart),
where the rule names it. Measured at 2 to 16 samples per class (docs/few_labels.md).
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .config import Preset, SceneWindows
from .normalize import BandStats
from .source import PixelSource
from .windows import extract_windows, sample_valid_pixels

PIXELS = 4000          # random pixels the noise share is measured on
SIGNAL_COMPONENTS = 5  # principal components of the scene taken as its signal
NEIGHBOURS = ((-1, 0), (0, -1), (0, 1), (1, 0))   # (row, column) offsets of the four neighbours compared


def neighbour_noise_share(source: PixelSource, stats: Sequence[BandStats], seed: int = 0) -> Optional[float]:
    """Share of the squared differences between a pixel and its four neighbours outside the scene's main components.

    Over every scaled band of every modality, each band standardised over the sampled pixels;
    the main components are the first ``SIGNAL_COMPONENTS`` principal components of those pixels.
    Pixels with a nodata neighbour are left out. 0: neighbours differ only in the
    scene's main spectral directions; 1: only outside them. None when the bands are too few to
    tell (at most twice ``SIGNAL_COMPONENTS``), the raster is narrower than 3 pixels, the valid pixels
    are too few or the scene is constant.
    """
    if sum(len(s.bands) for s in stats) <= 2 * SIGNAL_COMPONENTS or min(source.height, source.width) < 3:
        return None
    rows, cols = sample_valid_pixels(source, stats, PIXELS, seed)
    keep = (rows > 0) & (cols > 0) & (rows < source.height - 1) & (cols < source.width - 1)
    windows, valid = extract_windows(source, stats, rows[keep], cols[keep], 3, valid_at=((0, 0),) + NEIGHBOURS)
    x = np.concatenate([w.reshape(len(w), w.shape[1], 9) for w in windows], axis=1)[valid].astype(np.float64)
    if len(x) <= 2 * SIGNAL_COMPONENTS:
        return None
    centre = x[:, :, 4]
    scale = centre.std(axis=0) + 1e-9
    _, _, components = np.linalg.svd((centre - centre.mean(axis=0)) / scale, full_matrices=False)
    neighbours = x[:, :, [(dy + 1) * 3 + dx + 1 for dy, dx in NEIGHBOURS]]   # row-major 3 x 3
    diffs = ((centre[:, :, None] - neighbours).transpose(0, 2, 1) / scale).reshape(-1, x.shape[1])
    total = float((diffs ** 2).sum())
    if total == 0:
        return None
    inside = float(((diffs @ components[:SIGNAL_COMPONENTS].T) ** 2).sum())
    return max(0.0, 1.0 - inside / total)


def few_labels(preset: Preset, median_per_class: float) -> bool:
    """Whether the labels are too few for cross-validation to compare windows (median per class)."""
    return median_per_class <= preset.finetune.few_label_max_shots


def skips_cross_validation(preset: Preset, median_per_class: float) -> bool:
    """Whether an 'auto' window comes from this rule alone, with no cross-validation: the rule on and few labels."""
    return preset.finetune.window_from_scene and few_labels(preset, median_per_class)


def scene_window(noise_share: Optional[float], split: float, few: bool, sizes: SceneWindows,
                 largest: int) -> Optional[int]:
    """The window the scene decides, never above ``largest``; None where cross-validation is to choose."""
    if noise_share is not None and noise_share < split:
        size = sizes.clean
    elif not few:
        return None
    else:
        size = sizes.unmeasured if noise_share is None else sizes.noisy
    return min(size, largest)
