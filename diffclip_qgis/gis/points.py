"""Point layers at pixel centres (validation samples, suggested samples), written as GeoPackages."""
from __future__ import annotations

import os
from typing import List, Sequence, Tuple

import numpy as np
from osgeo import ogr, osr

from ..core.files import PendingOutputs, write_error

ogr.UseExceptions()

#: (name, OGR field type, one value per point; None = NULL)
Field = Tuple[str, int, Sequence]


def pixel_centres(rows: np.ndarray, cols: np.ndarray, geotransform) -> Tuple[np.ndarray, np.ndarray]:
    """Map coordinates (x, y) of pixel centres."""
    gt = geotransform
    x = gt[0] + (cols + 0.5) * gt[1] + (rows + 0.5) * gt[2]
    y = gt[3] + (cols + 0.5) * gt[4] + (rows + 0.5) * gt[5]
    return x, y


def write_points(path: str, layer_name: str, rows: np.ndarray, cols: np.ndarray, geotransform, crs_wkt: str,
                 outputs: PendingOutputs, fields: List[Field]) -> None:
    """A GeoPackage layer of points at the given pixels' centres with ``fields``, through ``outputs``."""
    tmp = outputs.temp_for(path, ".gpkg")
    os.remove(tmp)   # the driver creates the file itself
    try:
        _write(tmp, layer_name, *pixel_centres(np.asarray(rows), np.asarray(cols), geotransform), crs_wkt, fields)
    except RuntimeError as e:
        raise write_error(path, e) from None


def _write(tmp: str, layer_name: str, xs, ys, crs_wkt: str, fields: List[Field]) -> None:
    srs = None
    if crs_wkt:
        srs = osr.SpatialReference()
        srs.ImportFromWkt(crs_wkt)
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(tmp)
    layer = ds.CreateLayer(layer_name, srs, ogr.wkbPoint)
    for name, kind, _ in fields:
        layer.CreateField(ogr.FieldDefn(name, kind))
    layer.StartTransaction()
    for i, (x, y) in enumerate(zip(xs.tolist(), ys.tolist())):
        feature = ogr.Feature(layer.GetLayerDefn())
        point = ogr.Geometry(ogr.wkbPoint)
        point.AddPoint_2D(x, y)
        feature.SetGeometry(point)
        for name, _, values in fields:
            if values[i] is None:
                feature.SetFieldNull(name)
            else:
                feature.SetField(name, values[i])
        layer.CreateFeature(feature)
    layer.CommitTransaction()
    ds = None
