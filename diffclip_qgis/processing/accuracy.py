"""diffclip:accuracy: confusion matrix, OA, AA, kappa and per-class accuracies of a classification."""
from __future__ import annotations

import csv
import html
import os
import uuid
from typing import Dict, List, Optional, Tuple

from qgis.core import (
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterField,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterMapLayer,
    QgsProcessingParameterRasterLayer,
    QgsRasterLayer,
    QgsVectorLayer,
)

from .algorithm import DiffClipAlgorithm, FeedbackAdapter, feature_wkb_and_values, layer_files, tr

HELP = """<p>Compares a classification with reference labels: confusion matrix (with the classification's
class names), overall accuracy (OA), average accuracy (AA, mean producer's accuracy over the classes
with reference pixels), Cohen's kappa, and per class the producer's accuracy (recall), user's accuracy
(precision) and pixel counts. Only pixels with a class in both rasters count (0 / nodata = unlabelled).
All accuracies, kappa included, are given in percent (kappa x 100), as in the DiffCLIP paper.</p>
<h3>Parameters</h3>
<dl>
<dt>Classification (CLASSIFICATION)</dt><dd>A class raster, e.g. the output of 'DiffCLIP Few-shot
Classify'. Its grid is the grid of the assessment.</dd>
<dt>Reference (REFERENCE)</dt><dd>Reference labels: a raster of class ids (0 or nodata = unlabelled;
resampled with nearest neighbour onto the classification's grid when it lies on another grid or CRS),
or a vector layer of points (the pixel under each point) or polygons (every pixel whose centre lies
inside), in any CRS.</dd>
<dt>Reference class field (REFERENCE_FIELD)</dt><dd>For a vector reference: the field with the class id
(the classification's values) or the class name (matched to the classification's class names).</dd>
<dt>Report (OUTPUT_HTML)</dt><dd>HTML report with the tables.</dd>
<dt>Table (OUTPUT_CSV, optional)</dt><dd>CSV: one row per class (id, name, reference pixels, classified
pixels, correct pixels, producer's and user's accuracy in percent, then the confusion-matrix row:
reference pixels of the class classified as each class), then the overall figures (OA, AA, kappa
in percent, pixel count).</dd>
</dl>
<p>Outputs OA, AA and KAPPA (numbers, percent) can feed other algorithms in a model.</p>"""


