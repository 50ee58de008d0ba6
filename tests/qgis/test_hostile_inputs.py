"""Acceptance battery of the issue "Nothing lost, ever": a hostile but realistic user runs
``qgis_process.bin run diffclip:...`` on small crops of the demo scene with tiny settings.

Every case checks: the exit status (0 = success, with a warning where one is due; non-zero =
refusal), that the output names the problem, that every input file is byte-identical afterwards
(sha256 of every file of the input folder, .aux.xml and .gpkg included, and no new file there;
the rasters are loaded into QGIS once before, as a user would have had them open: QGIS itself caches
statistics in a new .aux.xml, and rewrites a .vrt, when it first loads a raster),
that no temporary file ('.tmp' in the name) is left in any folder involved, and that a previous
file placed at each output path is either untouched (failed runs) or replaced by a complete result
(successful runs: GDAL opens it and checksums band 1; a .pt loads).

Cancel is not covered here: SIGINT is no cancel in qgis_process (it just ends the process); the
in-process tests cover it (test_processing_errors.py::test_cancel_*, test_dock_run.py). Not
enough disk space is hard to provoke without a small file system: skipped too.
"""
import hashlib
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest
from osgeo import gdal, ogr, osr
from test_processing_helpers import write_raster
from test_qgis_process import DEMO, QGIS_PROCESS, TINY, enabled, env  # noqa: F401  (enabled is a fixture)

gdal.UseExceptions()
pytestmark = pytest.mark.skipif(QGIS_PROCESS is None, reason="qgis_process.bin is not installed")

CROP = (60, 60, 24, 24)        # demo pixels (col, row, width, height): classes 2, 3, 6, 7, 8
DEMO_EPSG = 32616
FAR_EXTENT = f"100000,100100,1000000,1000100 [EPSG:{DEMO_EPSG}]"   # nowhere near the demo
NOT_TRAINED = "Fine-tuning took"
SAME_INPUT = "is the same file as the input"


# -- scenes ------------------------------------------------------------------------------------------
def files_of(folder):
    return SimpleNamespace(folder=str(folder), **{name: os.path.join(folder, f"{name}.{ext}") for name, ext in (
        ("hsi", "tif"), ("lidar", "tif"), ("gt", "tif"), ("samples", "gpkg"), ("classes", "json"))})


def write_samples(path, scene_gt, points, epsg=DEMO_EPSG, values=None):
    """A GeoPackage of points at the centres of (row, col, class) pixels of the grid ``scene_gt``."""
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    utm = osr.SpatialReference()
    utm.ImportFromEPSG(DEMO_EPSG)
    utm.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    transform = osr.CoordinateTransformation(utm, srs)
    if os.path.exists(path):
        os.remove(path)
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(path)
    layer = ds.CreateLayer("samples", srs, ogr.wkbPoint)
    layer.CreateField(ogr.FieldDefn("class_id", ogr.OFTInteger))
    for i, (row, col, k) in enumerate(points):
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetField("class_id", int(k if values is None else values[i]))
        x, y, _ = transform.TransformPoint(scene_gt[0] + (col + 0.5) * scene_gt[1],
                                           scene_gt[3] + (row + 0.5) * scene_gt[5])
        point = ogr.Geometry(ogr.wkbPoint)
        point.AddPoint_2D(x, y)
        feature.SetGeometry(point)
        layer.CreateFeature(feature)
    ds = None
    return path


def crop_scene(folder, window=CROP, per_class=3):
    """Crops of the demo rasters and ground truth, its class list, and ``per_class`` sample points per class."""
    os.makedirs(folder, exist_ok=True)
    s = files_of(folder)
    for name in ("hsi", "lidar", "gt"):
        gdal.Translate(getattr(s, name), os.path.join(DEMO, f"demo_{name}.tif"), srcWin=list(window))
    shutil.copy(os.path.join(DEMO, "demo_classes.json"), s.classes)
    ds = gdal.Open(s.gt)
    s.geotransform, labels = ds.GetGeoTransform(), ds.GetRasterBand(1).ReadAsArray()
    ds = None
    s.points = []
    for k in np.unique(labels[labels > 0]):
        rows, cols = np.nonzero(labels == k)
        s.points += [(int(rows[i]), int(cols[i]), int(k)) for i in np.linspace(0, len(rows) - 1, per_class).astype(int)]
    write_samples(s.samples, s.geotransform, s.points)
    return s


def copy_scene(scene, folder):
    shutil.copytree(scene.folder, folder)
    return SimpleNamespace(**dict(vars(scene), **vars(files_of(folder))))


