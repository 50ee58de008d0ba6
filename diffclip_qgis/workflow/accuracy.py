"""Accuracy assessment: confusion matrix, OA, AA, kappa and per-class accuracies, as HTML and CSV reports."""
from __future__ import annotations

import csv
import html
import io
import os
import uuid
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Set, Tuple

import numpy as np
from osgeo import gdal, ogr, osr

from ..core.area import AreaEstimates, stratified_estimates

from ..core.files import (CSV_TABLE, HTML_REPORT, PendingOutputs, check_output_kinds, check_output_paths, check_writable,
                          write_text)
from ..core.metrics import accuracy_from_matrix
from ..core.progress import SILENT, Callback
from ..gis.raster import PIXEL_GEOTRANSFORM, LabelRaster, category_names, dataset_files, open_class_raster
from ..gis.samples import as_int, samples_from_geometries
from ..gis.validation import MAP_CLASS_FIELD, REFERENCE_FIELD, pixel_hectares
from .requests import AccuracyRequest, AccuracyResult


REFERENCE_NEEDS_FIELD = "The reference is a vector layer: choose its class field (REFERENCE_FIELD)."


def default_reference_field(fields: Sequence[str]) -> str:
    """The class field of a vector reference when none is given: Validation Sample's, where the layer has it."""
    return REFERENCE_FIELD if REFERENCE_FIELD in fields else ""


def assess_accuracy(req: AccuracyRequest, callback: Callback = SILENT) -> AccuracyResult:
    """Compare the classification with the reference raster or features; write the reports together."""
    if not req.reference and req.reference_samples is None:
        raise ValueError("Choose the reference (REFERENCE): a class raster or a vector layer.")
    reference_files = dataset_files(req.reference) if req.reference else req.reference_samples.files
    check_output_paths({"CLASSIFICATION": dataset_files(req.classification), "REFERENCE": reference_files},
                       {"OUTPUT_HTML": [req.output_html], "OUTPUT_CSV": [req.output_csv]})
    check_output_kinds({"OUTPUT_HTML": (req.output_html, HTML_REPORT), "OUTPUT_CSV": (req.output_csv, CSV_TABLE)})
    check_writable({"OUTPUT_HTML": (req.output_html, 1 << 20), "OUTPUT_CSV": (req.output_csv, 1 << 20)})
    outputs = PendingOutputs([req.output_html, req.output_csv])
    callback.progress("reading", 0.0)
    classification = LabelRaster(req.classification, "classification (CLASSIFICATION)")
    names = classification.names()
    grid = _grid(req.classification)
    drawn_of = None
    if req.reference:
        with reference_on_grid(req.reference, grid, callback.gis_log) as (reference, ref_names):
            truth = LabelRaster(reference)
            as_map_ids, ref_names = ids_by_name(names, ref_names, callback)
            found = compare(classification, lambda row0, predicted: as_map_ids(truth.rows(row0, len(predicted))),
                            callback)
            truth = None   # closed before its in-memory VRT goes
    else:
        drawn_of = drawn_truth(req, grid, callback)
        found, ref_names = compare(classification, sample_truth(req.reference_samples, grid, names, callback),
                                   callback, drawn_of), {}
    ids = sorted((set(names) | found.reference_ids | set(found.mapped)) - {0})
    accuracy = accuracy_from_matrix(ids, found.matrix(ids))
    labels = {i: names.get(i) or ref_names.get(i) or f"class {i}" for i in accuracy.class_ids}
    areas = None
    if drawn_of is not None and drawn_from_this_map(found, callback):
        areas = sample_estimates(found, grid, callback)
    if areas is not None:
        labels.update({i: names.get(i) or f"class {i}" for i in areas.estimates.class_ids.tolist() if i not in labels})
    oa, aa, kappa = 100 * accuracy.overall, 100 * accuracy.average, 100 * accuracy.kappa
    callback.log(f"{accuracy.count} pixels with a reference label and a class: OA {oa:.2f}%, "
                 f"AA {aa:.2f}%, kappa {kappa:.2f} (x 100).")
    for i, cid in enumerate(accuracy.class_ids):
        callback.log(f"  {cid} {labels[cid]}: producer's {_pct(accuracy.producers[i])}, "
                     f"user's {_pct(accuracy.users[i])}, {int(accuracy.matrix[i].sum())} reference pixels.")
    callback.progress("writing", 0.0)
    reference_name = req.reference or ", ".join(req.reference_samples.files) or "reference features"
    with outputs:  # both reports appear together, or neither does
        if req.output_html:
            write_text(req.output_html, report_html(accuracy, labels, req.classification, reference_name, areas),
                       outputs)
        if req.output_csv:
            write_text(req.output_csv, report_csv(accuracy, labels, areas), outputs)
    callback.progress("writing", 1.0)
    return AccuracyResult(oa, aa, kappa, int(accuracy.count), req.output_html, req.output_csv)


