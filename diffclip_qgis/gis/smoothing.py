"""Majority (mode) filtering of class rasters, block by block with a halo.

Removes isolated, salt-and-pepper pixels from a classification: every classified pixel
takes the most frequent class in a disk of ``radius`` pixels around it. Nodata (class 0)
is never smoothed across: unclassified pixels are left out of every neighbourhood and
stay 0. Working in blocks with a ``radius`` halo gives exactly the whole-raster result
with memory bounded by the block size. Uses scikit-image's rank filter (imported lazily).
"""
from __future__ import annotations

from typing import Callable, Iterator, Optional, Tuple

import numpy as np
from osgeo import gdal

gdal.UseExceptions()

BLOCK = 512
Reader = Callable[[int, int, int, int], np.ndarray]


def _rank_tools():
    try:
        from skimage.filters.rank import majority
        from skimage.morphology import disk
    except ImportError as e:
        raise RuntimeError(
            "Smoothing needs scikit-image in QGIS's Python: install it (python -m pip install "
            "'scikit-image<0.25') or set the smoothing radius to 0.") from e
    return majority, disk


def majority_filter(ids: np.ndarray, radius: int) -> np.ndarray:
    """The class array after a majority filter over a disk of ``radius`` pixels; 0 stays 0 and is ignored.

    Ties go to the smallest class id among the tied ones (scikit-image's rule).
    """
    ids = np.asarray(ids)
    if radius <= 0 or ids.size == 0:
        return ids.copy()
    valid = ids > 0
    if not valid.any():
        return ids.copy()
    majority, disk = _rank_tools()
    values, compact = np.unique(ids, return_inverse=True)  # rank filters want small non-negative ints
    compact = compact.reshape(ids.shape)
    if values[0] != 0:
        values, compact = np.concatenate([[0], values]), compact + 1
    dtype = np.uint8 if len(values) <= 256 else np.uint16
    smoothed = majority(compact.astype(dtype), disk(int(radius)), mask=valid.astype(np.uint8))
    out = values[smoothed.astype(np.int64)].astype(ids.dtype)
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
