"""Small synthetic scenes and helpers shared by the Processing tests (imported by the test modules).

A scene is a 32 x 32 px hyperspectral-like raster (8 bands) and a LiDAR-like raster (2 bands) in
EPSG:32633 with three classes laid out in blocks, a ground-truth raster, a GeoPackage of sample
points (8 per class, field ``class_id``) and a class-list JSON.
"""
import json
import os
from types import SimpleNamespace

import numpy as np
import pytest
from osgeo import gdal, ogr, osr

gdal.UseExceptions()

EPSG = 32633
X0, Y0, PIXEL = 400000.0, 5800000.0, 2.0
NAMES = {1: "water", 2: "forest", 3: "road"}
SPECTRA = {1: np.linspace(0.10, 0.02, 8), 2: np.array([0.03, 0.05, 0.08, 0.05, 0.3, 0.45, 0.5, 0.5]),
           3: np.linspace(0.20, 0.28, 8)}
HEIGHTS = {1: 0.0, 2: 15.0, 3: 0.2}
FAST = {"PRETRAIN_EPOCHS": 1, "EPOCHS": 5, "WINDOW": "3", "PRESET": "cpu", "DEVICE": "cpu"}


def srs_wkt(epsg=EPSG):
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    return srs.ExportToWkt()


def write_raster(path, array, gt=(X0, PIXEL, 0, Y0, 0, -PIXEL), wkt=None, nodata=None, dtype=gdal.GDT_Float32,
                 names=None):
    array = array[None] if array.ndim == 2 else array
    ds = gdal.GetDriverByName("GTiff").Create(path, array.shape[2], array.shape[1], array.shape[0], dtype)
    if gt is not None:
        ds.SetGeoTransform(gt)
    if wkt is None:
        wkt = srs_wkt()
    if wkt:
        ds.SetProjection(wkt)
    for b in range(array.shape[0]):
        band = ds.GetRasterBand(b + 1)
        if nodata is not None:
            band.SetNoDataValue(nodata)
        band.WriteArray(array[b])
        if names and b == 0:
            band.SetCategoryNames([names.get(i, "") for i in range(max(names) + 1)])
    ds = None
    return path


