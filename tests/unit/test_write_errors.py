"""A failed write (raster or model) is an error, leaves the previous output intact and no temporary file behind.

Each case runs in a child process under a file-size limit (``RLIMIT_FSIZE``, standing in for
a full disk, a quota or FAT32's 4 GB), so the test run itself is never limited.
"""
import os
import subprocess
import sys

import pytest

PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__import__("diffclip_qgis").__file__)))

CHILD = """
import resource, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from diffclip_qgis.core.classes import ClassInfo
from diffclip_qgis.gis.raster import write_classification
out, limit, n = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
classes = [ClassInfo(1, "a", "#ff0000"), ClassInfo(2, "b", "#00ff00")]
rng = np.random.default_rng(0)
tiles = [(0, 0, rng.integers(1, 3, (n, n)), rng.random((n, n)))]
if limit:
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
try:
    write_classification(out, tiles, n, n, (0, 1, 0, 0, 0, -1), "", classes, confidence_path=out[:-4] + "_conf.tif")
except OSError as e:
    print("ERROR", e)
    sys.exit(3)
print("OK")
"""


def _write(out, limit, n=300):
    proc = subprocess.run([sys.executable, "-c", CHILD, PACKAGE_ROOT, str(out), str(limit), str(n)],
                          capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout + proc.stderr


def _checksum(path):
    from osgeo import gdal

    ds = gdal.Open(str(path))
    return ds.GetRasterBand(1).Checksum()


def test_file_size_limit_is_an_error_and_keeps_the_previous_output(tmp_path):
    out = tmp_path / "map.tif"
    code, text = _write(out, 0, n=40)
    assert code == 0, text
    before = {name: (tmp_path / name).read_bytes() for name in os.listdir(tmp_path)}
    checksum = _checksum(out)

    code, text = _write(out, 40 * 1024)  # the 300 x 300 float confidence does not fit in 40 KB
    assert code == 3, text
    assert "Could not write" in text and "map_conf.tif" in text and "disk full?" in text
    assert {name: (tmp_path / name).read_bytes() for name in os.listdir(tmp_path)} == before
    assert _checksum(out) == checksum


@pytest.mark.parametrize("limit", [0, 40 * 1024])
def test_no_temporary_file_remains(tmp_path, limit):
    _write(tmp_path / "map.tif", limit)
    assert not [n for n in os.listdir(tmp_path) if ".tmp-" in n]


MODEL_CHILD = """
import resource, sys
sys.path.insert(0, sys.argv[1]); sys.path.insert(0, sys.argv[4])
from diffclip_qgis.core.checkpoint import save_model
from test_core_checkpoint import _small_model
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[3]), resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
try:
    save_model(_small_model(window=5), sys.argv[2])
except OSError as e:
    print("ERROR", e)
    sys.exit(3)
"""


def test_model_cut_short_says_so_and_keeps_the_previous_model(tmp_path):
    from test_core_checkpoint import _small_model

    from diffclip_qgis.core.checkpoint import load_model, save_model

    path = tmp_path / "m.pt"
    save_model(_small_model(window=3), str(path))
    before = path.read_bytes()
    proc = subprocess.run([sys.executable, "-c", MODEL_CHILD, PACKAGE_ROOT, str(path), str(len(before) // 2),
                           os.path.dirname(os.path.abspath(__file__))], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert f"Could not write {path}: the file was cut short" in proc.stdout and "disk full?" in proc.stdout
    assert "enforce fail" not in proc.stdout
    assert path.read_bytes() == before and load_model(str(path)).window == 3
    assert os.listdir(tmp_path) == ["m.pt"]
