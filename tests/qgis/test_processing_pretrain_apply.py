"""diffclip:pretrain -> diffclip:fewshotclassify (PRETRAINED) -> diffclip:applymodel, and batch-style reuse."""
import os

import numpy as np
import pytest
from osgeo import gdal
from test_processing_helpers import FAST, LogFeedback, read, run_alg, scene, torch_threads  # noqa: F401

pytestmark = pytest.mark.usefixtures("torch_threads")


def test_pretrain_then_classify_then_apply(qgis_app, scene, tmp_path):
    fb = LogFeedback()
    pre = run_alg("diffclip:pretrain", dict(INPUTS=[scene.hsi, scene.lidar], PRESET="cpu", WINDOW="5", EPOCHS=2,
                                            MASK_RATIO=0.5, SAMPLE_COUNT=128, DEVICE="cpu", SEED=3,
                                            OUTPUT_MODEL=str(tmp_path / "encoder.pt")), fb)
    assert os.path.isfile(pre["OUTPUT_MODEL"])
    assert "Pretraining on 128 unlabelled 5 x 5 windows, 2 epochs" in fb.text
    assert "mask ratio 0.5" in fb.text
    assert 100 in fb.progress_values

    from diffclip_qgis.core.checkpoint import load_model

    encoder = load_model(pre["OUTPUT_MODEL"])
    assert encoder.pretrain_window == 5 and not encoder.is_classifier

    few = run_alg("diffclip:fewshotclassify", dict(
        FAST, INPUTS=[scene.hsi, scene.lidar], SAMPLES=scene.samples, CLASS_FIELD="class_id",
        PROMPTS=scene.classes_json, PRETRAINED=pre["OUTPUT_MODEL"], WINDOW="5", EPOCHS=5,
        OUTPUT=str(tmp_path / "few.tif"), OUTPUT_MODEL=str(tmp_path / "classifier.pt")))
    model = load_model(few["OUTPUT_MODEL"])
    assert model.is_classifier and [c.name for c in model.classes] == ["water", "forest", "road"]
    assert model.window == 5

    fb = LogFeedback()
    applied = run_alg("diffclip:applymodel", dict(INPUTS=[scene.hsi, scene.lidar], MODEL=few["OUTPUT_MODEL"],
                                                  DEVICE="cpu", OUTPUT=str(tmp_path / "applied.tif"),
                                                  OUTPUT_CONFIDENCE=str(tmp_path / "applied_conf.tif")), fb)
    assert "3 classes (1 water, 2 forest, 3 road)" in fb.text
    # the same model on the same inputs gives the same map
    assert (read(applied["OUTPUT"]) == read(few["OUTPUT"])).all()
    assert os.path.isfile(str(tmp_path / "applied.qml"))
    conf = read(applied["OUTPUT_CONFIDENCE"])
    assert np.nanmin(conf) > 0


def test_window_auto_logs_cross_validation(qgis_app, scene, tmp_path):
    """WINDOW auto: cross-validation over the sizes the encoder supports (3 and 5 here), logged with scores."""
    pre = run_alg("diffclip:pretrain", dict(INPUTS=[scene.hsi, scene.lidar], EPOCHS=0, SAMPLE_COUNT=16, WINDOW="5",
                                            DEVICE="cpu", OUTPUT_MODEL=str(tmp_path / "enc5.pt")))
    fb = LogFeedback()
    run_alg("diffclip:fewshotclassify", dict(
        FAST, INPUTS=[scene.hsi, scene.lidar], SAMPLES=scene.samples, CLASS_FIELD="class_id",
        PRETRAINED=pre["OUTPUT_MODEL"], WINDOW="auto", EPOCHS=3, OUTPUT=str(tmp_path / "auto.tif")), fb)
    assert "Window chosen by cross-validation on the samples: 3 x 3:" in fb.text
    assert "5 x 5:" in fb.text and "7 x 7" not in fb.text
    assert "cross-validating on the samples" in fb.text   # the phase, in the timing line


def test_encoder_cannot_be_applied(qgis_app, scene, tmp_path):
    from qgis.core import QgsProcessingException

    pre = run_alg("diffclip:pretrain", dict(INPUTS=[scene.hsi, scene.lidar], EPOCHS=0, SAMPLE_COUNT=16, WINDOW="3",
                                            DEVICE="cpu", OUTPUT_MODEL=str(tmp_path / "enc.pt")))
    with pytest.raises(QgsProcessingException, match="pretrained encoder without classes"):
        run_alg("diffclip:applymodel", dict(INPUTS=[scene.hsi, scene.lidar], MODEL=pre["OUTPUT_MODEL"], DEVICE="cpu",
                                            OUTPUT=str(tmp_path / "x.tif")))


def test_batch_runs_in_one_context(qgis_app, scene, tmp_path):
    """As in batch mode: several runs of one algorithm instance type with their own outputs."""
    import processing
    from qgis.core import QgsProcessingContext, QgsProcessingFeedback, QgsProject

    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    pre = run_alg("diffclip:pretrain", dict(INPUTS=[scene.hsi, scene.lidar], EPOCHS=0, SAMPLE_COUNT=16, WINDOW="3",
                                            DEVICE="cpu", OUTPUT_MODEL=str(tmp_path / "enc.pt")))
    outputs = []
    for seed in (0, 1):
        out = processing.run("diffclip:fewshotclassify", dict(
            FAST, INPUTS=[scene.hsi, scene.lidar], SAMPLES=scene.samples, CLASS_FIELD="class_id", SEED=seed,
            PRETRAINED=pre["OUTPUT_MODEL"], OUTPUT=str(tmp_path / f"b{seed}.tif")),
            feedback=QgsProcessingFeedback(), context=context)
        outputs.append(out["OUTPUT"])
    assert all(gdal.Open(p).RasterXSize == 32 for p in outputs)
