"""gis.smoothing: the majority filter, block by block with a halo, never across nodata."""
import numpy as np
import pytest
from osgeo import gdal
from test_processing_helpers import write_raster

from diffclip_qgis.gis.smoothing import majority_filter, smooth_blocks, smoothed_tiles


def test_isolated_pixel_removed_and_nodata_kept():
    ids = np.full((9, 9), 2, np.int64)
    ids[4, 4] = 5          # salt
    ids[:, 0] = 0          # nodata column
    ids[0, 8] = 0
    out = majority_filter(ids, 1)
    assert out[4, 4] == 2
    assert (out[:, 0] == 0).all() and out[0, 8] == 0
    assert (out[ids > 0] > 0).all()


def test_nodata_not_smoothed_across():
    """A class next to a wide nodata gap is not eroded by counting the gap as a class."""
    ids = np.zeros((7, 7), np.int64)
    ids[:, :2] = 1
    ids[:, 5:] = 3
    ids[3, 1] = 3
    out = majority_filter(ids, 1)
    assert (out[:, 2:5] == 0).all()
    assert out[3, 1] == 1
    assert (out[:, 5:] == 3).all()


def test_large_and_sparse_class_ids():
    rng = np.random.default_rng(0)
    ids = rng.choice([0, 7, 300, 65000], size=(40, 40))
    out = majority_filter(ids, 2)
    assert set(np.unique(out)) <= {0, 7, 300, 65000}
    assert ((out == 0) == (ids == 0)).all()


def test_smoothing_needs_no_scikit_image(monkeypatch):
    """QGIS's Python on Windows and macOS usually lacks it: a run with SMOOTHING trained, then failed."""
    import sys

    for name in [n for n in sys.modules if n == "skimage" or n.startswith("skimage.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "skimage", None)   # import skimage now raises ImportError
    ids = np.full((5, 5), 2)
    ids[2, 2] = 1
    assert (majority_filter(ids, 1) == 2).all()


def test_same_as_scikit_image_majority_with_a_disk_and_a_mask():
    """The filter scikit-image gives (a dev dependency only), on random maps with nodata, edges and ties."""
    rank = pytest.importorskip("skimage.filters.rank")
    from skimage.morphology import disk

    rng = np.random.default_rng(1)
    for _ in range(100):
        shape, k, radius = tuple(rng.integers(1, 30, 2)), int(rng.integers(1, 6)), int(rng.integers(1, 6))
        ids = rng.integers(0, k + 1, shape)
        ids[rng.random(shape) < rng.random() * 0.6] = 0
        expected = rank.majority(ids.astype(np.uint8), disk(radius), mask=(ids > 0).astype(np.uint8))
        expected[ids == 0] = 0
        assert np.array_equal(majority_filter(ids, radius), expected), (ids, radius)


@pytest.mark.parametrize("radius", [1, 3])
def test_blocks_equal_whole(radius):
    rng = np.random.default_rng(radius)
    ids = rng.integers(0, 5, size=(70, 53))
    whole = majority_filter(ids, radius)
    out = np.full_like(ids, -1)
    for r, c, block in smooth_blocks(lambda r0, c0, h, w: ids[r0:r0 + h, c0:c0 + w], 70, 53, radius, block=16):
        out[r:r + block.shape[0], c:c + block.shape[1]] = block
    assert (out == whole).all()


def test_smoothed_tiles_from_raster(tmp_path):
    rng = np.random.default_rng(5)
    ids = rng.integers(1, 4, size=(30, 20)).astype(np.uint8)
    conf = rng.random((30, 20)).astype(np.float32)
    path = write_raster(str(tmp_path / "c.tif"), ids, dtype=gdal.GDT_Byte)
    cpath = write_raster(str(tmp_path / "p.tif"), conf)
    seen = []
    tiles = list(smoothed_tiles(path, 1, cpath, block=8, progress=seen.append))
    assert len(tiles) == 4 * 3 and seen[-1] == 1.0
    out = np.zeros_like(ids)
    for r, c, t, p in tiles:
        out[r:r + t.shape[0], c:c + t.shape[1]] = t
        assert np.allclose(p, conf[r:r + t.shape[0], c:c + t.shape[1]])
    assert (out == majority_filter(ids.astype(np.int64), 1)).all()


def test_radius_zero_is_identity():
    ids = np.arange(12).reshape(3, 4)
    assert (majority_filter(ids, 0) == ids).all()
