"""Class proportions of a scene, estimated from its unlabelled pixels, to adjust the classifier.

Few-shot training is class-balanced, so the classifier assumes every class is equally common.
In a real scene a few classes cover most of the ground; when a pixel is ambiguous, the common
class is the likelier answer. The proportions are estimated by expectation-maximisation on the
classifier's own posteriors over a sample of unlabelled pixels (Saerens, Latinne and
Decaestecker, 2002), and added to the logits as log(prior / uniform prior). This raises overall
accuracy and lowers the recall of rare classes.
"""
from __future__ import annotations

import numpy as np
import torch

from .infer import class_text, window_log_probs
from .progress import SILENT, Callback
from .source import PixelSource
from .trained import TrainedModel
from .windows import extract_windows, sample_valid_pixels


def estimate_class_priors(log_probs: np.ndarray, iterations: int = 200, tolerance: float = 1e-7) -> np.ndarray:
    """Class proportions (K,) from balanced-training log posteriors (N, K) of unlabelled pixels."""
    n, k = log_probs.shape
    if n == 0:
        return np.full(k, 1.0 / k)
    prior = np.full(k, 1.0 / k)
    for _ in range(iterations):
        adjusted = log_probs + np.log(np.maximum(prior * k, 1e-12))
        adjusted -= adjusted.max(axis=1, keepdims=True)
        post = np.exp(adjusted)
        post /= post.sum(axis=1, keepdims=True)
        new = post.mean(axis=0)
        if np.abs(new - prior).max() < tolerance:
            return new
        prior = new
    return prior


def prior_bias(prior: np.ndarray, floor: float = 1e-3) -> np.ndarray:
    """Logit offsets log(K * prior); a class's prior is floored so it can still win where it is clear."""
    k = len(prior)
    return np.log(np.maximum(np.asarray(prior, dtype=np.float64), floor / k) * k).astype(np.float32)


def fit_class_priors(trained: TrainedModel, source: PixelSource, strength: float, samples: int, seed: int,
                     device: torch.device, callback: Callback = SILENT) -> np.ndarray:
    """Estimate the class proportions on ``samples`` random valid pixels and set the network's class bias.

    The bias is ``strength * log(K * prior)``: 0 leaves the classes equally likely, 1 follows the
    estimate fully. Returns the estimated proportions.
    """
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"The class-proportion strength must be between 0 and 1; got {strength}.")
    network = trained.network
    network.set_class_bias(None)   # the estimate needs the balanced-training posteriors
    rows, cols = sample_valid_pixels(source, trained.stats, samples, seed)
    windows, valid = extract_windows(source, trained.stats, rows, cols, trained.window)
    text = class_text(network, [c.prompt for c in trained.classes], device)
    prior = estimate_class_priors(window_log_probs(network, text, [w[valid] for w in windows]))
    if strength > 0:
        network.set_class_bias(torch.from_numpy(strength * prior_bias(prior)))
    trained.report["class_priors"] = {c.name: float(p) for c, p in zip(trained.classes, prior)}
    callback.log(f"Class proportions estimated from {int(valid.sum())} unlabelled pixels: "
                 + ", ".join(f"{c.name} {100 * p:.1f}%" for c, p in zip(trained.classes, prior))
                 + f"; predictions follow them with strength {strength:g}.")
    return prior
