"""Accuracy and area from a stratified random validation sample (Olofsson et al. 2014; Stehman 2013).

The strata are the map classes; each stratum's weight is its share of the mapped pixels.
Estimates: the error matrix in area proportions, overall, user's and producer's accuracy
and the error-adjusted area of every class, each with a 95 % confidence interval.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Sequence

import numpy as np

Z95 = 1.96


@dataclass
class AreaEstimates:
    """Estimates for ``class_ids`` (map classes and reference classes, sorted).

    ``counts[i, j]``: samples mapped as class i with reference class j; ``proportions``: the
    same in estimated area proportions. ``*_ci`` are 95 % confidence half-widths. Areas are
    in pixels (multiply by the pixel area); ``mapped`` is the pixel count of each class.
    """

    class_ids: np.ndarray
    counts: np.ndarray
    proportions: np.ndarray
    overall: float
    overall_ci: float
    users: np.ndarray
    users_ci: np.ndarray
    producers: np.ndarray
    producers_ci: np.ndarray
    area: np.ndarray
    area_ci: np.ndarray
    mapped: np.ndarray


def stratified_estimates(map_class: Sequence[int], reference: Sequence[int],
                         mapped_pixels: Dict[int, int]) -> AreaEstimates:
    """Stratified estimators for samples with map class ``map_class`` and reference class ``reference``.

    ``mapped_pixels`` gives every map class's pixel count (the stratum sizes); a stratum
    needs at least two samples for a variance. Classes never mapped but seen in the
    reference get a zero stratum.
    """
    m, r = np.asarray(map_class, np.int64), np.asarray(reference, np.int64)
    ids = np.array(sorted(set(mapped_pixels) | set(m.tolist()) | set(r.tolist())), np.int64)
    missing = sorted(set(m.tolist()) - set(mapped_pixels))
    if missing:
        raise ValueError(f"Samples lie on map classes {missing} that the map does not have.")
    k, index = len(ids), {c: i for i, c in enumerate(ids.tolist())}
    counts = np.zeros((k, k))
    np.add.at(counts, ([index[v] for v in m.tolist()], [index[v] for v in r.tolist()]), 1)
    mapped = np.array([mapped_pixels.get(c, 0) for c in ids.tolist()], np.float64)
    total = mapped.sum()
    weights = mapped / total
    n_i = counts.sum(axis=1)
    sampled = n_i > 0
    share = np.divide(counts, n_i[:, None], out=np.zeros_like(counts), where=sampled[:, None])
    p = weights[:, None] * share
    dof = np.where(n_i > 1, n_i - 1, np.inf)   # one sample: no variance estimate (counts as 0)
    term = share * (1 - share) / dof[:, None]   # per stratum and reference class

    users = np.diag(share).copy()
    users[~sampled] = np.nan
    users_var = np.diag(term)
    overall = float(np.trace(p))
    overall_var = float(np.sum(weights ** 2 * users_var))

    area = p.sum(axis=0)   # proportions of the reference classes
    area_var = np.sum(weights[:, None] ** 2 * term, axis=0)

    est_ref = (mapped[:, None] * share).sum(axis=0)   # estimated pixels of each reference class
    producers = np.divide(np.diag(p), area, out=np.full(k, np.nan), where=area > 0)
    pa = np.nan_to_num(producers)
    own = mapped ** 2 * (1 - pa) ** 2 * np.nan_to_num(users) * (1 - np.nan_to_num(users)) / dof
    others = np.array([np.sum(np.delete(mapped ** 2 * term[:, j], j)) for j in range(k)])
    producers_var = np.divide(own + pa ** 2 * others, est_ref ** 2, out=np.full(k, np.nan), where=est_ref > 0)
    return AreaEstimates(
        class_ids=ids, counts=counts, proportions=p, overall=overall, overall_ci=Z95 * overall_var ** 0.5,
        users=users, users_ci=np.where(sampled, Z95 * np.sqrt(users_var), np.nan), producers=producers,
        producers_ci=Z95 * np.sqrt(producers_var), area=area * total, area_ci=Z95 * np.sqrt(area_var) * total,
        mapped=mapped)


def allocate(mapped_pixels: Dict[int, int], total: int, minimum: int) -> Dict[int, int]:
    """Sample size per map class: ``minimum`` each (or all pixels of a smaller class), the rest of
    ``total`` in proportion to the classes' areas (largest remainders), never more than a class has."""
    ids = sorted(c for c, n in mapped_pixels.items() if n > 0)
    size = {c: min(minimum, mapped_pixels[c]) for c in ids}
    while True:
        left = total - sum(size.values())
        room = {c: mapped_pixels[c] - size[c] for c in ids if mapped_pixels[c] > size[c]}
        if left <= 0 or not room:
            return size
        area = sum(mapped_pixels[c] for c in room)
        quota = {c: left * mapped_pixels[c] / area for c in room}
        extra = {c: min(room[c], int(quota[c])) for c in room}
        order = sorted(room, key=lambda c: quota[c] - int(quota[c]), reverse=True)
        for c in order[:left - sum(extra.values())]:
            extra[c] = min(room[c], extra[c] + 1)
        if not any(extra.values()):
            return size
        for c, n in extra.items():
            size[c] += n
