"""Reading raster stacks block by block, and writing classification rasters atomically.

:class:`RasterStack` opens one raster per modality with GDAL and puts every modality on
the first raster's pixel grid (warping lazily through in-memory VRTs where needed), so
that the core can read any window as float32 arrays with nodata as NaN.
"""
from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np
from osgeo import gdal, osr

from ..core.files import GDAL_SIDECARS, PendingOutputs, write_error
from ..core.classes import ClassInfo, palette_colour
from ..core.source import ModalityInfo
from .metadata import modality_info

gdal.UseExceptions()
osr.UseExceptions()

Log = Callable[[str, bool], None]
GeoTransform = Tuple[float, float, float, float, float, float]
#: Where a raster without georeferencing lies: QGIS shows pixel (row, col) at x=col, y=-row.
PIXEL_GEOTRANSFORM: GeoTransform = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)
#: Confidence rasters mark unclassified pixels with this value.
CONFIDENCE_NODATA = -1.0
#: The largest class id a (UInt16) class raster holds.
MAX_CLASS_ID = 65535


class RasterInputError(ValueError):
    """A raster that cannot be used as given; the message says why and how to fix it."""


def _no_log(message: str, warning: bool = False) -> None:
    pass


def _srs(wkt: str) -> Optional[osr.SpatialReference]:
    if not wkt:
        return None
    srs = osr.SpatialReference()
    srs.ImportFromWkt(wkt)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return srs


def _crs_name(srs: Optional[osr.SpatialReference]) -> str:
    if srs is None:
        return "no CRS"
    code = srs.GetAuthorityCode(None)
    return f"{srs.GetAuthorityName(None)}:{code}" if code else (srs.GetName() or "custom CRS")


def crs_label(text: str) -> str:
    """``EPSG:n`` (or the CRS's name) for a CRS as WKT or ``EPSG:n``; "no CRS" for ""."""
    if not text:
        return "no CRS"
    srs = osr.SpatialReference()
    srs.SetFromUserInput(text)
    return _crs_name(srs)


def grid_bounds(gt: Sequence[float], width: int, height: int) -> Tuple[float, float, float, float]:
    """(xmin, ymin, xmax, ymax) of a grid, from its four corners."""
    xs, ys = [], []
    for col, row in ((0, 0), (width, 0), (0, height), (width, height)):
        xs.append(gt[0] + col * gt[1] + row * gt[2])
        ys.append(gt[3] + col * gt[4] + row * gt[5])
    return min(xs), min(ys), max(xs), max(ys)


class _Modality:
    """One input raster as read: the dataset on the reference grid plus value conversions.

    ``datasets`` runs from the opened file to ``reader`` (placing VRT, warping VRT); all are
    kept open while the reader uses them.
    """

    def __init__(self, datasets: List[gdal.Dataset]):
        source, reader = datasets[0], datasets[-1]
        bands = [source.GetRasterBand(i + 1) for i in range(source.RasterCount)]
        self.datasets, self.reader = datasets, reader
        reader_bands = [reader.GetRasterBand(i + 1) for i in range(reader.RasterCount)]
        self.nodata = [b.GetNoDataValue() for b in reader_bands]
        # Bands of different types (possible in VRTs) are read as float64 rather than band 1's type.
        self.buf_type = gdal.GDT_Float64 if len({b.DataType for b in reader_bands}) > 1 else None
        scales = [b.GetScale() for b in bands]
        offsets = [b.GetOffset() for b in bands]
        self.scale = np.array([1.0 if s is None else s for s in scales], np.float32)[:, None, None]
        self.offset = np.array([0.0 if o is None else o for o in offsets], np.float32)[:, None, None]
        self.scaled = bool(np.any(self.scale != 1) or np.any(self.offset != 0))
        # GDAL masks beyond nodata (an internal or .msk mask, an alpha band): 0 marks a pixel as nodata.
        flags = [b.GetMaskFlags() for b in reader_bands]
        self.masks = [None if f & (gdal.GMF_ALL_VALID | gdal.GMF_NODATA) else b.GetMaskBand()
                      for b, f in zip(reader_bands, flags)]
        self.shared_mask = bool(flags) and all(f & gdal.GMF_PER_DATASET for f in flags) and self.masks[0] is not None

    def read(self, row0: int, col0: int, rows: int, cols: int) -> np.ndarray:
        raw = self.reader.ReadAsArray(col0, row0, cols, rows, buf_type=self.buf_type)
        raw = raw.reshape(self.reader.RasterCount, rows, cols)
        out = raw.astype(np.float32)
        if self.shared_mask:
            out[:, self.masks[0].ReadAsArray(col0, row0, cols, rows) == 0] = np.nan
        else:
            for i, mask in enumerate(self.masks):
                if mask is not None:
                    out[i][mask.ReadAsArray(col0, row0, cols, rows) == 0] = np.nan
        with np.errstate(over="ignore", invalid="ignore"):
            for i, nodata in enumerate(self.nodata):
                if nodata is not None and not math.isnan(nodata):
                    value = raw.dtype.type(nodata) if raw.dtype.kind == "f" else nodata
                    out[i][raw[i] == value] = np.nan
            if self.scaled:
                out = out * self.scale + self.offset
        out[~np.isfinite(out)] = np.nan
        return out

    def close(self) -> None:
        """Close the VRTs before the files they read."""
        self.reader = None
        while self.datasets:
            self.datasets.pop()


