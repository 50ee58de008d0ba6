"""diffclip:validationsample, then diffclip:accuracy with the filled-in points: area estimates in the report."""
import os

from osgeo import gdal, ogr
from test_processing_helpers import run_alg

DEMO_GT = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "build",
                       "diffclip_qgis", "demo", "demo_gt.tif")


def test_validation_sample_then_accuracy_with_areas(qgis_app, tmp_path):
    points = run_alg("diffclip:validationsample", {"CLASSIFICATION": DEMO_GT, "SAMPLE_SIZE": 240,
                                                    "MIN_PER_CLASS": 10, "OUTPUT": str(tmp_path / "v.gpkg")})["OUTPUT"]
    vector = ogr.Open(points, 1)
    layer = vector.GetLayer(0)
    assert layer.GetFeatureCount() == 240
    for feature in layer:   # a perfect analyst: the reference is the map class
        feature.SetField("reference", feature.GetField("map_class"))
        layer.SetFeature(feature)
    vector = layer = None
    out = run_alg("diffclip:accuracy", {"CLASSIFICATION": DEMO_GT, "REFERENCE": points, "REFERENCE_FIELD": "reference",
                                        "OUTPUT_HTML": str(tmp_path / "r.html")})
    html = (tmp_path / "r.html").read_text()
    assert out["OA"] == 100 and "Overall accuracy: <b>100.0 &plusmn; 0.0%</b>" in html
    ds = gdal.Open(DEMO_GT)
    assert "Error-adjusted area (ha)" in html and ds.GetProjection()