@pytest.fixture(scope="module")
def crop(qgis_app, tmp_path_factory):
    """The shared 24 x 24 px crop; tests that add or change files use copy_scene(crop, tmp_path / 'in')."""
    if not os.path.isfile(os.path.join(DEMO, "demo_hsi.tif")):
        pytest.skip("the demo scene is missing: run `make plugin`")
    return crop_scene(str(tmp_path_factory.mktemp("crop")))


@pytest.fixture(scope="module")
def trained(enabled, crop, tmp_path_factory):
    """A classification and a model of a tiny few-shot run on the crop."""
    folder = tmp_path_factory.mktemp("trained")
    out, model = str(folder / "class.tif"), str(folder / "model.pt")
    proc = qgis(*fewshot(crop, out, f"--OUTPUT_MODEL={model}"))
    assert proc.returncode == 0, proc.text[-3000:]
    return SimpleNamespace(folder=str(folder), classification=out, model=model)


# -- running and checking ------------------------------------------------------------------------------
def qgis(alg, *args, cwd=None, preexec_fn=None, timeout=300):
    """``qgis_process.bin run diffclip:alg args``: .returncode, .text (stdout + stderr), .wall (s), .peak_mb."""
    start = time.monotonic()
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen([QGIS_PROCESS, "run", f"diffclip:{alg}", *args], env=env(), stdout=log,
                                stderr=subprocess.STDOUT, cwd=cwd, preexec_fn=preexec_fn)
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)  # wait4: this child's own peak memory
        finally:
            timer.cancel()
        log.seek(0)
        proc.text = log.read().decode(errors="replace")
    proc.returncode, proc.wall = os.waitstatus_to_exitcode(status), time.monotonic() - start
    proc.peak_mb = usage.ru_maxrss / 1024  # peak resident memory
    return proc


def fewshot(scene, out, *extra, inputs=None, samples=None, prompts=None):
    """Arguments of a tiny fewshotclassify run on ``scene`` (alg first)."""
    return ("fewshotclassify", *(f"--INPUTS={p}" for p in inputs or (scene.hsi, scene.lidar)),
            f"--SAMPLES={samples or scene.samples}", "--CLASS_FIELD=class_id", f"--PROMPTS={prompts or scene.classes}",
            *TINY, f"--OUTPUT={out}", *extra)


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def digests(folder):
    return {name: sha(os.path.join(folder, name)) for name in sorted(os.listdir(folder))
            if os.path.isfile(os.path.join(folder, name))}


def seen_by_qgis(folder):
    """Load every raster of the folder once, as a user who had them open in QGIS: QGIS caches statistics
    and histograms in a new .aux.xml (and rewrites a .vrt) on loading, which is QGIS's doing, not the plugin's."""
    from qgis.core import QgsRasterLayer

    for name in os.listdir(folder):
        if name.endswith((".tif", ".vrt")):
            layer = QgsRasterLayer(os.path.join(folder, name), name, "gdal")
            assert layer.isValid(), name
            del layer


def temps(folders, keep=()):
    return sorted(os.path.join(f, n) for f in folders for n in os.listdir(f)
                  if ".tmp" in n and os.path.join(f, n) not in keep)


def place_previous(path):
    """A small valid file at an output path: a GeoTIFF for rasters, text otherwise."""
    if path.lower().endswith((".tif", ".tiff")):
        write_raster(path, np.arange(9, dtype=np.float32).reshape(3, 3))
    else:
        with open(path, "w") as f:
            f.write("a previous result\n")
    return sha(path)


def said(text, *patterns):
    """A line of the output that is not qgis_process's echo of a parameter matches every pattern."""
    for line in text.splitlines():
        if re.match(r"(?!ERROR|WARNING)[A-Z_]+:\t", line):
            continue
        if all(re.search(p, line) for p in patterns):
            return True
    return False


def assert_complete(path):
    if path.endswith(".pt"):
        import torch

        assert torch.load(path, map_location="cpu", weights_only=True)["format"] == "diffclip-qgis-model"
    elif path.lower().endswith((".tif", ".tiff")):
        ds = gdal.Open(path)
        assert ds.RasterXSize > 3 and ds.GetRasterBand(1).Checksum() >= 0
    else:
        assert os.path.getsize(path) > 0