def holds_data_at(path: str, x: float, y: float) -> bool:
    """Whether the raster at ``path`` holds a value in any band but an alpha band at (``x``, ``y``) in its CRS, by
    the rules a run reads it with (nodata, GDAL masks and alpha bands, non-finite values); False outside it.

    True where that cannot be told (the file does not open, or has no georeferencing): the run will say.
    """
    try:
        ds = gdal.Open(path, gdal.GA_ReadOnly)
    except RuntimeError:
        return True
    gt = ds.GetGeoTransform(can_return_null=True)
    if gt is None:
        return True
    col, row = (math.floor(v) for v in gdal.ApplyGeoTransform(gdal.InvGeoTransform(gt), x, y))
    if not (0 <= row < ds.RasterYSize and 0 <= col < ds.RasterXSize):
        return False
    values = _Modality([ds]).read(row, col, 1, 1)[:, 0, 0]
    alpha = [ds.GetRasterBand(i + 1).GetColorInterpretation() == gdal.GCI_AlphaBand for i in range(ds.RasterCount)]
    return bool(np.isfinite(values[~np.array(alpha, dtype=bool)]).any())


class RasterStack:
    """GDAL rasters (one per modality) read as one :class:`~diffclip_qgis.core.source.PixelSource`.

    The first raster defines the grid (``height``, ``width``, ``geotransform``, ``crs_wkt``).
    Rasters on another grid are warped onto it in memory (bilinear; outside their extent
    becomes NaN) and a warning naming the file and the difference goes to ``log``.
    ``read`` returns physical values: nodata, pixels a GDAL mask or alpha band marks as nodata, and
    non-finite values become NaN, and the band scale/offset, when set, are applied. ``log(message, warning)`` is optional.
    """

    def __init__(self, paths: Sequence[str], log: Optional[Log] = None):
        if not paths:
            raise RasterInputError("No input raster given: choose at least one raster layer or file.")
        self.paths = [str(p) for p in paths]
        self._log = log or _no_log
        self._modalities: List[_Modality] = []
        self.infos: List[ModalityInfo] = []
        try:
            for path in self.paths:
                self._add(path)
        except BaseException:
            self.close()
            raise
        self.band_counts = [m.reader.RasterCount for m in self._modalities]

    # -- opening --------------------------------------------------------------------------
    def _add(self, path: str) -> None:
        name = os.path.basename(path)
        source = self._open(path, name)
        placed = self._placed(source, name)
        srs = placed.GetSpatialRef()
        if srs is not None:
            srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        datasets = [source] if placed is source else [source, placed]
        if not self._modalities:
            self._set_reference(placed, srs, name)
        else:
            warped = self._on_reference_grid(placed, srs, name)
            if warped is not placed:
                datasets.append(warped)
        self._modalities.append(_Modality(datasets))
        self.infos.append(modality_info(source, name))

    @staticmethod
    def _open(path: str, name: str) -> gdal.Dataset:
        try:
            ds = gdal.Open(path, gdal.GA_ReadOnly)
        except RuntimeError as e:
            raise RasterInputError(
                f"Cannot open {path} as a raster ({e}). Check that the file exists and is in a format "
                "GDAL reads (GeoTIFF, VRT, ENVI, ...).") from None
        if ds.RasterCount == 0:
            raise RasterInputError(
                f"{name} has no raster bands. If it is a container (NetCDF, HDF, ...), choose one of "
                "its subdatasets instead.")
        if gdal.DataTypeIsComplex(ds.GetRasterBand(1).DataType):
            raise RasterInputError(
                f"{name} holds complex values. Convert it to real bands (e.g. amplitude) first.")
        return ds

    def _placed(self, ds: gdal.Dataset, name: str) -> gdal.Dataset:
        """The dataset itself, or a VRT placing it as QGIS does when it has no georeferencing."""
        gt = ds.GetGeoTransform(can_return_null=True)
        if gt is not None and not (tuple(gt) == (0, 1, 0, 0, 0, 1) and ds.GetSpatialRef() is None):
            return ds
        self._log(f"{name} has no georeferencing; it is placed at pixel coordinates "
                  "(x = column, y = -row) as QGIS shows it.", False)
        return gdal.Translate("", ds, format="VRT",
                              outputBounds=[0, 0, ds.RasterXSize, -ds.RasterYSize])

    def _set_reference(self, ds: gdal.Dataset, srs: Optional[osr.SpatialReference], name: str) -> None:
        gt = tuple(ds.GetGeoTransform())
        if gt[2] or gt[4] or gt[1] <= 0 or gt[5] >= 0:
            raise RasterInputError(
                f"{name} (the first raster, which defines the grid) is rotated or not north-up "
                f"(geotransform {gt}). Warp it to a north-up grid first (Raster > Projections > Warp).")
        self.height, self.width = ds.RasterYSize, ds.RasterXSize
        self.geotransform: GeoTransform = gt
        self.crs_wkt = srs.ExportToWkt() if srs is not None else ""
        self._srs = srs
        self._name = name

    def _on_reference_grid(self, ds: gdal.Dataset, srs: Optional[osr.SpatialReference],
                           name: str) -> gdal.Dataset:
        if (srs is None) != (self._srs is None):
            has, lacks = (name, self._name) if srs is not None else (self._name, name)
            raise RasterInputError(
                f"{lacks} has no CRS but {has} has one, so they cannot be aligned. Assign the "
                f"right CRS to {lacks} (Raster > Projections > Assign Projection) and try again.")
        differences = self._differences(ds, srs)
        if not differences:
            return ds
        coverage = self._coverage(ds, srs, name)
        note = "" if coverage > 0.999 else (
            f"; it covers only {coverage:.0%} of the reference extent, the rest is nodata")
        self._log(f"{name} is not on the grid of {self._name} ({', '.join(differences)}): "
                  f"resampled onto it (bilinear){note}.", True)
        xmin, ymin, xmax, ymax = grid_bounds(self.geotransform, self.width, self.height)
        return gdal.Warp("", ds, format="VRT", outputBounds=(xmin, ymin, xmax, ymax),
                         width=self.width, height=self.height, dstSRS=self.crs_wkt or None,
                         resampleAlg="bilinear", outputType=gdal.GDT_Float32,
                         dstNodata=float("nan"))

    def _differences(self, ds: gdal.Dataset, srs: Optional[osr.SpatialReference]) -> List[str]:
        ref, gt = self.geotransform, ds.GetGeoTransform()
        differences = []
        if srs is not None and not srs.IsSame(self._srs):
            differences.append(f"CRS {_crs_name(srs)} instead of {_crs_name(self._srs)}")
        tolerance = 1e-6 * abs(ref[1])
        if any(abs(a - b) > tolerance for a, b in zip(gt[1:3] + gt[4:], ref[1:3] + ref[4:])):
            differences.append(f"pixel size {abs(gt[1]):g} x {abs(gt[5]):g} instead of "
                               f"{abs(ref[1]):g} x {abs(ref[5]):g}")
        elif (abs(gt[0] - ref[0]) > 1e-3 * abs(ref[1]) or abs(gt[3] - ref[3]) > 1e-3 * abs(ref[5])
              or (ds.RasterYSize, ds.RasterXSize) != (self.height, self.width)):
            differences.append("other extent")
        return differences

    def _coverage(self, ds: gdal.Dataset, srs: Optional[osr.SpatialReference], name: str) -> float:
        """Share of the reference extent the raster covers; error when they do not overlap."""
        bounds = grid_bounds(ds.GetGeoTransform(), ds.RasterXSize, ds.RasterYSize)
        if srs is not None and not srs.IsSame(self._srs):
            try:
                bounds = osr.CoordinateTransformation(srs, self._srs).TransformBounds(*bounds, 21)
            except RuntimeError as e:
                raise RasterInputError(
                    f"Cannot transform the extent of {name} from {_crs_name(srs)} to "
                    f"{_crs_name(self._srs)} ({e}). Check the CRS assigned to {name}.") from None
        ref = grid_bounds(self.geotransform, self.width, self.height)
        dx = min(bounds[2], ref[2]) - max(bounds[0], ref[0])
        dy = min(bounds[3], ref[3]) - max(bounds[1], ref[1])
        if dx <= 0 or dy <= 0:
            raise RasterInputError(
                f"{name} does not overlap {self._name}: its extent {tuple(round(v, 3) for v in bounds)} "
                f"lies outside {tuple(round(v, 3) for v in ref)} (in {_crs_name(self._srs)}). Check "
                "that both rasters have the right CRS and cover the same area.")
        return dx * dy / ((ref[2] - ref[0]) * (ref[3] - ref[1]))

    # -- PixelSource ------------------------------------------------------------------------
    def read(self, row0: int, col0: int, rows: int, cols: int) -> List[np.ndarray]:
        """One float32 (bands, rows, cols) array per modality for the window; nodata is NaN."""
        if rows <= 0 or cols <= 0 or row0 < 0 or col0 < 0 or row0 + rows > self.height \
                or col0 + cols > self.width:
            raise ValueError(f"Window rows {row0}:{row0 + rows}, columns {col0}:{col0 + cols} is not "
                             f"inside the {self.height} x {self.width} grid.")
        return [m.read(row0, col0, rows, cols) for m in self._modalities]

    def pixel_window(self, xmin: float, ymin: float, xmax: float, ymax: float) -> Tuple[int, int, int, int]:
        """(row0, col0, rows, cols) of the pixels an extent in the grid CRS touches, clipped to the grid."""
        gt, eps = self.geotransform, 1e-6
        col_a, col_b = sorted(((xmin - gt[0]) / gt[1], (xmax - gt[0]) / gt[1]))
        row_a, row_b = sorted(((ymax - gt[3]) / gt[5], (ymin - gt[3]) / gt[5]))
        col0, col1 = max(0, math.floor(col_a + eps)), min(self.width, math.ceil(col_b - eps))
        row0, row1 = max(0, math.floor(row_a + eps)), min(self.height, math.ceil(row_b - eps))
        if col1 <= col0 or row1 <= row0:
            bounds = grid_bounds(gt, self.width, self.height)
            raise RasterInputError(
                f"The extent (xmin,xmax,ymin,ymax = {xmin:.10g},{xmax:.10g},{ymin:.10g},{ymax:.10g}) does not overlap "
                f"the raster {self._name}, which spans {bounds[0]:.10g},{bounds[2]:.10g},{bounds[1]:.10g},"
                f"{bounds[3]:.10g}. Choose an extent inside the raster (in its CRS, {_crs_name(self._srs)}).")
        return row0, col0, row1 - row0, col1 - col0

    def close(self) -> None:
        """Release the GDAL datasets (reading afterwards fails)."""
        for modality in self._modalities:
            modality.close()
        self._modalities = []

    def __enter__(self) -> "RasterStack":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class SubsetSource:
    """A window of another pixel source, itself a pixel source (with the window's georeferencing)."""

    def __init__(self, source, row0: int, col0: int, rows: int, cols: int):
        if rows <= 0 or cols <= 0 or row0 < 0 or col0 < 0 or row0 + rows > source.height \
                or col0 + cols > source.width:
            raise ValueError(f"Subset rows {row0}:{row0 + rows}, columns {col0}:{col0 + cols} is not "
                             f"inside the {source.height} x {source.width} source.")
        self.source, self.row0, self.col0 = source, row0, col0
        self.height, self.width = rows, cols
        # pixels of the parent around the subset, read as real neighbours for windows at its edges
        self.margins = (row0, col0, source.height - row0 - rows, source.width - col0 - cols)
        self.band_counts = list(source.band_counts)
        self.infos = getattr(source, "infos", None)
        self.crs_wkt = getattr(source, "crs_wkt", "")
        gt = getattr(source, "geotransform", None)
        self.geotransform = None if gt is None else (
            gt[0] + col0 * gt[1] + row0 * gt[2], gt[1], gt[2],
            gt[3] + col0 * gt[4] + row0 * gt[5], gt[4], gt[5])

    def read(self, row0: int, col0: int, rows: int, cols: int) -> List[np.ndarray]:
        top, left, bottom, right = self.margins
        if row0 < -top or col0 < -left or row0 + rows > self.height + bottom or col0 + cols > self.width + right:
            raise ValueError(f"Window rows {row0}:{row0 + rows}, columns {col0}:{col0 + cols} is not "
                             f"inside the {self.height} x {self.width} subset or its parent raster.")
        return self.source.read(self.row0 + row0, self.col0 + col0, rows, cols)


