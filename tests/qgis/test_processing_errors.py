"""Bad inputs give a QgsProcessingException naming the problem and the fix; cancelling leaves no output."""
import os

import pytest
from osgeo import gdal, ogr
from test_processing_helpers import (  # noqa: F401  (scene and torch_threads are fixtures)
    classify,
    LogFeedback,
    raises,
    run_alg,
    scene,
    torch_threads,
    write_points,
    write_raster,
)

pytestmark = pytest.mark.usefixtures("torch_threads")


def outputs_left(tmp_path):
    inputs = (".gpkg", ".json", ".csv", "hsi_nodata.tif")
    return sorted(n for n in os.listdir(tmp_path) if not n.endswith(inputs))


def test_samples_outside_are_skipped_with_warning(qgis_app, scene, tmp_path):
    points = scene.points + [(-50, 10, 1), (10, 500, 2)]  # two points off the raster
    samples = write_points(str(tmp_path / "outside.gpkg"), points)
    fb = LogFeedback()
    classify(scene, tmp_path, fb, SAMPLES=samples)
    assert any("2 of 26 sample features have no pixel on the raster" in w for w in fb.warnings), fb.warnings


def test_class_only_outside_is_an_error(qgis_app, scene, tmp_path):
    points = [p for p in scene.points if p[2] != 3] + [(-50, 10, 3), (-60, 12, 3)]
    samples = write_points(str(tmp_path / "class_outside.gpkg"), points)
    with raises(r"Class 'class 3' has no sample pixel on the raster.*Add samples"):
        classify(scene, tmp_path, SAMPLES=samples)
    assert outputs_left(tmp_path) == []


def test_class_on_nodata_only_is_an_error(qgis_app, scene, tmp_path):
    ds = gdal.Open(scene.hsi)
    hsi = ds.ReadAsArray()
    for r, c, k in scene.points:
        if k == 2:
            hsi[:, r, c] = -9999
    path = write_raster(str(tmp_path / "hsi_nodata.tif"), hsi, nodata=-9999)
    with raises(r"class 2 have no valid samples.*Add samples on valid pixels"):
        classify(scene, tmp_path, INPUTS=[path, scene.lidar])


def test_fewer_than_two_classes(qgis_app, scene, tmp_path):
    samples = write_points(str(tmp_path / "one.gpkg"), [p for p in scene.points if p[2] == 1])
    with raises(r"only one class.*at least one more class"):
        classify(scene, tmp_path, SAMPLES=samples)


def test_empty_class_values(qgis_app, scene, tmp_path):
    values = [k if i % 5 else None for i, (_, _, k) in enumerate(scene.points)]
    samples = write_points(str(tmp_path / "nulls.gpkg"), scene.points, values=values)
    with raises(r"empty \(NULL\) class value"):
        classify(scene, tmp_path, SAMPLES=samples)


def test_missing_class_field(qgis_app, scene, tmp_path):
    with raises(r"CLASS_FIELD|class field"):
        classify(scene, tmp_path, CLASS_FIELD="no_such_field")


@pytest.mark.parametrize("bad", [0, -3])
def test_zero_or_negative_class_ids(qgis_app, scene, tmp_path, bad):
    values = [bad if i == 0 else k for i, (_, _, k) in enumerate(scene.points)]
    samples = write_points(str(tmp_path / "zero.gpkg"), scene.points, values=values)
    with raises(rf"Class value {bad} is not allowed.*Renumber"):
        classify(scene, tmp_path, SAMPLES=samples)


