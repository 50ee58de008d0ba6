"""The command line (python -m diffclip_qgis), without QGIS: the Processing jobs, their messages,
and torchrun (2 processes on the CPU over loopback) giving the same map as one process."""
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
from osgeo import gdal

gdal.UseExceptions()

PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__import__("diffclip_qgis").__file__)))
DEMO = os.path.join(PACKAGE_ROOT, "diffclip_qgis", "demo")
QUICK = ["--WINDOW", "3", "--EPOCHS", "5", "--DEVICE", "cpu"]


def env(**extra):
    return dict(os.environ, PYTHONPATH=os.pathsep.join([PACKAGE_ROOT] + sys.path[1:]), OMP_NUM_THREADS="1",
                OMP_WAIT_POLICY="PASSIVE", **extra)


def free_port():
    with socket.socket() as s:  # a free port for the rendezvous on loopback
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun_has_libuv():
    """torchrun's rendezvous store needs libuv; Debian's torch (the QGIS 3.44 chroot) is built without it."""
    from torch.distributed import TCPStore
    try:
        TCPStore("127.0.0.1", 0, 1, True)
    except RuntimeError as error:
        if "libuv" in str(error):
            return False
        raise
    return True


def cli(*args, torchrun=0, timeout=600):
    command = ["-m", "diffclip_qgis"] + list(args)
    port = str(free_port())
    if torchrun and not torchrun_has_libuv():
        # Without libuv torchrun cannot start; the ranks get the same environment torchrun would give them.
        ranks = [subprocess.Popen([sys.executable] + command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True, env=env(RANK=str(r), LOCAL_RANK=str(r), WORLD_SIZE=str(torchrun),
                                                     LOCAL_WORLD_SIZE=str(torchrun), MASTER_ADDR="127.0.0.1",
                                                     MASTER_PORT=port, USE_LIBUV="0"))
                 for r in range(torchrun)]
        texts = [rank.communicate(timeout=timeout)[0] for rank in ranks]
        return max(abs(rank.returncode) for rank in ranks), "".join(texts)
    launcher = ["-m", "torch.distributed.run", "--nproc_per_node", str(torchrun), "--master_addr", "127.0.0.1",
                "--master_port", port] if torchrun else []
    proc = subprocess.run([sys.executable] + launcher + command, env=env(), capture_output=True, text=True,
                          timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr


def demo(name):
    path = os.path.join(DEMO, name)
    if not os.path.isfile(path):
        pytest.skip(f"{path} is missing (the demo scene)")
    return path


def classify_args(out_dir, *extra):
    return ["classify", "--INPUTS", demo("demo_hsi.tif"), "--INPUTS", demo("demo_lidar.tif"), "--SAMPLES",
            demo("demo_samples.gpkg"), "--CLASS_FIELD", "class_id", "--PROMPTS", demo("demo_classes.json"),
            "--OUTPUT", str(out_dir / "map.tif"), *QUICK, *extra]


def read(path):
    ds = gdal.Open(str(path))
    return ds.GetRasterBand(1).ReadAsArray()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli")
    code, text = cli(*classify_args(out, "--OUTPUT_MODEL", str(out / "model.pt")))
    assert code == 0, text
    return out


def test_classify_writes_the_styled_map_and_the_model(trained):
    assert sorted(os.listdir(trained)) == ["map.qml", "map.tif", "map.tif.aux.xml", "model.pt"]
    ds = gdal.Open(str(trained / "map.tif"))
    band = ds.GetRasterBand(1)
    band.GetDescription()
    assert band.GetCategoryNames()[1] == "live oak tree" and band.GetColorTable() is not None


def test_apply_gives_the_classify_map_and_accuracy_reports(trained, tmp_path):
    code, text = cli("apply", "--INPUTS", demo("demo_hsi.tif"), "--INPUTS", demo("demo_lidar.tif"), "--MODEL",
                     str(trained / "model.pt"), "--OUTPUT", str(tmp_path / "applied.tif"), "--DEVICE", "cpu")
    assert code == 0, text
    assert (read(tmp_path / "applied.tif") == read(trained / "map.tif")).all()
    code, text = cli("accuracy", "--CLASSIFICATION", str(tmp_path / "applied.tif"), "--REFERENCE", demo("demo_gt.tif"),
                     "--OUTPUT_HTML", str(tmp_path / "r.html"), "--OUTPUT_CSV", str(tmp_path / "r.csv"))
    assert code == 0, text
    oa = float(next(line for line in text.splitlines() if line.startswith("OA: ")).split()[1])
    assert 100 / 12 < oa <= 100 and os.path.isfile(tmp_path / "r.html") and os.path.isfile(tmp_path / "r.csv")


def apply_args(trained, output):
    return ["apply", "--INPUTS", demo("demo_hsi.tif"), "--INPUTS", demo("demo_lidar.tif"), "--MODEL",
            str(trained / "model.pt"), "--DEVICE", "cpu", "--OUTPUT", str(output)]


def test_only_the_results_go_to_stdout(trained, tmp_path):
    """So that $(python -m diffclip_qgis ...) captures the output paths; the log goes to stderr with the progress."""
    proc = subprocess.run([sys.executable, "-m", "diffclip_qgis", *apply_args(trained, tmp_path / "a.tif")], env=env(),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [f"OUTPUT: {tmp_path / 'a.tif'}"] and "Device:" in proc.stderr


def test_extents_as_analysts_type_them(trained, tmp_path):
    """West of Greenwich (a value starting with '-'), a CRS without brackets, and GDAL's order by mistake."""
    code, text = cli(*apply_args(trained, tmp_path / "west.tif"), "--EXTENT", "-89.1596,-89.1584,30.3484,30.3494 EPSG:4326")
    assert code == 0 and "Classifying only inside the extent" in text, text
    code, text = cli("--quiet", *apply_args(trained, tmp_path / "gdal.tif"), "--EXTENT", "292403,3359352,292546,3359494")
    assert code == 0 and "EXTENT reaches far beyond the raster" in text and "not GDAL's xmin,ymin,xmax,ymax" in text
    assert "Classifying" not in text   # --quiet: the warning, not the log
    code, text = cli(*apply_args(trained, tmp_path / "s.tif"), "--SMOOTHING", "-2")
    assert code == 2 and "argument --SMOOTHING: -2 is out of range: SMOOTHING takes from 0 to 25" in text
    for extent, message in (("[EPSG:99999]", "EXTENT: the CRS 'EPSG:99999' is unknown"),
                            ("[EPSG:4326]", "cannot be placed on the raster: are its values in EPSG:4326?")):
        code, text = cli(*apply_args(trained, tmp_path / "e.tif"), "--EXTENT", "292400,292450,3359450,3359500 " + extent)
        assert code == 1 and message in text and "Traceback" not in text and "ERROR 1" not in text, text


@pytest.mark.parametrize("job, args, message", [
    ("pretrain", ["--MASK_RATIO", "1.5"], "--MASK_RATIO: 1.5 is out of range: MASK_RATIO takes from 0.05 to 0.95"),
    ("pretrain", ["--MASK_RATIO", "nan"], "--MASK_RATIO: nan is out of range"),
    ("validationsample", ["--SEED", "-3"], "--SEED: -3 is out of range: SEED takes 0 or more"),
    ("classify", ["--EPOCHS", "-5"], "--EPOCHS: -5 is out of range: EPOCHS takes -1 or more (-1 = the preset's)"),
    ("classify", ["--EPOCHS", "abc"], "--EPOCHS: 'abc' is not a whole number"),
    ("classify", ["--CLASS_PROPORTIONS", "1.5"], "--CLASS_PROPORTIONS: 1.5 is out of range: CLASS_PROPORTIONS takes "
                                                 "from 0 to 1"),
    ("classify", ["--CLASS_PROPORTIONS", "nan"], "--CLASS_PROPORTIONS: nan is out of range"),
])
def test_numbers_outside_the_processing_ranges_are_refused(job, args, message):
    code, text = cli(job, *args)   # refused before the missing required arguments are named
    assert code == 2 and message in text, text


def test_an_empty_class_field_is_named_as_the_mistake():
    """Not "32 of 32 sample features have an empty class value": the field name is what is empty."""
    code, text = cli("classify", "--CLASS_FIELD", "")
    assert code == 2 and "--CLASS_FIELD: is empty: give the name of the field that holds the class ids" in text, text


def test_an_extent_reads_the_input_statistics_once(tmp_path, monkeypatch):
    """The extent's check and training share one fit of the band statistics (it reads tiles of every input)."""
    import diffclip_qgis.core.pipeline as pipeline
    import diffclip_qgis.workflow.classify as classify
    from diffclip_qgis.cli import main

    fits, fit = [], classify.fit_input_stats
    counted = lambda *args, **kwargs: fits.append(1) or fit(*args, **kwargs)  # noqa: E731
    monkeypatch.setattr(classify, "fit_input_stats", counted)
    monkeypatch.setattr(pipeline, "fit_input_stats", counted)
    assert main(["--quiet", *classify_args(tmp_path, "--EXTENT", "-89.1596,-89.1584,30.3484,30.3494 EPSG:4326")]) == 0
    assert len(fits) == 1 and read(tmp_path / "map.tif").shape != (150, 150)


@pytest.mark.parametrize("args, message", [
    (["--CLASS_FIELD", "nope"], "has no field 'nope'"),
    (["--CLASS_FIELD", "fid"], "The class field 'fid' is the sample layer's feature id"),
    (["--OUTPUT", "x.img"], "OUTPUT: DiffCLIP writes a GeoTIFF here; give the file a .tif extension instead of 'x.img'"),
    (["--OUTPUT_MODEL", "m.tif"], "OUTPUT_MODEL: DiffCLIP writes a model file here; give the file a .pt extension"),
    (["--EPOCHS", "0"], "EPOCHS must be at least 1"),
    (["--EXTENT", "0,1,0,1 [EPSG:32616]"], "does not overlap"),
])
def test_errors_name_the_problem_before_training(tmp_path, args, message):
    code, text = cli(*classify_args(tmp_path), *args)
    assert code == 1, text
    assert message in text and "Fine-tuning took" not in text
    assert [n for n in os.listdir(tmp_path)] == []


def test_output_equal_to_an_input_is_refused(tmp_path):
    code, text = cli(*classify_args(tmp_path), "--OUTPUT_MODEL", demo("demo_samples.gpkg"))
    assert code == 1 and "OUTPUT_MODEL" in text and "is the same file as the input SAMPLES" in text


def test_files_read_with_the_samples_are_inputs_too(tmp_path):
    """map.tif writes map.qml: the style QGIS loads with samples in map.gpkg is theirs; a VRT reads its source."""
    import shutil

    samples = tmp_path / "samples.gpkg"
    shutil.copy(demo("demo_samples.gpkg"), samples)
    (tmp_path / "samples.qml").write_text("<qgis/>")
    code, text = cli("classify", "--INPUTS", demo("demo_hsi.tif"), "--SAMPLES", str(samples), "--CLASS_FIELD",
                     "class_id", "--OUTPUT", str(tmp_path / "samples.tif"), *QUICK)
    assert code == 1 and "is the same file as the input SAMPLES" in text, text
    assert (tmp_path / "samples.qml").read_text() == "<qgis/>"
    (tmp_path / "ref.csv").write_text("x,y,class_id\n292450,3359420,1\n")
    (tmp_path / "ref.vrt").write_text(
        '<OGRVRTDataSource><OGRVRTLayer name="ref"><SrcDataSource relativeToVRT="1">ref.csv</SrcDataSource>'
        '<GeometryType>wkbPoint</GeometryType><GeometryField encoding="PointFromColumns" x="x" y="y"/>'
        '</OGRVRTLayer></OGRVRTDataSource>')
    code, text = cli("accuracy", "--CLASSIFICATION", demo("demo_gt.tif"), "--REFERENCE", str(tmp_path / "ref.vrt"),
                     "--REFERENCE_FIELD", "class_id", "--OUTPUT_CSV", str(tmp_path / "ref.csv"))
    assert code == 1 and "is the same file as the input REFERENCE" in text, text
    assert (tmp_path / "ref.csv").read_text().startswith("x,y,class_id")


def test_help_reads_like_the_processing_help():
    code, text = cli("classify", "--help")
    assert code == 0
    assert "Training samples (SAMPLES)" in text and "Follow the scene's class proportions (CLASS_PROPORTIONS)" in text


def _two_tile_scene(folder):
    """The demo scene repeated 2 x 2 (300 x 300 px: two 256 px tile rows and columns)."""
    paths = []
    for name in ("demo_hsi.tif", "demo_lidar.tif"):
        ds = gdal.Open(demo(name))
        array = np.tile(ds.ReadAsArray(), (1, 2, 2)).astype(np.float32)
        path = str(folder / name)
        out = gdal.GetDriverByName("GTiff").Create(path, array.shape[2], array.shape[1], array.shape[0],
                                                   gdal.GDT_Float32)
        out.SetGeoTransform(ds.GetGeoTransform())
        out.SetProjection(ds.GetProjection())
        out.WriteRaster(0, 0, array.shape[2], array.shape[1], array.tobytes())
        out = None
        paths.append(path)
    return paths


def test_torchrun_apply_gives_exactly_the_single_process_map(trained, tmp_path):
    hsi, lidar = _two_tile_scene(tmp_path)
    args = ["apply", "--INPUTS", hsi, "--INPUTS", lidar, "--MODEL", str(trained / "model.pt"), "--DEVICE", "cpu",
            "--OUTPUT_CONFIDENCE"]
    code, text = cli(*args, str(tmp_path / "one_conf.tif"), "--OUTPUT", str(tmp_path / "one.tif"))
    assert code == 0, text
    code, text = cli(*args, str(tmp_path / "two_conf.tif"), "--OUTPUT", str(tmp_path / "two.tif"), torchrun=2)
    assert code == 0, text
    assert (read(tmp_path / "one.tif") == read(tmp_path / "two.tif")).all()
    assert np.allclose(read(tmp_path / "one_conf.tif"), read(tmp_path / "two_conf.tif"), atol=1e-5)
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]  # the ranks' parts are gone


def test_torchrun_pretraining_gives_a_model_as_good_as_one_process(tmp_path):
    pretrain = ["pretrain", "--INPUTS", demo("demo_hsi.tif"), "--INPUTS", demo("demo_lidar.tif"), "--EPOCHS", "3",
                "--SAMPLE_COUNT", "512", "--WINDOW", "3", "--DEVICE", "cpu", "--OUTPUT_MODEL"]
    scores = {}
    for ranks in (0, 2):
        model = str(tmp_path / f"encoder{ranks}.pt")
        code, text = cli(*pretrain, model, torchrun=ranks)
        assert code == 0, text
        out = tmp_path / f"run{ranks}"
        out.mkdir()
        code, text = cli(*classify_args(out, "--PRETRAINED", model)[:-6], "--WINDOW", "3", "--DEVICE", "cpu")
        assert code == 0, text
        code, text = cli("accuracy", "--CLASSIFICATION", str(out / "map.tif"), "--REFERENCE", demo("demo_gt.tif"))
        assert code == 0, text
        scores[ranks] = float(next(line for line in text.splitlines() if line.startswith("OA: ")).split()[1])
    assert scores[2] > 60 and abs(scores[2] - scores[0]) < 8, scores


def test_a_feature_id_as_class_field_is_refused_before_training(tmp_path):
    """A field with a new value on every feature (an id) would train a class per sample."""
    from osgeo import ogr

    source = ogr.Open(demo("demo_samples.gpkg"))
    copy = ogr.GetDriverByName("GPKG").CopyDataSource(source, str(tmp_path / "ids.gpkg"))
    layer = copy.GetLayer(0)
    layer.CreateField(ogr.FieldDefn("uid", ogr.OFTInteger))
    for n, feature in enumerate(layer, 1):
        feature.SetField("uid", n)
        layer.SetFeature(feature)
    copy = source = layer = None
    args = classify_args(tmp_path, "--SAMPLES", str(tmp_path / "ids.gpkg"), "--CLASS_FIELD", "uid",
                         "--PROMPT_TEMPLATE", "{name}")
    code, text = cli(*args)
    assert code == 1 and "96 classes of one sample each: the class field looks like a feature id" in text, text
    assert "Fine-tuning took" not in text


@pytest.mark.parametrize("reference, message", [
    (["--REFERENCE", "{demo}/demo_samples.gpkg"],
     "The reference is a vector layer: choose its class field (REFERENCE_FIELD). Its fields: class_id"),
    (["--REFERENCE", "{demo}/demo_gt.tif", "--REFERENCE_FIELD", "class_id"],
     "REFERENCE_FIELD applies to a vector reference only"),
    (["--REFERENCE", "nothere.tif"], "Cannot open the reference (REFERENCE) nothere.tif"),
])
def test_accuracy_mistakes_get_the_message_of_the_parameter_at_fault(reference, message):
    folder = os.path.dirname(demo("demo_gt.tif"))
    code, text = cli("accuracy", "--CLASSIFICATION", demo("demo_gt.tif"), *(a.format(demo=folder) for a in reference))
    assert code == 1 and message in text, text
    code, text = cli("accuracy", "--CLASSIFICATION", "nothere.tif", "--REFERENCE", demo("demo_gt.tif"))
    assert code == 1 and "Cannot open the classification (CLASSIFICATION) nothere.tif" in text, text


def test_a_validation_sample_is_assessed_on_its_reference_field_without_naming_it(tmp_path):
    points = str(tmp_path / "check.gpkg")
    code, text = cli("validationsample", "--CLASSIFICATION", demo("demo_gt.tif"), "--OUTPUT", points,
                     "--SAMPLE_SIZE", "60", "--MIN_PER_CLASS", "3")
    assert code == 0, text
    vector = gdal.OpenEx(points, gdal.OF_VECTOR | gdal.OF_UPDATE)
    layer = vector.GetLayer(0)
    for feature in layer:   # the analyst sees class 1 everywhere
        feature.SetField("reference", 1)
        layer.SetFeature(feature)
    vector = layer = None
    code, text = cli("accuracy", "--CLASSIFICATION", demo("demo_gt.tif"), "--REFERENCE", points,
                     "--OUTPUT_HTML", str(tmp_path / "r.html"))
    assert code == 0 and "Reference class field: reference" in text, text
    assert "OA: 8.3333" in text, text   # of 60 points, 5 per map class, only those on class 1 agree
    assert "Stratified estimates from 60 sample points" in text, text   # map_class read: a sample of this map


def test_a_class_list_that_matches_none_of_the_classes_is_refused_before_training(tmp_path):
    """Ids 101.. against the demo's class ids 1..12: the list belongs to other samples."""
    prompts = tmp_path / "other.json"
    prompts.write_text(json.dumps({"classes": [{"id": 100 + i, "prompt": f"prompt {i}"} for i in range(1, 13)]}))
    out = tmp_path / "out"
    out.mkdir()
    code, text = cli(*classify_args(out), "--PROMPTS", str(prompts))
    assert code == 1 and "None of the 12 classes of other.json matches the samples' classes" in text, text
    assert "Fine-tuning took" not in text and os.listdir(out) == []
