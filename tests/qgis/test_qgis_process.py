"""Headless qgis_process (qgis_process.bin): plugin enable, list, help, a run on the demo data, the example model."""
import json
import os
import shutil
import subprocess
import sys

import pytest
from osgeo import gdal

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, "build")
DEMO = os.path.join(BUILD, "diffclip_qgis", "demo")
MODEL3 = os.path.join(ROOT, "models", "diffclip_pretrain_classify_assess.model3")
QGIS_PROCESS = shutil.which("qgis_process.bin")

pytestmark = pytest.mark.skipif(QGIS_PROCESS is None, reason="qgis_process.bin is not installed")
TINY = ["--PRESET=cpu", "--WINDOW=3", "--PRETRAIN_EPOCHS=0", "--EPOCHS=5", "--DEVICE=cpu"]


def env():
    import site

    paths = [BUILD] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p] + site.getsitepackages()
    return dict(os.environ, QGIS_PLUGINPATH=BUILD, QT_QPA_PLATFORM="offscreen", PYTHONPATH=os.pathsep.join(paths),
                OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY", "PASSIVE"))


def qgis_process(*args, json_output=False, timeout=400):
    cmd = [QGIS_PROCESS] + (["--json"] if json_output else []) + list(args)
    proc = subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return json.loads(proc.stdout) if json_output else proc.stdout


def demo(name):
    path = os.path.join(DEMO, name)
    if not os.path.isfile(path):
        pytest.skip(f"{path} is missing (the demo scene)")
    return path


@pytest.fixture(scope="module")
def enabled():
    """`plugins enable` (it exits with 1 and says so when the plugin is enabled already)."""
    proc = subprocess.run([QGIS_PROCESS, "plugins", "enable", "diffclip_qgis"], env=env(), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0 or "already enabled" in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    assert "* diffclip_qgis" in qgis_process("plugins")
    return True


def test_plugin_listed_and_help(enabled):
    listing = qgis_process("list")
    for alg in ("diffclip:fewshotclassify", "diffclip:pretrain", "diffclip:applymodel", "diffclip:accuracy"):
        assert alg in listing
    help_text = qgis_process("help", "diffclip:fewshotclassify")
    for name in ("INPUTS", "SAMPLES", "CLASS_FIELD", "PROMPTS", "PROMPT_TEMPLATE", "PRETRAINED", "PRESET", "WINDOW",
                 "PRETRAIN_EPOCHS", "EPOCHS", "CLASS_PROPORTIONS", "DEVICE", "SEED", "EXTENT", "SMOOTHING", "OUTPUT",
                 "OUTPUT_CONFIDENCE", "OUTPUT_MODEL"):
        assert f"\n{name}:" in help_text, name
    assert "paper" in help_text and "cuda" in help_text


def test_fewshot_and_accuracy_on_demo(enabled, tmp_path):
    out = str(tmp_path / "demo_class.tif")
    answer = qgis_process(
        "run", "diffclip:fewshotclassify", f"--INPUTS={demo('demo_hsi.tif')}", f"--INPUTS={demo('demo_lidar.tif')}",
        f"--SAMPLES={demo('demo_samples.gpkg')}", "--CLASS_FIELD=class_id", f"--PROMPTS={demo('demo_classes.json')}",
        *TINY, f"--OUTPUT={out}", f"--OUTPUT_CONFIDENCE={tmp_path / 'conf.tif'}", json_output=True)
    assert answer["results"]["OUTPUT"] == out
    log = "\n".join(answer["log"]["info"])
    assert "Device: CPU" in log and "Samples per class" in log
    ds = gdal.Open(out)
    assert (ds.RasterXSize, ds.RasterYSize) == (150, 150)
    assert os.path.isfile(str(tmp_path / "demo_class.qml"))
    acc = qgis_process("run", "diffclip:accuracy", f"--CLASSIFICATION={out}", f"--REFERENCE={demo('demo_gt.tif')}",
                       f"--OUTPUT_HTML={tmp_path / 'r.html'}", json_output=True)["results"]
    assert 100 / 12 < acc["OA"] <= 100  # better than a 12-class coin even after 5 epochs
    assert os.path.isfile(acc["OUTPUT_HTML"])


def test_error_message_reaches_the_command_line(enabled, tmp_path):
    cmd = [QGIS_PROCESS, "run", "diffclip:applymodel", f"--INPUTS={demo('demo_hsi.tif')}",
           f"--MODEL={tmp_path / 'missing.pt'}", f"--OUTPUT={tmp_path / 'x.tif'}"]
    proc = subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "Model file not found" in proc.stdout + proc.stderr or "missing.pt" in proc.stdout + proc.stderr


def test_example_model_runs(enabled, tmp_path):
    """models/*.model3: pretrain -> few-shot classify (PRETRAINED) -> accuracy, on the demo data, tiny settings."""
    assert os.path.isfile(MODEL3)
    out, report = str(tmp_path / "model_class.tif"), str(tmp_path / "model_report.html")
    answer = qgis_process(
        "run", MODEL3, f"--rasters={demo('demo_hsi.tif')}", f"--rasters={demo('demo_lidar.tif')}",
        f"--samples={demo('demo_samples.gpkg')}", "--class_field=class_id", f"--prompts={demo('demo_classes.json')}",
        f"--reference={demo('demo_gt.tif')}", "--preset=cpu", "--window=3", "--pretrain_epochs=0", "--epochs=5",
        f"--classify:classification={out}", f"--assess:report={report}", json_output=True)
    assert answer["results"]["classify:classification"] == out
    assert gdal.Open(out).RasterXSize == 150
    page = open(report, encoding="utf-8").read()
    assert "Confusion matrix" in page and "live oak tree" in page
    log = "\n".join(answer["log"]["info"])
    assert "Using the encoder of" in log  # classify used pretrain's OUTPUT_MODEL


def test_model_file_is_current(qgis_app):
    """The shipped .model3 is what scripts/build_example_model.py builds (rebuild it after changing the script)."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        target = os.path.join(folder, "m.model3")
        script = os.path.join(ROOT, "scripts", "build_example_model.py")
        proc = subprocess.run([sys.executable, script, "--out", target], env=env(), capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert _model_json(target) == _model_json(MODEL3)


def _model_json(path):
    """The model's structure without the UUIDs QGIS assigns to comments and groups."""
    from qgis.core import QgsProcessingModelAlgorithm

    model = QgsProcessingModelAlgorithm()
    assert model.fromFile(path)
    children = {cid: (c.algorithmId(), sorted(c.parameterSources())) for cid, c in model.childAlgorithms().items()}
    # QGIS 3.44 names a model's outputs after their descriptions, 3.22 after child and output: compare what they are
    return children, sorted((p.type(), p.description()) for p in model.parameterDefinitions())

