"""Training samples: vector features with a class value turned into labelled pixels of a grid.

Points give the pixel under them, lines every pixel they touch, polygons every pixel whose
centre lies inside (or, for polygons smaller than a pixel, the pixels they touch).
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from osgeo import gdal, ogr, osr

from ..core.classes import ClassInfo
from .raster import crs_label, grid_bounds

gdal.UseExceptions()
ogr.UseExceptions()
osr.UseExceptions()

Log = Callable[[str, bool], None]


class SampleError(ValueError):
    """Samples that cannot be used as given; the message says why and how to fix it."""


@dataclass
class SampleSet:
    """Labelled pixels: ``rows[i], cols[i]`` of the grid belong to class ``class_ids[i]``.

    ``classes`` holds the id and name of every class (colour and prompt empty);
    ``skipped`` counts the features that gave no pixel on the grid.
    """

    rows: np.ndarray
    cols: np.ndarray
    class_ids: np.ndarray
    classes: List[ClassInfo]
    skipped: int = 0


def _no_log(message: str, warning: bool = False) -> None:
    pass


def as_int(value) -> Optional[int]:
    """The value as an int when it is an integer (number or digit string), else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return int(value) if math.isfinite(value) and float(value).is_integer() else None
    text = str(value).strip()
    return int(text) if text.lstrip("+-").isdigit() else None


def _fraction(value) -> bool:
    """Whether the value is a real number that is not whole (1.5, "2.25")."""
    try:
        x = float(value) if isinstance(value, numbers.Real) else float(str(value).strip())
    except ValueError:
        return False
    return math.isfinite(x) and not x.is_integer()


def class_values_to_ids(values: Sequence) -> Tuple[List[int], Dict[int, str]]:
    """Class ids (>= 1) for the class-field values of the samples, and ``{id: name}``.

    Integer values are used as ids (name ``"class N"``); any other values are names, numbered
    1..K in sorted order, whole numbers first by value ("2" before "10"). Values that are numbers
    but not whole (1.5) are refused.
    """
    if not values:
        raise SampleError("There are no sample features. Digitise points or polygons with a class value.")
    empty = sum(1 for v in values if v is None or str(v).strip() == "")
    if empty:
        raise SampleError(
            f"{empty} of {len(values)} sample features have an empty (NULL) class value. Fill in "
            "the class field of every sample feature, or delete those features.")
    fractions = sorted({str(v).strip() for v in values if _fraction(v)})
    if fractions:
        raise SampleError(
            f"Class value {fractions[0]} is not a whole number: a class is an integer id (1, 2, ...) or a name. "
            "Choose the field that holds the classes, or round its values in the attribute table.")
    ints = [as_int(v) for v in values]
    if all(i is not None for i in ints):
        bad = sorted({i for i in ints if i < 1})
        if bad:
            raise SampleError(
                f"Class value {bad[0]} is not allowed: class ids must be 1 or more, because 0 means "
                "nodata (unclassified) in the output. Renumber the classes from 1.")
        return ints, {i: f"class {i}" for i in sorted(set(ints))}
    texts = [str(v).strip() for v in values]
    order = sorted(set(texts), key=lambda t: (0, as_int(t), "") if as_int(t) is not None else (1, 0, t))
    ids = {name: n for n, name in enumerate(order, 1)}
    return [ids[t] for t in texts], {n: name for name, n in ids.items()}


def mixed_values_note(values: Sequence) -> str:
    """A warning when a class field mixes whole numbers with text ("", when it does not): the numbers then
    become names, and the map's values are no longer those numbers."""
    given = {str(v).strip() for v in values if v is not None and str(v).strip()}
    texts = sorted(t for t in given if as_int(t) is None)
    if not texts or len(texts) == len(given):   # no text, or no number
        return ""
    return (f"The class field mixes whole numbers with text ({', '.join(repr(t) for t in texts[:5])}"
            f"{', ...' if len(texts) > 5 else ''}): every value is taken as a class name, and the classes are "
            "numbered 1..K in the map. If the text values are typing errors, correct them to keep the numbers as ids.")