@dataclass
class SampleAreas:
    """Stratified estimates from a validation sample, and the pixel area (hectares; None if unknown)."""

    estimates: AreaEstimates
    pixel_ha: Optional[float]


def _all_points(wkbs) -> bool:
    """Whether every feature is a (multi)point: a validation sample rather than reference polygons."""
    types = {ogr.GT_Flatten(ogr.CreateGeometryFromWkb(bytes(w)).GetGeometryType()) for w in wkbs if w}
    return bool(types) and types <= {ogr.wkbPoint, ogr.wkbMultiPoint}


@dataclass
class Comparison:
    """What the classification and the reference hold, counted strip by strip."""

    pairs: Counter = field(default_factory=Counter)     # (reference id, map id) -> pixels, both above 0
    drawn_pairs: Counter = field(default_factory=Counter)   # (map id a sample was drawn from, map id now) -> pixels
    mapped: Counter = field(default_factory=Counter)    # map id -> pixels
    reference_ids: Set[int] = field(default_factory=set)

    def matrix(self, ids: List[int]) -> np.ndarray:
        """The confusion matrix over ``ids`` (rows = reference, columns = classification)."""
        index = {c: i for i, c in enumerate(ids)}
        out = np.zeros((len(ids), len(ids)), np.int64)
        for (r, p), n in self.pairs.items():
            out[index[r], index[p]] += n
        return out


def compare(classification: LabelRaster, truth_of: Callable[[int, np.ndarray], np.ndarray],
            callback: Callback, drawn_of: Optional[Callable[[int, np.ndarray], np.ndarray]] = None) -> Comparison:
    """Count the classification against the reference, one strip of rows at a time (so any map size fits in
    memory); ``truth_of(first row, classified strip)`` gives the reference ids of the same pixels (0 = none), and
    ``drawn_of``, in the same pass, the map classes a validation sample's points were drawn from."""
    found = Comparison()
    for row0, predicted in classification.strips():
        callback.check()
        truth = truth_of(row0, predicted)
        found.mapped.update(count_ids(predicted))
        found.reference_ids.update(count_ids(truth))
        both = (truth > 0) & (predicted > 0)
        found.pairs.update(count_pairs(truth[both], predicted[both]))
        if drawn_of is not None:
            drawn = drawn_of(row0, predicted)
            both = (drawn > 0) & (predicted > 0)
            found.drawn_pairs.update(count_pairs(drawn[both], predicted[both]))
    return found


def ids_by_name(names: Dict[int, str], ref_names: Dict[int, str], callback: Callback
                ) -> Tuple[Callable[[np.ndarray], np.ndarray], Dict[int, str]]:
    """How reference ids become the classification's, and the reference's names in the ids compared: the same
    ids, or, where names both rasters give carry other ids (a map classified by a text class field without the
    reference's ids), those classes by name and every other reference class above the map's ids."""
    by_name = {n.strip().lower(): i for i, n in names.items()}
    shared = {i: by_name[n.strip().lower()] for i, n in ref_names.items() if n.strip().lower() in by_name}
    moved = [i for i, j in shared.items() if i != j]
    if not moved:
        other = [i for i in sorted(set(names) & set(ref_names)) if i not in shared]
        if other:
            i = other[0]
            callback.warn(f"Class {i} is '{names[i]}' in the classification but '{ref_names[i]}' in the reference, "
                          "and the names do not match either: classes are compared by id. Check that both use the "
                          "same class ids.")
        return (lambda ids: ids), ref_names
    offset = max(names)   # reference classes the map does not name go above every class id of the map
    table = np.arange(max(ref_names) + 1, dtype=np.int64) + offset
    table[0] = 0
    table[list(shared)] = list(shared.values())
    callback.warn(f"The classification and the reference give the same class names other ids (e.g. "
                  f"'{ref_names[moved[0]]}' is {moved[0]} in the reference, {shared[moved[0]]} in the "
                  "classification): classes are compared by name.")
    return ((lambda ids: np.where(ids < len(table), table[np.minimum(ids, len(table) - 1)], ids + offset)),
            {shared.get(i, i + offset): n for i, n in ref_names.items()})