# -- files ----------------------------------------------------------------------------------------
def style_path(path: str) -> str:
    """The style QGIS loads with a data source: ``name.qml`` beside ``name.tif`` (or ``name.vrt``)."""
    return os.path.splitext(path)[0] + ".qml"


def dataset_files(path: str) -> List[str]:
    """The files a GDAL/OGR data source reads and QGIS reads with it: the file itself, a VRT's source
    files (through VRTs within VRTs too, and sources named by a GDAL connection string such as
    ``GTIFF_DIR:1:x.tif``), the file under a ``/vsi`` path (``/vsisubfile/``, ``/vsizip/``, ...), and each
    one's QGIS style (``.qml`` beside it, loaded with it) where the user saved one."""
    files: List[str] = []
    styles = [style_path(path)]
    todo = [path]
    while todo:
        name = todo.pop()
        if name in files:
            continue
        files.append(name)
        try:
            ds = gdal.OpenEx(name, gdal.OF_READONLY | gdal.OF_RASTER | gdal.OF_VECTOR)
        except RuntimeError:   # a sidecar (.aux.xml), or not readable: it is still listed
            ds = None
        if ds is not None:
            styles.append(style_path(name))
            todo += [f for f in (ds.GetFileList() or []) + _vrt_sources(ds) + [_file_under(name)] if f not in files]
    return files + [style for style in dict.fromkeys(styles) if os.path.isfile(style)]


