"""Bad inputs give clear errors; empty and flagged-bad bands are dropped without blanking pixels."""
import numpy as np
import pytest

from diffclip_qgis.core.checkpoint import ModelFileError, load_model, save_model
from diffclip_qgis.core.infer import Predictor
from diffclip_qgis.core.pipeline import fewshot_classifier, pretrain_encoder
from diffclip_qgis.core.progress import Callback
from diffclip_qgis.core.source import ArraySource, ModalityInfo
from diffclip_qgis.core.windows import InputError, fit_input_stats, sample_valid_pixels

from core_fixtures import (CLASSES, CPU, multimodal_scene, pick_shots,  # noqa: F401
                           single_thread, tiny_preset)


@pytest.fixture(scope="module")
def scene():
    spectral, height, labels = multimodal_scene(seed=5)
    rows, cols, ids = pick_shots(labels, 3, seed=5)
    return spectral, height, labels, (rows, cols, ids)


def _quick(**kw):
    """A preset that fails or finishes fast: no pretraining epochs, two fine-tuning epochs."""
    kw.setdefault("pretrain_epochs", 0)
    kw.setdefault("finetune_epochs", 2)
    kw.setdefault("sample_count", 32)
    return tiny_preset(**kw)


# --------------------------------------------------------------------------- sources and samples

def test_array_source_checks_shapes():
    with pytest.raises(ValueError, match="at least one"):
        ArraySource([])
    with pytest.raises(ValueError, match="one grid.*Resample"):
        ArraySource([np.zeros((3, 10, 10)), np.zeros((1, 10, 11))])
    assert ArraySource([np.zeros((10, 12))]).band_counts == [1]   # a 2D array is one band
    x = np.ones((2, 3, 3), np.float32)
    x[0, 1, 1], x[1, 2, 2] = np.inf, -np.inf
    read = ArraySource([x]).read(0, 0, 3, 3)[0]
    assert np.isnan(read[0, 1, 1]) and np.isnan(read[1, 2, 2]) and np.isfinite(read).sum() == 16
    assert np.isinf(x).sum() == 2   # the caller's array is left alone


def test_all_nodata_input():
    spectral = np.full((6, 24, 24), np.nan, np.float32)
    with pytest.raises(InputError, match="every band is nodata"):
        fit_input_stats(ArraySource([spectral]), [ModalityInfo("hyperspectral")])
    with pytest.raises(InputError, match="modality 2: every band is nodata"):
        pretrain_encoder(ArraySource([np.ones((2, 24, 24)), spectral]), _quick(), CPU)


def test_no_pixel_valid_in_all_bands_of_a_modality():
    x = np.ones((2, 24, 24), np.float32)
    x[0, :, :12] = np.nan
    x[1, :, 12:] = np.nan
    with pytest.raises(InputError, match="no pixel has valid values in all bands"):
        fit_input_stats(ArraySource([x]))


def test_no_pixel_valid_in_every_modality():
    a, b = np.ones((2, 24, 24), np.float32), np.ones((1, 24, 24), np.float32)
    a[:, :, :12] = np.nan
    b[:, :, 12:] = np.nan
    source = ArraySource([a, b])
    stats = fit_input_stats(source)        # each modality alone is fine
    with pytest.raises(InputError, match="No valid pixel found"):
        sample_valid_pixels(source, stats, 10)


class CountingSource(ArraySource):
    """An ArraySource that records the boxes read."""

    def __init__(self, arrays):
        super().__init__(arrays)
        self.reads = []

    def read(self, row0, col0, rows, cols):
        self.reads.append((row0, col0))
        return super().read(row0, col0, rows, cols)


