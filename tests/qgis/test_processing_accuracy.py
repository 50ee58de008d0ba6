"""diffclip:accuracy against raster references (same and other grid) and vector references."""
import csv
import io
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal, ogr
from test_processing_helpers import NAMES, PIXEL, X0, Y0, read, run_alg, write_points, write_raster


@pytest.fixture(scope="module")
def maps(tmp_path_factory):
    """A known classification and reference on the 32 x 32 grid (no training needed)."""
    folder = tmp_path_factory.mktemp("acc")
    rng = np.random.default_rng(1)
    truth = np.repeat(np.repeat(np.array([[1, 2], [3, 1]]), 16, axis=0), 16, axis=1).astype(np.uint8)
    pred = truth.copy()
    flip = rng.random(truth.shape) < 0.2
    pred[flip] = rng.integers(1, 4, flip.sum())
    truth_ref = truth.copy()
    truth_ref[:2] = 0  # unlabelled rows
    classification = write_raster(str(folder / "pred.tif"), pred, dtype=gdal.GDT_Byte, nodata=0, names=NAMES)
    reference = write_raster(str(folder / "ref.tif"), truth_ref, dtype=gdal.GDT_Byte, nodata=0)
    return folder, pred, truth_ref, classification, reference


def expected(truth, pred):
    from diffclip_qgis.core.metrics import assess

    return assess(truth, pred, [1, 2, 3])


def test_raster_reference_same_grid(qgis_app, maps, tmp_path):
    folder, pred, truth, classification, reference = maps
    out = run_alg("diffclip:accuracy", dict(CLASSIFICATION=classification, REFERENCE=reference,
                                            OUTPUT_HTML=str(tmp_path / "r.html"), OUTPUT_CSV=str(tmp_path / "r.csv")))
    acc = expected(truth, pred)
    assert out["OA"] == pytest.approx(100 * acc.overall)
    assert out["AA"] == pytest.approx(100 * acc.average)
    assert out["KAPPA"] == pytest.approx(100 * acc.kappa)
    page = Path(out["OUTPUT_HTML"]).read_text(encoding="utf-8")
    for text in ("Confusion matrix", "water", "forest", "road", "Producer", "User", f"{100 * acc.overall:.2f}%",
                 "Kappa"):
        assert text in page
    rows = list(csv.reader(io.StringIO(Path(out["OUTPUT_CSV"]).read_text(encoding="utf-8"))))
    assert rows[0][:3] == ["class_id", "class_name", "reference_pixels"]
    assert rows[1][1] == "water" and int(rows[1][2]) == int(acc.matrix[0].sum())
    matrix = np.array([[int(v) for v in r[7:10]] for r in rows[1:4]])
    assert (matrix == acc.matrix).all()
    metrics = {r[0]: r[1] for r in rows[5:] if r}
    assert float(metrics["overall_accuracy_percent"]) == pytest.approx(100 * acc.overall, abs=1e-3)
    assert int(metrics["pixels"]) == acc.count == (truth > 0).sum()


def test_raster_reference_other_grid_and_crs(qgis_app, maps, tmp_path):
    """A reference at 1 m in EPSG:3857 is resampled (nearest) onto the 2 m EPSG:32633 grid."""
    folder, pred, truth, classification, reference = maps
    other = str(tmp_path / "ref_3857.tif")
    gdal.Warp(other, reference, dstSRS="EPSG:3857", xRes=1.0, yRes=1.0, resampleAlg="near")
    out = run_alg("diffclip:accuracy", dict(CLASSIFICATION=classification, REFERENCE=other,
                                            OUTPUT_HTML=str(tmp_path / "r.html")))
    acc = expected(truth, pred)
    # nearest-neighbour round trip through another CRS changes only a few edge pixels
    assert out["OA"] == pytest.approx(100 * acc.overall, abs=3)