def _vrt_sources(ds: gdal.Dataset) -> List[str]:
    """A VRT's source names as written (GDAL lists only those that are plain files)."""
    if ds.GetDriver().ShortName != "VRT":
        return []
    folder = os.path.dirname(ds.GetDescription())
    return [os.path.join(folder, e.text) if e.get("relativeToVRT") == "1" else e.text
            for e in ET.fromstring(ds.GetMetadata("xml:VRT")[0]).iter("SourceFilename") if e.text]


def _file_under(name: str) -> str:
    """The file a ``/vsi`` path reads (``/vsisubfile/0_100,/d/x.tif`` -> ``/d/x.tif``, ``/vsizip//d/a.zip/x.tif``
    -> ``/d/a.zip``); ``name`` itself otherwise."""
    while name.startswith("/vsi") and not os.path.isfile(name):
        rest = name.split("/", 2)[2] if name.count("/") >= 2 else ""
        if name.startswith("/vsisubfile/"):
            rest = rest.split(",", 1)[-1]
        if rest.startswith("{") and "}" in rest:
            rest = rest[1:rest.index("}")]
        while rest and not os.path.isfile(rest) and not rest.startswith("/vsi") and os.path.dirname(rest) != rest:
            rest = os.path.dirname(rest)
        if not rest or rest == os.path.dirname(rest):   # no local file under it (e.g. /vsicurl/)
            return name
        name = rest
    return name