def test_unparsable_prompts(qgis_app, scene, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"classes": [ {"id": 1, "name": "water"')
    with raises(r"not valid JSON"):
        classify(scene, tmp_path, PROMPTS=str(bad))
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("water\nforest\n")
    with raises(r"needs two columns"):
        classify(scene, tmp_path, PROMPTS=str(bad_csv))


def test_identical_prompts(qgis_app, scene, tmp_path):
    with raises(r"same prompt"):
        classify(scene, tmp_path, PROMPT_TEMPLATE="a pixel")


def test_csv_prompts_by_id(qgis_app, scene, tmp_path):
    prompts = tmp_path / "prompts.csv"
    prompts.write_text("id,prompt\n1,open water\n2,dense forest canopy\n3,paved road\n")
    fb = LogFeedback()
    classify(scene, tmp_path, fb, PROMPTS=str(prompts))
    assert "'dense forest canopy'" in fb.text


def test_model_band_mismatch(qgis_app, scene, tmp_path):
    out = classify(scene, tmp_path, OUTPUT_MODEL=str(tmp_path / "m.pt"))
    with raises(r"expects 2 input raster\(s\) with \[8, 2\] bands.*but the inputs have \[8\] bands"):
        run_alg("diffclip:applymodel", dict(INPUTS=[scene.hsi], MODEL=out["OUTPUT_MODEL"], DEVICE="cpu",
                                            OUTPUT=str(tmp_path / "applied.tif")))
    with raises(r"but the inputs have \[2, 8\] bands"):
        run_alg("diffclip:applymodel", dict(INPUTS=[scene.lidar, scene.hsi], MODEL=out["OUTPUT_MODEL"],
                                            DEVICE="cpu", OUTPUT=str(tmp_path / "applied.tif")))
    assert not os.path.exists(tmp_path / "applied.tif")


def test_not_a_model_file(qgis_app, scene, tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model")
    with raises(r"not a DiffCLIP model file"):
        run_alg("diffclip:applymodel", dict(INPUTS=[scene.hsi, scene.lidar], MODEL=str(junk), DEVICE="cpu",
                                            OUTPUT=str(tmp_path / "applied.tif")))


def test_non_geotiff_output_refused(qgis_app, scene, tmp_path):
    with raises(r"OUTPUT: DiffCLIP writes a GeoTIFF here; give the file a \.tif extension instead of 'class\.img'"):
        classify(scene, tmp_path, OUTPUT=str(tmp_path / "class.img"))


def cancelling_feedback(at_percent):
    from qgis.core import QgsProcessingFeedback

    feedback = QgsProcessingFeedback()

    def on_progress(value):
        if value >= at_percent:
            feedback.cancel()

    feedback.progressChanged.connect(on_progress)
    return feedback


@pytest.mark.parametrize("at_percent", [30, 61])  # while fine-tuning, while classifying
def test_cancel_leaves_no_output(qgis_app, scene, tmp_path, at_percent):
    params = dict(OUTPUT_CONFIDENCE=str(tmp_path / "conf.tif"), OUTPUT_MODEL=str(tmp_path / "m.pt"), EPOCHS=20)
    with raises(r"^Cancelled$"):
        classify(scene, tmp_path, cancelling_feedback(at_percent), **params)
    assert os.listdir(tmp_path) == []


def test_cancel_pretrain_leaves_no_model(qgis_app, scene, tmp_path):
    with raises(r"^Cancelled$"):
        run_alg("diffclip:pretrain", dict(INPUTS=[scene.hsi, scene.lidar], EPOCHS=3, SAMPLE_COUNT=64, WINDOW="3",
                                          DEVICE="cpu", OUTPUT_MODEL=str(tmp_path / "enc.pt")),
                cancelling_feedback(10))
    assert os.listdir(tmp_path) == []


def test_cuda_requested_without_gpu(qgis_app, scene, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    with raises(r"CUDA was requested"):
        classify(scene, tmp_path, DEVICE="cuda")


def test_no_features(qgis_app, scene, tmp_path):
    samples = write_points(str(tmp_path / "none.gpkg"), [])
    with raises(r"no sample features"):
        classify(scene, tmp_path, SAMPLES=samples)


def test_vector_reference_needs_field(qgis_app, scene, tmp_path):
    out = classify(scene, tmp_path)
    with raises(r"REFERENCE_FIELD"):
        run_alg("diffclip:accuracy", dict(CLASSIFICATION=out["OUTPUT"], REFERENCE=scene.samples,
                                          OUTPUT_HTML=str(tmp_path / "r.html")))


def test_reference_names_must_match(qgis_app, scene, tmp_path):
    out = classify(scene, tmp_path, PROMPTS=scene.classes_json)
    names = ["lake" if k == 1 else ["", "water", "forest", "road"][k] for _, _, k in scene.points]
    ref = write_points(str(tmp_path / "ref.gpkg"), scene.points, field="name", values=names, field_type=ogr.OFTString)
    with raises(r"'lake' are not class names of the classification"):
        run_alg("diffclip:accuracy", dict(CLASSIFICATION=out["OUTPUT"], REFERENCE=ref, REFERENCE_FIELD="name",
                                          OUTPUT_HTML=str(tmp_path / "r.html")))


def test_zero_counts_are_errors(qgis_app, scene, tmp_path):
    with raises(r"EPOCHS must be at least 1 \(or -1 for the preset's 100\)"):
        classify(scene, tmp_path, EPOCHS=0)
    with raises(r"SAMPLE_COUNT must be at least 1 \(or -1 for the preset's 2000\)"):
        run_alg("diffclip:pretrain", dict(INPUTS=[scene.hsi, scene.lidar], SAMPLE_COUNT=0, DEVICE="cpu",
                                          OUTPUT_MODEL=str(tmp_path / "m.pt")))
    assert outputs_left(tmp_path) == []


def test_a_traceback_only_for_errors_a_library_raised(qgis_app):
    """The plugin's own messages reach the log alone; an error from numpy, torch or GDAL keeps its traceback."""
    import numpy as np

    from diffclip_qgis.core.config import get_preset
    from diffclip_qgis.processing.algorithm import _raised_here

    with pytest.raises(ValueError) as ours:
        get_preset("nope")
    with pytest.raises(ValueError) as library:
        np.zeros(2).reshape(3)
    assert _raised_here(ours.value) and not _raised_here(library.value)