def _transformation(source_crs: str, grid_crs: str, log: Log) -> Optional[osr.CoordinateTransformation]:
    if not source_crs or not grid_crs:
        if source_crs or grid_crs:
            log("The samples or the raster have no CRS; assuming both use the same coordinates.", True)
        return None
    srs = []
    for text in (source_crs, grid_crs):
        s = osr.SpatialReference()
        s.SetFromUserInput(text)
        s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        srs.append(s)
    return None if srs[0].IsSame(srs[1]) else osr.CoordinateTransformation(*srs)


def _extents(geometries_wkb: Sequence[Optional[bytes]], source_crs: str, grid: "_Grid", grid_crs: str) -> str:
    """Where the samples and the raster lie, each in its own CRS."""
    boxes = [ogr.CreateGeometryFromWkb(w).GetEnvelope() for w in geometries_wkb if w]
    boxes = [b for b in boxes if all(math.isfinite(v) for v in b)]
    raster = grid_bounds(grid.gt, grid.width, grid.height)
    text = (f"The raster spans x {raster[0]:.10g} to {raster[2]:.10g}, y {raster[1]:.10g} to {raster[3]:.10g} "
            f"({crs_label(grid_crs)})")
    if not boxes:
        return text + "."
    return (f"The samples span x {min(b[0] for b in boxes):.10g} to {max(b[1] for b in boxes):.10g}, "
            f"y {min(b[2] for b in boxes):.10g} to {max(b[3] for b in boxes):.10g} ({crs_label(source_crs)}); "
            + text[0].lower() + text[1:] + ".")


_GRID_SRS = osr.SpatialReference()
_GRID_SRS.SetLocalCS("grid")


def _memory_vector():
    """An empty in-memory vector dataset: GDAL's MEM driver where it holds vectors (GDAL 3.11 on, which deprecates
    OGR's Memory driver), else the Memory driver."""
    mem = gdal.GetDriverByName("MEM")
    if mem.GetMetadataItem(gdal.DCAP_VECTOR) == "YES":
        return mem.Create("", 0, 0, 0, gdal.GDT_Unknown)
    return ogr.GetDriverByName("Memory").CreateDataSource("")


class _Grid:
    """Pixel lookups on a grid given by its geotransform and size."""

    def __init__(self, gt: Sequence[float], height: int, width: int):
        self.gt, self.height, self.width = tuple(gt), height, width
        self.inverse = gdal.InvGeoTransform(self.gt)
        if self.inverse is None:
            raise SampleError(f"The raster geotransform {self.gt} cannot be inverted (zero pixel size).")

    def pixel(self, x: float, y: float) -> Tuple[float, float]:
        """(column, row) as fractions."""
        return gdal.ApplyGeoTransform(self.inverse, x, y)

    def pixels(self, geom: ogr.Geometry) -> Tuple[np.ndarray, np.ndarray]:
        """Rows and columns of the grid pixels a geometry (already in grid coordinates) covers."""
        flat = ogr.GT_Flatten(geom.GetGeometryType())
        if flat == ogr.wkbPoint:
            col, row = self.pixel(geom.GetX(), geom.GetY())
            col, row = math.floor(col), math.floor(row)
            if 0 <= row < self.height and 0 <= col < self.width:
                return np.array([row]), np.array([col])
            return np.empty(0, int), np.empty(0, int)
        if flat in (ogr.wkbMultiPoint, ogr.wkbGeometryCollection):
            parts = [self.pixels(geom.GetGeometryRef(i)) for i in range(geom.GetGeometryCount())]
            return (np.concatenate([p[0] for p in parts] or [np.empty(0, int)]),
                    np.concatenate([p[1] for p in parts] or [np.empty(0, int)]))
        if geom.HasCurveGeometry():
            geom = geom.GetLinearGeometry()
        is_area = ogr.GT_IsSubClassOf(flat, ogr.wkbCurvePolygon) or ogr.GT_IsSubClassOf(flat, ogr.wkbMultiSurface)
        rows, cols = self._rasterize(geom, all_touched=not is_area)
        if is_area and not rows.size:  # smaller than a pixel: take the pixels it touches
            rows, cols = self._rasterize(geom, all_touched=True)
        return rows, cols

    def _rasterize(self, geom: ogr.Geometry, all_touched: bool) -> Tuple[np.ndarray, np.ndarray]:
        xmin, xmax, ymin, ymax = geom.GetEnvelope()
        corners = [self.pixel(x, y) for x in (xmin, xmax) for y in (ymin, ymax)]
        col0 = max(0, math.floor(min(c for c, _ in corners)))
        col1 = min(self.width, math.floor(max(c for c, _ in corners)) + 1)
        row0 = max(0, math.floor(min(r for _, r in corners)))
        row1 = min(self.height, math.floor(max(r for _, r in corners)) + 1)
        if col1 <= col0 or row1 <= row0:
            return np.empty(0, int), np.empty(0, int)
        gt = self.gt
        mask_ds = gdal.GetDriverByName("MEM").Create("", col1 - col0, row1 - row0, 1, gdal.GDT_Byte)
        mask_ds.SetGeoTransform((gt[0] + col0 * gt[1] + row0 * gt[2], gt[1], gt[2],
                                 gt[3] + col0 * gt[4] + row0 * gt[5], gt[4], gt[5]))
        vector = _memory_vector()
        layer = vector.CreateLayer("sample", srs=_GRID_SRS)   # the geometry is in grid coordinates already: no
        mask_ds.SetSpatialRef(_GRID_SRS)                        # "layer without a CRS" warning per feature
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetGeometry(geom)
        layer.CreateFeature(feature)
        gdal.RasterizeLayer(mask_ds, [1], layer, burn_values=[1],
                            options=["ALL_TOUCHED=TRUE"] if all_touched else [])
        rows, cols = np.nonzero(mask_ds.ReadAsArray())
        return rows + row0, cols + col0


