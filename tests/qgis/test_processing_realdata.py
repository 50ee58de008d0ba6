"""Few-shot classification of real scenes from ../shared/data through the Processing algorithms.

Every scene: 8 labelled pixels per class drawn (seeded) from its labels, written as sample
points, then diffclip:fewshotclassify and diffclip:accuracy against all labelled pixels.
The tests use small settings (no pretraining, few epochs, 3 x 3 windows) and check that
the result is clearly better than chance. For the full measurement with the default cpu
preset, run

    make plugin && DIFFCLIP_REALDATA_FULL=1 QGIS_PLUGINPATH=$PWD/build PYTHONPATH=$PWD/build \
        QT_QPA_PLATFORM=offscreen .venv/bin/python -m pytest -s tests/qgis/test_processing_realdata.py

which prints OA / AA / kappa per scene.
"""
import glob
import os

import numpy as np
import pytest
from osgeo import gdal, ogr, osr
from test_processing_helpers import LogFeedback, run_alg, torch_threads  # noqa: F401  (a fixture)

FULL = os.environ.get("DIFFCLIP_REALDATA_FULL") == "1"
SHOTS = 8
SMALL = {"PRESET": "cpu", "WINDOW": "3", "PRETRAIN_EPOCHS": 0, "EPOCHS": 40, "DEVICE": "cpu", "SEED": 0}
DEFAULT = {"PRESET": "cpu", "WINDOW": "auto", "PRETRAIN_EPOCHS": -1, "EPOCHS": -1, "DEVICE": "auto", "SEED": 0}

pytestmark = pytest.mark.usefixtures("torch_threads")


def draw_samples(labels, gt, wkt, path, shots=SHOTS, seed=0, valid=None):
    """A GeoPackage of ``shots`` points per class at the centres of random labelled pixels."""
    rng = np.random.default_rng(seed)
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(path)
    srs = None
    if wkt:
        srs = osr.SpatialReference()
        srs.ImportFromWkt(wkt)
    layer = ds.CreateLayer("samples", srs, ogr.wkbPoint)
    layer.CreateField(ogr.FieldDefn("class_id", ogr.OFTInteger))
    mask = labels > 0 if valid is None else (labels > 0) & valid
    for k in sorted(set(np.unique(labels[mask]).tolist()) - {0}):
        rows, cols = np.nonzero(mask & (labels == k))
        for i in rng.choice(len(rows), min(shots, len(rows)), replace=False):
            x = gt[0] + (cols[i] + 0.5) * gt[1]
            y = gt[3] + (rows[i] + 0.5) * gt[5]
            point = ogr.Geometry(ogr.wkbPoint)
            point.AddPoint_2D(float(x), float(y))
            feature = ogr.Feature(layer.GetLayerDefn())
            feature.SetField("class_id", int(k))
            feature.SetGeometry(point)
            layer.CreateFeature(feature)
    ds = None
    return path


def label_grid(path):
    """Labels as int, the geotransform QGIS/DiffCLIP use (pixel grid when there is none) and the CRS."""
    ds = gdal.Open(path)
    labels = np.nan_to_num(ds.GetRasterBand(1).ReadAsArray().astype(np.float64)).astype(np.int64)
    gt = ds.GetGeoTransform(can_return_null=True) or (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)
    return labels, gt, ds.GetProjection() or ""


def run_scene(name, inputs, label_path, tmp_path, settings, valid=None):
    labels, gt, wkt = label_grid(label_path)
    samples = draw_samples(labels, gt, wkt, str(tmp_path / f"{name}_samples.gpkg"), valid=valid)
    fb = LogFeedback()
    out = run_alg("diffclip:fewshotclassify", dict(
        settings, INPUTS=inputs, SAMPLES=samples, CLASS_FIELD="class_id", OUTPUT=str(tmp_path / f"{name}.tif")), fb)
    acc = run_alg("diffclip:accuracy", dict(CLASSIFICATION=out["OUTPUT"], REFERENCE=label_path,
                                            OUTPUT_HTML=str(tmp_path / f"{name}.html")))
    k = len(set(np.unique(labels).tolist()) - {0})
    print(f"\n{name}: {k} classes, {SHOTS} samples per class, settings {settings}: OA {acc['OA']:.2f}%, "
          f"AA {acc['AA']:.2f}%, kappa {acc['KAPPA']:.2f}\n  " + "\n  ".join(
              line for line in fb.infos if line.startswith(("Time per", "Window chosen", "Device"))))
    return acc, k


@pytest.fixture(params=[False] + ([True] if FULL else []), ids=lambda full: "default-cpu" if full else "small")
def settings(request):
    return DEFAULT if request.param else SMALL


def test_indian_pines(qgis_app, shared_data, tmp_path, settings):
    folder = os.path.join(shared_data, "indian_pines_subset")
    acc, k = run_scene("indian_pines", [os.path.join(folder, "indian_pines_subset.tif")],
                       os.path.join(folder, "indian_pines_subset_gt.tif"), tmp_path, settings)
    assert acc["OA"] > 100 / k + 10 and acc["KAPPA"] > 10


def test_jasper_ridge(qgis_app, shared_data, tmp_path, settings):
    folder = os.path.join(shared_data, "jasper_ridge")
    acc, k = run_scene("jasper_ridge", [os.path.join(folder, "jasper_ridge.tif")],
                       os.path.join(folder, "jasper_ridge_gt.tif"), tmp_path, settings)
    assert acc["OA"] > 100 / k + 30 and acc["KAPPA"] > 40


def test_enmap_vrt_mosaic(qgis_app, shared_data, tmp_path, settings):
    """18 EnMAP tiles with gaps as one modality through a VRT (as Raster > Miscellaneous > Build Virtual Raster)."""
    folder = os.path.join(shared_data, "enmap_potsdam")
    tiles = sorted(glob.glob(os.path.join(folder, "images", "*.tif")))
    assert len(tiles) == 18
    vrt = str(tmp_path / "enmap_mosaic.vrt")
    gdal.BuildVRT(vrt, tiles).FlushCache()
    labels_path = os.path.join(folder, "enmap_landcover_unstyled.tif")
    # samples only where the mosaic has data: read its first band on the label grid
    labels, gt, _ = label_grid(labels_path)
    one_band = gdal.Translate("", vrt, format="VRT", bandList=[50])
    mosaic = gdal.Warp("", one_band, format="MEM", outputBounds=_bounds(gt, labels.shape), width=labels.shape[1],
                       height=labels.shape[0], resampleAlg="near")
    band = mosaic.GetRasterBand(1)
    valid = band.ReadAsArray() != band.GetNoDataValue()
    acc, k = run_scene("enmap", [vrt], labels_path, tmp_path, settings, valid=valid)
    out = gdal.Open(str(tmp_path / "enmap.tif"))
    ids = out.GetRasterBand(1).ReadAsArray()
    assert (ids == 0).any() and (ids > 0).any()  # the gaps between tiles stay nodata
    assert acc["OA"] > 100 / k + 15


def _bounds(gt, shape):
    return gt[0], gt[3] + shape[0] * gt[5], gt[0] + shape[1] * gt[1], gt[3]