def count_ids(values: np.ndarray) -> Dict[int, int]:
    """How often each id above 0 occurs (:func:`count_pairs` with one side all 0)."""
    return {i: n for (_, i), n in count_pairs(np.zeros_like(values), values).items() if i}


def count_pairs(a: np.ndarray, b: np.ndarray) -> Dict[Tuple[int, int], int]:
    """How often each pair (a[i], b[i]) of non-negative int32 ids occurs: one bincount when the ids are small
    (class ids usually are), else a sort."""
    a, b = np.ravel(a), np.ravel(b)
    if a.size == 0:
        return {}
    width = int(b.max()) + 1
    if (int(a.max()) + 1) * width <= 1 << 22:
        counts = np.bincount(a.astype(np.int64) * width + b)
        return {(int(i) // width, int(i) % width): int(counts[i]) for i in np.flatnonzero(counts)}
    codes, counts = np.unique(a.astype(np.int64) << 32 | b, return_counts=True)
    return {(int(c >> 32), int(c & 0xFFFFFFFF)): int(n) for c, n in zip(codes, counts)}


def drawn_truth(req: AccuracyRequest, grid, callback: Callback) -> Optional[Callable[[int, np.ndarray], np.ndarray]]:
    """For :func:`compare`'s ``drawn_of``: the map class each point of a Validation Sample was drawn from (its
    map_class); None, saying why for points, when the reference features are not such a sample."""
    samples = req.reference_samples
    if not _all_points(samples.wkbs):
        return None
    if req.drawn_classes is None or not all((as_int(v) or 0) > 0 for v in req.drawn_classes):
        callback.log(f"No area-weighted estimates: they need a stratified sample of this map, the points of "
                     f"'DiffCLIP Validation Sample' (field {MAP_CLASS_FIELD}).")
        return None
    gt, height, width, wkt = grid
    return _on_strips(samples_from_geometries(samples.wkbs, req.drawn_classes, gt, height, width, samples.crs_wkt,
                                              wkt, reference=True))


def drawn_from_this_map(found: Comparison, callback: Callback) -> bool:
    """Whether every point lies on the map class it was drawn from (``found.drawn_pairs``); says why not."""
    moved = sum(n for (was, now), n in found.drawn_pairs.items() if was != now)
    if moved:
        callback.warn(f"No area-weighted estimates: {moved} of {sum(found.drawn_pairs.values())} points lie on "
                      f"another class of this map than the one they were drawn from ({MAP_CLASS_FIELD}), so they were "
                      "drawn from another map. Assess that map, or draw a validation sample of this one.")
    return not moved


def sample_estimates(found: Comparison, grid, callback: Callback) -> Optional[SampleAreas]:
    """Area-weighted accuracy and error-adjusted areas: strata = map classes, weights = their pixel counts; None
    unless every stratum has labelled points enough for a variance."""
    per_class = Counter()
    for (_, mapped), n in found.pairs.items():
        per_class[mapped] += n
    short = {c: per_class[c] for c, pixels in sorted(found.mapped.items()) if c > 0 and per_class[c] < min(2, pixels)}
    if short:
        callback.warn("No area-weighted estimates: every map class needs 2 or more labelled points, and "
                      + ", ".join(f"class {c} has {n}" for c, n in short.items())
                      + ". Fill in the reference of more of its points.")
        return None
    gt, _, _, wkt = grid
    pairs = list(found.pairs.items())
    truth = np.repeat([r for (r, _), _ in pairs], [n for _, n in pairs]).astype(np.int64)
    predicted = np.repeat([p for (_, p), _ in pairs], [n for _, n in pairs]).astype(np.int64)
    estimates = stratified_estimates(predicted, truth, dict(found.mapped))
    callback.log(f"Stratified estimates from {len(truth)} sample points: OA {100 * estimates.overall:.1f} "
                 f"+- {100 * estimates.overall_ci:.1f} % (95 % confidence).")
    return SampleAreas(estimates, pixel_hectares(gt, wkt))


def sample_truth(samples, grid, names: Dict[int, str], callback: Callback) -> Callable[[int, np.ndarray], np.ndarray]:
    """Reference class ids from features (class ids, or names of the classification's classes), for
    :func:`compare`: the labelled pixels of each strip."""
    gt, height, width, wkt = grid
    labelled = [i for i, v in enumerate(samples.values) if not (v is None or str(v).strip() == "" or as_int(v) == 0)]
    if not labelled:
        raise ValueError(f"None of the {len(samples.values)} reference features has a class in its reference field "
                         "(all are empty or 0). Fill in the class you see at each point, or choose the field that "
                         "holds them (REFERENCE_FIELD).")
    if len(labelled) < len(samples.values):
        callback.warn(f"{len(samples.values) - len(labelled)} of {len(samples.values)} reference features have no "
                      "class (empty or 0, as 0 is unlabelled in a reference raster) and are left out.")
    values = _values_as_class_ids([samples.values[i] for i in labelled], names)
    found = samples_from_geometries([samples.wkbs[i] for i in labelled], values, gt, height, width, samples.crs_wkt,
                                    wkt, log=callback.gis_log, reference=True)
    callback.log(f"{len(labelled)} reference features -> {len(found.rows)} reference pixels.")
    return _on_strips(found)


def _on_strips(found) -> Callable[[int, np.ndarray], np.ndarray]:
    """For :func:`compare`: the class ids of labelled pixels (a ``SampleSet``) in each strip, 0 elsewhere."""
    def truth_of(row0: int, predicted: np.ndarray) -> np.ndarray:
        truth = np.zeros(predicted.shape, np.int32)
        inside = (found.rows >= row0) & (found.rows < row0 + predicted.shape[0])
        truth[found.rows[inside] - row0, found.cols[inside]] = found.class_ids[inside]
        return truth
    return truth_of


def _pct(value) -> str:
    return "-" if value != value else f"{100 * value:.2f}%"


def _grid(path: str):
    ds = gdal.Open(path, gdal.GA_ReadOnly)
    gt = ds.GetGeoTransform(can_return_null=True) or PIXEL_GEOTRANSFORM
    return tuple(gt), ds.RasterYSize, ds.RasterXSize, ds.GetProjection() or ""


@contextmanager
def reference_on_grid(path: str, grid, log=None) -> Iterator[Tuple[str, Dict[int, str]]]:
    """A reference class raster on the classification grid (0 = unlabelled), and its category names.

    The raster itself when on the same grid, else resampled with nearest neighbour (GDAL warp
    into an in-memory VRT, removed on leaving the ``with`` block). A raster without
    georeferencing lies where QGIS shows it (x = column, y = -row).
    """
    gt, height, width, wkt = grid
    ds = open_class_raster(path, "reference (REFERENCE)")
    ref_gt = ds.GetGeoTransform(can_return_null=True)
    ref_wkt = ds.GetProjection() or ""
    same_crs = not wkt or not ref_wkt or _same_crs(wkt, ref_wkt)
    tolerance = 1e-6 * abs(gt[1])
    if same_crs and (ds.RasterYSize, ds.RasterXSize) == (height, width) and \
            all(abs(a - b) <= max(tolerance, 1e-9) for a, b in zip(ref_gt or PIXEL_GEOTRANSFORM, gt)):
        yield path, category_names(ds.GetRasterBand(1))
        return
    names = category_names(ds.GetRasterBand(1))
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
            options.update(srcNodata=0, dstNodata=0)   # 0 is unlabelled: never resampled into a class
        temps.append(stem + ".vrt")
        gdal.Warp(temps[-1], source, **options)  # the returned dataset is dropped: that writes the VRT
        source = None
        yield temps[-1], names
    finally:
        for name in temps:
            gdal.Unlink(name)


def _same_crs(a: str, b: str) -> bool:
    sa, sb = osr.SpatialReference(), osr.SpatialReference()
    sa.ImportFromWkt(a)
    sb.ImportFromWkt(b)
    return bool(sa.IsSame(sb))


def _values_as_class_ids(values: List[object], names: Dict[int, str]) -> List[object]:
    """Integer values stay; names are matched (case-insensitive) to the classification's class names."""
    if all(v is None or as_int(v) is not None for v in values):
        return values
    by_name = {n.strip().lower(): i for i, n in names.items()}
    unknown = sorted({str(v).strip() for v in values if v is not None and as_int(v) is None
                      and str(v).strip().lower() not in by_name})
    if unknown:
        raise ValueError(
            f"Reference class name(s) {', '.join(repr(u) for u in unknown)} are not class names of the "
            f"classification ({', '.join(names.values()) or 'it has no class names'}). Use the classification's "
            "class ids or names in REFERENCE_FIELD.")
    return [v if v is None or as_int(v) is not None else by_name[str(v).strip().lower()] for v in values]


def report_csv(accuracy, labels: Dict[int, str], areas: Optional[SampleAreas] = None) -> str:
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
    if areas is not None:
        e, ha = areas.estimates, areas.pixel_ha
        writer.writerow([])
        writer.writerow(["stratified_estimates", "overall_accuracy_percent", f"{100 * e.overall:.4f}",
                         "ci95_percent", f"{100 * e.overall_ci:.4f}"])
        writer.writerow(["class_id", "class_name", "samples_mapped", "users_accuracy_percent", "users_ci95_percent",
                         "producers_accuracy_percent", "producers_ci95_percent", "mapped_pixels",
                         "estimated_pixels", "estimated_pixels_ci95", "mapped_ha", "estimated_ha",
                         "estimated_ha_ci95", "estimated_share_percent"]
                        + [f"proportion_mapped_as_row_reference_{c}" for c in e.class_ids.tolist()])
        for k, cid in enumerate(e.class_ids.tolist()):
            hectares = [_ha(v, ha) for v in (e.mapped[k], e.area[k], e.area_ci[k])]
            writer.writerow([cid, labels[cid], int(e.counts[k].sum()), _num(e.users[k]), _num(e.users_ci[k]),
                             _num(e.producers[k]), _num(e.producers_ci[k]), int(e.mapped[k]), f"{e.area[k]:.2f}",
                             f"{e.area_ci[k]:.2f}", *hectares, _num(e.area[k] / e.mapped.sum())]
                            + [f"{v:.6f}" for v in e.proportions[k]])
    return out.getvalue()


def _ha(pixels: float, pixel_ha: Optional[float]) -> str:
    return "" if pixel_ha is None else f"{pixels * pixel_ha:.2f}"


def _area(value: float) -> str:
    """An area with the decimals its size needs (a 1 m pixel is 0.0001 ha)."""
    return f"{value:,.{4 if value < 10 else 1 if value < 1000 else 0}f}"


def _pm(value: float, ci: float) -> str:
    return "-" if value != value else f"{100 * value:.1f} &plusmn; {100 * ci:.1f}%"


def areas_html(areas: SampleAreas, labels: Dict[int, str]) -> str:
    """The stratified-sample tables: accuracies with 95 % intervals, error-adjusted areas, the matrix in proportions."""
    e, ha = areas.estimates, areas.pixel_ha
    ids = e.class_ids.tolist()
    unit = "ha" if ha is not None else "pixels"
    scale = ha if ha is not None else 1.0
    rows = "".join(
        f"<tr><th>{html.escape(labels[c])} <small>{c}</small></th><td>{int(e.counts[k].sum())}</td>"
        f"<td>{_pm(e.users[k], e.users_ci[k])}</td><td>{_pm(e.producers[k], e.producers_ci[k])}</td>"
        f"<td>{_area(e.mapped[k] * scale)}</td><td>{_area(e.area[k] * scale)} &plusmn; {_area(e.area_ci[k] * scale)}</td>"
        f"<td>{100 * e.area[k] / e.mapped.sum():.1f}%</td></tr>" for k, c in enumerate(ids))
    head = "".join(f"<th>{html.escape(labels[c])}<br><small>{c}</small></th>" for c in ids)
    matrix = "".join(f"<tr><th>{html.escape(labels[c])} <small>{c}</small></th>"
                     + "".join(f"<td>{v:.4f}</td>" for v in e.proportions[k]) + f"<td>{e.proportions[k].sum():.4f}</td></tr>"
                     for k, c in enumerate(ids))
    totals = "".join(f"<td>{v:.4f}</td>" for v in e.proportions.sum(axis=0))
    return f"""<h2>Area-weighted estimates from the validation sample</h2>
<p>Stratified random sample, strata = map classes weighted by their mapped area (Olofsson et al. 2014).
Intervals are 95 % confidence intervals. Overall accuracy: <b>{_pm(e.overall, e.overall_ci)}</b>.</p>
<table>
<tr><th>Class</th><th>Samples mapped as it</th><th>User's accuracy</th><th>Producer's accuracy</th>
<th>Mapped area ({unit})</th><th>Error-adjusted area ({unit})</th><th>Estimated share</th></tr>
{rows}
</table>
<h3>Error matrix in estimated area proportions</h3>
<p>Rows: map class; columns: reference class.</p>
<table>
<tr><th>map \\ reference</th>{head}<th>Total</th></tr>
{matrix}
<tr><th>Total</th>{totals}<td>1.0000</td></tr>
</table>
"""


def _num(value) -> str:
    return "" if value != value else f"{100 * value:.4f}"


def report_html(accuracy, labels: Dict[int, str], classification: str, reference: str,
                areas: Optional[SampleAreas] = None) -> str:
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
{areas_html(areas, labels) if areas is not None else ""}</body></html>
"""