# -- reference rasters -------------------------------------------------------------------------
def category_names(band: gdal.Band) -> Dict[int, str]:
    """``{class id: name}`` for a class band's non-empty category names above 0."""
    band.GetDescription()  # GDAL loads the .aux.xml (where GeoTIFF category names live) lazily
    return {i: n for i, n in enumerate(band.GetCategoryNames() or []) if i > 0 and n}


def read_category_names(path: str) -> Dict[int, str]:
    """The category names of a class raster's first band."""
    ds = gdal.Open(path, gdal.GA_ReadOnly)
    return category_names(ds.GetRasterBand(1))


STRIP_PIXELS = 1 << 20   # about this many pixels per strip when a class raster is read strip by strip


def open_class_raster(path: str, role: str = "class raster") -> gdal.Dataset:
    """The raster, or an error naming its role (e.g. "reference (REFERENCE)") and the problem."""
    try:
        ds = gdal.Open(path, gdal.GA_ReadOnly)
    except RuntimeError as e:
        raise RasterInputError(f"Cannot open the {role} {path} ({e}). Choose an existing raster of class ids.") from None
    if ds.RasterCount != 1:
        raise RasterInputError(f"The {role} {path} has {ds.RasterCount} bands, so it is not a class raster (one band "
                               "of class ids). Choose a classification or a reference map, not the image.")
    return ds


