"""`make bench`'s summary: every draw counts once in its row, even when two sections run it."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "scripts"))
benchmark = pytest.importorskip("benchmark")   # scikit-learn, from requirements-dev.txt


def _row(draw, oa):
    scores = {"oa": oa, "aa": oa, "kappa": oa}
    return {"scene": "demo", "shots": 8, "method": "SVM-RBF per pixel", "draw": draw, "window": None,
            "seconds": 1.0, "all": scores, "far": scores}


def test_a_draw_run_by_two_sections_counts_once():
    rows = [_row(0, 80.0), _row(1, 90.0), _row(0, 80.0)]   # draw 0 by the real-scene and the few-label sections
    (summary,) = benchmark.summarise(rows)
    assert summary["draws"] == 2
    assert summary["all_oa"] == (85.0, 5.0)
