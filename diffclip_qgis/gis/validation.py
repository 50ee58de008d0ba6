"""Validation samples: class pixel counts of a class raster, a stratified random draw of its pixels,
written as a point layer whose ``reference`` field the analyst fills in."""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import numpy as np
from osgeo import ogr, osr

from ..core.files import PendingOutputs
from .points import write_points
from .raster import PIXEL_GEOTRANSFORM, LabelRaster, open_class_raster

REFERENCE_FIELD = "reference"
MAP_CLASS_FIELD = "map_class"   # the map class each point was drawn from
#: What a sample is written with: the reference field stays empty for the user to fill in.
SAMPLE_FIELDS = (("id", ogr.OFTInteger), (MAP_CLASS_FIELD, ogr.OFTInteger), ("map_name", ogr.OFTString),
                 (REFERENCE_FIELD, ogr.OFTInteger))
SAMPLE_LAYER = "validation_sample"


ROLE = "classification (CLASSIFICATION)"


def class_pixel_counts(path: str) -> Dict[int, int]:
    """Pixels of every class (> 0) of a class raster, read strip by strip."""
    counts: Dict[int, int] = {}
    for _, ids in LabelRaster(path, ROLE).strips():
        values, n = np.unique(ids[ids > 0], return_counts=True)
        for v, k in zip(values.tolist(), n.tolist()):
            counts[v] = counts.get(v, 0) + k
    return counts


def draw_pixels(path: str, sizes: Dict[int, int], counts: Dict[int, int], seed: int
                ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows, columns and classes of a stratified random sample: ``sizes[c]`` distinct pixels of each class.

    Each class's pixels are numbered in reading order (row by row); random numbers
    are drawn per class and the pixels found in a second pass, so memory stays bounded.
    """
    rng = np.random.default_rng(seed)
    wanted = {c: np.sort(rng.choice(counts[c], size=n, replace=False)) for c, n in sizes.items() if n > 0}
    seen = {c: 0 for c in wanted}
    rows: List[np.ndarray] = []
    cols: List[np.ndarray] = []
    classes: List[np.ndarray] = []
    for r, ids in LabelRaster(path, ROLE).strips():
        for k, ranks in wanted.items():
            yy, xx = np.nonzero(ids == k)
            lo, hi = np.searchsorted(ranks, [seen[k], seen[k] + len(yy)])
            pick = ranks[lo:hi] - seen[k]
            seen[k] += len(yy)
            rows.append(yy[pick] + r)
            cols.append(xx[pick])
            classes.append(np.full(len(pick), k))
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(classes)


def raster_grid(path: str) -> Tuple[tuple, int, int, str]:
    """Geotransform (QGIS's placement when there is none), height, width and CRS (WKT) of a raster."""
    ds = open_class_raster(path, ROLE)
    gt = ds.GetGeoTransform(can_return_null=True) or PIXEL_GEOTRANSFORM
    return tuple(gt), ds.RasterYSize, ds.RasterXSize, ds.GetProjection() or ""


def pixel_hectares(geotransform, crs_wkt: str) -> Optional[float]:
    """Area of one pixel in hectares, or None when the CRS is not projected (degrees, no CRS)."""
    if not crs_wkt:
        return None
    srs = osr.SpatialReference()
    srs.ImportFromWkt(crs_wkt)
    if not srs.IsProjected():
        return None
    metres = srs.GetLinearUnits()
    return abs(geotransform[1] * geotransform[5] - geotransform[2] * geotransform[4]) * metres ** 2 / 1e4


def write_sample_points(path: str, rows: np.ndarray, cols: np.ndarray, classes: np.ndarray, names: Dict[int, str],
                        geotransform, crs_wkt: str, outputs: PendingOutputs) -> None:
    """A GeoPackage of points at the pixel centres: fields id, map_class, map_name and an empty reference."""
    order = np.lexsort((cols, rows))
    rows, cols, classes = rows[order], cols[order], classes[order]
    values = (list(range(1, len(rows) + 1)), classes.tolist(),
              [names.get(int(c), f"class {int(c)}") for c in classes], [None] * len(rows))
    write_points(path, SAMPLE_LAYER, rows, cols, geotransform, crs_wkt, outputs, SAMPLE_FIELDS, values)
