"""Point layers at pixel centres (validation samples, suggested samples), written as GeoPackages."""
from __future__ import annotations

import os
from typing import List, Sequence, Tuple

import numpy as np
from osgeo import gdal, ogr, osr

from ..core.files import GEOPACKAGE_SIDECARS, OutputPathError, PendingOutputs, write_error

ogr.UseExceptions()

#: The fields of a layer a run writes: (name, OGR field type) each.
Schema = Sequence[Tuple[str, int]]
STYLE_TABLE, STYLE_TABLE_NAME = "layer_styles", "a QGIS layer style (layer_styles)"


def check_replaceable(name: str, path: str, layer_name: str, user_fields: Sequence[str] = (),
                      schema: Schema = ()) -> None:
    """Refuse, before any work, to replace a GeoPackage that holds more than the ``layer_name`` layer a run
    writes (e.g. the dock's samples, another layer), or where that layer's ``user_fields``, or any field but
    those of the ``schema`` a run writes (given), hold values a user filled in (e.g. the reference classes of a
    validation sample, a class field added to suggested samples)."""
    if not path or not os.path.exists(path) or os.path.getsize(path) == 0:
        return
    try:
        ds = gdal.OpenEx(path, gdal.OF_VECTOR | gdal.OF_RASTER | gdal.OF_READONLY)
    except RuntimeError:
        ds = None
    if ds is None:
        raise OutputPathError(f"{name}: {path} exists and is not a GeoPackage DiffCLIP can read, so it is not "
                              "replaced. Choose another file name, or move that file away.")
    others = [ds.GetLayer(i).GetName() for i in range(ds.GetLayerCount()) if ds.GetLayer(i).GetName() != layer_name]
    others = [STYLE_TABLE_NAME if other == STYLE_TABLE else other for other in others]
    if ds.RasterCount or ds.GetMetadata("SUBDATASETS"):
        others.append("raster data")
    if others:
        raise OutputPathError(f"{name}: {path} also holds {', '.join(others)}; a new file would replace "
                              f"{'them' if len(others) > 1 else 'it'}. Choose another file name.")
    layer = ds.GetLayerByName(layer_name)
    if layer is None:
        return
    definition = layer.GetLayerDefn()
    written = [field for field, _ in schema]
    added = [definition.GetFieldDefn(i).GetName() for i in range(definition.GetFieldCount())] if written else []
    for field in list(user_fields) + [f for f in added if f not in written and f not in user_fields]:
        if definition.GetFieldIndex(field) >= 0:
            layer.SetAttributeFilter(f'"{field}" IS NOT NULL')
            filled = layer.GetFeatureCount()
            if filled:
                raise OutputPathError(f"{name}: {path} holds {filled} point{'s' if filled > 1 else ''} whose "
                                      f"'{field}' field was filled in; a new file would replace that work. Choose "
                                      "another file name, or move that file away.")


def pixel_centres(rows: np.ndarray, cols: np.ndarray, geotransform) -> Tuple[np.ndarray, np.ndarray]:
    """Map coordinates (x, y) of pixel centres."""
    gt = geotransform
    x = gt[0] + (cols + 0.5) * gt[1] + (rows + 0.5) * gt[2]
    y = gt[3] + (cols + 0.5) * gt[4] + (rows + 0.5) * gt[5]
    return x, y


def write_points(path: str, layer_name: str, rows: np.ndarray, cols: np.ndarray, geotransform, crs_wkt: str,
                 outputs: PendingOutputs, schema: Schema, values: Sequence[Sequence]) -> None:
    """A GeoPackage layer of points at the given pixels' centres with the ``schema``'s fields, one sequence of
    ``values`` per field (None = NULL), through ``outputs``."""
    tmp = outputs.temp_for(path, ".gpkg", GEOPACKAGE_SIDECARS)   # an old file's -wal would corrupt the new one
    os.remove(tmp)   # the driver creates the file itself
    try:
        _write(tmp, layer_name, *pixel_centres(np.asarray(rows), np.asarray(cols), geotransform), crs_wkt,
               [(field, kind, v) for (field, kind), v in zip(schema, values)])
    except RuntimeError as e:
        raise write_error(path, e) from None


def _write(tmp: str, layer_name: str, xs, ys, crs_wkt: str, fields: List[Tuple[str, int, Sequence]]) -> None:
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