def test_an_input_covering_part_of_the_scene_gets_its_statistics_from_further_tiles():
    """A second modality over 4 % of the scene, and a band with data only there: read on until found."""
    rng = np.random.default_rng(0)
    spectral = rng.normal(size=(3, 160, 160)).astype(np.float32)   # 100 tiles of 16 px
    spectral[1] = np.nan
    spectral[1, 64:96, 64:96] = 5.0 + rng.random((32, 32))
    height = np.full((1, 160, 160), np.nan, np.float32)
    height[0, 64:96, 64:96] = 10.0 + rng.random((32, 32))
    source = CountingSource([spectral, height])
    stats = fit_input_stats(source, tile=16, max_tiles=8)
    assert stats[0].bands == [0, 1, 2] and 10.0 <= stats[1].low[0] < stats[1].high[0] <= 11.0
    assert 8 < len(source.reads) <= 32   # more than the spread, at most three times as many more
    empty = np.full((1, 160, 160), np.nan, np.float32)
    source = CountingSource([spectral, empty])
    with pytest.raises(InputError, match="modality 2: every band is nodata"):
        fit_input_stats(source, tile=16, max_tiles=8)
    assert len(source.reads) == 32


def test_random_pixels_of_a_large_raster_come_from_a_few_tiles():
    x = np.random.default_rng(0).normal(size=(2, 1024, 1024)).astype(np.float32)   # 16 tiles of 256 px
    x[:, :, :256] = np.nan                                                         # 4 of them nodata
    source = CountingSource([x])
    stats = fit_input_stats(source)
    source.reads.clear()
    rows, cols = sample_valid_pixels(source, stats, 500, seed=1, max_tiles=4)
    assert len(set(zip(rows.tolist(), cols.tolist()))) == 500 and np.isfinite(x[0, rows, cols]).all()
    tiles = set(zip((rows // 256).tolist(), (cols // 256).tolist()))
    assert len(tiles) <= 4
    assert {(r // 256, c // 256) for r, c in source.reads} <= tiles | {(r // 256, 0) for r in range(0, 1024, 256)}
    assert len(source.reads) <= 4 * 6   # at most the picked tiles, once per attempt
    rows, cols = sample_valid_pixels(source, stats, 500, seed=1, max_tiles=None)   # the whole raster
    assert len(set(zip((rows // 256).tolist(), (cols // 256).tolist()))) == 12


def test_random_pixels_of_a_sparse_raster_still_come_from_a_few_tiles():
    x = np.random.default_rng(2).normal(size=(1, 1024, 1024)).astype(np.float32)
    x[0, np.random.default_rng(3).random((1024, 1024)) > 0.04] = np.nan          # 4 % valid, everywhere
    source = CountingSource([x])
    stats = fit_input_stats(source)
    source.reads.clear()
    rows, cols = sample_valid_pixels(source, stats, 400, seed=0, max_tiles=4)
    assert len(rows) == 400 and np.isfinite(x[0, rows, cols]).all()
    assert len(set(source.reads)) <= 4                                            # no pass over the whole raster


def test_random_pixels_of_a_mostly_nodata_raster_are_found_wherever_they_are():
    x = np.full((1, 1024, 1024), np.nan, np.float32)
    x[0, 700:900, 300:500] = 1.0 + np.random.default_rng(0).random((200, 200))   # valid in 4 % of the raster
    source = ArraySource([x])
    stats = fit_input_stats(source)
    for seed in range(8):   # the 4 tiles drawn often miss the valid ones: then the whole raster is searched
        rows, cols = sample_valid_pixels(source, stats, 400, seed=seed, max_tiles=4)
        whole, _ = sample_valid_pixels(source, stats, 400, seed=seed, max_tiles=None)
        assert len(rows) >= min(200, len(whole)) > 0 and np.isfinite(x[0, rows, cols]).all()


def test_band_statistics_of_a_large_raster_come_from_a_bounded_sample():
    rng = np.random.default_rng(3)
    x = rng.gamma(2.0, size=(3, 1024, 1024)).astype(np.float32)
    full = fit_input_stats(ArraySource([x]), max_pixels=10 ** 9)[0]
    sampled = fit_input_stats(ArraySource([x]), max_pixels=4096)[0]
    assert np.allclose(sampled.low, full.low, atol=0.05) and np.allclose(sampled.high, full.high, rtol=0.05)
    assert not np.array_equal(sampled.high, full.high)                      # a sample, not every pixel
    assert np.array_equal(fit_input_stats(ArraySource([x]), max_pixels=4096)[0].high, sampled.high)  # seeded
    small = x[:, :150, :150]                                                # 22,500 px: every pixel, as before
    assert np.array_equal(fit_input_stats(ArraySource([small]))[0].high,
                          fit_input_stats(ArraySource([small]), max_pixels=10 ** 9)[0].high)
    skewed = x.copy()                                       # the left half mostly nodata, and brighter
    skewed[:, :, :512] += 5.0
    skewed[:, np.random.default_rng(4).random((1024, 1024)) < 0.85 * (np.arange(1024) < 512)] = np.nan
    every = fit_input_stats(ArraySource([skewed]), max_pixels=10 ** 9)[0]
    some = fit_input_stats(ArraySource([skewed]), max_pixels=4096)[0]
    assert np.allclose(some.high, every.high, rtol=0.05) and np.allclose(some.low, every.low, atol=0.05)
    band2 = x[1, :10, :10].copy()
    x[1] = np.nan
    x[1, :10, :10] = band2                                  # band 2 has data in 100 px of one tile: still kept
    x[2, 500:, :] = np.nan                                  # band 3: half the raster
    stats = fit_input_stats(ArraySource([x]), max_pixels=4096)[0]
    assert stats.bands == [0, 1, 2] and band2.min() <= stats.high[1] <= band2.max()


def test_a_class_without_samples(scene):
    spectral, height, _, (rows, cols, ids) = scene
    keep = ids != 3
    with pytest.raises(InputError, match="water have no valid samples"):
        fewshot_classifier(ArraySource([spectral, height]), rows[keep], cols[keep], ids[keep], CLASSES, _quick(), CPU)


def test_a_single_class(scene):
    spectral, height, _, (rows, cols, ids) = scene
    keep = ids == 1
    with pytest.raises(InputError, match="At least 2 classes are needed; got 1"):
        fewshot_classifier(ArraySource([spectral, height]), rows[keep], cols[keep], ids[keep], CLASSES[:1],
                           _quick(), CPU)


def test_samples_of_an_unknown_class(scene):
    spectral, height, _, (rows, cols, ids) = scene
    ids = ids.copy()
    ids[0] = 42
    with pytest.raises(InputError, match=r"class ids \[42\] that are not in the class list"):
        fewshot_classifier(ArraySource([spectral, height]), rows, cols, ids, CLASSES, _quick(), CPU)


def test_window_larger_than_the_raster(scene):
    spectral, height, _, (rows, cols, ids) = scene
    source = ArraySource([spectral, height])
    with pytest.raises(InputError, match=r"31 x 31 window is larger than the raster \(24 x 24 px\)"):
        fewshot_classifier(source, rows, cols, ids, CLASSES, _quick(window=31), CPU)
    tiny = ArraySource([spectral[:, :4, :4], height[:, :4, :4]])
    with pytest.raises(InputError, match=r"5 x 5 window is larger than the raster \(4 x 4 px\)"):
        pretrain_encoder(tiny, _quick(model_window=5), CPU)


def test_window_larger_than_the_pretrained_encoder(scene):
    spectral, height, _, (rows, cols, ids) = scene
    source = ArraySource([spectral, height])
    pretrained = pretrain_encoder(source, _quick(model_window=3), CPU)
    with pytest.raises(InputError, match="pretrained with 3 x 3 windows; choose a window of at most 3"):
        fewshot_classifier(source, rows, cols, ids, CLASSES, _quick(window=5), CPU, pretrained=pretrained)


@pytest.mark.parametrize("window", [5, "auto"])
def test_fine_tuning_on_a_raster_smaller_than_the_pretraining_window(scene, window):
    spectral, height, _, _ = scene
    pretrained = pretrain_encoder(ArraySource([spectral, height]), _quick(model_window=11), CPU)
    small = ArraySource([spectral[:, :9, :9], height[:, :9, :9]])
    labels = multimodal_scene(seed=5)[2][:9, :9]
    rows, cols, ids = pick_shots(labels, 3, seed=5)
    trained = fewshot_classifier(small, rows, cols, ids, CLASSES, _quick(window=window), CPU, pretrained=pretrained)
    assert trained.window == 5 if window == 5 else trained.window <= 9


def test_samples_only_on_nodata_pixels(scene):
    spectral, height, _, (rows, cols, ids) = scene
    height = height.copy()
    water = ids == 3
    height[0, rows[water], cols[water]] = np.nan          # every water sample lies on a nodata pixel
    messages = []
    with pytest.raises(InputError, match="water have no valid samples.*valid pixels"):
        fewshot_classifier(ArraySource([spectral, height]), rows, cols, ids, CLASSES, _quick(), CPU,
                           callback=Callback(log=messages.append))
    assert any(f"Skipped {water.sum()} sample(s) on nodata pixels" in m for m in messages)
    messages = []   # with pretraining: refused before it starts
    with pytest.raises(InputError, match="water have no valid samples"):
        fewshot_classifier(ArraySource([spectral, height]), rows, cols, ids, CLASSES, _quick(pretrain_epochs=50), CPU,
                           callback=Callback(log=messages.append))
    assert not any("Pretraining" in m for m in messages), messages


def test_wrong_band_count_for_a_pretrained_encoder(scene, tmp_path):
    spectral, height, _, (rows, cols, ids) = scene
    pretrained = pretrain_encoder(ArraySource([spectral, height]), _quick(), CPU,
                                  [ModalityInfo("hyperspectral"), ModalityInfo("lidar")])
    save_model(pretrained, str(tmp_path / "enc.pt"))
    pretrained = load_model(str(tmp_path / "enc.pt"))
    with pytest.raises(ModelFileError, match=r"expects 2 input raster\(s\) with \[6, 1\] bands \(hyperspectral: 6 "
                                             r"bands, lidar: 1 bands\), but the inputs have \[5, 1\] bands"):
        fewshot_classifier(ArraySource([spectral[:5], height]), rows, cols, ids, CLASSES, _quick(), CPU,
                           pretrained=pretrained)


# --------------------------------------------------------------------------- dropped bands

def test_empty_and_flagged_bands_are_dropped_and_do_not_blank_pixels(scene, tmp_path):
    spectral, height, labels, (rows, cols, ids) = scene
    rng = np.random.default_rng(0)
    hsi = np.concatenate([spectral[:2], np.full((1, 24, 24), np.nan, np.float32), spectral[2:4],
                          rng.normal(size=(1, 24, 24)).astype(np.float32), spectral[4:]])   # 8 bands
    hsi[5, ::3, ::3] = np.nan          # the flagged band also has holes: it would blank pixels if used
    infos = [ModalityInfo("hyperspectral", bad_bands=[False, False, False, False, False, True, False, False]),
             ModalityInfo("lidar")]
    messages = []
    source = ArraySource([hsi, height])
    trained = fewshot_classifier(source, rows, cols, ids, CLASSES, _quick(), CPU, infos,
                                 callback=Callback(log=messages.append))
    assert trained.modalities[0].stats.bands == [0, 1, 3, 4, 6, 7]
    assert trained.modalities[0].band_count == 8 and trained.network.band_counts == [6, 1]
    assert any("hyperspectral: dropped 2 band(s) that are empty or flagged bad: 3, 6." in m for m in messages)
    ids_out, conf = Predictor(trained, CPU).predict(source, tile=7)
    assert (ids_out > 0).all() and np.isfinite(conf).all()
    # the dropped bands are not read: other values there change nothing, also after save/load
    hsi2 = hsi.copy()
    hsi2[2] = 1e6
    hsi2[5] = np.nan
    save_model(trained, str(tmp_path / "m.pt"))
    loaded = load_model(str(tmp_path / "m.pt"))
    assert loaded.modalities[0].stats.bands == [0, 1, 3, 4, 6, 7]
    ids2, conf2 = Predictor(loaded, CPU).predict(ArraySource([hsi2, height]), tile=7)
    np.testing.assert_array_equal(ids2, ids_out)
    np.testing.assert_array_equal(conf2, conf)
