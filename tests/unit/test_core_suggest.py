"""Sample suggestions: per predicted class in proportion to its share, typical but unsure pixels, spread out."""
import numpy as np
import pytest

from diffclip_qgis.core import suggest as core_suggest
from diffclip_qgis.core.progress import Callback, Cancelled
from diffclip_qgis.core.suggest import _quotas as quotas, choose

from core_fixtures import CPU, cached_classifier, single_thread  # noqa: F401


def _log_probs(p_best, best, k=3):
    probs = np.full((len(p_best), k), 0.0)
    for i, (p, b) in enumerate(zip(p_best, best)):
        probs[i] = (1 - p) / (k - 1)
        probs[i, b] = p
    return np.log(probs)


def test_quotas_follow_the_predicted_shares():
    best = np.array([0] * 60 + [1] * 30 + [2] * 10)
    assert quotas(best, 4, 5).tolist() == [3, 2, 0, 0]      # 3.0, 1.5, 0.5, 0: the larger remainder wins
    assert quotas(best, 3, 10).tolist() == [6, 3, 1]
    assert quotas(np.empty(0, int), 3, 2).sum() == 0


def test_typical_pixels_rather_than_outliers():
    rng = np.random.default_rng(0)
    n = 41
    feats = np.vstack([rng.normal(0, 0.1, (n - 1, 2)), [[9.0, 9.0]]])   # one outlier in feature space
    p_best = np.concatenate([np.linspace(0.5, 0.9, n - 1), [0.34]])      # ... and the least sure of all
    rows, cols = np.arange(n) * 10, np.zeros(n, int)
    s = choose(rows, cols, _log_probs(p_best, [0] * n), 1, np.empty(0), np.empty(0), spacing=1, features=feats)
    assert s.rows.tolist() != [400]                              # not the outlier
    typical = np.argsort(((feats[:-1] - feats[:-1].mean(0)) ** 2).sum(1))[:20]
    assert s.rows[0] // 10 in typical and p_best[s.rows[0] // 10] < 0.7   # typical, and among the less sure


def test_big_classes_get_more_suggestions_and_all_are_spread_out():
    rows, cols = np.arange(0, 1000, 10), np.zeros(100, int)
    lp = _log_probs(np.linspace(0.4, 0.9, 100), [0] * 70 + [1] * 20 + [2] * 10)
    s = choose(rows, cols, lp, 10, np.array([0]), np.array([0]), spacing=15)
    assert len(s.rows) == 10 and 0 not in s.rows.tolist()       # labelled already
    assert np.bincount(s.best, minlength=3).tolist() == [7, 2, 1]
    assert np.min(np.diff(np.sort(s.rows))) >= 15
    assert s.margin.tolist() == sorted(s.margin.tolist())       # least sure first


def test_fewer_pixels_rather_than_crowded_ones():
    rows, cols = np.array([0, 1, 2, 100, 101]), np.zeros(5, int)
    s = choose(rows, cols, _log_probs([0.5] * 5, [0, 1, 2, 0, 1]), 3, np.empty(0), np.empty(0), spacing=10)
    assert len(s.rows) == 2 and s.rows.min() <= 2 and s.rows.max() >= 100


def test_suggest_reports_progress_per_chunk_and_stops_when_cancelled(monkeypatch):
    trained, source, _, _ = cached_classifier()
    monkeypatch.setattr(core_suggest, "CHUNK", 100)
    seen = []
    found = core_suggest.suggest(trained, source, 4, np.empty(0), np.empty(0), CPU, candidates=300,
                                 callback=Callback(lambda phase, f, m="": seen.append((phase, f))))
    assert len(found.rows) == 4
    assert seen == [("classifying", 1 / 3), ("classifying", 2 / 3), ("classifying", 1.0)]
    calls = []
    with pytest.raises(Cancelled):
        core_suggest.suggest(trained, source, 4, np.empty(0), np.empty(0), CPU, candidates=300,
                             callback=Callback(lambda *a: calls.append(a), cancelled=lambda: bool(calls)))
    assert len(calls) == 1   # stopped before the second chunk
