"""Unlabelled pixels in few-shot fine-tuning (core/semisupervised.py, finetune(..., unlabelled=...))."""
import dataclasses

import numpy as np
import pytest
import torch

from diffclip_qgis.core.config import FinetuneConfig, get_preset
from diffclip_qgis.core.finetune import finetune
from diffclip_qgis.core.infer import classify_windows
from diffclip_qgis.core.model import DiffCLIP
from diffclip_qgis.core.pipeline import fewshot_classifier, pseudo_label_neighbourhood, unlabelled_windows
from diffclip_qgis.core.progress import Callback
from diffclip_qgis.core.semisupervised import (DistributionAlignment, Neighbourhoods, pixel_logistic_regression,
                                               pseudo_label_loss, strong_view)
from diffclip_qgis.core.source import ArraySource
from diffclip_qgis.core.windows import fit_input_stats

from core_fixtures import CLASSES, CPU, multimodal_scene, pick_shots, single_thread, tiny_config, tiny_preset  # noqa: F401


def two_clusters(n: int = 400, seed: int = 0):
    """Two compact clusters in 3 bands (1 x 1 windows), apart along band 0 (-1 and +1), equally common.

    The labelled pixels are untypical: those of class 0 far out on its left (-1.35, -1.3), those
    of class 1 between the clusters (-0.75, -0.7), so a boundary between them cuts through
    cluster 0 and class 1 swallows much of it. Only the unlabelled pixels show where the gap is.
    """
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = np.stack([np.where(y == 0, -1.0, 1.0) + rng.normal(0, 0.15, n), rng.normal(0, 0.15, n),
                  rng.normal(0, 0.15, n)], axis=1).astype(np.float32)
    labelled = np.array([[-1.35, 0.0, 0.0], [-1.3, 0.1, -0.1], [-0.75, 0.0, 0.1], [-0.7, -0.1, 0.0]], np.float32)
    return labelled[:, :, None, None], np.array([0, 0, 1, 1]), x[:, :, None, None], y


def _fit(cfg: FinetuneConfig, unlabelled: bool):
    lab, lab_y, pool, pool_y = two_clusters()
    torch.manual_seed(0)
    net = DiffCLIP([3], tiny_config(3))
    finetune(net, [lab], lab_y, ["class zero", "class one"], cfg, CPU, unlabelled=[pool] if unlabelled else None)
    pred, _ = classify_windows(net, net.text_embedding(*_tokens(net)), [pool])
    return float(np.mean(pred == pool_y))


def _tokens(net):
    from diffclip_qgis.core.finetune import prompt_tokens
    return prompt_tokens(net, ["class zero", "class one"], CPU)


# The mechanism alone: pseudo-labels aligned to equal shares (the clusters are equally common), no pixel teacher
# (fitted on the same untypical pixels, it would put the boundary as wrong).
SSL = FinetuneConfig(epochs=60, max_steps=200, lr=3e-3, augment=False, prior_strength=0.0, unlabelled=True, unlabelled_batch=64,
                     unlabelled_steps=150, unlabelled_threshold=0.8, unlabelled_weight=1.0,
                     alignment_target="uniform", pixel_teacher=False)


def test_unlabelled_pixels_move_the_boundary_into_the_gap():
    supervised = _fit(dataclasses.replace(SSL, unlabelled=False), unlabelled=False)
    no_term = _fit(dataclasses.replace(SSL, unlabelled_weight=0.0), unlabelled=True)
    semi = _fit(SSL, unlabelled=True)
    # the labelled pixels alone put the boundary into cluster 0 (about 0.8: measured 0.785 and 0.81) ...
    assert supervised < 0.85 and no_term < 0.85
    # ... the pseudo-labelled unlabelled pixels move it into the gap (measured 0.94)
    assert semi > 0.9 and semi > max(supervised, no_term) + 0.08


