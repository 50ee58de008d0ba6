"""The window from the scene's neighbour noise share: the pixel alone where neighbours differ by material."""
import numpy as np
import pytest

from diffclip_qgis.core.config import FinetuneConfig, SceneWindows
from diffclip_qgis.core.pipeline import clearly_better_window, fewshot_classifier
from diffclip_qgis.core.progress import Callback
from diffclip_qgis.core.source import ArraySource
from diffclip_qgis.core.window_rule import neighbour_noise_share, scene_window
from diffclip_qgis.core.windows import InputError, fit_input_stats

from core_fixtures import (CLASSES, CPU, class_map, multimodal_scene, pick_shots, single_thread,  # noqa: F401
                           tiny_preset)

SPLIT = FinetuneConfig().noise_split
SIZES = SceneWindows()


def hyperspectral_fields(size: int = 48, block: int = 16, bands: int = 40, noise: float = 0.005, seed: int = 0):
    """(bands, H, W) cube of three smooth spectra in blocks, with white sensor noise; and the labels."""
    rng = np.random.default_rng(seed)
    labels = class_map(size, block)
    spectra = 0.3 + 0.05 * np.cumsum(rng.normal(0, 1, (3, bands)), axis=1)   # smooth, like reflectance
    cube = spectra[labels - 1].transpose(2, 0, 1) + rng.normal(0, noise, (bands, size, size))
    return cube.astype(np.float32), labels


def noise_share_of(*arrays):
    source = ArraySource(list(arrays))
    return neighbour_noise_share(source, fit_input_stats(source))


def test_neighbours_that_differ_by_material_score_low_by_sensor_noise_high():
    fields, _ = hyperspectral_fields()
    noisy, _ = hyperspectral_fields(noise=0.2)
    white = np.random.default_rng(1).normal(0, 1, fields.shape).astype(np.float32)
    assert noise_share_of(fields) < SPLIT < noise_share_of(noisy) < noise_share_of(white)
    assert noise_share_of(white) > 0.8   # all but 5 of 40 directions are noise


def test_unmeasurable_with_too_few_bands_a_constant_scene_or_a_raster_under_3_pixels():
    spectral, height, _ = multimodal_scene(size=48, block=16)   # 6 + 1 bands
    assert noise_share_of(spectral, height) is None
    fields, _ = hyperspectral_fields()
    assert noise_share_of(np.ones_like(fields)) is None
    assert noise_share_of(fields[:, :2, :]) is None


def test_nodata_pixels_do_not_count_as_neighbours():
    fields, _ = hyperspectral_fields(noise=0.05)
    holed = fields.copy()
    holed[:, ::3, ::3] = np.nan   # every third pixel of every third row: many pixels have a nodata neighbour
    assert abs(noise_share_of(holed) - noise_share_of(fields)) < 0.03   # 0.22 against 0.30 when they counted
    striped = fields.copy()
    striped[:, :, ::2] = np.nan   # every valid pixel has nodata beside it: nothing left to measure
    assert noise_share_of(striped) is None


def test_the_pixel_below_the_split_else_with_few_labels_the_large_window_or_the_middle_one_unknown():
    assert SIZES == (1, 5, 3)
    assert scene_window(0.03, 0.12, True, SIZES, 11) == 1
    assert scene_window(0.03, 0.12, False, SIZES, 11) == 1    # at every label count
    assert scene_window(0.12, 0.12, True, SIZES, 11) == 5
    assert scene_window(None, 0.12, True, SIZES, 11) == 3
    assert scene_window(0.37, 0.12, True, SIZES, 3) == 3
    assert scene_window(0.37, 0.12, False, SIZES, 11) is None   # more labels: cross-validation
    assert scene_window(None, 0.12, False, SIZES, 11) is None


def test_the_rule_in_the_pipeline_with_two_and_eight_labels_per_class():
    fields, labels = hyperspectral_fields(size=32, seed=1)
    source = ArraySource([fields])
    preset = tiny_preset(window="auto", model_window=5, pretrain_epochs=0, finetune_epochs=3)
    preset.finetune.window_from_scene = True   # as the cpu preset
    messages = []
    rows, cols, ids = pick_shots(labels, 2, seed=1)
    trained = fewshot_classifier(source, rows, cols, ids, CLASSES, preset, CPU, callback=Callback(log=messages.append))
    assert trained.window == 1 and trained.report["neighbour_noise_share"] < SPLIT
    assert "window_scores" not in trained.report
    assert any(m.startswith("Few labels (median 2 per class): window 1 x 1 from the scene, as ") for m in messages), messages
    assert any(m.startswith("Few samples per class (median 2): the map depends on which pixels were labelled.")
               and "Suggest samples" in m for m in messages), messages

    preset.finetune.noise_split = 0.0   # every scene counts as noisy: the large window
    assert fewshot_classifier(source, rows, cols, ids, CLASSES, preset, CPU).window == 5

    spectral, height, few_band_labels = multimodal_scene(size=32, block=16, seed=1)
    r, c, i = pick_shots(few_band_labels, 2, seed=1)
    few_bands = fewshot_classifier(ArraySource([spectral, height]), r, c, i, CLASSES, preset, CPU)
    assert few_bands.window == 3 and few_bands.report["neighbour_noise_share"] is None

    preset.finetune.window_from_scene = False   # switched off: cross-validation, as with more labels
    assert set(fewshot_classifier(source, rows, cols, ids, CLASSES, preset, CPU).report["window_scores"]) == {3, 5}
    rows, cols, ids = pick_shots(labels, 8, seed=1)   # more than few_label_max_shots
    preset.finetune.window_from_scene, preset.finetune.noise_split = True, SPLIT
    messages.clear()
    many = fewshot_classifier(source, rows, cols, ids, CLASSES, preset, CPU, callback=Callback(log=messages.append))
    assert not any(m.startswith("Few samples per class") for m in messages), messages
    assert many.window == 1 and set(many.report["window_scores"]) == {1, 3, 5}   # no window clearly better
    assert any(m.startswith("Window 1 x 1 from the scene, as ") and "no window beat it by more than 2 standard errors" in m
               for m in messages), messages
    preset.finetune.noise_split = 0.0
    assert set(fewshot_classifier(source, rows, cols, ids, CLASSES, preset, CPU).report["window_scores"]) == {3, 5}


