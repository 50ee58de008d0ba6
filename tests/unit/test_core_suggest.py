"""Sample suggestions: least sure first, spread over the map and the classes, away from labelled pixels."""
import numpy as np
import pytest

from diffclip_qgis.core import suggest as core_suggest
from diffclip_qgis.core.progress import Callback, Cancelled
from diffclip_qgis.core.suggest import choose

from core_fixtures import CPU, cached_classifier, single_thread  # noqa: F401


def _log_probs(p_best, best, k=3):
    probs = np.full((len(p_best), k), 0.0)
    for i, (p, b) in enumerate(zip(p_best, best)):
        probs[i] = (1 - p) / (k - 1)
        probs[i, b] = p
    return np.log(probs)


def test_least_sure_first_and_spread_out():
    rows = np.array([0, 0, 50, 90, 10])
    cols = np.array([0, 1, 50, 90, 10])
    lp = _log_probs([0.40, 0.41, 0.9, 0.5, 0.45], [0, 1, 2, 1, 2])
    s = choose(rows, cols, lp, 3, np.empty(0), np.empty(0), spacing=5)
    assert s.rows.tolist() == [0, 10, 90]             # (0, 1) is next to (0, 0): skipped
    assert s.margin.tolist() == sorted(s.margin.tolist())


def test_keeps_away_from_labelled_pixels_and_shares_out_classes():
    rows, cols = np.arange(0, 100, 10), np.arange(0, 100, 10)
    lp = _log_probs([0.4] * 10, [0] * 9 + [1])
    s = choose(rows, cols, lp, 4, np.array([0]), np.array([0]), spacing=3)
    assert 0 not in s.rows.tolist()                   # labelled already
    assert (s.best == 0).sum() <= int(np.ceil(2 * 4 / 3)) and 1 in s.best.tolist()


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