class Guard:
    """Inputs hashed and previous outputs placed before a run; the checks every case makes after it."""

    def __init__(self, inputs, outputs=(), folders=(), keep=()):
        self.inputs = [str(f) for f in ([inputs] if isinstance(inputs, (str, os.PathLike)) else inputs)]
        for folder in self.inputs:
            seen_by_qgis(folder)
        self.before = {f: digests(f) for f in self.inputs}
        self.previous = {str(p): place_previous(str(p)) for p in outputs}
        self.folders = set(self.inputs) | {os.path.dirname(p) for p in self.previous} | {str(f) for f in folders}
        self.keep = set(keep)

    def check(self, proc, ok, *expect, absent=()):
        """``expect``: tuples of regexes one output line must all match; ``absent``: regexes no output may match."""
        tail = proc.text[-4000:]
        assert proc.returncode >= 0, f"killed by signal {-proc.returncode}\n{tail}"
        assert (proc.returncode == 0) == ok, f"exit status {proc.returncode}\n{tail}"
        for patterns in expect:
            assert said(proc.text, *patterns), f"no output line matches {patterns}:\n{tail}"
        for pattern in absent:
            assert not re.search(pattern, proc.text), f"{pattern!r} is in the output:\n{tail}"
        for folder in self.inputs:
            assert digests(folder) == self.before[folder], f"the input folder {folder} changed"
        assert temps(self.folders, self.keep) == [], "temporary files left"
        for path, digest in self.previous.items():
            if ok:
                assert sha(path) != digest, f"{path} was not replaced"
                assert_complete(path)
            else:
                assert sha(path) == digest, f"the previous {path} changed in a failed run"


def names(*params):
    """Regexes for parameter names as whole words (OUTPUT does not match OUTPUT_MODEL)."""
    return tuple(rf"(?<![A-Z_]){p}(?![A-Z_])" for p in params)


# -- 1. an output that is an input, or another output: refused before any work ----------------------
def same_file_cases():
    """(id, builder): builder(s, out, trained) -> (alg args, previous outputs, cwd, expected patterns)."""
    def vrt(s, out, t):
        gdal.BuildVRT(os.path.join(s.folder, "hsi.vrt"), [s.hsi])
        return fewshot(s, s.hsi, inputs=(os.path.join(s.folder, "hsi.vrt"), s.lidar)), [], None, \
            (SAME_INPUT,) + names("OUTPUT", "INPUTS")

    def symlink(s, out, t):
        os.symlink(s.hsi, os.path.join(out, "link.tif"))
        return fewshot(s, os.path.join(out, "link.tif")), [], None, (SAME_INPUT,) + names("OUTPUT", "INPUTS")

    def accuracy(html, csv=None):
        def build(s, out, t):
            shutil.copy(t.classification, os.path.join(s.folder, "class.tif"))
            args = ["accuracy", f"--CLASSIFICATION={os.path.join(s.folder, 'class.tif')}", f"--REFERENCE={s.gt}",
                    f"--OUTPUT_HTML={html(s, out)}"] + ([f"--OUTPUT_CSV={csv(s)}"] if csv else [])
            pattern = names("OUTPUT_CSV", "REFERENCE") if csv else names("OUTPUT_HTML", "CLASSIFICATION")
            return args, [html(s, out)] if csv else [], None, (SAME_INPUT,) + pattern
        return build

    def applymodel(s, out, t):
        model = shutil.copy(t.model, os.path.join(s.folder, "model.pt"))
        return ["applymodel", f"--INPUTS={s.hsi}", f"--INPUTS={s.lidar}", f"--MODEL={model}", "--DEVICE=cpu",
                f"--OUTPUT={s.lidar}"], [], None, (SAME_INPUT,) + names("OUTPUT", "INPUTS")

    return [
        ("OUTPUT=hsi", lambda s, out, t: (fewshot(s, s.hsi), [], None, (SAME_INPUT,) + names("OUTPUT", "INPUTS"))),
        ("OUTPUT_CONFIDENCE=lidar", lambda s, out, t: (
            fewshot(s, os.path.join(out, "c.tif"), f"--OUTPUT_CONFIDENCE={s.lidar}"), [os.path.join(out, "c.tif")],
            None, (SAME_INPUT,) + names("OUTPUT_CONFIDENCE", "INPUTS"))),
        ("OUTPUT_MODEL=samples.gpkg", lambda s, out, t: (
            fewshot(s, os.path.join(out, "c.tif"), f"--OUTPUT_MODEL={s.samples}"), [os.path.join(out, "c.tif")],
            None, (SAME_INPUT,) + names("OUTPUT_MODEL", "SAMPLES"))),
        ("OUTPUT=OUTPUT_CONFIDENCE", lambda s, out, t: (
            fewshot(s, os.path.join(out, "c.tif"), f"--OUTPUT_CONFIDENCE={os.path.join(out, 'c.tif')}"),
            [os.path.join(out, "c.tif")], None, ("are the same file",) + names("OUTPUT", "OUTPUT_CONFIDENCE"))),
        ("OUTPUT=symlink-to-hsi", symlink),
        ("OUTPUT=./hsi.tif", lambda s, out, t: (fewshot(s, "./hsi.tif"), [], s.folder,
                                                (SAME_INPUT,) + names("OUTPUT", "INPUTS"))),
        ("OUTPUT=vrt-source", vrt),
        ("applymodel-OUTPUT=lidar", applymodel),
        ("pretrain-OUTPUT_MODEL=lidar", lambda s, out, t: (
            ["pretrain", f"--INPUTS={s.hsi}", f"--INPUTS={s.lidar}", "--PRESET=cpu", "--EPOCHS=1", "--DEVICE=cpu",
             f"--OUTPUT_MODEL={s.lidar}"], [], None, (SAME_INPUT,) + names("OUTPUT_MODEL", "INPUTS"))),
        ("accuracy-OUTPUT_HTML=classification", accuracy(lambda s, out: os.path.join(s.folder, "class.tif"))),
        ("accuracy-OUTPUT_CSV=reference", accuracy(lambda s, out: os.path.join(out, "r.html"), lambda s: s.gt)),
    ]