def test_fine_tuning_with_unlabelled_pixels_is_deterministic():
    assert _fit(SSL, unlabelled=True) == _fit(SSL, unlabelled=True)


def test_distribution_alignment_lifts_a_class_that_is_never_predicted():
    probs = torch.tensor([[0.7, 0.3], [0.8, 0.2], [0.6, 0.4], [0.9, 0.1]])
    align = DistributionAlignment(2, momentum=0.0)
    out = align(probs)
    assert torch.allclose(out.sum(dim=1), torch.ones(4))
    assert out.mean(dim=0)[1] > probs.mean(dim=0)[1]          # the starved class gains
    assert (out.argmax(dim=1) == 1).any()                     # and wins on its likeliest pixels


def test_pseudo_labels_only_above_the_threshold():
    logits = torch.zeros(3, 2, requires_grad=True)
    teacher = torch.tensor([[0.99, 0.01], [0.6, 0.4], [0.05, 0.95]])
    loss, used = pseudo_label_loss(logits, teacher, 0.9)
    assert used == pytest.approx(2 / 3)
    loss.backward()
    assert logits.grad[1].abs().sum() == 0 and logits.grad[0].abs().sum() > 0


def test_strong_view_is_seeded_and_keeps_shapes():
    w = [torch.randn(4, 6, 5, 5), torch.randn(4, 1, 5, 5)]
    a = strong_view(w, torch.Generator().manual_seed(1))
    b = strong_view(w, torch.Generator().manual_seed(1))
    assert [x.shape for x in a] == [x.shape for x in w]
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[0], w[0])


def test_pixel_logistic_regression_separates_the_clusters():
    lab, lab_y, pool, pool_y = two_clusters()
    probs = pixel_logistic_regression(lab[:, :, 0, 0], lab_y, pool[:, :, 0, 0], 2)
    assert probs.shape == (len(pool_y), 2) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)


def test_fewshot_classifier_uses_unlabelled_windows_and_reports_them():
    spectral, height, labels = multimodal_scene()
    source = ArraySource([spectral, height])
    rows, cols, ids = pick_shots(labels, per_class=2)
    preset = tiny_preset(window=3, pretrain_epochs=0, finetune_epochs=10)
    preset.finetune = dataclasses.replace(preset.finetune, unlabelled=True, unlabelled_samples=200, max_steps=100,
                                          unlabelled_steps=20, unlabelled_batch=32)
    logs = []
    trained = fewshot_classifier(source, rows, cols, ids, CLASSES, preset, CPU, callback=Callback(log=logs.append))
    assert any("unlabelled" in m for m in logs)
    assert len(trained.report["finetune_loss"]) > 0


def test_cpu_preset_uses_unlabelled_pixels_and_the_window_rule():
    ft = get_preset("cpu").finetune
    assert ft.unlabelled and ft.pixel_teacher and ft.alignment_target == "estimated" and ft.window_from_scene
    assert 2 <= ft.few_label_max_shots < 8


def test_many_labels_choose_the_window_by_cross_validation_and_still_use_unlabelled_pixels():
    """No cliff: above the few-label limit only the window choice changes (it paid at 5, 8 and 16 shots)."""
    spectral, height, labels = multimodal_scene()
    source = ArraySource([spectral, height])
    rows, cols, ids = pick_shots(labels, per_class=8)
    preset = tiny_preset(window="auto", pretrain_epochs=0, finetune_epochs=5)
    preset.finetune = dataclasses.replace(preset.finetune, unlabelled=True, window_from_scene=True, few_label_max_shots=4,
                                          unlabelled_samples=200, max_steps=20, unlabelled_steps=20,
                                          unlabelled_batch=32)
    logs = []
    trained = fewshot_classifier(source, rows, cols, ids, CLASSES, preset, CPU, callback=Callback(log=logs.append))
    assert len(trained.report["window_scores"]) > 1 and trained.report["neighbour_noise_share"] is None  # 7 bands
    assert any(m.startswith("Fine-tuning also on") and "unlabelled" in m for m in logs), logs