class AccuracyAlgorithm(DiffClipAlgorithm):
    CLASSIFICATION = "CLASSIFICATION"
    REFERENCE = "REFERENCE"
    REFERENCE_FIELD = "REFERENCE_FIELD"
    OUTPUT_HTML = "OUTPUT_HTML"
    OUTPUT_CSV = "OUTPUT_CSV"
    OA, AA, KAPPA = "OA", "AA", "KAPPA"

    _name = "accuracy"
    _display = "DiffCLIP Accuracy Assessment"
    _group_id = "assessment"
    _group = "Assessment"

    def shortHelpString(self):  # noqa: N802
        return tr(HELP)

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(self.CLASSIFICATION, tr("Classification")))
        self.addParameter(QgsProcessingParameterMapLayer(
            self.REFERENCE, tr("Reference (class raster, or points / polygons)"),
            types=[QgsProcessing.TypeRaster, QgsProcessing.TypeVectorPoint, QgsProcessing.TypeVectorPolygon]))
        self.addParameter(QgsProcessingParameterField(
            self.REFERENCE_FIELD, tr("Reference class field (vector reference only)"),
            parentLayerParameterName=self.REFERENCE, type=QgsProcessingParameterField.Any, optional=True))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_HTML, tr("Accuracy report"), tr("HTML files (*.html)")))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_CSV, tr("Accuracy table"), tr("CSV files (*.csv)"), optional=True, createByDefault=False))
        self.addOutput(QgsProcessingOutputNumber(self.OA, tr("Overall accuracy (%)")))
        self.addOutput(QgsProcessingOutputNumber(self.AA, tr("Average accuracy (%)")))
        self.addOutput(QgsProcessingOutputNumber(self.KAPPA, tr("Kappa (x 100)")))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        # numpy and GDAL only: no torch needed for the assessment.
        try:
            return self.compute(parameters, context, feedback)
        except QgsProcessingException:
            raise
        except (ValueError, RuntimeError, OSError, MemoryError) as e:
            raise QgsProcessingException(str(e) or e.__class__.__name__) from None

    def compute(self, parameters, context, feedback):
        import numpy as np

        from ..core.files import PendingOutputs, check_writable, write_text
        from ..core.metrics import assess
        from ..gis.raster import read_label_raster

        html_path = self.parameterAsFileOutput(parameters, self.OUTPUT_HTML, context)
        csv_path = self.parameterAsFileOutput(parameters, self.OUTPUT_CSV, context)
        layer = self.parameterAsRasterLayer(parameters, self.CLASSIFICATION, context)
        if layer is None:
            raise QgsProcessingException(tr("Choose the classification raster (CLASSIFICATION)."))
        reference = self.parameterAsLayer(parameters, self.REFERENCE, context)
        if reference is None:
            raise QgsProcessingException(
                tr("Choose the reference layer (REFERENCE): a class raster or a vector layer."))
        self.check_paths({self.CLASSIFICATION: layer_files(layer), self.REFERENCE: layer_files(reference)},
                         {self.OUTPUT_HTML: [html_path], self.OUTPUT_CSV: [csv_path]})
        check_writable({self.OUTPUT_HTML: (html_path, 1 << 20), self.OUTPUT_CSV: (csv_path, 1 << 20)})
        adapter = FeedbackAdapter(feedback, {"reading": (0, 60), "writing": (60, 100)})
        adapter.begin("reading")

        class_path = layer.source()
        predicted, names = read_label_raster(class_path)
        grid = _grid(class_path)
        if isinstance(reference, QgsRasterLayer):
            truth, ref_names = reference_on_grid(reference.source(), grid, adapter.gis_log)
        elif isinstance(reference, QgsVectorLayer):
            truth = self._rasterize(parameters, context, feedback, reference, grid, names, adapter)
            ref_names = {}
        else:
            raise QgsProcessingException(tr("REFERENCE must be a raster or a vector layer."))
        adapter.check()
        ids = sorted((set(names) | set(np.unique(truth).tolist()) | set(np.unique(predicted).tolist())) - {0})
        accuracy = assess(truth, predicted, ids)
        labels = {i: names.get(i) or ref_names.get(i) or f"class {i}" for i in accuracy.class_ids}
        oa, aa, kappa = 100 * accuracy.overall, 100 * accuracy.average, 100 * accuracy.kappa
        feedback.pushInfo(f"{accuracy.count} pixels with a reference label and a class: OA {oa:.2f}%, "
                          f"AA {aa:.2f}%, kappa {kappa:.2f} (x 100).")
        for i, cid in enumerate(accuracy.class_ids):
            feedback.pushInfo(f"  {cid} {labels[cid]}: producer's {_pct(accuracy.producers[i])}, "
                              f"user's {_pct(accuracy.users[i])}, {int(accuracy.matrix[i].sum())} reference pixels.")
        adapter.begin("writing")
        with PendingOutputs() as outputs:  # both reports appear together, or neither does
            if html_path:
                write_text(html_path, report_html(accuracy, labels, class_path, reference.source()), outputs)
            if csv_path:
                write_text(csv_path, report_csv(accuracy, labels), outputs)
        feedback.setProgress(100)
        return {self.OUTPUT_HTML: html_path or None, self.OUTPUT_CSV: csv_path or None,
                self.OA: oa, self.AA: aa, self.KAPPA: kappa}

    def _rasterize(self, parameters, context, feedback, layer, grid, names, adapter):
        import numpy as np
        from qgis.core import QgsCoordinateReferenceSystem

        from ..gis.samples import samples_from_geometries

        field = self.parameterAsString(parameters, self.REFERENCE_FIELD, context)
        if not field:
            raise QgsProcessingException(tr(
                "The reference is a vector layer: choose its class field (REFERENCE_FIELD)."))
        gt, height, width, wkt = grid
        crs = QgsCoordinateReferenceSystem.fromWkt(wkt) if wkt else None
        wkbs, values = feature_wkb_and_values(layer, field, crs, context, feedback)
        values = _values_as_class_ids(values, names)
        samples = samples_from_geometries(wkbs, values, gt, height, width, log=adapter.gis_log)
        truth = np.zeros((height, width), np.int32)
        truth[samples.rows, samples.cols] = samples.class_ids
        feedback.pushInfo(f"{len(wkbs)} reference features -> {len(samples.rows)} reference pixels.")
        return truth


