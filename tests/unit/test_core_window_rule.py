"""The window with very few labels: from the scene's neighbour contrast, not cross-validation."""
import numpy as np

from diffclip_qgis.core.pipeline import fewshot_classifier
from diffclip_qgis.core.progress import Callback
from diffclip_qgis.core.source import ArraySource
from diffclip_qgis.core.window_rule import few_label_window, neighbour_contrast
from diffclip_qgis.core.windows import fit_input_stats

from core_fixtures import CLASSES, CPU, multimodal_scene, pick_shots, single_thread, tiny_preset  # noqa: F401


def contrast_of(*arrays):
    source = ArraySource(list(arrays))
    return neighbour_contrast(source, fit_input_stats(source))


def test_fields_of_alike_pixels_have_low_contrast_and_noise_high():
    spectral, height, _ = multimodal_scene(size=48, block=16, noise=0.01)
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 1, spectral.shape).astype(np.float32)
    fields = contrast_of(spectral, height)
    assert fields < 0.25
    assert contrast_of(noise) > 0.9
    assert fields < contrast_of(spectral + 0.2 * noise, height) < contrast_of(noise)   # noisier fields: higher


def test_nodata_pixels_do_not_count():
    spectral, height, _ = multimodal_scene(size=48, block=16, noise=0.01)
    holed = spectral.copy()
    holed[:, ::3, ::3] = np.nan   # every third pixel of every third row: each 3 x 3 window of most pixels has a hole
    assert np.isfinite(contrast_of(holed, height))
    assert abs(contrast_of(holed, height) - contrast_of(spectral, height)) < 0.1


def test_the_small_window_below_the_split_the_large_one_above_never_above_the_largest():
    assert few_label_window(0.17, 0.25, (3, 5), 11) == 3
    assert few_label_window(0.25, 0.25, (3, 5), 11) == 5
    assert few_label_window(0.34, 0.25, (3, 5), 3) == 3


def test_two_shots_use_the_rule_and_eight_cross_validation():
    spectral, height, labels = multimodal_scene(size=32, block=16, seed=1, noise=0.01)
    source = ArraySource([spectral, height])
    preset = tiny_preset(window="auto", model_window=5, pretrain_epochs=0, finetune_epochs=3)
    preset.finetune.few_label_window = True   # as the cpu preset
    messages = []
    rows, cols, ids = pick_shots(labels, 2, seed=1)
    trained = fewshot_classifier(source, rows, cols, ids, CLASSES, preset, CPU, callback=Callback(log=messages.append))
    assert trained.window == 3 and trained.report["neighbour_contrast"] < 0.25
    assert "window_scores" not in trained.report
    assert any(m.startswith("Few labels (median 2 per class): window 3 x 3") for m in messages), messages

    preset.finetune.contrast_split = 0.0   # every scene counts as noisy: the large window
    assert fewshot_classifier(source, rows, cols, ids, CLASSES, preset, CPU).window == 5

    preset.finetune.few_label_window = False   # switched off: cross-validation, as with more labels
    assert set(fewshot_classifier(source, rows, cols, ids, CLASSES, preset, CPU).report["window_scores"]) == {3, 5}
    rows, cols, ids = pick_shots(labels, 8, seed=1)   # more than few_label_max_shots
    preset.finetune.few_label_window = True
    assert "window_scores" in fewshot_classifier(source, rows, cols, ids, CLASSES, preset, CPU).report