class LabelRaster:
    """A class raster's first band, read by rows as int32 class ids (nodata, NaN, negative values and values
    beyond int32 -> 0),
    so that memory stays that of one strip whatever the raster's size."""

    def __init__(self, path: str, role: str = "class raster"):
        self.dataset = open_class_raster(path, role)
        self.path, self.band = path, self.dataset.GetRasterBand(1)
        self.height, self.width = self.dataset.RasterYSize, self.dataset.RasterXSize
        self.nodata = self.band.GetNoDataValue()

    def names(self) -> Dict[int, str]:
        """``{class id: name}`` for the non-empty category names above 0."""
        return category_names(self.band)

    def rows(self, row0: int, count: int) -> np.ndarray:
        values = self.band.ReadAsArray(0, row0, self.width, count).astype(np.float64)
        invalid = ~np.isfinite(values) | (values < 0) | (values > np.iinfo(np.int32).max)   # e.g. an unset fill value
        if self.nodata is not None:
            invalid |= values == self.nodata
        values[invalid] = 0
        if np.any(values != np.round(values)):
            raise RasterInputError(
                f"{os.path.basename(self.path)} holds non-integer values such as "
                f"{values[values != np.round(values)][0]:g}, so it is not a class raster. Choose a raster "
                "of integer class ids (0 = unlabelled).")
        return values.astype(np.int32)

    def strips(self) -> Iterator[Tuple[int, np.ndarray]]:
        """(first row, ids) for strips of whole blocks (each read and decompressed once), about STRIP_PIXELS each."""
        block_rows = self.band.GetBlockSize()[1]
        step = max(block_rows, STRIP_PIXELS // max(self.width, 1) // block_rows * block_rows)
        for row0 in range(0, self.height, step):
            yield row0, self.rows(row0, min(step, self.height - row0))


def read_label_raster(path: str) -> Tuple[np.ndarray, Dict[int, str]]:
    """A class raster's first band as int32 (see :class:`LabelRaster`) and its category names."""
    raster = LabelRaster(path)
    return np.concatenate([values for _, values in raster.strips()]), raster.names()


# -- writing --------------------------------------------------------------------------------------
def check_class_ids(ids: Iterable[int]) -> None:
    """Class ids must fit a class raster: 1..65535 (0 means unclassified)."""
    ids = sorted(int(i) for i in ids)
    if not ids or ids[0] < 1 or ids[-1] > MAX_CLASS_ID:
        bad = [i for i in ids if i < 1 or i > MAX_CLASS_ID][:5]
        raise ValueError(f"Class ids must be 1..{MAX_CLASS_ID} (0 means unclassified); got {bad or ids}. "
                         "Renumber the classes in the class field.")


def _create(tmp: str, width: int, height: int, data_type: int, geotransform, crs_wkt: str) -> gdal.Dataset:
    ds = gdal.GetDriverByName("GTiff").Create(
        tmp, width, height, 1, data_type, ["COMPRESS=DEFLATE", "TILED=YES", "BIGTIFF=IF_SAFER"])
    if geotransform is not None:
        ds.SetGeoTransform(tuple(geotransform))
    if crs_wkt:
        ds.SetProjection(crs_wkt)
    return ds


class _GdalErrors:
    """Collects GDAL's failure messages (also those raised while a dataset closes, which Python ignores)."""

    def __init__(self):
        self.messages: List[str] = []

    def __call__(self, error_class, number, message) -> None:
        if error_class >= gdal.CE_Failure:
            self.messages.append(str(message))

    def __enter__(self) -> "_GdalErrors":
        gdal.PushErrorHandler(self)
        return self

    def __exit__(self, *exc) -> None:
        gdal.PopErrorHandler()


def _write_block(band: gdal.Band, array: np.ndarray, col0: int, row0: int, target: str) -> None:
    with _GdalErrors() as errors:
        try:
            band.WriteArray(array, int(col0), int(row0))
        except RuntimeError as e:
            raise write_error(target, (errors.messages or [e])[0]) from None


def _close_checked(datasets: Dict[str, gdal.Dataset], targets: Dict[str, str]) -> None:
    """Flush and close temporary rasters, then reopen and checksum each: any write error is an error."""
    with _GdalErrors() as errors:
        try:
            for ds in datasets.values():
                ds.FlushCache()
        except RuntimeError as e:
            errors.messages.append(str(e))
        datasets.clear()  # the only references: this closes the files and writes their .aux.xml
    if errors.messages:
        raise write_error(", ".join(targets.values()), errors.messages[0])
    for tmp, final in targets.items():
        try:
            ds = gdal.Open(tmp, gdal.GA_ReadOnly)
            ds.GetRasterBand(1).Checksum()  # reads every block back
            ds = None
        except RuntimeError as e:
            raise write_error(final, f"the written file does not read back ({e})") from None


def _rgb(colour: str) -> Optional[Tuple[int, int, int]]:
    text = (colour or "").strip().lstrip("#")
    if len(text) == 3:
        text = "".join(c * 2 for c in text)
    try:
        return (int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16)) if len(text) == 6 else None
    except ValueError:
        return None


