"""A model trained in QGIS applies with the command line (no QGIS), and the reverse, with the same map."""
import os
import sys

import pytest
from test_processing_helpers import classify, read, run_alg, scene, torch_threads  # noqa: F401 (fixtures)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "unit"))
from test_cli import cli  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_threads")


def test_models_move_between_qgis_and_the_command_line(qgis_app, scene, tmp_path):
    qgis_model = classify(scene, tmp_path, OUTPUT_MODEL=str(tmp_path / "qgis.pt"))["OUTPUT_MODEL"]
    code, text = cli("classify", "--INPUTS", scene.hsi, "--INPUTS", scene.lidar, "--SAMPLES", scene.samples,
                     "--CLASS_FIELD", "class_id", "--WINDOW", "3", "--EPOCHS", "5", "--DEVICE", "cpu",
                     "--OUTPUT", str(tmp_path / "cli_map.tif"), "--OUTPUT_MODEL", str(tmp_path / "cli.pt"))
    assert code == 0, text
    for model in (qgis_model, str(tmp_path / "cli.pt")):
        name = os.path.splitext(os.path.basename(model))[0]
        in_qgis = run_alg("diffclip:applymodel", dict(INPUTS=[scene.hsi, scene.lidar], MODEL=model, DEVICE="cpu",
                                                       OUTPUT=str(tmp_path / f"{name}_qgis.tif")))["OUTPUT"]
        code, text = cli("apply", "--INPUTS", scene.hsi, "--INPUTS", scene.lidar, "--MODEL", model, "--DEVICE",
                         "cpu", "--OUTPUT", str(tmp_path / f"{name}_cli.tif"))
        assert code == 0, text
        assert (read(in_qgis) == read(str(tmp_path / f"{name}_cli.tif"))).all()
    assert (read(str(tmp_path / "cli_map.tif")) == read(str(tmp_path / "cli_qgis.tif"))).all()