def samples_from_geometries(geometries_wkb: Sequence[Optional[bytes]], values: Sequence,
                            grid_geotransform, grid_height: int, grid_width: int,
                            source_crs_wkt: str = "", grid_crs_wkt: str = "",
                            log: Optional[Log] = None, reference: bool = False) -> SampleSet:
    """Labelled grid pixels from sample geometries (WKB) and their class-field values.

    Geometries are reprojected from ``source_crs_wkt`` to ``grid_crs_wkt`` when these differ
    (either may also be an ``EPSG:n`` code). Features with no pixel on the grid are skipped
    with a warning; a pixel claimed by several classes keeps the first feature's class.
    Raises :class:`SampleError` for empty or invalid class values, fewer than two classes,
    or a class left without any pixel; a ``reference`` for accuracy may hold one class, and a
    class without a pixel is only named in a warning.
    """
    log = log or _no_log
    if len(geometries_wkb) != len(values):
        raise ValueError(f"{len(geometries_wkb)} geometries but {len(values)} class values.")
    ids, names = class_values_to_ids(list(values))
    note = mixed_values_note(values)
    if note:
        log(note, True)
    if len(names) < 2 and not reference:
        raise SampleError(
            f"The samples hold only one class ({next(iter(names.values()))}). Add samples of at least "
            "one more class: classification needs two classes or more.")
    grid = _Grid(grid_geotransform, grid_height, grid_width)
    transformation = _transformation(source_crs_wkt, grid_crs_wkt, log)
    rows, cols, classes, skipped = [], [], [], 0
    for wkb, class_id in zip(geometries_wkb, ids):
        r, c = _feature_pixels(wkb, grid, transformation)
        if not r.size:
            skipped += 1
            continue
        rows.append(r)
        cols.append(c)
        classes.append(np.full(r.size, class_id))
    if skipped == len(ids):
        raise SampleError(f"None of the {len(ids)} sample features lies on the raster. "
                          + _extents(geometries_wkb, source_crs_wkt, grid, grid_crs_wkt)
                          + " If the samples' coordinates are right, check the CRS set on the sample layer.")
    if skipped:
        log(f"{skipped} of {len(ids)} sample features have no pixel on the raster (outside its extent "
            "or without geometry) and were skipped.", True)
    rows, cols, class_ids = _first_per_pixel(rows, cols, classes, grid_width, log)
    for class_id, name in names.items():
        if not np.any(class_ids == class_id):
            count = ids.count(class_id)
            if reference:
                log(f"Class '{name}' has no reference pixel on the raster: its {count} feature(s) lie outside the "
                    "raster extent (or only on pixels of other classes).", True)
                continue
            raise SampleError(
                f"Class '{name}' has no sample pixel on the raster: its {count} feature(s) lie outside "
                "the raster extent (or only on pixels of other classes). Add samples of this class "
                "inside the raster, or remove the class.")
    return SampleSet(rows=rows, cols=cols, class_ids=class_ids,
                     classes=[ClassInfo(id=i, name=n) for i, n in sorted(names.items())], skipped=skipped)