def test_neighbourhood_pseudo_labels_need_the_neighbours_to_agree():
    """At window 1 a pixel is pseudo-labelled from its 3 x 3 neighbourhood's posteriors, the centre weighing 0.4."""
    windows = np.arange(2 * 2 * 9, dtype=np.float32).reshape(2, 2, 3, 3)
    hoods = Neighbourhoods([windows], centre=0.4)
    pixels = hoods.pixels()[0]
    assert pixels.shape == (18, 2, 1, 1)
    assert np.array_equal(pixels.reshape(2, 9, 2)[:, 4].numpy(), hoods.centres()[0][:, :, 0, 0])  # row-major order
    assert np.array_equal(hoods.pixels(torch.tensor([1]))[0].numpy(), pixels[9:].numpy())
    agree = torch.tensor([[0.95, 0.05]] * 9)
    lonely = torch.tensor([[0.05, 0.95]] * 4 + [[0.95, 0.05]] + [[0.05, 0.95]] * 4)  # the centre alone says class 0
    probs = hoods.mean(torch.cat([agree, lonely]))
    assert torch.allclose(probs.sum(dim=1), torch.ones(2))
    assert probs[0, 0] == pytest.approx(0.95) and probs[1, 0] == pytest.approx(0.4 * 0.95 + 0.6 * 0.05)
    _, used = pseudo_label_loss(torch.zeros(2, 2), probs, 0.9)
    assert used == 0.5        # the neighbourhood that agrees gives a pseudo-label; the lonely centre gets none


def test_unlabelled_neighbourhoods_leave_out_pixels_next_to_nodata():
    image = np.where(np.arange(20)[None, :, None] % 2 == 0, 0.0, 10.0) * np.ones((3, 20, 20), np.float32)
    image[:, :, 9] = np.nan                              # a nodata column: its neighbours' windows would read 0 there
    source = ArraySource([image])
    stats = fit_input_stats(source)
    none = (np.array([], int), np.array([], int))
    plain = unlabelled_windows(source, stats, 400, 3, 0, *none)[0]
    whole = unlabelled_windows(source, stats, 400, 3, 0, *none, whole_window_valid=True)[0]
    assert (plain == 0).any(axis=(1, 2, 3)).sum() > 0    # nodata reads as 0 ...
    assert len(whole) > 0 and not (whole == 0).any()     # ... and no neighbourhood holds it
    assert len(whole) < len(plain)


def test_window_1_pseudo_labels_come_from_the_neighbourhood():
    spectral, height, labels = multimodal_scene()
    rows, cols, ids = pick_shots(labels, per_class=2)
    preset = tiny_preset(window=1, pretrain_epochs=0, finetune_epochs=10)
    preset.finetune = dataclasses.replace(preset.finetune, unlabelled=True, unlabelled_samples=200, max_steps=20,
                                          unlabelled_steps=20, unlabelled_batch=32)
    logs = []
    trained = fewshot_classifier(ArraySource([spectral, height]), rows, cols, ids, CLASSES, preset, CPU,
                                 callback=Callback(log=logs.append))
    assert trained.window == 1
    assert any("1 x 1 windows" in m and "over their 3 x 3 neighbourhood" in m for m in logs), logs


def test_the_neighbourhood_is_for_window_1_on_a_raster_that_holds_it():
    big, strip = ArraySource([np.zeros((2, 8, 8), np.float32)]), ArraySource([np.zeros((2, 2, 40), np.float32)])
    assert pseudo_label_neighbourhood(3, 1, big) == 3
    assert pseudo_label_neighbourhood(3, 5, big) == 1 and pseudo_label_neighbourhood(1, 1, big) == 1
    assert pseudo_label_neighbourhood(3, 1, strip) == 1      # 2 px high: the pixel alone, as before
    with pytest.raises(ValueError, match="odd"):
        pseudo_label_neighbourhood(2, 1, big)
