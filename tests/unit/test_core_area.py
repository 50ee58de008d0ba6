"""Stratified accuracy and area estimates against the worked example of Olofsson et al. (2014),
Remote Sensing of Environment 148: 42-57 (Tables 8 and 9, p. 54), and the sample allocation."""
import numpy as np
import pytest

from diffclip_qgis.core.area import allocate, stratified_estimates

# Sample counts: rows map class, columns reference class (deforestation, forest gain, stable forest,
# stable non-forest), and the mapped pixels of each class (30 m Landsat pixels).
COUNTS = [[66, 0, 5, 4], [0, 55, 8, 12], [1, 0, 153, 11], [2, 1, 9, 313]]
MAPPED = {1: 200_000, 2: 150_000, 3: 3_200_000, 4: 6_450_000}
PIXEL_HA = 0.09


def olofsson_samples():
    m, r = [], []
    for i, row in enumerate(COUNTS, 1):
        for j, n in enumerate(row, 1):
            m += [i] * n
            r += [j] * n
    return m, r


def test_matches_the_published_example():
    e = stratified_estimates(*olofsson_samples(), MAPPED)
    # accuracies as printed: two decimals, 95 % confidence half-widths
    assert round(e.overall, 2) == 0.95 and round(e.overall_ci, 2) == 0.02
    assert np.round(e.users, 2).tolist() == [0.88, 0.73, 0.93, 0.96]
    assert np.round(e.users_ci, 2).tolist() == [0.07, 0.10, 0.04, 0.02]
    assert np.round(e.producers, 2).tolist() == [0.75, 0.85, 0.93, 0.96]
    assert np.round(e.producers_ci, 2).tolist() == [0.21, 0.25, 0.03, 0.02]
    # error-adjusted areas and their 95 % confidence intervals in hectares, as printed
    assert np.round(e.area * PIXEL_HA).tolist() == [21158, 11686, 285770, 581386]
    assert np.round(e.area_ci * PIXEL_HA).tolist() == [6158, 3756, 15510, 16282]
    # the error matrix in area proportions (Table 9, four decimals)
    assert np.round(e.proportions[0], 4).tolist() == [0.0176, 0.0, 0.0013, 0.0011]
    assert np.round(e.proportions[3], 4).tolist() == [0.004, 0.002, 0.0179, 0.6212]
    assert e.area.sum() == pytest.approx(sum(MAPPED.values()))


def test_a_perfect_map_has_no_uncertainty():
    m = [1] * 50 + [2] * 50
    e = stratified_estimates(m, m, {1: 900, 2: 100})
    assert e.overall == 1 and e.overall_ci == 0 and e.area.tolist() == [900, 100] and e.area_ci.tolist() == [0, 0]


def test_a_reference_class_the_map_never_shows_gets_area():
    e = stratified_estimates([1, 1, 1, 1, 2, 2], [1, 1, 3, 1, 2, 2], {1: 1000, 2: 1000})
    assert e.class_ids.tolist() == [1, 2, 3] and e.area[2] == pytest.approx(250) and e.producers[2] == 0
    assert np.isnan(e.users[2])


def test_samples_on_a_class_the_map_lacks_are_refused():
    with pytest.raises(ValueError, match="map classes \\[7\\]"):
        stratified_estimates([7, 1], [1, 1], {1: 10})


def test_allocation_minimum_per_class_then_proportional():
    size = allocate({1: 9000, 2: 900, 3: 100, 4: 20}, total=400, minimum=50)
    assert size[3] >= 50 and size[4] == 20   # the minimum, or every pixel of a smaller class
    assert sum(size.values()) == 400
    assert size[1] > size[2] > 50            # the rest follows the areas
    assert allocate({1: 10, 2: 5}, total=1000, minimum=50) == {1: 10, 2: 5}
