"""Majority (mode) filtering of class rasters, block by block with a halo.

Removes isolated, salt-and-pepper pixels from a classification: every classified pixel
takes the most frequent class in a disk of ``radius`` pixels around it. Nodata (class 0)
is never smoothed across: unclassified pixels are left out of every neighbourhood and
stay 0. Working in blocks with a ``radius`` halo gives exactly the whole-raster result
with memory bounded by the block size. NumPy alone: the same result as scikit-image's
rank majority filter with a disk and a mask, which QGIS's Python often lacks.
"""
from __future__ import annotations

from math import isqrt
from typing import Callable, Iterator, Optional, Tuple

import numpy as np
from osgeo import gdal

gdal.UseExceptions()

BLOCK = 512
Reader = Callable[[int, int, int, int], np.ndarray]


def majority_filter(ids: np.ndarray, radius: int) -> np.ndarray:
    """The class array after a majority filter over a disk of ``radius`` pixels; 0 stays 0 and is ignored.

    Ties go to the smallest class id among the tied ones.
    """
    ids = np.asarray(ids)
    valid = ids > 0
    if radius <= 0 or not valid.any():
        return ids.copy()
    r, (h, w) = int(radius), ids.shape
    best = np.zeros((h, w), np.int32)
    out = np.zeros_like(ids)
    for value in np.unique(ids[valid]):   # ascending, and only a larger count wins: ties keep the smaller id
        padded = np.zeros((h + 2 * r, w + 2 * r + 1), np.int32)
        padded[r:r + h, r + 1:r + 1 + w] = ids == value
        sums = np.cumsum(padded, axis=1)   # per row: this class's pixels left of each padded column
        count = np.zeros((h, w), np.int32)
        for dy in range(-r, r + 1):   # the disk, row by row: x * x + dy * dy <= r * r
            half = isqrt(r * r - dy * dy)
            rows = sums[r + dy:r + dy + h]
            count += rows[:, r + 1 + half:r + 1 + half + w] - rows[:, r - half:r - half + w]
        wins = count > best
        best[wins] = count[wins]
        out[wins] = value
    out[~valid] = 0
    return out


def iter_blocks(height: int, width: int, block: int = BLOCK) -> Iterator[Tuple[int, int, int, int]]:
    for r in range(0, height, block):
        for c in range(0, width, block):
            yield r, c, min(block, height - r), min(block, width - c)


def smooth_blocks(read: Reader, height: int, width: int, radius: int, block: int = BLOCK,
                  progress: Optional[Callable[[float], None]] = None,
                  check: Optional[Callable[[], None]] = None) -> Iterator[Tuple[int, int, np.ndarray]]:
    """``(row0, col0, smoothed ids)`` per block; ``read(row0, col0, rows, cols)`` gives class ids.

    Each block is read with a halo of ``radius`` pixels (clipped at the raster edge), so the
    result equals :func:`majority_filter` on the whole raster.
    """
    boxes = list(iter_blocks(height, width, block))
    for i, (r, c, h, w) in enumerate(boxes):
        if check is not None:
            check()
        r0, c0 = max(0, r - radius), max(0, c - radius)
        r1, c1 = min(height, r + h + radius), min(width, c + w + radius)
        smoothed = majority_filter(read(r0, c0, r1 - r0, c1 - c0), radius)
        yield r, c, smoothed[r - r0:r - r0 + h, c - c0:c - c0 + w]
        if progress is not None:
            progress((i + 1) / len(boxes))


def smoothed_tiles(class_path: str, radius: int, confidence_path: Optional[str] = None, block: int = BLOCK,
                   progress: Optional[Callable[[float], None]] = None,
                   check: Optional[Callable[[], None]] = None
                   ) -> Iterator[Tuple[int, int, np.ndarray, Optional[np.ndarray]]]:
    """Tiles ``(row0, col0, ids, confidence)`` of a class raster after majority smoothing.

    The confidence (when ``confidence_path`` is given) is passed through unchanged: it stays
    the classifier's confidence in the class it chose before smoothing. Feed the tiles to
    :func:`~diffclip_qgis.gis.raster.write_classification`.
    """
    ds = gdal.Open(class_path, gdal.GA_ReadOnly)
    conf_ds = gdal.Open(confidence_path, gdal.GA_ReadOnly) if confidence_path else None
    try:
        band = ds.GetRasterBand(1)

        def read(r0, c0, rows, cols):
            return band.ReadAsArray(c0, r0, cols, rows).astype(np.int64)

        for r, c, ids in smooth_blocks(read, ds.RasterYSize, ds.RasterXSize, radius, block, progress, check):
            conf = None
            if conf_ds is not None:
                conf = conf_ds.GetRasterBand(1).ReadAsArray(c, r, ids.shape[1], ids.shape[0]).astype(np.float32)
            yield r, c, ids, conf
    finally:
        band = None
        ds = conf_ds = None