@pytest.mark.parametrize("build", [b for _, b in same_file_cases()], ids=[i for i, _ in same_file_cases()])
def test_output_that_is_an_input_is_refused(enabled, crop, trained, tmp_path, build):
    s, out = copy_scene(crop, tmp_path / "in"), str(tmp_path / "out")
    os.makedirs(out)
    args, previous, cwd, expected = build(s, out, trained)
    guard = Guard(s.folder, previous, folders=[out])
    guard.check(qgis(*args, cwd=cwd), False, expected, absent=[NOT_TRAINED])


# -- 2. write errors (a file-size limit stands in for a full disk) ------------------------------------
def size_limit(limit):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG, as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    return apply


def test_confidence_write_error_leaves_previous_files(enabled, qgis_app, tmp_path):
    s = crop_scene(str(tmp_path / "in"), window=(0, 0, 120, 120), per_class=2)
    out = tmp_path / "out"
    out.mkdir()
    guard = Guard(s.folder, [out / "class.tif", out / "conf.tif"])
    proc = qgis(*fewshot(s, str(out / "class.tif"), f"--OUTPUT_CONFIDENCE={out / 'conf.tif'}"),
                preexec_fn=size_limit(40 * 1024))
    guard.check(proc, False, ("Could not write", r"disk full\?"))


