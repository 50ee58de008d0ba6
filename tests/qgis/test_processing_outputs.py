"""No output is ever an input or another output, and what can be checked is checked before training."""
import hashlib
import os

import pytest
from osgeo import gdal
from test_processing_helpers import (  # noqa: F401  (scene and torch_threads are fixtures)
    LogFeedback,
    classify,
    raises,
    run_alg,
    scene,
    torch_threads,
    write_points,
)

pytestmark = pytest.mark.usefixtures("torch_threads")


def digests(*paths):
    out = {}
    for path in paths:
        with open(path, "rb") as f:
            out[path] = hashlib.sha256(f.read()).hexdigest()
    return out


@pytest.fixture(scope="module")
def model(scene, tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    return classify(scene, folder, OUTPUT_MODEL=str(folder / "m.pt"))["OUTPUT_MODEL"]


@pytest.mark.parametrize("output, source, names", [
    ("OUTPUT", "hsi", "OUTPUT .* is the same file as the input INPUTS"),
    ("OUTPUT_CONFIDENCE", "lidar", "OUTPUT_CONFIDENCE .* is the same file as the input INPUTS"),
    ("OUTPUT_MODEL", "samples", "OUTPUT_MODEL .* is the same file as the input SAMPLES"),
])
def test_fewshot_refuses_an_input_as_output(qgis_app, scene, tmp_path, output, source, names):
    before = digests(scene.hsi, scene.lidar, scene.samples)
    feedback = LogFeedback()
    with raises(names):
        classify(scene, tmp_path, feedback, **{output: getattr(scene, source)})
    assert digests(scene.hsi, scene.lidar, scene.samples) == before
    assert not any("Samples per class" in i for i in feedback.infos)  # refused before any work


def test_fewshot_refuses_one_file_for_two_outputs(qgis_app, scene, tmp_path):
    path = str(tmp_path / "same.tif")
    with raises("OUTPUT_CONFIDENCE and OUTPUT are the same file"):
        classify(scene, tmp_path, OUTPUT=path, OUTPUT_CONFIDENCE=path)
    assert os.listdir(tmp_path) == []


def test_a_map_open_in_the_project_is_not_written_over(qgis_app, scene, tmp_path):
    """Its layer would write the old map's statistics and class names over the new one's when it closes."""
    from qgis.core import QgsProject, QgsRasterLayer

    first = classify(scene, tmp_path)["OUTPUT"]
    before = digests(first)
    layer = QgsRasterLayer(first, "my map")
    QgsProject.instance().addMapLayer(layer)
    try:
        with raises("OUTPUT: .*class.tif is open in the project as the layer 'my map'. Remove that layer"):
            classify(scene, tmp_path, OUTPUT=first)
        assert digests(first) == before
    finally:
        QgsProject.instance().removeMapLayer(layer.id())
    classify(scene, tmp_path, OUTPUT=first)   # once the layer is gone


def test_symlink_and_vrt_sources_count_as_inputs(qgis_app, scene, tmp_path):
    os.symlink(scene.hsi, tmp_path / "link.tif")
    with raises("OUTPUT .* is the same file as the input INPUTS"):
        classify(scene, tmp_path, OUTPUT=str(tmp_path / "link.tif"))
    vrt = str(tmp_path / "hsi.vrt")
    gdal.BuildVRT(vrt, [scene.hsi]).FlushCache()
    with raises("OUTPUT .* is the same file as the input INPUTS"):
        classify(scene, tmp_path, INPUTS=[vrt, scene.lidar], OUTPUT=scene.hsi)
    outer = str(tmp_path / "mosaic.vrt")  # a VRT of VRTs: the innermost source is an input too
    gdal.BuildVRT(outer, [vrt]).FlushCache()
    with raises("OUTPUT .* is the same file as the input INPUTS"):
        classify(scene, tmp_path, INPUTS=[outer, scene.lidar], OUTPUT=scene.hsi)
    before = sorted(os.listdir(tmp_path))
    # mosaic.tif's style mosaic.qml would be the style QGIS loads with the input mosaic.vrt: drawn as classes
    with raises(r"OUTPUT \(.*mosaic.tif\) would write its class style mosaic.qml beside the input mosaic.vrt"):
        classify(scene, tmp_path, INPUTS=[outer, scene.lidar], OUTPUT=str(tmp_path / "mosaic.tif"))
    assert sorted(os.listdir(tmp_path)) == before
    (tmp_path / "mosaic.qml").write_text("<qgis/>")   # the user's style for the input mosaic.vrt
    before = sorted(os.listdir(tmp_path))
    # mosaic.tif's style would be mosaic.qml too
    with raises(r"OUTPUT \(.*mosaic.qml\) is the same file as the input INPUTS"):
        classify(scene, tmp_path, INPUTS=[outer, scene.lidar], OUTPUT=str(tmp_path / "mosaic.tif"))
    assert sorted(os.listdir(tmp_path)) == before


def test_apply_pretrain_and_accuracy_refuse_inputs_as_outputs(qgis_app, scene, tmp_path, model):
    before = digests(scene.hsi, scene.lidar, scene.gt, model)
    with raises("OUTPUT .* is the same file as the input INPUTS"):
        run_alg("diffclip:applymodel", dict(INPUTS=[scene.hsi, scene.lidar], MODEL=model, DEVICE="cpu",
                                            OUTPUT=scene.lidar))
    with raises("OUTPUT_CONFIDENCE .* is the same file as the input INPUTS"):
        run_alg("diffclip:applymodel", dict(INPUTS=[scene.hsi, scene.lidar], MODEL=model, DEVICE="cpu",
                                            OUTPUT=str(tmp_path / "a.tif"), OUTPUT_CONFIDENCE=scene.hsi))
    with raises("OUTPUT_MODEL .* is the same file as the input INPUTS"):
        run_alg("diffclip:pretrain", dict(INPUTS=[scene.hsi, scene.lidar], EPOCHS=0, DEVICE="cpu",
                                          OUTPUT_MODEL=scene.hsi))
    for name, target in (("OUTPUT_HTML", scene.gt), ("OUTPUT_CSV", scene.hsi)):
        with raises(f"{name} .* is the same file as the input (CLASSIFICATION|REFERENCE)"):
            run_alg("diffclip:accuracy", {"CLASSIFICATION": scene.hsi, "REFERENCE": scene.gt,
                                          "OUTPUT_HTML": str(tmp_path / "r.html"), name: target})
    assert digests(scene.hsi, scene.lidar, scene.gt, model) == before
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("params, message", [
    (dict(EXTENT="100000,100010,100000,100010 [EPSG:32633]"), "does not overlap the raster"),
    (dict(OUTPUT="/proc/diffclip_out.tif"), "Cannot write OUTPUT into /proc"),
    (dict(OUTPUT_MODEL="/nonexistent-folder/m.pt"), "folder of OUTPUT_MODEL does not exist"),
])
def test_refused_before_training(qgis_app, scene, tmp_path, params, message):
    feedback = LogFeedback()
    with raises(message):
        classify(scene, tmp_path, feedback, **params)
    assert not any("Fine-tuning took" in i for i in feedback.infos), feedback.text
    assert os.listdir(tmp_path) == []


def test_class_ids_above_65535_refused_before_training(qgis_app, scene, tmp_path):
    points = [(r, c, k + 70000 if k == 1 else k) for r, c, k in scene.points]
    samples = write_points(str(tmp_path / "big_ids.gpkg"), points)
    feedback = LogFeedback()
    with raises("Class ids must be 1..65535.*70001"):
        classify(scene, tmp_path, feedback, SAMPLES=samples)
    assert not any("Fine-tuning took" in i for i in feedback.infos)


def test_a_style_saved_for_the_map_while_a_run_works_is_not_replaced(qgis_app, scene, tmp_path, model):
    """QGIS's 'Save as default' style of the old map, written while a run works, is the user's work."""
    from diffclip_qgis.core.progress import Callback
    from diffclip_qgis.workflow.classify import apply_model
    from diffclip_qgis.workflow.requests import ApplyRequest

    request = ApplyRequest([scene.hsi, scene.lidar], model, str(tmp_path / "map.tif"), device="cpu")
    apply_model(request)
    style = tmp_path / "map.qml"

    def meanwhile(phase, fraction, message):
        if phase == "reading" and fraction == 1.0:
            style.write_text("<qgis>the analyst's colours</qgis>")

    with pytest.raises(OSError, match="map.qml: another run or program wrote it"):
        apply_model(request, Callback(meanwhile))
    assert style.read_text() == "<qgis>the analyst's colours</qgis>"
