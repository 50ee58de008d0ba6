"""Test set-up: import the plugin from the assembled folder (build/diffclip_qgis) that users install."""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("DIFFCLIP_BUILD", os.path.join(ROOT, "build"))   # another assembled copy, e.g. for a second checkout
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data")

if not os.path.isfile(os.path.join(BUILD, "diffclip_qgis", "metadata.txt")):
    raise RuntimeError("The assembled plugin folder is missing: run the tests through `make test` (it runs `make plugin`).")
sys.path.insert(0, BUILD)
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(scope="session")
def shared_data():
    """Path of ../shared/data, or skip when this machine has none."""
    if not os.path.isdir(SHARED):
        pytest.skip("../shared/data is not present on this machine (real-data tests need it).")
    return SHARED
