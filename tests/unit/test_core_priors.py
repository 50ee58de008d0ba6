"""Class proportions estimated from unlabelled pixels, and their effect on the classifier."""
import copy
import os

import numpy as np
import pytest
import torch

from diffclip_qgis.core.checkpoint import load_model, save_model
from diffclip_qgis.core.infer import Predictor
from diffclip_qgis.core.pipeline import fewshot_classifier
from diffclip_qgis.core.priors import estimate_class_priors, fit_class_priors, prior_bias
from diffclip_qgis.core.progress import Callback
from diffclip_qgis.core.source import ArraySource

from core_fixtures import (CLASSES, CPU, HEIGHTS, SPECTRA, cached_classifier, multimodal_scene, pick_shots,  # noqa: F401
                           single_thread, tiny_preset)


def _balanced_log_posteriors(x: np.ndarray, means: np.ndarray) -> np.ndarray:
    """Exact log p(k | x) of unit-variance Gaussian classes under equal priors."""
    logits = -0.5 * (x[:, None] - means[None, :]) ** 2
    return logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)


def test_em_recovers_the_class_proportions_of_a_mixture():
    rng = np.random.default_rng(0)
    means, prior = np.array([0.0, 1.5, 3.0]), np.array([0.7, 0.2, 0.1])
    k = rng.choice(3, size=20000, p=prior)
    x = rng.normal(means[k], 1.0)
    estimate = estimate_class_priors(_balanced_log_posteriors(x, means))
    np.testing.assert_allclose(estimate, prior, atol=0.02)
    # the classes overlap, so counting the balanced classifier's answers would be far off
    counted = np.bincount(_balanced_log_posteriors(x, means).argmax(axis=1), minlength=3) / len(x)
    assert np.abs(counted - prior).max() > 0.1


def test_prior_bias_is_zero_for_equal_classes_and_floored_for_absent_ones():
    np.testing.assert_allclose(prior_bias(np.full(4, 0.25)), 0.0, atol=1e-6)
    bias = prior_bias(np.array([1.0, 0.0]))
    assert np.isfinite(bias).all() and bias[0] > bias[1]


def _scene_with_mostly(class_id: int, share: float, size: int = 24, seed: int = 1) -> ArraySource:
    """The test scene's spectra and heights with ``share`` of the 4 x 4 blocks of one class."""
    rng = np.random.default_rng(seed)
    blocks = np.where(rng.random((size // 4, size // 4)) < share, class_id,
                      rng.choice([c for c in SPECTRA if c != class_id], size=(size // 4, size // 4)))
    labels = np.kron(blocks, np.ones((4, 4), dtype=np.int64))
    spectral = np.stack([SPECTRA[int(c)] for c in labels.ravel()], axis=1).reshape(6, size, size)
    height = np.vectorize(HEIGHTS.get)(labels).astype(np.float32)[None]
    spectral = spectral + rng.normal(0, 0.03, spectral.shape)
    height = height + rng.normal(0, 0.5, height.shape)
    return ArraySource([spectral.astype(np.float32), height.astype(np.float32)])


def test_fit_class_priors_finds_the_dominant_class_and_sets_the_bias():
    trained = copy.deepcopy(cached_classifier()[0])
    messages = []
    prior = fit_class_priors(trained, _scene_with_mostly(3, 0.75), 1.0, 400, 0, CPU, Callback(log=messages.append))
    assert prior.argmax() == 2 and prior[2] > 0.6 and prior.sum() == pytest.approx(1.0)
    bias = trained.network.class_bias
    assert bias is not None and bias.argmax().item() == 2
    assert trained.report["class_priors"]["water"] == pytest.approx(prior[2])
    assert any("Class proportions estimated from 400 unlabelled pixels" in m and "water" in m for m in messages)
    fit_class_priors(trained, _scene_with_mostly(3, 0.75), 0.0, 400, 0, CPU)
    assert trained.network.class_bias is None


def test_bias_moves_ambiguous_pixels_only_and_survives_save_and_load(tmp_path):
    trained, source, labels, _ = cached_classifier()
    plain = copy.deepcopy(trained)
    plain.network.set_class_bias(None)
    biased = copy.deepcopy(plain)
    biased.network.set_class_bias(torch.tensor([0.0, 0.0, 50.0]))   # absurdly strong: water everywhere
    water = Predictor(biased, CPU).predict(source)[0]
    assert (water == 3).all()
    mild = copy.deepcopy(plain)
    mild.network.set_class_bias(torch.tensor([0.0, 0.0, 0.05]))
    np.testing.assert_array_equal(Predictor(mild, CPU).predict(source)[0], Predictor(plain, CPU).predict(source)[0])
    path = str(tmp_path / "biased.pt")
    save_model(biased, path)
    loaded = load_model(path)
    assert torch.equal(loaded.network.class_bias, biased.network.class_bias)
    save_model(plain, path)
    assert load_model(path).network.class_bias is None
    assert os.listdir(tmp_path) == ["biased.pt"]


def test_strength_outside_0_to_1_is_refused():
    trained = copy.deepcopy(cached_classifier()[0])
    with pytest.raises(ValueError, match="between 0 and 1"):
        fit_class_priors(trained, cached_classifier()[1], 1.5, 100, 0, CPU)


def test_linear_head_posteriors_are_confident_enough_to_estimate_proportions():
    """The linear head shares the temperature; without it its posteriors stay near uniform and EM collapses."""
    spectral, height, labels = multimodal_scene()
    rows, cols, ids = pick_shots(labels, per_class=8)
    preset = tiny_preset(finetune_epochs=80, head="linear")
    preset.finetune.prior_strength = 0.0
    trained = fewshot_classifier(ArraySource([spectral, height]), rows, cols, ids, CLASSES, preset, CPU)
    prior = fit_class_priors(trained, _scene_with_mostly(3, 0.75), 1.0, 400, 0, CPU)
    assert prior.argmax() == 2 and 0.55 < prior[2] < 0.95, prior
