"""Where pixels come from: the interface the core reads rasters through.

The core never opens files. Anything with ``height``, ``width``, ``band_counts`` and a
``read`` method works: :class:`ArraySource` wraps numpy arrays, and
``diffclip_qgis.gis.raster.RasterStack`` reads GDAL rasters block by block.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Protocol, Sequence

import numpy as np


class PixelSource(Protocol):
    """A stack of co-registered modalities on one pixel grid.

    ``read(row0, col0, rows, cols)`` returns one float32 array per modality, shaped
    (bands, rows, cols); nodata is non-finite (NaN). The box always lies inside
    the grid, widened by the optional ``margins`` (top, left, bottom, right) a source
    may declare; the core edge-pads beyond that.
    """

    height: int
    width: int
    band_counts: List[int]

    def read(self, row0: int, col0: int, rows: int, cols: int) -> List[np.ndarray]:
        ...


@dataclass
class ModalityInfo:
    """What is known of one modality's bands besides the pixels."""

    name: str
    wavelengths: Optional[List[float]] = None  # nm, one per band, when the raster has them
    bad_bands: Optional[List[bool]] = None     # True = flagged bad by the sensor metadata
    band_names: List[str] = field(default_factory=list)


class ArraySource:
    """A :class:`PixelSource` over in-memory arrays, one (bands, H, W) array per modality."""

    def __init__(self, arrays: Sequence[np.ndarray]):
        if not arrays:
            raise ValueError("No input modality given: pass at least one (bands, rows, cols) array.")
        arrays = [np.asarray(a, dtype=np.float32) for a in arrays]
        arrays = [a[None] if a.ndim == 2 else a for a in arrays]
        shapes = {a.shape[1:] for a in arrays}
        if any(a.ndim != 3 for a in arrays) or len(shapes) != 1:
            raise ValueError(
                "Modalities must be (bands, rows, cols) arrays on one grid; got shapes "
                f"{[a.shape for a in arrays]}. Resample them onto one grid first."
            )
        self.arrays = [np.where(np.isinf(a), np.float32(np.nan), a) if np.isinf(a).any() else a
                       for a in arrays]   # nodata is NaN: so are +-inf (the caller's arrays stay as they are)
        self.height, self.width = arrays[0].shape[1:]
        self.band_counts = [a.shape[0] for a in arrays]

    def read(self, row0: int, col0: int, rows: int, cols: int) -> List[np.ndarray]:
        return [a[:, row0:row0 + rows, col0:col0 + cols] for a in self.arrays]
