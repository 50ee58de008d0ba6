"""Tiny synthetic scenes, model sizes and presets shared by the ``test_core_*`` modules.

Everything here is small enough to train in a second or two on two CPU cores. The
trained classifier is built once per test session (``cached_classifier``) and shared.
"""
from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from diffclip_qgis.core.classes import ClassInfo, complete_classes
from diffclip_qgis.core.config import FinetuneConfig, ModelConfig, Preset, PretrainConfig
from diffclip_qgis.core.pipeline import fewshot_classifier
from diffclip_qgis.core.source import ArraySource

CPU = torch.device("cpu")


@pytest.fixture(scope="module", autouse=True)
def single_thread():
    """Run the tiny models on one CPU thread (restored afterwards).

    On a busy two-core machine, torch's two OpenMP threads spin against other processes and a
    tiny training step can take 50x longer; one thread keeps the suite fast and its timing stable.
    Import this fixture into a test module to apply it there.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_config(window: int = 5) -> ModelConfig:
    return ModelConfig(window=window, reduce_channels=16, dim=16, depth=1, heads=2, decoder_dim=16,
                       decoder_depth=1, text_width=16, text_layers=1, text_heads=2, embed_dim=16)


def tiny_preset(window=3, model_window: int = 5, pretrain_epochs: int = 1, finetune_epochs: int = 30,
                lr: float = 3e-3, sample_count: int = 128, augment: bool = True, head: str = "text",
                seed: int = 0) -> Preset:
    return Preset(
        name="tiny",
        model=tiny_config(model_window),
        pretrain=PretrainConfig(epochs=pretrain_epochs, batch_size=64, lr=lr, sample_count=sample_count, seed=seed),
        finetune=FinetuneConfig(epochs=finetune_epochs, batch_size=32, lr=lr, augment=augment, head=head, seed=seed),
        window=window,
    )


# Two spectra over 6 bands; classes 1 and 2 share spectrum A and differ only in height.
SPECTRUM_A = np.array([0.20, 0.30, 0.50, 0.60, 0.40, 0.30], dtype=np.float32)
SPECTRUM_B = np.array([0.60, 0.50, 0.30, 0.20, 0.30, 0.50], dtype=np.float32)
HEIGHTS = {1: 1.0, 2: 12.0, 3: 1.0}
SPECTRA = {1: SPECTRUM_A, 2: SPECTRUM_A, 3: SPECTRUM_B}


def class_map(size: int = 24, block: int = 8) -> np.ndarray:
    """(size, size) labels 1..3 in square blocks, every class in several blocks."""
    n = size // block
    grid = (np.arange(n)[:, None] + 2 * np.arange(n)[None, :]) % 3 + 1
    return np.kron(grid, np.ones((block, block), dtype=np.int64))


def multimodal_scene(size: int = 24, block: int = 8, noise: float = 0.03, seed: int = 0):
    """(spectral (6, H, W), height (1, H, W), labels (H, W)): a task neither modality solves alone."""
    rng = np.random.default_rng(seed)
    labels = class_map(size, block)
    spectral = np.stack([SPECTRA[int(k)] for k in labels.ravel()], axis=1).reshape(6, size, size)
    spectral = spectral + rng.normal(0, noise, spectral.shape).astype(np.float32)
    height = np.vectorize(HEIGHTS.get)(labels).astype(np.float32)[None]
    height = height + rng.normal(0, 0.5, height.shape).astype(np.float32)
    return spectral.astype(np.float32), height, labels


def pick_shots(labels: np.ndarray, per_class: int, seed: int = 0):
    """``per_class`` random pixels of each class: (rows, cols, class ids)."""
    rng = np.random.default_rng(seed)
    rows, cols, ids = [], [], []
    for k in np.unique(labels[labels > 0]):
        r, c = np.nonzero(labels == k)
        pick = rng.choice(len(r), size=per_class, replace=False)
        rows += list(r[pick])
        cols += list(c[pick])
        ids += [int(k)] * per_class
    return np.array(rows), np.array(cols), np.array(ids)


CLASSES = complete_classes([ClassInfo(1, "low meadow"), ClassInfo(2, "tall forest"), ClassInfo(3, "water")])


@functools.lru_cache(maxsize=None)
def cached_classifier():
    """A tiny classifier fine-tuned on the multimodal scene, with its source, labels and shots."""
    spectral, height, labels = multimodal_scene()
    source = ArraySource([spectral, height])
    rows, cols, ids = pick_shots(labels, per_class=8)
    trained = fewshot_classifier(source, rows, cols, ids, CLASSES, tiny_preset(finetune_epochs=80), CPU)
    return trained, source, labels, (rows, cols, ids)


def with_nodata(source: ArraySource) -> ArraySource:
    """A copy of the two-modality scene with NaN pixels: one band only, all bands, the other
    modality only, on borders, in a corner and as a 2 x 2 block."""
    spectral, height = (a.copy() for a in source.arrays)
    spectral[2, 5, 5] = np.nan          # a single band of the spectral modality
    spectral[:, 0, 9] = np.nan          # every band, on the top border
    spectral[:, 23, 23] = np.nan        # corner
    height[0, 10, 0] = np.nan           # only the second modality, left border
    height[0, 14:16, 14:16] = np.nan    # a 2 x 2 block
    return ArraySource([spectral, height])


NODATA_PIXELS = {(5, 5), (0, 9), (23, 23), (10, 0), (14, 14), (14, 15), (15, 14), (15, 15)}