def geometry_pixels(geometries_wkb: Sequence[Optional[bytes]], grid_geotransform, grid_height: int, grid_width: int,
                    source_crs_wkt: str = "", grid_crs_wkt: str = "", log: Optional[Log] = None
                    ) -> Tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the grid pixels the geometries cover (as samples do), whatever their classes; a
    warning counts the features off the grid (with both extents when none is on it)."""
    log = log or _no_log
    grid = _Grid(grid_geotransform, grid_height, grid_width)
    transformation = _transformation(source_crs_wkt, grid_crs_wkt, log)
    pixels = [_feature_pixels(wkb, grid, transformation) for wkb in geometries_wkb]
    off = sum(1 for r, _ in pixels if not r.size)
    if off:
        log(f"{off} of {len(pixels)} sample features have no pixel on the raster and are left out."
            + ("" if off < len(pixels) else " " + _extents(geometries_wkb, source_crs_wkt, grid, grid_crs_wkt)
               + " If the samples' coordinates are right, check the CRS set on the sample layer."), True)
    rows = np.concatenate([r for r, _ in pixels] + [np.empty(0, np.int64)]).astype(np.int64)
    cols = np.concatenate([c for _, c in pixels] + [np.empty(0, np.int64)]).astype(np.int64)
    return rows, cols


def _feature_pixels(wkb: Optional[bytes], grid: _Grid,
                    transformation: Optional[osr.CoordinateTransformation]) -> Tuple[np.ndarray, np.ndarray]:
    empty = np.empty(0, int), np.empty(0, int)
    if not wkb:
        return empty
    geom = ogr.CreateGeometryFromWkb(bytes(wkb))
    if geom is None or geom.IsEmpty():
        return empty
    if transformation is not None:
        try:
            geom.Transform(transformation)
        except RuntimeError:  # outside the area where the CRS conversion is defined
            return empty
    return grid.pixels(geom)


def _first_per_pixel(rows: List[np.ndarray], cols: List[np.ndarray], classes: List[np.ndarray],
                     width: int, log: Log) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Drop repeated pixels, keeping the first sample's class; warn when classes conflict."""
    if not rows:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int64)
    rows, cols, classes = (np.concatenate(a).astype(np.int64) for a in (rows, cols, classes))
    keys = rows * width + cols
    _, first = np.unique(keys, return_index=True)
    first.sort()
    pairs = np.unique(np.stack([keys, classes]), axis=1)
    conflicts = len(pairs[0]) - len(first)
    if conflicts:
        log(f"{conflicts} pixel(s) are covered by samples of different classes; each keeps the class "
            "of the first sample feature.", True)
    return rows[first], cols[first], classes[first]


#: What ``file|option=value|...`` (a QGIS layer source) may choose: a layer by name or index, and a feature filter.
SOURCE_OPTIONS = ("layername", "layerid", "subset")


def split_source(source: str) -> Tuple[str, Dict[str, str]]:
    """``file|layername=x|subset=...`` (as QGIS writes a layer's source) -> (file, {option: value})."""
    file, *parts = source.split("|")
    options = {}
    for part in parts:
        key, equals, value = part.partition("=")
        if not equals or key not in SOURCE_OPTIONS:
            raise SampleError(f"'{part}' in {source} is not an option read here: after '|' come "
                              f"{', '.join(o + '=' for o in SOURCE_OPTIONS)} (e.g. {file}|layername=samples).")
        options[key] = value
    return file, options


