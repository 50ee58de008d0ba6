"""Where a new label helps most (active learning): unsure but typical pixels, shared out like the map.

With a handful of labels, the least sure pixels alone are a poor choice: they are mostly outliers
and class borders, and an equal share per class over-serves the small classes, so they lose
against random picks (which follow the class areas, as overall accuracy does). So:

1. each predicted class gets suggestions in proportion to its share of the candidates (largest
   remainders), as random picks would;
2. within a class, its candidates are grouped in the model's embedding space (k-means, one group
   per suggestion); in each group, biggest first, the typical half (nearest the group centre) is
   ranked by the margin between the two best classes (small = unsure), and the least sure pixel
   not closer than ``spacing`` to a pixel already chosen or labelled is taken;
3. groups left without a pixel far enough are made up from the least sure candidates that are;
   when none is left, fewer pixels are suggested (spread out rather than crowded).

The result is ranked least sure first, so ``margin`` keeps its meaning.
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


def _kmeans(x: np.ndarray, k: int, seed: int = 0, iters: int = 15):
    """Cluster labels (N,) and centres (k, D) of ``x`` (N, D) by k-means (k-means++ start), numpy only."""
    rng = np.random.default_rng(seed)
    centres = [x[rng.integers(len(x))]]
    d2 = ((x - centres[0]) ** 2).sum(1)
    for _ in range(1, k):
        centres.append(x[rng.choice(len(x), p=d2 / d2.sum())] if d2.sum() > 0 else x[rng.integers(len(x))])
        d2 = np.minimum(d2, ((x - centres[-1]) ** 2).sum(1))
    c = np.array(centres)
    for _ in range(iters):
        lab = ((x * x).sum(1)[:, None] - 2 * x @ c.T + (c * c).sum(1)[None]).argmin(1)
        for j in range(k):
            if np.any(lab == j):
                c[j] = x[lab == j].mean(0)
    return lab, c


def _quotas(best: np.ndarray, k: int, count: int) -> np.ndarray:
    """Picks per predicted class, proportional to its share of the candidates (largest remainders)."""
    members = np.bincount(best, minlength=k)
    share = members / max(1, len(best)) * min(count, len(best))
    quota = np.floor(share).astype(int)
    for c in np.argsort(-(share - quota), kind="stable")[:min(count, len(best)) - quota.sum()]:
        quota[c] += 1
    return np.minimum(quota, members)


def _rep_orders(idx: np.ndarray, feats: np.ndarray, margin: np.ndarray, q: int):
    """For q clusters of the candidates ``idx``, biggest first: typical half (nearest the centre) by margin."""
    lab, centres = _kmeans(feats[idx], q)
    out = []
    for j in np.argsort(-np.bincount(lab, minlength=q), kind="stable"):
        members = idx[lab == j]
        if not len(members):
            continue
        dist = ((feats[members] - centres[j]) ** 2).sum(1)
        typical = members[np.argsort(dist, kind="stable")[:max(1, (len(members) + 1) // 2)]]
        out.append(typical[np.argsort(margin[typical], kind="stable")])
    return out


def choose(rows: np.ndarray, cols: np.ndarray, log_probs: np.ndarray, count: int, labelled_rows: np.ndarray,
           labelled_cols: np.ndarray, spacing: float, features: np.ndarray = None) -> Suggestions:
    """Up to ``count`` candidates: unsure, typical, spread out (see the module docstring), least sure first.

    ``features`` (N, D), e.g. image embeddings, place the candidates for grouping; without them, the
    class probabilities do.
    """
    probs = np.exp(log_probs)
    order2 = np.argsort(-probs, axis=1)[:, :2]
    top = np.take_along_axis(probs, order2, axis=1)
    margin = top[:, 0] - top[:, 1]
    k = probs.shape[1]
    feats = probs if features is None or len(features) != len(probs) else np.asarray(features, np.float64)
    best = order2[:, 0]
    kept = []
    taken = np.zeros(len(rows), dtype=bool)
    # Squared distance from each candidate to the nearest labelled or kept pixel, kept up to date.
    near2 = np.full(len(rows), np.inf)
    lab_r, lab_c = np.asarray(labelled_rows, np.float64), np.asarray(labelled_cols, np.float64)
    for j in range(0, len(lab_r), 256):
        d2 = (rows[:, None] - lab_r[None, j:j + 256]) ** 2 + (cols[:, None] - lab_c[None, j:j + 256]) ** 2
        near2 = np.minimum(near2, d2.min(axis=1))

    def far(i):
        return near2[i] >= spacing ** 2

    def take(i):
        nonlocal near2
        kept.append(i)
        taken[i] = True
        near2 = np.minimum(near2, (rows - rows[i]) ** 2.0 + (cols - cols[i]) ** 2.0)

    order = np.argsort(margin, kind="stable")
    quota = _quotas(best, k, count)
    groups = [g for c in np.argsort(-quota, kind="stable") if quota[c]
              for g in _rep_orders(np.flatnonzero(best == c), feats, margin, int(quota[c]))]
    for g in groups:   # each group's least sure typical pixel far enough from the others
        for i in g:
            if far(i):
                take(i)
                break
    for i in order:   # fill up from the least sure when some groups had nothing far enough
        if len(kept) >= count:
            break
        if not taken[i] and far(i):
            take(i)
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
    from .infer import class_text, window_scores

    if pool is None:
        rows, cols = sample_valid_pixels(source, trained.stats, candidates, seed, max_tiles=None)  # the whole map
    else:
        pick = np.random.default_rng(seed).permutation(len(pool[0]))[:candidates]
        rows, cols = np.asarray(pool[0])[pick], np.asarray(pool[1])[pick]
    network = trained.network.to(device)
    text = class_text(network, [c.prompt for c in trained.classes], device)
    parts, embs, keep = [], [], []
    for i in range(0, len(rows), CHUNK):   # windows of a chunk at a time: memory stays bounded
        callback.check()
        windows, valid = extract_windows(source, trained.stats, rows[i:i + CHUNK], cols[i:i + CHUNK], trained.window)
        lp, emb = window_scores(network, text, [w[valid] for w in windows])
        parts.append(lp)
        embs.append(emb)
        keep.append(valid)
        callback.progress("classifying", min(i + CHUNK, len(rows)) / max(1, len(rows)))
    keep = np.concatenate(keep)
    rows, cols, log_probs = rows[keep], cols[keep], np.concatenate(parts)
    features = np.concatenate([e for e in embs if e.size]) if any(e.size for e in embs) else None
    if spacing <= 0:
        spacing = max(trained.window, 0.25 * np.sqrt(source.height * source.width / max(1, count)))
    return choose(rows, cols, log_probs, count, labelled_rows, labelled_cols, spacing, features)
