"""Accuracy assessment: confusion matrix, OA, AA, Cohen's kappa, producer's and user's accuracy."""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence

import numpy as np


@dataclass
class Accuracy:
    """Accuracy figures of a classification against reference labels (fractions 0..1)."""

    class_ids: List[int]
    matrix: np.ndarray            # rows = reference, columns = classification
    overall: float
    average: float                # mean producer's accuracy over classes with reference pixels
    kappa: float
    producers: np.ndarray         # per class recall (NaN where no reference pixels)
    users: np.ndarray             # per class precision (NaN where never predicted)

    @property
    def count(self) -> int:
        return int(self.matrix.sum())


def assess(reference: np.ndarray, predicted: np.ndarray, class_ids: Sequence[int] = None) -> Accuracy:
    """Compare two label arrays; pixels where either is 0 (nodata / unlabelled) are ignored."""
    reference, predicted = np.asarray(reference).ravel(), np.asarray(predicted).ravel()
    keep = (reference > 0) & (predicted > 0)
    reference, predicted = reference[keep], predicted[keep]
    ids = sorted(set(class_ids) if class_ids is not None else set(np.unique(reference)) | set(np.unique(predicted)))
    index = {c: i for i, c in enumerate(ids)}
    k = len(ids)
    r = np.array([index.get(int(v), -1) for v in reference], dtype=np.int64)
    p = np.array([index.get(int(v), -1) for v in predicted], dtype=np.int64)
    ok = (r >= 0) & (p >= 0)
    return accuracy_from_matrix(ids, np.bincount(r[ok] * k + p[ok], minlength=k * k).reshape(k, k))


def accuracy_from_matrix(class_ids: Sequence[int], matrix: np.ndarray) -> Accuracy:
    """The accuracy figures of a confusion matrix (rows = reference, columns = classification)."""
    ids, matrix = list(class_ids), np.asarray(matrix, dtype=np.int64)
    total = matrix.sum()
    if total == 0:
        raise ValueError("No pixel has both a reference label and a classified value: check that the rasters overlap.")
    diag = np.diag(matrix).astype(np.float64)
    ref_totals, pred_totals = matrix.sum(axis=1), matrix.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        producers = np.where(ref_totals > 0, diag / ref_totals, np.nan)
        users = np.where(pred_totals > 0, diag / pred_totals, np.nan)
    overall = diag.sum() / total
    expected = (ref_totals * pred_totals).sum() / float(total) ** 2
    kappa = (overall - expected) / (1.0 - expected) if expected < 1 else 1.0
    return Accuracy(list(ids), matrix, float(overall), float(np.nanmean(producers)), float(kappa), producers, users)