def test_reference_without_georeferencing(qgis_app, maps, tmp_path):
    """Rasters without CRS/geotransform (like Indian Pines) are compared pixel by pixel."""
    folder, pred, truth, _, _ = maps
    classification = write_raster(str(tmp_path / "p.tif"), pred, gt=None, wkt="", dtype=gdal.GDT_Byte, nodata=0)
    reference = write_raster(str(tmp_path / "t.tif"), truth, gt=None, wkt="", dtype=gdal.GDT_Byte, nodata=0)
    out = run_alg("diffclip:accuracy", dict(CLASSIFICATION=classification, REFERENCE=reference,
                                            OUTPUT_HTML=str(tmp_path / "r.html")))
    assert out["OA"] == pytest.approx(100 * expected(truth, pred).overall)


@pytest.mark.parametrize("by_name", [False, True])
def test_vector_reference(qgis_app, maps, tmp_path, by_name):
    folder, pred, truth, classification, _ = maps
    rng = np.random.default_rng(2)
    rows, cols = np.nonzero(truth)
    pick = rng.choice(len(rows), 60, replace=False)
    points = [(int(rows[i]), int(cols[i]), int(truth[rows[i], cols[i]])) for i in pick]
    if by_name:
        ref = write_points(str(tmp_path / "ref.gpkg"), points, field="name",
                           values=[NAMES[k].upper() for *_, k in points], field_type=ogr.OFTString, epsg=4326)
        field = "name"
    else:
        ref = write_points(str(tmp_path / "ref.gpkg"), points, epsg=4326)
        field = "class_id"
    out = run_alg("diffclip:accuracy", dict(CLASSIFICATION=classification, REFERENCE=ref, REFERENCE_FIELD=field,
                                            OUTPUT_HTML=str(tmp_path / "r.html")))
    t = np.array([k for *_, k in points])
    p = np.array([pred[r, c] for r, c, _ in points])
    assert out["OA"] == pytest.approx(100 * np.mean(t == p))


def test_polygon_reference(qgis_app, maps, tmp_path):
    folder, pred, truth, classification, _ = maps
    path = str(tmp_path / "polys.gpkg")
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(path)
    from osgeo import osr

    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32633)
    layer = ds.CreateLayer("ref", srs, ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn("cls", ogr.OFTInteger))
    for k, (r0, c0, r1, c1) in {1: (4, 4, 10, 10), 3: (20, 4, 28, 12)}.items():
        ring = ogr.Geometry(ogr.wkbLinearRing)
        for r, c in [(r0, c0), (r0, c1), (r1, c1), (r1, c0), (r0, c0)]:
            ring.AddPoint_2D(X0 + c * PIXEL, Y0 - r * PIXEL)
        poly = ogr.Geometry(ogr.wkbPolygon)
        poly.AddGeometry(ring)
        f = ogr.Feature(layer.GetLayerDefn())
        f.SetField("cls", k)
        f.SetGeometry(poly)
        layer.CreateFeature(f)
    ds = None
    out = run_alg("diffclip:accuracy", dict(CLASSIFICATION=classification, REFERENCE=path, REFERENCE_FIELD="cls",
                                            OUTPUT_HTML=str(tmp_path / "r.html")))
    ref = np.zeros_like(truth)
    ref[4:10, 4:10] = 1
    ref[20:28, 4:12] = 3
    assert out["OA"] == pytest.approx(100 * expected(ref, pred).overall)


def test_no_overlap_is_an_error(qgis_app, maps, tmp_path):
    from qgis.core import QgsProcessingException

    folder, pred, truth, classification, _ = maps
    far = write_raster(str(tmp_path / "far.tif"), truth, gt=(X0 + 1e5, PIXEL, 0, Y0, 0, -PIXEL),
                       dtype=gdal.GDT_Byte, nodata=0)
    with pytest.raises(QgsProcessingException, match="overlap"):
        run_alg("diffclip:accuracy", dict(CLASSIFICATION=classification, REFERENCE=far,
                                          OUTPUT_HTML=str(tmp_path / "r.html")))
    assert read(classification).shape == (32, 32)
