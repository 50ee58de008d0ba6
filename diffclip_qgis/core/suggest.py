"""Where a new label helps most (active learning): uncertain pixels, spread over the map and the classes.

Candidates are scored by the margin between the model's two best classes (small = unsure).
They are taken in that order, skipping any closer than ``spacing`` pixels to a pixel already
chosen or already labelled, and at most a fair share per predicted class (filled up from the
other candidates when some classes have too few), so the suggestions do not pile up in one
field or one class pair.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .progress import SILENT, Callback
from .source import PixelSource
from .trained import TrainedModel
from .windows import extract_windows, sample_valid_pixels

CHUNK = 4096


@dataclass
class Suggestions:
    """Suggested pixels, most useful first: best and second class indices (0..K-1) and their margin."""

    rows: np.ndarray
    cols: np.ndarray
    best: np.ndarray
    second: np.ndarray
    margin: np.ndarray


def choose(rows: np.ndarray, cols: np.ndarray, log_probs: np.ndarray, count: int, labelled_rows: np.ndarray,
           labelled_cols: np.ndarray, spacing: float) -> Suggestions:
    """Up to ``count`` candidates with the smallest top-two margin, spread out (see the module docstring)."""
    probs = np.exp(log_probs)
    order2 = np.argsort(-probs, axis=1)[:, :2]
    top = np.take_along_axis(probs, order2, axis=1)
    margin = top[:, 0] - top[:, 1]
    k = probs.shape[1]
    quota = max(1, int(np.ceil(2 * count / k)))
    taken = {c: 0 for c in range(k)}
    kept = []
    fixed_r, fixed_c = list(np.asarray(labelled_rows).tolist()), list(np.asarray(labelled_cols).tolist())
    order = np.argsort(margin, kind="stable")
    for capped in (True, False):   # a fair share per class first; then fill up when classes run short
        for i in order:
            if len(kept) == count:
                break
            best = int(order2[i, 0])
            if (capped and taken[best] >= quota) or i in kept:
                continue
            if fixed_r and np.min((np.asarray(fixed_r) - rows[i]) ** 2 + (np.asarray(fixed_c) - cols[i]) ** 2) \
                    < spacing ** 2:
                continue
            kept.append(i)
            taken[best] += 1
            fixed_r.append(int(rows[i]))
            fixed_c.append(int(cols[i]))
    kept.sort(key=lambda i: margin[i])
    kept = np.array(kept, dtype=np.int64)
    return Suggestions(rows[kept], cols[kept], order2[kept, 0], order2[kept, 1], margin[kept])


def suggest(trained: TrainedModel, source: PixelSource, count: int, labelled_rows, labelled_cols, device,
            candidates: int = 20000, seed: int = 0, spacing: float = 0.0, pool=None,
            callback: Callback = SILENT) -> Suggestions:
    """Suggestions among up to ``candidates`` random valid pixels of ``source`` (or of ``pool``, rows and cols).

    ``callback`` gets "classifying" progress per chunk of candidates and may cancel between chunks.

    ``spacing`` 0 picks one from the raster size: pixels at least about a quarter of the mean
    distance between ``count`` evenly spread points apart (and never closer than the window).
    """
    from .infer import class_text, window_log_probs

    if pool is None:
        rows, cols = sample_valid_pixels(source, trained.stats, candidates, seed)
    else:
        pick = np.random.default_rng(seed).permutation(len(pool[0]))[:candidates]
        rows, cols = np.asarray(pool[0])[pick], np.asarray(pool[1])[pick]
    network = trained.network.to(device)
    text = class_text(network, [c.prompt for c in trained.classes], device)
    parts, keep = [], []
    for i in range(0, len(rows), CHUNK):   # windows of a chunk at a time: memory stays bounded
        callback.check()
        windows, valid = extract_windows(source, trained.stats, rows[i:i + CHUNK], cols[i:i + CHUNK], trained.window)
        parts.append(window_log_probs(network, text, [w[valid] for w in windows]))
        keep.append(valid)
        callback.progress("classifying", min(i + CHUNK, len(rows)) / max(1, len(rows)))
    keep = np.concatenate(keep)
    rows, cols, log_probs = rows[keep], cols[keep], np.concatenate(parts)
    if spacing <= 0:
        spacing = max(trained.window, 0.25 * np.sqrt(source.height * source.width / max(1, count)))
    return choose(rows, cols, log_probs, count, labelled_rows, labelled_cols, spacing)
