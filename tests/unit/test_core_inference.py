"""Prediction: tiled == untiled, fast path == naive path (borders and nodata included), determinism."""
import copy
import dataclasses

import numpy as np
import pytest
import torch

from diffclip_qgis.core.checkpoint import load_model, save_model
from diffclip_qgis.core.infer import CPU_TOKENS, CUDA_BATCH, Predictor, default_batch
from diffclip_qgis.core.pipeline import pretrain_encoder
from diffclip_qgis.core.progress import Callback
from diffclip_qgis.core.source import ArraySource

from core_fixtures import (CPU, NODATA_PIXELS, cached_classifier, multimodal_scene,  # noqa: F401
                           single_thread, tiny_preset, with_nodata)


@pytest.fixture(scope="module", params=[3, 5], ids=["window3", "window5"])
def model(request):
    """The fine-tuned 3 x 3 classifier, and the same network applied with 5 x 5 windows (more halo)."""
    trained = cached_classifier()[0]
    return dataclasses.replace(trained, window=request.param)


@pytest.fixture(scope="module")
def nodata_source():
    return with_nodata(cached_classifier()[1])


def _all_pixels(source):
    rows, cols = np.mgrid[0:source.height, 0:source.width]
    return rows.ravel(), cols.ravel()


def test_tiled_equals_untiled(model, nodata_source):
    predictor = Predictor(model, CPU)
    ids_big, conf_big = predictor.predict(nodata_source, tile=256)
    for tile in (7, 5, 24):
        ids, conf = predictor.predict(nodata_source, tile=tile)
        np.testing.assert_array_equal(ids, ids_big, err_msg=f"tile {tile}")
        np.testing.assert_allclose(conf, conf_big, rtol=0, atol=1e-5, equal_nan=True, err_msg=f"tile {tile}")
    assert len(np.unique(ids_big[ids_big > 0])) >= 2      # a comparison of real, varied predictions


def test_fast_path_equals_naive_path(model, nodata_source):
    predictor = Predictor(model, CPU, batch_size=100)      # several batches in both paths
    ids, conf = predictor.predict(nodata_source, tile=7)
    rows, cols = _all_pixels(nodata_source)
    ref_ids, ref_conf = predictor.predict_pixels(nodata_source, rows, cols)
    np.testing.assert_array_equal(ids.ravel(), ref_ids)
    np.testing.assert_allclose(conf.ravel(), ref_conf, rtol=0, atol=1e-5, equal_nan=True)
    # borders (edge padding) are part of the comparison and get real predictions
    border = (rows == 0) | (cols == 0) | (rows == 23) | (cols == 23)
    assert (ref_ids[border & ~np.isnan(ref_conf)] > 0).all() and border.sum() == 92


def test_nodata_in_any_modality_gives_zero_and_nan(model, nodata_source):
    ids, conf = Predictor(model, CPU).predict(nodata_source, tile=7)
    nodata = np.zeros(ids.shape, dtype=bool)
    for r, c in NODATA_PIXELS:
        nodata[r, c] = True
    np.testing.assert_array_equal(ids == 0, nodata)
    np.testing.assert_array_equal(np.isnan(conf), nodata)
    assert (conf[~nodata] > 0).all() and (conf[~nodata] <= 1).all()
    # pixels whose window does not reach a nodata pixel are classified exactly as without the holes
    clean_ids, _ = Predictor(model, CPU).predict(cached_classifier()[1])
    r = model.window // 2
    far = np.ones(ids.shape, dtype=bool)
    for y, x in NODATA_PIXELS:
        far[max(0, y - r):y + r + 1, max(0, x - r):x + r + 1] = False
    np.testing.assert_array_equal(ids[far], clean_ids[far])


def test_prediction_is_deterministic_and_survives_save_load(model, nodata_source, tmp_path):
    ids1, conf1 = Predictor(model, CPU).predict(nodata_source, tile=7)
    ids2, conf2 = Predictor(model, CPU).predict(nodata_source, tile=7)
    np.testing.assert_array_equal(ids1, ids2)
    np.testing.assert_array_equal(conf1, conf2)
    path = tmp_path / "model.pt"
    save_model(model, str(path))
    loaded = load_model(str(path))
    assert loaded.window == model.window
    ids3, conf3 = Predictor(loaded, CPU).predict(nodata_source, tile=7)
    np.testing.assert_array_equal(ids1, ids3)
    np.testing.assert_array_equal(conf1, conf3)


def test_iter_tiles_reports_progress_and_covers_the_grid():
    trained, source = cached_classifier()[:2]
    phases = []
    cover = np.zeros((source.height, source.width), dtype=int)
    for r, c, ids, conf in Predictor(trained, CPU).iter_tiles(
            source, tile=10, callback=Callback(progress=lambda p, f, m: phases.append((p, f)))):
        assert ids.shape == conf.shape
        cover[r:r + ids.shape[0], c:c + ids.shape[1]] += 1
    assert (cover == 1).all()
    assert phases[-1] == ("classifying", 1.0) and len(phases) == 9


def test_predictor_refuses_a_pretrained_encoder():
    spectral, height, _ = multimodal_scene()
    pretrained = pretrain_encoder(ArraySource([spectral, height]), tiny_preset(pretrain_epochs=0, sample_count=16), CPU)
    with pytest.raises(ValueError, match="fine-tune it first"):
        Predictor(pretrained, CPU)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_prediction_matches_cpu():
    trained, source = cached_classifier()[:2]
    cpu_ids, _ = Predictor(trained, CPU).predict(source)
    gpu_ids, gpu_conf = Predictor(copy.deepcopy(trained), torch.device("cuda")).predict(source, tile=7)
    assert np.mean(gpu_ids == cpu_ids) > 0.97      # bfloat16 autocast may flip a few near-ties
    assert np.isfinite(gpu_conf).all()


def test_cpu_batches_hold_about_the_same_number_of_tokens_whatever_the_window():
    cpu = torch.device("cpu")
    sizes = {w: default_batch(cpu, w) for w in (3, 5, 7, 11)}
    assert sizes == {3: 1024, 5: 512, 7: 256, 11: 128}
    assert all(CPU_TOKENS / 2 < b * (w * w + 1) <= CPU_TOKENS for w, b in sizes.items() if w > 3)
    assert default_batch(torch.device("cuda"), 11) == CUDA_BATCH   # GPUs take large batches, halved on OOM
