"""The window size with very few labels, from the scene's own pixels instead of cross-validation.

With two labelled pixels per class, cross-validation cannot tell window sizes apart (one sample
per fold), and the size it picks varies from draw to draw. The scene itself says which way to
lean. A window helps by averaging away noise, and hurts by mixing in neighbouring objects. So
the rule asks what the differences between neighbouring pixels are made of: where they lie
outside the scene's few main spectral components (the *noise share* is high), neighbours differ
by sensor noise and a larger window averages it; where they lie inside them, neighbours differ
by real changes of material and the pixel alone is classified. Measured at 2 shots (README,
"Few labels").
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

from .config import Preset
from .normalize import BandStats
from .source import PixelSource
from .windows import extract_windows, sample_valid_pixels

PIXELS = 4000          # random pixels the noise share is measured on
SIGNAL_COMPONENTS = 5  # principal components of the scene taken as its signal


def neighbour_noise_share(source: PixelSource, stats: Sequence[BandStats], seed: int = 0) -> Optional[float]:
    """Share of the squared differences between a pixel and its four neighbours outside the scene's main components.

    Over every scaled band of every modality, each band standardised over the sampled pixels;
    the main components are the first ``SIGNAL_COMPONENTS`` principal components of those pixels.
    Pixels whose 3 x 3 window is not wholly valid are left out. 0: neighbours differ only in the
    scene's main spectral directions; 1: only outside them. None when the bands are too few to
    tell (at most twice ``SIGNAL_COMPONENTS``) or the pixels too few.
    """
    if sum(len(s.bands) for s in stats) <= 2 * SIGNAL_COMPONENTS:
        return None
    rows, cols = sample_valid_pixels(source, stats, PIXELS, seed)
    keep = (rows > 0) & (cols > 0) & (rows < source.height - 1) & (cols < source.width - 1)
    windows, valid = extract_windows(source, stats, rows[keep], cols[keep], 3)
    x = np.concatenate([w.reshape(len(w), w.shape[1], 9) for w in windows], axis=1)[valid].astype(np.float64)
    x = x[np.isfinite(x).all(axis=(1, 2))]
    if len(x) <= 2 * SIGNAL_COMPONENTS:
        return None
    centre = x[:, :, 4]
    scale = centre.std(axis=0) + 1e-9
    _, _, components = np.linalg.svd((centre - centre.mean(axis=0)) / scale, full_matrices=False)
    diffs = ((centre[:, :, None] - x[:, :, [1, 3, 5, 7]]).transpose(0, 2, 1) / scale).reshape(-1, x.shape[1])
    total = float((diffs ** 2).sum())
    if total == 0:
        return None
    inside = float(((diffs @ components[:SIGNAL_COMPONENTS].T) ** 2).sum())
    return max(0.0, 1.0 - inside / total)


def takes_window_from_scene(preset: Preset, median_per_class: float) -> bool:
    """Whether no cross-validation runs: window 'auto', the rule on, and few labels per class (median)."""
    ft = preset.finetune
    return preset.window == "auto" and ft.window_from_scene and median_per_class <= ft.few_label_max_shots


def scene_window(noise_share: Optional[float], split: float, few_labels: bool, sizes: Tuple[int, int, int],
                 largest: int) -> Optional[int]:
    """The window the scene decides, never above ``largest``; None where cross-validation is to choose.

    ``sizes`` = (noise share below the split, at every label count; at or above it with few labels;
    share unknown with few labels).
    """
    if noise_share is not None and noise_share < split:
        size = sizes[0]
    elif not few_labels:
        return None
    else:
        size = sizes[2] if noise_share is None else sizes[1]
    return min(size, largest)
