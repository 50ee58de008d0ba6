"""The CPU thread count reaches torch and, inside QGIS, the OpenBLAS that QGIS links under torch's matrix products."""
import ctypes.util
import os
import subprocess
import sys

import pytest
import torch

from diffclip_qgis.core.threads import cpu_threads

PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__import__("diffclip_qgis").__file__)))
OPENBLAS = ctypes.util.find_library("openblas")


def test_the_count_is_restored_after_the_block():
    before = torch.get_num_threads()
    with cpu_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


@pytest.mark.skipif(not OPENBLAS or not sys.platform.startswith("linux"), reason="needs OpenBLAS on Linux")
def test_an_openblas_among_the_global_symbols_follows_the_count():
    """QGIS's executables link OpenBLAS: preloading it puts it where QGIS does. Its own count (here the user's
    OPENBLAS_NUM_THREADS, not torch's) comes back after the block."""
    code = ("import ctypes; from diffclip_qgis.core.threads import cpu_threads; blas = ctypes.CDLL(None)\n"
            "with cpu_threads(1): one = blas.openblas_get_num_threads()\n"
            "with cpu_threads(2): two = blas.openblas_get_num_threads()\n"
            "print(one, two, blas.openblas_get_num_threads())")
    env = dict(os.environ, LD_PRELOAD=OPENBLAS, OMP_NUM_THREADS="2", OPENBLAS_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([PACKAGE_ROOT] + sys.path[1:]))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1", "2", "1"]