def _class_colours(classes: List[ClassInfo], log: Log) -> Dict[int, str]:
    """``{id: '#rrggbb'}``; missing or unreadable colours come from the palette (with a warning)."""
    colours = {}
    for index, c in enumerate(classes):
        rgb = _rgb(c.colour)
        if rgb is None:
            if c.colour:
                log(f"Class '{c.name}' has an unreadable colour {c.colour!r}; using a palette colour.", True)
            rgb = _rgb(palette_colour(index))
        colours[c.id] = "#%02x%02x%02x" % rgb
    return colours


def write_qml(path: str, classes: Iterable[ClassInfo]) -> None:
    """Write a QGIS 3.22 style (paletted renderer: class values, colours and names) to ``path``."""
    classes = sorted(classes, key=lambda c: c.id)
    _write_qml(path, classes, _class_colours(classes, _no_log))


def _write_qml(path: str, classes: List[ClassInfo], colours: Dict[int, str]) -> None:
    qgis = ET.Element("qgis", version="3.22.0", styleCategories="AllStyleCategories")
    pipe = ET.SubElement(qgis, "pipe")
    renderer = ET.SubElement(pipe, "rasterrenderer", type="paletted", band="1", opacity="1",
                             alphaBand="-1", nodataColor="")
    ET.SubElement(renderer, "rasterTransparency")
    palette = ET.SubElement(renderer, "colorPalette")
    for c in classes:
        ET.SubElement(palette, "paletteEntry", value=str(c.id), color=colours[c.id],
                      label=c.name or f"class {c.id}", alpha="255")
    ET.SubElement(pipe, "brightnesscontrast", brightness="0", contrast="0", gamma="1")
    ET.SubElement(pipe, "huesaturation", saturation="0", grayscaleMode="0", invertColors="0",
                  colorizeOn="0", colorizeRed="255", colorizeGreen="128", colorizeBlue="128",
                  colorizeStrength="100")
    ET.SubElement(pipe, "rasterresampler", maxOversampling="2")
    ET.SubElement(qgis, "blendMode").text = "0"
    ET.indent(qgis)
    with open(path, "w", encoding="utf-8") as f:
        f.write("<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n")
        f.write(ET.tostring(qgis, encoding="unicode"))
        f.write("\n")


