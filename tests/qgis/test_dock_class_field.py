"""The few-shot algorithm's class field: the dock's ``class_id`` preselected, a feature id refused, unique values warned."""
import pytest
from test_processing_helpers import QUICK, LogFeedback, run_alg, scene, torch_threads, write_points  # noqa: F401


def check(samples, field):
    from qgis.core import QgsApplication, QgsProcessingContext

    alg = QgsApplication.processingRegistry().createAlgorithmById("diffclip:fewshotclassify")
    return alg.checkParameterValues({"INPUTS": [], "SAMPLES": samples, "CLASS_FIELD": field, "OUTPUT": "x.tif"},
                                    QgsProcessingContext())


def test_class_field_defaults_to_the_dock_sample_field(qgis_app):
    from qgis.core import QgsApplication

    from diffclip_qgis.gui.sample_layer import CLASS_ID

    alg = QgsApplication.processingRegistry().algorithmById("diffclip:fewshotclassify")
    assert alg.parameterDefinition("CLASS_FIELD").defaultValue() == CLASS_ID == "class_id"


def test_feature_id_is_refused_before_the_run(qgis_app, scene):
    from qgis.core import QgsProcessingException

    ok, message = check(scene.samples, "fid")
    assert not ok and "'fid' is the sample layer's feature id" in message and "(fields: class_id)" in message
    assert check(scene.samples, "class_id") == (True, "")
    with pytest.raises(QgsProcessingException, match="feature id"):
        run_alg("diffclip:fewshotclassify", dict(QUICK, INPUTS=[scene.hsi], SAMPLES=scene.samples, CLASS_FIELD="fid",
                                                 OUTPUT="unused.tif"))


@pytest.mark.usefixtures("torch_threads")
def test_a_field_with_one_feature_per_value_is_warned_about(qgis_app, scene, tmp_path):
    samples = write_points(str(tmp_path / "ids.gpkg"), scene.points[:10], field="uid",
                           values=list(range(11, 21)))
    fb = LogFeedback()
    run_alg("diffclip:fewshotclassify", dict(QUICK, INPUTS=[scene.hsi], SAMPLES=samples, CLASS_FIELD="uid",
                                             EPOCHS=2, OUTPUT=str(tmp_path / "c.tif")), fb)
    assert any("Every feature has its own value in the class field 'uid' (10 classes of one feature each)" in w
               for w in fb.warnings)


def test_repeated_values_or_too_few_features_give_no_warning(qgis_app):
    from diffclip_qgis.processing.fewshot_classify import one_feature_classes_warning

    assert one_feature_classes_warning("class_id", [1, 1] + list(range(2, 12))) == ""
    assert one_feature_classes_warning("name", ["water", "forest", "road"]) == ""  # one-shot
    assert one_feature_classes_warning("fid", list(range(1, 11)) + [None]) != ""
