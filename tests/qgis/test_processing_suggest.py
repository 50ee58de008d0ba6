"""diffclip:suggestsamples in Processing and on the command line: points to label next, away from the samples."""
import os
import sys

import pytest
from osgeo import ogr
from test_processing_helpers import classify, pixel_centre, run_alg, scene, torch_threads  # noqa: F401 (fixtures)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "unit"))
from test_cli import cli  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_threads")


def _points(path):
    vector = ogr.Open(path)
    layer = vector.GetLayer(0)
    return [(f.GetGeometryRef().GetX(), f.GetGeometryRef().GetY(), f.GetField("rank"), f.GetField("best_class"),
             f.GetField("second_class"), f.GetField("margin")) for f in layer]


def test_suggestions_are_ranked_points_away_from_labelled_pixels(qgis_app, scene, tmp_path):
    model = classify(scene, tmp_path, OUTPUT_MODEL=str(tmp_path / "m.pt"))["OUTPUT_MODEL"]
    out = run_alg("diffclip:suggestsamples", dict(INPUTS=[scene.hsi, scene.lidar], MODEL=model,
                                                  SAMPLES=scene.samples, DEVICE="cpu",
                                                  OUTPUT=str(tmp_path / "next.gpkg")))["OUTPUT"]
    points = _points(out)
    assert len(points) == 6                                      # 2 per class, 3 classes
    assert [p[2] for p in points] == [1, 2, 3, 4, 5, 6]
    assert [p[5] for p in points] == sorted(p[5] for p in points)  # least sure first
    labelled = {pixel_centre(r, c) for r, c, _ in scene.points}
    assert not labelled & {(p[0], p[1]) for p in points}
    assert all(p[3] != p[4] and p[3] in (1, 2, 3) for p in points)
    code, text = cli("suggestsamples", "--INPUTS", scene.hsi, "--INPUTS", scene.lidar, "--MODEL", model,
                     "--SAMPLES", scene.samples, "--DEVICE", "cpu", "--OUTPUT", str(tmp_path / "cli.gpkg"))
    assert code == 0, text
    assert _points(str(tmp_path / "cli.gpkg")) == points        # the same job on the command line
    import processing
    from qgis.core import QgsProject

    processing.runAndLoadResults("diffclip:suggestsamples", dict(INPUTS=[scene.hsi, scene.lidar], MODEL=model,
                                                                 DEVICE="cpu", OUTPUT=str(tmp_path / "shown.gpkg")))
    shown = [(layer.name(), layer.featureCount()) for layer in QgsProject.instance().mapLayers().values()
             if "shown.gpkg" in layer.source()]
    QgsProject.instance().removeAllMapLayers()
    assert shown == [("Suggested samples", 6)]   # on the map


def test_suggestions_never_replace_the_samples_they_keep_away_from(qgis_app, scene, tmp_path):
    import shutil

    from qgis.core import QgsProcessingException

    model = classify(scene, tmp_path, OUTPUT_MODEL=str(tmp_path / "m.pt"))["OUTPUT_MODEL"]
    samples = str(tmp_path / "mine.gpkg")
    shutil.copy(scene.samples, samples)
    with pytest.raises(QgsProcessingException, match="is the same file as the input SAMPLES"):
        run_alg("diffclip:suggestsamples", dict(INPUTS=[scene.hsi, scene.lidar], MODEL=model, SAMPLES=samples,
                                                DEVICE="cpu", OUTPUT=samples))
    assert ogr.Open(samples).GetLayer(0).GetFeatureCount() == len(scene.points)