def _pct(value) -> str:
    return "-" if value != value else f"{100 * value:.2f}%"


def _grid(path: str):
    from osgeo import gdal

    from ..gis.raster import PIXEL_GEOTRANSFORM

    ds = gdal.Open(path, gdal.GA_ReadOnly)
    gt = ds.GetGeoTransform(can_return_null=True) or PIXEL_GEOTRANSFORM
    return tuple(gt), ds.RasterYSize, ds.RasterXSize, ds.GetProjection() or ""


def reference_on_grid(path: str, grid, log=None) -> Tuple["np.ndarray", Dict[int, str]]:
    """Reference class ids on the classification grid (0 = unlabelled) and their category names.

    Read as is when on the same grid, else resampled with nearest neighbour (GDAL warp into
    an in-memory VRT). A raster without georeferencing lies where QGIS shows it (x = column,
    y = -row).
    """
    from osgeo import gdal

    from ..gis.raster import PIXEL_GEOTRANSFORM, read_label_raster

    gt, height, width, wkt = grid
    ds = gdal.Open(path, gdal.GA_ReadOnly)
    ref_gt = ds.GetGeoTransform(can_return_null=True)
    ref_wkt = ds.GetProjection() or ""
    same_crs = not wkt or not ref_wkt or _same_crs(wkt, ref_wkt)
    tolerance = 1e-6 * abs(gt[1])
    if same_crs and (ds.RasterYSize, ds.RasterXSize) == (height, width) and \
            all(abs(a - b) <= max(tolerance, 1e-9) for a, b in zip(ref_gt or PIXEL_GEOTRANSFORM, gt)):
        return read_label_raster(path)
    band = ds.GetRasterBand(1)
    band.GetDescription()  # loads the .aux.xml with the category names
    names = {i: n for i, n in enumerate(band.GetCategoryNames() or []) if i > 0 and n}
    if log is not None:
        log(f"{os.path.basename(path)} is not on the classification's grid: resampled onto it (nearest neighbour).",
            True)
    stem = f"/vsimem/diffclip_reference_{uuid.uuid4().hex}"
    temps = []
    try:
        source = ds
        if ref_gt is None:  # placed as QGIS shows it: x = column, y = -row
            temps.append(stem + "_placed.vrt")
            gdal.Translate(temps[-1], ds, format="VRT", outputBounds=[0, 0, ds.RasterXSize, -ds.RasterYSize])
            source = gdal.Open(temps[-1])
        xs = [gt[0], gt[0] + width * gt[1]]
        ys = [gt[3], gt[3] + height * gt[5]]
        options = dict(format="VRT", outputBounds=(min(xs), min(ys), max(xs), max(ys)), width=width,
                       height=height, resampleAlg="near")
        if wkt and ref_wkt:
            options["dstSRS"] = wkt
        if ds.GetRasterBand(1).GetNoDataValue() is None:
            options["dstNodata"] = 0
        temps.append(stem + ".vrt")
        gdal.Warp(temps[-1], source, **options)  # the returned dataset is dropped: that writes the VRT
        source = None
        return read_label_raster(temps[-1])[0], names
    finally:
        for name in temps:
            gdal.Unlink(name)


def _same_crs(a: str, b: str) -> bool:
    from osgeo import osr

    sa, sb = osr.SpatialReference(), osr.SpatialReference()
    sa.ImportFromWkt(a)
    sb.ImportFromWkt(b)
    return bool(sa.IsSame(sb))


def _values_as_class_ids(values: List[object], names: Dict[int, str]) -> List[object]:
    """Integer values stay; names are matched (case-insensitive) to the classification's class names."""
    if all(v is None or _as_int(v) is not None for v in values):
        return values
    by_name = {n.strip().lower(): i for i, n in names.items()}
    unknown = sorted({str(v).strip() for v in values if v is not None and _as_int(v) is None
                      and str(v).strip().lower() not in by_name})
    if unknown:
        raise QgsProcessingException(tr(
            "Reference class name(s) {0} are not class names of the classification ({1}). Use the "
            "classification's class ids or names in REFERENCE_FIELD.").format(
            ", ".join(repr(u) for u in unknown), ", ".join(names.values()) or "it has no class names"))
    return [v if v is None or _as_int(v) is not None else by_name[str(v).strip().lower()] for v in values]