def _open_layer(source: str, log: Optional[Log] = None) -> Tuple[ogr.DataSource, ogr.Layer]:
    """The vector file and the layer its source chooses (default: the first, with a warning when there are
    more), filtered by its ``subset``; the file must outlive the layer."""
    path, options = split_source(source)
    try:
        vector = ogr.Open(path)
    except RuntimeError:
        vector = None
    if vector is None:
        raise SampleError(f"Cannot open the sample file {path}. Choose an existing vector file "
                          "(GeoPackage, shapefile, GeoJSON, ...).")
    if vector.GetLayerCount() == 0:
        raise SampleError(f"{path} holds no vector layer. Choose a file with sample points or polygons.")
    layers = [vector.GetLayer(i).GetName() for i in range(vector.GetLayerCount())]
    if "layername" in options:
        name = options["layername"]
    elif "layerid" in options:
        index = options["layerid"]
        name = layers[int(index)] if index.isdigit() and int(index) < len(layers) else f"number {index}"
    else:
        name = layers[0]
        if len(layers) > 1 and log is not None:
            log(f"{path} holds {len(layers)} layers ({', '.join(layers)}): reading the first, '{name}'. Choose "
                f"another with {path}|layername=NAME.", True)
    if name not in layers:
        raise SampleError(f"{path} has no layer '{name}'; its layers are: {', '.join(layers)} (choose one with "
                          f"{path}|layername=NAME).")
    layer = vector.GetLayerByName(name)
    if options.get("subset"):
        try:
            layer.SetAttributeFilter(options["subset"])
            layer.GetNextFeature()   # some drivers (GeoPackage) read the filter only here
            layer.ResetReading()
        except RuntimeError as e:
            raise SampleError(f"The filter (subset) {options['subset']} of {source} does not read: {e}") from None
    return vector, layer


def _field_names(layer: ogr.Layer) -> List[str]:
    definition = layer.GetLayerDefn()
    return [definition.GetFieldDefn(i).GetName() for i in range(definition.GetFieldCount())]


def field_names(source: str) -> List[str]:
    """The attribute fields of the layer a vector source chooses (see :func:`read_features`)."""
    vector, layer = _open_layer(source)
    return _field_names(layer)


def read_features(source: str, class_field: str, log: Optional[Log] = None
                  ) -> Tuple[List[Optional[bytes]], List[object], str]:
    """Geometries (ISO WKB), class-field values and CRS (WKT) of a vector layer's features, read with OGR.

    ``source`` is a file, or a QGIS layer source ``file|layername=x`` (or ``layerid=n``, and ``subset=``
    for a feature filter); without ``class_field`` the values are all None.
    """
    vector, layer = _open_layer(source, log)
    fields = _field_names(layer)
    if class_field and class_field not in fields and class_field.lower() == (layer.GetFIDColumn() or "fid").lower():
        raise SampleError(f"The class field '{class_field}' is the sample layer's feature id (a different value for "
                          "every feature), so every sample would be a class of its own. Choose the field that holds "
                          f"the class ids or names (fields: {', '.join(fields) or 'none'}).")
    if class_field and class_field not in fields:
        others = [vector.GetLayer(i).GetName() for i in range(vector.GetLayerCount())
                  if vector.GetLayer(i).GetName() != layer.GetName()]
        raise SampleError(f"The sample layer '{layer.GetName()}' has no field '{class_field}'. Choose the "
                          f"class field among: {', '.join(fields) or '(no fields)'}."
                          + (f" The file's other layers: {', '.join(others)} (choose one with "
                             f"{split_source(source)[0]}|layername=NAME)." if others else ""))
    index = fields.index(class_field) if class_field else -1
    geometries, values = [], []
    for feature in layer:
        geom = feature.GetGeometryRef()
        geometries.append(geom.ExportToIsoWkb() if geom is not None else None)
        values.append(feature.GetField(index) if index >= 0 and feature.IsFieldSetAndNotNull(index) else None)
    srs = layer.GetSpatialRef()
    return geometries, values, srs.ExportToWkt() if srs is not None else ""
