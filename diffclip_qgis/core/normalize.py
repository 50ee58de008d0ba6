"""Robust per-band scaling and the choice of usable bands."""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

import numpy as np

LOW_PERCENTILE, HIGH_PERCENTILE = 2.0, 98.0
CLIP = 3.0


@dataclass
class BandStats:
    """Which raster bands a modality uses and their 2nd/98th percentiles."""

    bands: List[int]     # 0-based indices of the raster bands used
    low: np.ndarray      # per used band
    high: np.ndarray

    def apply(self, x: np.ndarray) -> np.ndarray:
        """(all bands, ...) raw values -> (used bands, ...) scaled to about [-1, 1], clipped to +-3; NaN kept."""
        x = x[self.bands].astype(np.float32, copy=False)
        shape = (-1,) + (1,) * (x.ndim - 1)
        scale = (self.high - self.low).reshape(shape)
        y = 2.0 * (x - self.low.reshape(shape)) / scale - 1.0
        return np.clip(y, -CLIP, CLIP)

    def as_dict(self) -> dict:
        return {"bands": list(self.bands), "low": [float(v) for v in self.low], "high": [float(v) for v in self.high]}

    @classmethod
    def from_dict(cls, d: dict) -> "BandStats":
        return cls(list(d["bands"]), np.asarray(d["low"], np.float32), np.asarray(d["high"], np.float32))


def usable_bands(has_data: np.ndarray, bad_bands: Optional[List[bool]] = None) -> List[int]:
    """Bands with data (``has_data``: per band, whether any value is finite) and not flagged bad."""
    finite = np.asarray(has_data, dtype=bool).copy()
    if bad_bands is not None and len(bad_bands) == len(finite):
        finite &= ~np.asarray(bad_bands, dtype=bool)
    return [int(i) for i in np.flatnonzero(finite)]


def fit_stats(pixels: np.ndarray, bands: List[int]) -> BandStats:
    """Percentile statistics of ``pixels`` (bands, n) over the given bands, from finite values only."""
    sub = pixels[bands].astype(np.float64)
    low = np.nanpercentile(sub, LOW_PERCENTILE, axis=1)
    high = np.nanpercentile(sub, HIGH_PERCENTILE, axis=1)
    flat = (high - low) <= 1e-6 * np.maximum(1.0, np.abs(high))
    low, high = np.where(flat, low - 1.0, low), np.where(flat, low + 1.0, high)  # constant band -> 0
    return BandStats(bands, low.astype(np.float32), high.astype(np.float32))


def scale_mismatch(trained: BandStats, found: BandStats) -> str:
    """How a scene's values differ from those a model was trained on, when they look like other units or a
    scale factor (e.g. reflectance x 10000): the bands' median range over 4x the training range or under a
    hundredth of it (a small, uniform extent is narrower, but not that much), or their middle moved by more than
    two training ranges; "" otherwise."""
    common = [b for b in trained.bands if b in found.bands]
    if not common:
        return ""
    t = [trained.bands.index(b) for b in common]
    f = [found.bands.index(b) for b in common]
    span = (trained.high - trained.low)[t].astype(np.float64)
    ratio = float(np.median((found.high - found.low)[f] / span))
    shift = float(np.median(np.abs((found.high + found.low)[f] - (trained.high + trained.low)[t]) / 2 / span))
    if 0.01 <= ratio <= 4 and shift <= 2:
        return ""
    return (f"its values span {ratio:.3g} times the range of the data the model was trained on, and their middle "
            f"lies {shift:.3g} training ranges away (medians over the bands)")

