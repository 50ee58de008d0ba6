"""Point layers at pixel centres (validation samples, suggested samples), written as GeoPackages."""
from __future__ import annotations

import os
from typing import List, Sequence, Tuple

import numpy as np
from osgeo import gdal, ogr, osr

from ..core.files import GEOPACKAGE_SIDECARS, WAL, OutputPathError, PendingOutputs, write_error

ogr.UseExceptions()

#: The fields of a layer a run writes: (name, OGR field type) each.
Schema = Sequence[Tuple[str, int]]
STYLE_TABLE, STYLE_TABLE_NAME = "layer_styles", "a QGIS layer style (layer_styles)"


#: The suggested samples a run writes (workflow.suggest) and the dock shows.
SUGGESTIONS_LAYER = "suggested_samples"
SUGGESTION_FIELDS = (("rank", ogr.OFTInteger), ("best_class", ogr.OFTInteger), ("second_class", ogr.OFTInteger),
                     ("margin", ogr.OFTReal), ("best_name", ogr.OFTString), ("second_name", ogr.OFTString))


def check_replaceable(name: str, path: str, layer_name: str, user_fields: Sequence[str] = (),
                      schema: Schema = ()) -> None:
    """Refuse, before any work, to replace a GeoPackage that a program is editing (SQLite's ``-wal`` beside it:
    edits saved there later would go to the replaced file and be lost) or that holds a user's work
    (:func:`user_work`)."""
    if not path or not os.path.exists(path) or os.path.getsize(path) == 0:
        return
    if any(os.path.exists(path + s) for s in (WAL, "-shm")):
        raise OutputPathError(f"{name}: {path} is open for editing in another program (SQLite's "
                              f"{os.path.basename(path)}{WAL} is beside it), e.g. as a layer in QGIS; edits saved "
                              "there after a new file replaced it would be lost. Save or discard those edits and "
                              "remove the layer (or choose another file name). If no program has it open, opening it "
                              "once in QGIS tidies those files away.")
    work = user_work(path, layer_name, user_fields, schema)
    if work:
        raise OutputPathError(f"{name}: {path} {work}")


def user_work(path: str, layer_name: str, user_fields: Sequence[str] = (), schema: Schema = ()) -> str:
    """What a new file at ``path`` would lose, "" if nothing: a GeoPackage holding more than the ``layer_name``
    layer a run writes (e.g. the dock's samples, another layer), or where that layer's ``user_fields``, or any
    field but those of the ``schema`` a run writes (given), hold values a user filled in (e.g. the reference
    classes of a validation sample, a class field added to suggested samples)."""
    try:
        ds = gdal.OpenEx(path, gdal.OF_VECTOR | gdal.OF_RASTER | gdal.OF_READONLY)
    except RuntimeError:
        ds = None
    if ds is None:
        return ("exists and is not a GeoPackage DiffCLIP can read, so it is not replaced. Choose another file name, "
                "or move that file away.")
    others = [ds.GetLayer(i).GetName() for i in range(ds.GetLayerCount()) if ds.GetLayer(i).GetName() != layer_name]
    others = [STYLE_TABLE_NAME if other == STYLE_TABLE else other for other in others]
    if ds.RasterCount or ds.GetMetadata("SUBDATASETS"):
        others.append("raster data")
    if others:
        return (f"also holds {', '.join(others)}; a new file would replace {'them' if len(others) > 1 else 'it'}. "
                "Choose another file name.")
    layer = ds.GetLayerByName(layer_name)
    if layer is None:
        return ""
    definition = layer.GetLayerDefn()
    written = [field for field, _ in schema]
    added = [definition.GetFieldDefn(i).GetName() for i in range(definition.GetFieldCount())] if written else []
    for field in list(user_fields) + [f for f in added if f not in written and f not in user_fields]:
        if definition.GetFieldIndex(field) >= 0:
            layer.SetAttributeFilter(f'"{field}" IS NOT NULL')
            filled = layer.GetFeatureCount()
            if filled:
                return (f"holds {filled} point{'s' if filled > 1 else ''} whose '{field}' field was filled in; a new "
                        "file would replace that work. Choose another file name, or move that file away.")
    return ""


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
