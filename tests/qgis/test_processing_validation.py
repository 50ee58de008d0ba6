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
    out = run_alg("diffclip:accuracy", {"CLASSIFICATION": DEMO_GT, "REFERENCE": points,   # field `reference` by default
                                        "OUTPUT_HTML": str(tmp_path / "r.html")})
    html = (tmp_path / "r.html").read_text()
    assert out["OA"] == 100 and "Overall accuracy: <b>100.0 &plusmn; 0.0%</b>" in html
    ds = gdal.Open(DEMO_GT)
    assert "Error-adjusted area (ha)" in html and ds.GetProjection()


def test_a_sample_open_in_the_project_is_not_replaced(qgis_app, tmp_path):
    """Edits in progress on its layer would be saved to the replaced file and lost."""
    from qgis.core import QgsProject, QgsVectorLayer
    from test_processing_helpers import raises

    params = {"CLASSIFICATION": DEMO_GT, "SAMPLE_SIZE": 40, "MIN_PER_CLASS": 2, "OUTPUT": str(tmp_path / "v.gpkg")}
    points = run_alg("diffclip:validationsample", params)["OUTPUT"]
    layer = QgsVectorLayer(points, "my checks", "ogr")
    QgsProject.instance().addMapLayer(layer)
    try:
        layer.startEditing()
        layer.changeAttributeValue(next(layer.getFeatures()).id(), layer.fields().indexOf("reference"), 3)
        with raises("OUTPUT: .*v.gpkg is open in the project as the layer 'my checks'. Remove that layer"):
            run_alg("diffclip:validationsample", dict(params, SAMPLE_SIZE=30))
        assert layer.commitChanges()
    finally:
        QgsProject.instance().removeMapLayer(layer.id())
    reference = QgsVectorLayer(points, "", "ogr")
    assert reference.featureCount() == 40 and sum(f["reference"] == 3 for f in reference.getFeatures()) == 1


def test_the_points_are_added_to_the_project_and_not_kept_in_the_temporary_folder(qgis_app, tmp_path):
    """The dialog loads only layer outputs by itself; points a user fills in must outlive QGIS's temporary folder."""
    import processing
    from qgis.core import QgsProject
    from test_processing_helpers import raises

    params = {"CLASSIFICATION": DEMO_GT, "SAMPLE_SIZE": 40, "MIN_PER_CLASS": 2, "OUTPUT": str(tmp_path / "v.gpkg")}
    processing.runAndLoadResults("diffclip:validationsample", params)
    loaded = [layer for layer in QgsProject.instance().mapLayers().values() if str(tmp_path) in layer.source()]
    try:
        assert [(layer.name(), layer.featureCount()) for layer in loaded] == [("Validation points", 40)]
        assert "reference" in loaded[0].fields().names()
    finally:
        QgsProject.instance().removeAllMapLayers()
    with raises("OUTPUT: choose a file to keep for these points .*QGIS deletes its temporary folder"):
        run_alg("diffclip:validationsample", dict(params, OUTPUT="TEMPORARY_OUTPUT"))