def test_model_write_error_leaves_no_output_of_the_run(enabled, crop, trained, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    limit = os.path.getsize(trained.model) // 3
    guard = Guard(crop.folder, [out / "class.tif", out / "model.pt"])
    proc = qgis(*fewshot(crop, str(out / "class.tif"), f"--OUTPUT_CONFIDENCE={out / 'conf.tif'}",
                         f"--OUTPUT_MODEL={out / 'model.pt'}"), preexec_fn=size_limit(limit))
    guard.check(proc, False, ("Could not write", r"disk full\?"))
    assert sorted(os.listdir(out)) == ["class.tif", "model.pt"], "an output of the failed run appeared"


# -- 3. prompt files ---------------------------------------------------------------------------------
def prompt_run(crop, tmp_path, name, content):
    s = copy_scene(crop, tmp_path / "in")
    path = os.path.join(s.folder, name)
    with open(path, "wb") as f:
        f.write(content)
    out = str(tmp_path / "out")
    os.makedirs(out)
    guard = Guard(s.folder, [os.path.join(out, "class.tif")])
    return guard, qgis(*fewshot(s, os.path.join(out, "class.tif"), prompts=path))


def test_latin1_csv_is_read_or_named(enabled, crop, tmp_path):
    rows = "".join(f"{k},une parcelle de classe {k} près de l'été\n" for k in (2, 3, 6, 7, 8))
    guard, proc = prompt_run(crop, tmp_path, "latin1.csv", rows.encode("latin-1"))
    if proc.returncode == 0:
        guard.check(proc, True)
    else:
        guard.check(proc, False, ("latin1.csv", "UTF-8"), absent=[NOT_TRAINED])


def test_binary_prompt_file_is_named(enabled, crop, tmp_path):
    guard, proc = prompt_run(crop, tmp_path, "classes.csv", b"PK\x03\x04\x00\x00\x08\x00" + bytes(range(256)) * 4)
    guard.check(proc, False, ("classes.csv", "UTF-8"), absent=[NOT_TRAINED])


def test_utf8_bom_csv_is_accepted(enabled, crop, tmp_path):
    rows = "class,prompt\n" + "".join(f"{k},a patch of class {k} near the café\n" for k in (2, 3, 6, 7, 8))
    guard, proc = prompt_run(crop, tmp_path, "bom.csv", b"\xef\xbb\xbf" + rows.encode("utf-8"))
    guard.check(proc, True, ("near the café",))


def test_deeply_nested_json_is_not_a_class_list(enabled, crop, tmp_path):
    guard, proc = prompt_run(crop, tmp_path, "deep.json", b"[" * 100000)
    guard.check(proc, False, ("(?i)not a class list",), absent=["(?i)recursion", NOT_TRAINED])


def test_empty_json_names_the_file(enabled, crop, tmp_path):
    guard, proc = prompt_run(crop, tmp_path, "empty.json", b"")
    guard.check(proc, False, ("empty.json",), absent=["CSV", NOT_TRAINED])


def test_prompts_differing_after_the_encoders_words_are_refused(enabled, crop, tmp_path):
    words = " ".join(f"word{i}" for i in range(499))
    classes = {"classes": [{"id": 2, "name": "grass", "prompt": f"{words} grass"},
                           {"id": 3, "name": "shrubs", "prompt": f"{words} shrubs"}]}
    guard, proc = prompt_run(crop, tmp_path, "long.json", json.dumps(classes).encode())
    guard.check(proc, False, ("'grass'", "'shrubs'", "(?i)same prompt"), absent=[NOT_TRAINED])


# -- 4. SIGTERM and stale temporary files ---------------------------------------------------------------
def test_sigterm_during_classification_leaves_nothing(enabled, qgis_app, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    demo = SimpleNamespace(**{n: str(tmp_path / "in" / f"demo_{n}.{e}") for n, e in (
        ("hsi", "tif"), ("lidar", "tif"), ("samples", "gpkg"), ("classes", "json"))})
    shutil.copytree(DEMO, tmp_path / "in")
    guard = Guard(tmp_path / "in", [out / "class.tif"])
    args = [a if a != "--WINDOW=3" else "--WINDOW=5" for a in fewshot(demo, str(out / "class.tif"))]
    with open(tmp_path / "log.txt", "w") as log:
        proc = subprocess.Popen([QGIS_PROCESS, "run", f"diffclip:{args[0]}", *args[1:]], env=env(), stdout=log,
                                stderr=subprocess.STDOUT)
        seen, deadline = [], time.monotonic() + 300
        while proc.poll() is None and not seen and time.monotonic() < deadline:
            # the classification's hidden temporary file (not the probe check_writable removes at once)
            seen = [n for n in os.listdir(out) if ".tmp-" in n and not n.endswith(".probe")]
            time.sleep(0.02)
        if seen:
            proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    text = open(tmp_path / "log.txt", errors="replace").read()
    assert seen, f"no temporary file appeared before the run ended:\n{text[-3000:]}"
    assert proc.returncode != 0, text[-3000:]
    proc.text, proc.returncode = text, 1  # killed by SIGTERM: checked like a failed run
    guard.check(proc, False)


def test_stale_temp_files_are_swept_fresh_ones_kept(enabled, crop, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    stale, fresh = str(out / ".class.tmp-Ab3dE5g7.tif"), str(out / ".class.tmp-Zy9xW8v7.tif")
    for path in (stale, fresh):
        with open(path, "wb") as f:
            f.write(b"II*\x00 cut short")
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(stale, (two_days_ago, two_days_ago))
    guard = Guard(crop.folder, [out / "class.tif"], keep=[fresh])
    guard.check(qgis(*fewshot(crop, str(out / "class.tif"))), True)
    assert not os.path.exists(stale) and os.path.exists(fresh)


# -- 5. a model file whose settings promise a huge network ----------------------------------------------
def test_model_with_huge_settings_is_refused_quickly(enabled, crop, trained, tmp_path):
    import torch

    s = copy_scene(crop, tmp_path / "in")
    payload = torch.load(trained.model, map_location="cpu", weights_only=True)
    payload["model_config"].update(dim=2048, depth=16)
    huge = os.path.join(s.folder, "huge.pt")
    torch.save(payload, huge)
    guard = Guard(s.folder, [tmp_path / "class.tif"])
    proc = qgis("applymodel", f"--INPUTS={s.hsi}", f"--INPUTS={s.lidar}", f"--MODEL={huge}", "--DEVICE=cpu",
                f"--OUTPUT={tmp_path / 'class.tif'}")
    guard.check(proc, False, ("damaged or incompatible",))
    assert proc.wall < 30, f"the refusal took {proc.wall:.0f} s"
    assert proc.peak_mb < 1500, f"the refusal used {proc.peak_mb:.0f} MB (the settings ask for a 2.6 GB network)"


# -- 6. checked before training ----------------------------------------------------------------------
def test_extent_outside_the_raster(enabled, crop, tmp_path):
    guard = Guard(crop.folder, [tmp_path / "class.tif"])
    proc = qgis(*fewshot(crop, str(tmp_path / "class.tif"), f"--EXTENT={FAR_EXTENT}"))
    guard.check(proc, False, ("does not overlap",), absent=[NOT_TRAINED])


def test_class_ids_above_65535(enabled, crop, tmp_path):
    s = copy_scene(crop, tmp_path / "in")
    write_samples(s.samples, s.geotransform, s.points, values=[70000 if k == 2 else k for _, _, k in s.points])
    guard = Guard(s.folder, [tmp_path / "class.tif"])
    guard.check(qgis(*fewshot(s, str(tmp_path / "class.tif"))), False, ("65535",), absent=[NOT_TRAINED])


def test_a_mistyped_input_raster_is_named(enabled, crop, tmp_path):
    """QGIS's own check says only 'Incorrect parameter value for INPUTS'."""
    proc = qgis(*fewshot(crop, str(tmp_path / "class.tif"), inputs=(crop.hsi + "f", crop.lidar)))
    assert proc.returncode != 0 and f"INPUTS: {crop.hsi}f does not exist" in proc.text, proc.text[-2000:]


def test_output_folder_missing(enabled, crop, tmp_path):
    guard = Guard(crop.folder, folders=[tmp_path])
    proc = qgis(*fewshot(crop, str(tmp_path / "nowhere" / "class.tif")))
    guard.check(proc, False, ("does not exist",), absent=[NOT_TRAINED, "Traceback"])   # our message, no traceback
    assert not os.path.exists(tmp_path / "nowhere")


def test_output_folder_not_writable(enabled, crop):
    """We run as root, so no ordinary folder refuses a file: /proc does."""
    guard = Guard(crop.folder)
    proc = qgis(*fewshot(crop, "/proc/diffclip_out.tif"))
    guard.check(proc, False, ("Cannot write",), absent=[NOT_TRAINED])
    assert not os.path.exists("/proc/diffclip_out.tif")


# -- regression guard: cases that already behave well ------------------------------------------------
def lidar_variant(how):
    """Builds a LiDAR raster in folder from the demo: shifted, reprojected or disjoint."""
    def build(folder):
        path = os.path.join(folder, "lidar_variant.tif")
        src = os.path.join(DEMO, "demo_lidar.tif")
        larger = [CROP[0] - 3, CROP[1] - 2, CROP[2] + 6, CROP[3] + 6]  # covers the crop: no sample on nodata
        if how == "shifted":  # 3 and 2.4 px: off the grid
            ds = gdal.Translate(path, src, srcWin=larger)
            x0, dx, rx, y0, ry, dy = ds.GetGeoTransform()
            ds.SetGeoTransform((x0, dx, rx, y0 + 0.4 * dy, ry, dy))
            ds = None
        elif how == "epsg4326":
            gdal.Warp(path, gdal.Translate("", src, format="VRT", srcWin=larger), dstSRS="EPSG:4326")
        else:
            gdal.Translate(path, src, srcWin=[0, 0, CROP[2], CROP[3]])
        return path
    return build


@pytest.mark.parametrize("how, ok, expected", [
    ("shifted", True, "not on the grid"),
    ("epsg4326", True, "not on the grid"),
    ("disjoint", False, "does not overlap"),
])
def test_second_raster_off_the_grid(enabled, crop, tmp_path, how, ok, expected):
    s = copy_scene(crop, tmp_path / "in")
    lidar = lidar_variant(how)(s.folder)
    guard = Guard(s.folder, [tmp_path / "class.tif"])
    guard.check(qgis(*fewshot(s, str(tmp_path / "class.tif"), inputs=(s.hsi, lidar))), ok, (expected,))


def test_all_nodata_band(enabled, crop, tmp_path):
    s = copy_scene(crop, tmp_path / "in")
    data = gdal.Open(s.hsi).ReadAsArray()
    data[10] = -9999
    hsi = write_raster(os.path.join(s.folder, "hsi_nodata.tif"), data, gt=s.geotransform,
                       wkt=gdal.Open(s.hsi).GetProjection(), nodata=-9999)
    guard = Guard(s.folder, [tmp_path / "class.tif"])
    proc = qgis(*fewshot(s, str(tmp_path / "class.tif"), inputs=(hsi, s.lidar)))
    if proc.returncode == 0:
        guard.check(proc, True)
    else:
        guard.check(proc, False, ("(?i)no ?data|no valid|band 11",))


def test_samples_partly_outside_the_raster(enabled, crop, tmp_path):
    s = copy_scene(crop, tmp_path / "in")
    outside = [(row - 40, col + 50, k) for row, col, k in s.points[:4]]
    write_samples(s.samples, s.geotransform, s.points + outside)
    guard = Guard(s.folder, [tmp_path / "class.tif"])
    guard.check(qgis(*fewshot(s, str(tmp_path / "class.tif"))), True, ("no pixel on the raster",))


@pytest.mark.parametrize("value, expected", [
    (None, "only one class"),     # every sample in class 2
    (0, "(?i)class value 0 is not allowed|must be 1"),
    (-3, "(?i)class value -3 is not allowed|must be 1"),
])
def test_odd_class_values(enabled, crop, tmp_path, value, expected):
    s = copy_scene(crop, tmp_path / "in")
    values = [2] * len(s.points) if value is None else [value if k == 2 else k for _, _, k in s.points]
    write_samples(s.samples, s.geotransform, s.points, values=values)
    guard = Guard(s.folder, [tmp_path / "class.tif"])
    guard.check(qgis(*fewshot(s, str(tmp_path / "class.tif"))), False, (expected,), absent=[NOT_TRAINED])


def test_samples_in_another_crs(enabled, crop, tmp_path):
    s = copy_scene(crop, tmp_path / "in")
    write_samples(s.samples, s.geotransform, s.points, epsg=4326)
    guard = Guard(s.folder, [tmp_path / "class.tif"])
    guard.check(qgis(*fewshot(s, str(tmp_path / "class.tif"))), True, (f"-> {len(s.points)} labelled pixels",))


def test_tiny_raster(enabled, qgis_app, tmp_path):
    s = crop_scene(str(tmp_path / "in"), window=(60, 60, 2, 2), per_class=1)
    guard = Guard(s.folder, [tmp_path / "class.tif"])
    proc = qgis(*fewshot(s, str(tmp_path / "class.tif")))
    if proc.returncode == 0:
        guard.check(proc, True)
    else:
        guard.check(proc, False, ("(?i)larger than the raster|too small|only one class",), absent=[NOT_TRAINED])


def test_applymodel_band_count_mismatch(enabled, crop, trained, tmp_path):
    s = copy_scene(crop, tmp_path / "in")
    hsi10 = os.path.join(s.folder, "hsi10.tif")
    gdal.Translate(hsi10, s.hsi, bandList=list(range(1, 11)))
    guard = Guard(s.folder, [tmp_path / "class.tif"])
    proc = qgis("applymodel", f"--INPUTS={hsi10}", f"--INPUTS={s.lidar}", f"--MODEL={trained.model}", "--DEVICE=cpu",
                f"--OUTPUT={tmp_path / 'class.tif'}")
    guard.check(proc, False, ("expects",))


def test_applymodel_where_a_band_the_model_uses_is_empty(enabled, crop, trained, tmp_path):
    """A saturated or missing band in a new acquisition: refused naming the band, not an all-nodata map."""
    s = copy_scene(crop, tmp_path / "in")
    ds = gdal.Open(s.hsi, gdal.GA_Update)
    ds.GetRasterBand(1).SetNoDataValue(-9999)   # GeoTIFF: one nodata value for every band
    ds.GetRasterBand(4).Fill(-9999)
    ds = None
    guard = Guard(s.folder, [tmp_path / "class.tif"])
    proc = qgis("applymodel", f"--INPUTS={s.hsi}", f"--INPUTS={s.lidar}", f"--MODEL={trained.model}", "--DEVICE=cpu",
                f"--OUTPUT={tmp_path / 'class.tif'}")
    guard.check(proc, False, ("Nothing to classify", r"hsi\.tif band\(s\) 4 hold no data"))


def test_applymodel_to_data_in_other_units_warns(enabled, crop, trained, tmp_path):
    """The same scene stored as reflectance x 10000: the map is made, with a warning naming the input."""
    s = copy_scene(crop, tmp_path / "in")
    ds = gdal.Open(s.hsi)
    gdal.GetDriverByName("GTiff").CreateCopy(os.path.join(s.folder, "hsi_int.tif"), ds)
    ds = None
    scaled = gdal.Open(os.path.join(s.folder, "hsi_int.tif"), gdal.GA_Update)
    scaled.WriteArray(scaled.ReadAsArray() * 10000)
    scaled = None
    guard = Guard(s.folder, [tmp_path / "class.tif"])
    proc = qgis("applymodel", f"--INPUTS={os.path.join(s.folder, 'hsi_int.tif')}", f"--INPUTS={s.lidar}",
                f"--MODEL={trained.model}", "--DEVICE=cpu", f"--OUTPUT={tmp_path / 'class.tif'}")
    guard.check(proc, True, ("hsi_int.tif: its values span 1e\\+04 times the range", "reflectance x 10000"))


def extent_over_a_gap(s, bands):
    """An EXTENT over a 4 x 4 block without samples, after making it nodata in ``bands`` ({path: band numbers})."""
    taken = {(r // 4, c // 4) for r, c, _ in s.points}
    r0, c0 = next((4 * i, 4 * j) for i in range(6) for j in range(6) if (i, j) not in taken)
    for path, numbers in bands.items():
        ds = gdal.Open(path, gdal.GA_Update)
        for number in numbers:
            band = ds.GetRasterBand(number)
            band.SetNoDataValue(-9999)   # GeoTIFF: one nodata value for every band
            values = band.ReadAsArray()
            values[r0:r0 + 4, c0:c0 + 4] = -9999
            band.WriteArray(values)
        ds = None
    gt = s.geotransform
    return (f"{gt[0] + (c0 + 0.5) * gt[1]},{gt[0] + (c0 + 3.5) * gt[1]},"
            f"{gt[3] + (r0 + 3.5) * gt[5]},{gt[3] + (r0 + 0.5) * gt[5]} [EPSG:{DEMO_EPSG}]")


def test_extent_where_an_input_holds_no_data(enabled, crop, tmp_path):
    """Refused before training, naming the band (the demo's LiDAR has two; the second keeps its data)."""
    s = copy_scene(crop, tmp_path / "in")
    extent = extent_over_a_gap(s, {s.lidar: [1]})
    guard = Guard(s.folder, [tmp_path / "class.tif"])
    proc = qgis(*fewshot(s, str(tmp_path / "class.tif"), f"--EXTENT={extent}"))
    guard.check(proc, False, ("Nothing to classify", r"lidar\.tif band\(s\) 1 hold no data"), absent=[NOT_TRAINED])


class Evil:
    """Unpickling it runs a shell command (what a booby-trapped .pt does)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("param", ["applymodel MODEL", "fewshotclassify PRETRAINED"])
def test_malicious_pickle_is_not_loaded(enabled, crop, tmp_path, param):
    import torch

    s = copy_scene(crop, tmp_path / "in")
    marker, evil = str(tmp_path / "pwned"), os.path.join(s.folder, "evil.pt")
    torch.save({"format": "diffclip-qgis-model", "model_config": Evil(marker)}, evil)
    guard = Guard(s.folder, [tmp_path / "class.tif"])
    if param.startswith("applymodel"):
        args = ["applymodel", f"--INPUTS={s.hsi}", f"--INPUTS={s.lidar}", f"--MODEL={evil}", "--DEVICE=cpu",
                f"--OUTPUT={tmp_path / 'class.tif'}"]
    else:
        args = fewshot(s, str(tmp_path / "class.tif"), f"--PRETRAINED={evil}")
    guard.check(qgis(*args), False, ("not a DiffCLIP model file",), absent=[NOT_TRAINED])
    assert not os.path.exists(marker), "the pickle ran its command"


def test_extent_in_a_gap_of_every_input(enabled, crop, tmp_path):
    """An extent over a gap (a tiled mosaic's) is named as the cause, not the file: 'every band is nodata'."""
    s = copy_scene(crop, tmp_path / "in")
    extent = extent_over_a_gap(s, {path: range(1, gdal.Open(path).RasterCount + 1) for path in (s.hsi, s.lidar)})
    guard = Guard(s.folder, [tmp_path / "class.tif"])
    proc = qgis(*fewshot(s, str(tmp_path / "class.tif"), f"--EXTENT={extent}"))
    guard.check(proc, False, ("Nothing to classify inside the extent", "Or choose an extent where the inputs hold "
                              "data"), absent=[NOT_TRAINED])