def write_classification(path: str, tiles: Iterable[Tuple[int, int, np.ndarray, Optional[np.ndarray]]],
                         height: int, width: int, geotransform, crs_wkt: str,
                         classes: Iterable[ClassInfo], confidence_path: Optional[str] = None,
                         log: Optional[Log] = None, outputs: Optional[PendingOutputs] = None) -> None:
    """Write a class raster (and optionally a confidence raster) tile by tile, completely or not at all.

    ``tiles`` yields ``(row0, col0, class_ids, confidence)`` blocks; class 0 = unclassified
    (nodata). The class raster is a DEFLATE-compressed tiled GeoTIFF, Byte (ids <= 255) or
    UInt16, with a colour table, category names (``"unclassified"`` for 0) and a ``.qml``
    style next to it. The confidence raster is Float32 with nodata ``CONFIDENCE_NODATA``
    (-1) where the class is 0. Everything goes to temporary files of ``outputs`` (committed
    here when not given), which are closed, read back and checked: a GDAL write error, a
    failing ``tiles`` iterator (e.g. on cancel) or a file that does not read back leaves the
    targets untouched.
    """
    if outputs is None:
        with PendingOutputs() as own:
            return write_classification(path, tiles, height, width, geotransform, crs_wkt, classes,
                                        confidence_path, log, own)
    log = log or _no_log
    classes = sorted(classes, key=lambda c: c.id)
    check_class_ids(c.id for c in classes)
    max_id = classes[-1].id
    data_type, dtype = (gdal.GDT_Byte, np.uint8) if max_id <= 255 else (gdal.GDT_UInt16, np.uint16)
    colours = _class_colours(classes, log)
    known = np.zeros(max_id + 1, bool)
    known[[0] + [c.id for c in classes]] = True

    targets = {outputs.temp_for(path, ".tif", GDAL_SIDECARS): path}
    if confidence_path:
        targets[outputs.temp_for(confidence_path, ".tif", GDAL_SIDECARS)] = confidence_path
    datasets: Dict[str, gdal.Dataset] = {}
    class_band = conf_band = None
    try:
        class_tmp, conf_tmp = (list(targets) + [None])[:2]
        with _GdalErrors() as errors:
            try:
                datasets[class_tmp] = _create(class_tmp, width, height, data_type, geotransform, crs_wkt)
                class_band = datasets[class_tmp].GetRasterBand(1)
                _describe_class_band(class_band, classes, colours)
                if conf_tmp:
                    datasets[conf_tmp] = _create(conf_tmp, width, height, gdal.GDT_Float32, geotransform, crs_wkt)
                    conf_band = datasets[conf_tmp].GetRasterBand(1)
                    conf_band.SetNoDataValue(CONFIDENCE_NODATA)
                    conf_band.SetDescription("confidence")
            except RuntimeError as e:
                raise write_error(path, (errors.messages or [e])[0]) from None
        for row0, col0, ids, confidence in tiles:
            ids = np.asarray(ids)
            _check_tile(row0, col0, ids, height, width, known)
            _write_block(class_band, ids.astype(dtype), col0, row0, path)
            if conf_tmp:
                conf = np.array(confidence, dtype=np.float32)
                conf[(ids == 0) | ~np.isfinite(conf)] = CONFIDENCE_NODATA
                _write_block(conf_band, conf, col0, row0, confidence_path)
    except BaseException:
        class_band = conf_band = None
        with _GdalErrors():  # close quietly: the run fails with the first error
            datasets.clear()
        raise
    class_band = conf_band = None
    _close_checked(datasets, targets)
    qml_path = style_path(path)
    try:
        _write_qml(outputs.temp_for(qml_path, ".qml"), classes, colours)
    except OSError as e:
        raise write_error(qml_path, e.strerror or e) from None


def _describe_class_band(band: gdal.Band, classes: List[ClassInfo], colours: Dict[int, str]) -> None:
    band.SetNoDataValue(0)
    band.SetDescription("class")
    table = gdal.ColorTable()
    names = [""] * (classes[-1].id + 1)
    for value in range(len(names)):
        table.SetColorEntry(value, (0, 0, 0, 0))
    names[0] = "unclassified"
    for c in classes:
        table.SetColorEntry(c.id, _rgb(colours[c.id]) + (255,))
        names[c.id] = c.name or f"class {c.id}"
    band.SetColorTable(table)
    band.SetCategoryNames(names)


def _check_tile(row0: int, col0: int, ids: np.ndarray, height: int, width: int, known: np.ndarray) -> None:
    if ids.ndim != 2 or row0 < 0 or col0 < 0 or row0 + ids.shape[0] > height or col0 + ids.shape[1] > width:
        raise ValueError(f"Tile at row {row0}, column {col0} with shape {ids.shape} does not fit the "
                         f"{height} x {width} output grid.")
    values = np.unique(ids)
    unknown = values[(values < 0) | (values >= len(known))]
    if not unknown.size:
        unknown = values[~known[values]]
    if unknown.size:
        raise ValueError(f"Tile at row {row0}, column {col0} holds class id {int(unknown[0])}, which is "
                         "not in the class list.")