def class_map(size):
    """Three classes in blocks: water (left third), forest (top right), road (bottom right)."""
    labels = np.full((size, size), 2, np.int32)
    labels[:, : size // 3] = 1
    labels[size // 2:, size // 3:] = 3
    return labels


def make_scene(folder, size=32, seed=0, samples_per_class=8):
    rng = np.random.default_rng(seed)
    labels = class_map(size)
    hsi = np.zeros((8, size, size), np.float32)
    lidar = np.zeros((2, size, size), np.float32)
    for k in NAMES:
        m = labels == k
        hsi[:, m] = SPECTRA[k][:, None] * (1 + 0.05 * rng.normal(size=(1, m.sum())))
        lidar[0, m] = HEIGHTS[k] + rng.normal(scale=0.3, size=m.sum())
        lidar[1, m] = 50 * k + rng.normal(scale=5, size=m.sum())
    hsi += rng.normal(scale=0.005, size=hsi.shape).astype(np.float32)
    s = SimpleNamespace(folder=str(folder), size=size, labels=labels)
    s.hsi = write_raster(os.path.join(folder, "hsi.tif"), hsi)
    s.lidar = write_raster(os.path.join(folder, "lidar.tif"), lidar)
    s.gt = write_raster(os.path.join(folder, "gt.tif"), labels, dtype=gdal.GDT_Byte, nodata=0, names=NAMES)
    s.points = []
    for k in NAMES:
        rows, cols = np.nonzero(labels == k)
        pick = rng.choice(len(rows), samples_per_class, replace=False)
        s.points += [(int(rows[i]), int(cols[i]), k) for i in pick]
    s.samples = write_points(os.path.join(folder, "samples.gpkg"), s.points)
    s.classes_json = os.path.join(folder, "classes.json")
    with open(s.classes_json, "w") as f:
        json.dump({"format": "diffclip-classes", "version": 1, "classes": [
            {"id": k, "name": n, "colour": c, "prompt": f"a patch of {n}."}
            for (k, n), c in zip(NAMES.items(), ["#0000ff", "#00aa00", "#444444"])]}, f)
    return s


def pixel_centre(row, col, gt=(X0, PIXEL, 0, Y0, 0, -PIXEL)):
    return gt[0] + (col + 0.5) * gt[1], gt[3] + (row + 0.5) * gt[5]


def write_points(path, points, field="class_id", epsg=EPSG, values=None, field_type=ogr.OFTInteger, layer="samples"):
    """A GeoPackage of points at pixel centres; ``values`` overrides the class values."""
    if os.path.exists(path):
        os.remove(path)
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(path)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    lyr = ds.CreateLayer(layer, srs, ogr.wkbPoint)
    lyr.CreateField(ogr.FieldDefn(field, field_type))
    transform = None
    if epsg != EPSG:
        src = osr.SpatialReference()
        src.ImportFromEPSG(EPSG)
        src.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        transform = osr.CoordinateTransformation(src, srs)
    for i, (row, col, k) in enumerate(points):
        feature = ogr.Feature(lyr.GetLayerDefn())
        value = k if values is None else values[i]
        if value is not None:
            feature.SetField(field, value)
        x, y = pixel_centre(row, col)
        if transform is not None:
            x, y, _ = transform.TransformPoint(x, y)
        point = ogr.Geometry(ogr.wkbPoint)
        point.AddPoint_2D(x, y)
        feature.SetGeometry(point)
        lyr.CreateFeature(feature)
    ds = None
    return path


def read(path):
    ds = gdal.Open(path)
    return ds.GetRasterBand(1).ReadAsArray()


def category_names(path):
    """Category names of band 1 (GDAL loads them from the .aux.xml lazily: gdal.Info first)."""
    gdal.Info(path)
    ds = gdal.Open(path)
    band = ds.GetRasterBand(1)
    band.GetDescription()
    return band.GetCategoryNames()


def raises(match):
    """pytest.raises for the QgsProcessingException a bad input gives, its message matching ``match``."""
    from qgis.core import QgsProcessingException

    return pytest.raises(QgsProcessingException, match=match)


def run_alg(alg_id, params, feedback=None):
    import processing
    from qgis.core import QgsProcessingFeedback

    return processing.run(alg_id, params, feedback=feedback or QgsProcessingFeedback())


QUICK = dict(FAST, PRETRAIN_EPOCHS=0)  # tests that check accuracy train for longer


def classify(scene, tmp_path, feedback=None, **params):
    """diffclip:fewshotclassify on a test scene with quick settings; ``params`` override them."""
    base = dict(QUICK, INPUTS=[scene.hsi, scene.lidar], SAMPLES=scene.samples, CLASS_FIELD="class_id",
                OUTPUT=str(tmp_path / "class.tif"))
    base.update(params)
    return run_alg("diffclip:fewshotclassify", base, feedback)


class LogFeedback:
    """A QgsProcessingFeedback that records what the algorithm logs."""

    def __new__(cls):
        from qgis.core import QgsProcessingFeedback

        class _Feedback(QgsProcessingFeedback):
            def __init__(self):
                super().__init__()
                self.infos, self.warnings, self.errors, self.progress_values = [], [], [], []
                self.progressChanged.connect(self.progress_values.append)

            def pushInfo(self, info):  # noqa: N802
                self.infos.append(info)
                super().pushInfo(info)

            def pushWarning(self, warning):  # noqa: N802
                self.warnings.append(warning)
                super().pushWarning(warning)

            def reportError(self, error, fatalError=False):  # noqa: N802,N803
                self.errors.append(error)
                super().reportError(error, fatalError)

            @property
            def text(self):
                return "\n".join(self.infos + self.warnings + self.errors)

        return _Feedback()


@pytest.fixture(scope="module")
def torch_threads():
    """One torch thread while a test module runs (restored after it).

    On a busy 2-core machine, torch's spinning OpenMP threads slow these tiny trainings down
    by 10x or more; one thread is as fast on an idle machine and robust on a busy one.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    return make_scene(tmp_path_factory.mktemp("scene"))


def test_scene_is_consistent(tmp_path):
    s = make_scene(tmp_path)
    assert read(s.gt).shape == (32, 32)
    assert len(s.points) == 24