def test_a_window_overrules_the_scene_only_when_it_is_right_clearly_more_often():
    labels = np.repeat([0, 1, 2], 8)
    pixel = np.ones(24, dtype=bool)
    pixel[[0, 1, 8, 9, 16, 17]] = False
    assert clearly_better_window(1, {1: pixel, 3: pixel.copy()}, labels) is None   # the same answers
    fixed_two = pixel.copy()
    fixed_two[[0, 8]] = True
    assert clearly_better_window(1, {1: pixel, 3: fixed_two}, labels) is None      # 2 more right: could be luck
    fixed_all = np.ones(24, dtype=bool)
    assert clearly_better_window(1, {1: pixel, 3: fixed_two, 5: fixed_all}, labels) == 5   # 6 more, none fewer
    worse = fixed_all.copy()
    worse[[2, 3, 10, 11, 18, 19]] = False
    assert clearly_better_window(1, {1: pixel, 5: worse}, labels) is None          # 6 more right, 6 more wrong
    assert clearly_better_window(1, {}, labels) is None                            # no cross-validation


def context_fields(size: int = 48, block: int = 16, bands: int = 40, noise: float = 0.005, seed: int = 0):
    """(bands, H, W) cube whose classes 1 and 2 share material 0 on every other pixel and differ in the other
    half (materials 1 and 2), class 3 of material 3: half of classes 1 and 2 are the same pixel, as lawn between
    houses is lawn in a park; their neighbours tell them apart. And the labels."""
    rng = np.random.default_rng(seed)
    labels = class_map(size, block)
    spectra = 0.3 + 0.05 * np.cumsum(rng.normal(0, 1, (4, bands)), axis=1)
    rows, cols = np.indices(labels.shape)
    material = np.where(labels == 3, 3, np.where((rows + cols) % 2 == 0, 0, labels))
    cube = spectra[material].transpose(2, 0, 1) + rng.normal(0, noise, (bands, size, size))
    return cube.astype(np.float32), labels


def test_with_more_labels_cross_validation_overrules_the_scene_where_a_window_is_clearly_better():
    """Neighbours that differ by material make the scene name the pixel alone; where the classes are defined by
    their neighbourhood, eight labels per class show that a window is clearly better, and it is taken."""
    fields, labels = context_fields()
    source = ArraySource([fields])
    preset = tiny_preset(window="auto", model_window=5, pretrain_epochs=0, finetune_epochs=90)
    preset.finetune.window_from_scene = True
    rows, cols, ids = pick_shots(labels, 8, seed=1)
    messages = []
    trained = fewshot_classifier(source, rows, cols, ids, CLASSES, preset, CPU, callback=Callback(log=messages.append))
    assert trained.report["neighbour_noise_share"] < SPLIT
    scores = trained.report["window_scores"]
    assert trained.window == 3 and scores[3] > scores[1] + 0.2, scores
    assert any(m.startswith("The scene would take 1 x 1, as ") and "cross-validation scores 3 x 3 clearly better" in m
               for m in messages), messages
    rows, cols, ids = pick_shots(labels, 2, seed=1)   # too few labels to tell: the scene's window
    assert fewshot_classifier(source, rows, cols, ids, CLASSES, preset, CPU).window == 1


def test_a_raster_under_3_pixels_classifies_at_1_x_1_with_the_rule_on():
    fields, labels = hyperspectral_fields(size=48)
    source = ArraySource([fields[:, :2, :]])   # 2 rows: no 3 x 3 neighbourhood to measure
    rows, cols, ids = pick_shots(labels[:2, :], 2, seed=0)
    preset = tiny_preset(window="auto", pretrain_epochs=0, finetune_epochs=2)
    preset.finetune.window_from_scene = True
    trained = fewshot_classifier(source, rows, cols, ids, CLASSES, preset, CPU)
    assert trained.window == 1 and trained.report["neighbour_noise_share"] is None


def test_the_pixel_alone_by_hand_pretrains_at_3_x_3_and_a_raster_under_3_pixels_cannot_pretrain():
    fields, labels = hyperspectral_fields(size=32)
    rows, cols, ids = pick_shots(labels, 2, seed=0)
    preset = tiny_preset(window=1, pretrain_epochs=1, finetune_epochs=2, sample_count=64)
    trained = fewshot_classifier(ArraySource([fields]), rows, cols, ids, CLASSES, preset, CPU)
    assert trained.window == 1 and trained.pretrain_window == 3
    assert np.isfinite(trained.report["pretrain_loss"]).all()
    wide, wide_labels = hyperspectral_fields(size=48)
    rows, cols, ids = pick_shots(wide_labels[:2, :], 1, seed=0)
    with pytest.raises(InputError, match="Pretraining needs 3 x 3 windows"):
        fewshot_classifier(ArraySource([wide[:, :2, :]]), rows, cols, ids, CLASSES, preset, CPU)