def _as_int(value) -> Optional[int]:
    """The value as an int when it is an integer (number or digit string), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    text = str(value).strip()
    return int(text) if text.lstrip("+-").isdigit() else None


def report_csv(accuracy, labels: Dict[int, str]) -> str:
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    ids = accuracy.class_ids
    writer.writerow(["class_id", "class_name", "reference_pixels", "classified_pixels", "correct_pixels",
                     "producers_accuracy_percent", "users_accuracy_percent"]
                    + [f"classified_as_{i}" for i in ids])
    m = accuracy.matrix
    for k, cid in enumerate(ids):
        writer.writerow([cid, labels[cid], int(m[k].sum()), int(m[:, k].sum()), int(m[k, k]),
                         _num(accuracy.producers[k]), _num(accuracy.users[k])] + [int(v) for v in m[k]])
    writer.writerow([])
    writer.writerow(["metric", "value"])
    writer.writerow(["overall_accuracy_percent", f"{100 * accuracy.overall:.4f}"])
    writer.writerow(["average_accuracy_percent", f"{100 * accuracy.average:.4f}"])
    writer.writerow(["kappa_x100", f"{100 * accuracy.kappa:.4f}"])
    writer.writerow(["pixels", accuracy.count])
    return out.getvalue()


def _num(value) -> str:
    return "" if value != value else f"{100 * value:.4f}"


def report_html(accuracy, labels: Dict[int, str], classification: str, reference: str) -> str:
    e = html.escape
    ids = accuracy.class_ids
    m = accuracy.matrix
    head = "".join(f"<th>{e(labels[i])}<br><small>{i}</small></th>" for i in ids)
    rows = []
    for k, cid in enumerate(ids):
        cells = "".join(f'<td class="{"d" if j == k else ""}">{int(v)}</td>' for j, v in enumerate(m[k]))
        rows.append(f"<tr><th>{e(labels[cid])} <small>{cid}</small></th>{cells}<td>{int(m[k].sum())}</td>"
                    f"<td>{_pct(accuracy.producers[k])}</td></tr>")
    totals = "".join(f"<td>{int(v)}</td>" for v in m.sum(axis=0))
    users = "".join(f"<td>{_pct(v)}</td>" for v in accuracy.users)
    per_class = "".join(
        f"<tr><td>{cid}</td><td>{e(labels[cid])}</td><td>{int(m[k].sum())}</td><td>{int(m[:, k].sum())}</td>"
        f"<td>{int(m[k, k])}</td><td>{_pct(accuracy.producers[k])}</td><td>{_pct(accuracy.users[k])}</td></tr>"
        for k, cid in enumerate(ids))
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>DiffCLIP accuracy assessment</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; }}
table {{ border-collapse: collapse; margin-bottom: 1.5em; }}
th, td {{ border: 1px solid #bbb; padding: 3px 7px; text-align: right; }}
th {{ background: #f0f0f0; }}
td.d {{ background: #dff0d8; font-weight: bold; }}
small {{ color: #666; }}
</style></head><body>
<h1>DiffCLIP accuracy assessment</h1>
<p>Classification: {e(classification)}<br>Reference: {e(reference)}</p>
<h2>Summary</h2>
<table>
<tr><th>Overall accuracy (OA)</th><td>{100 * accuracy.overall:.2f}%</td></tr>
<tr><th>Average accuracy (AA)</th><td>{100 * accuracy.average:.2f}%</td></tr>
<tr><th>Kappa (x 100)</th><td>{100 * accuracy.kappa:.2f}</td></tr>
<tr><th>Pixels assessed</th><td>{accuracy.count}</td></tr>
</table>
<h2>Confusion matrix</h2>
<p>Rows: reference; columns: classification. Pixels without a reference label or class are left out.</p>
<table>
<tr><th>reference \\ classified</th>{head}<th>Total</th><th>Producer's accuracy</th></tr>
{"".join(rows)}
<tr><th>Total</th>{totals}<td>{accuracy.count}</td><td></td></tr>
<tr><th>User's accuracy</th>{users}<td></td><td></td></tr>
</table>
<h2>Per class</h2>
<table>
<tr><th>Id</th><th>Class</th><th>Reference pixels</th><th>Classified pixels</th><th>Correct</th>
<th>Producer's accuracy</th><th>User's accuracy</th></tr>
{per_class}
</table>
</body></html>
"""
